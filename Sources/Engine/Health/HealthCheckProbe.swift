import HTTP1
import ConfigModel
import Glibc

/// What one health check says on the wire and how it judges the answer, without sockets: a plain
/// value driven by the checker's I/O (connected, sent, bytes received, end of input), answering
/// with the next thing to do. A TCP connect check, `option httpchk` with its `http-check expect`
/// rules, or `option tcp-check` with its rules in order.
struct HealthCheckProbe {
    enum Action: Equatable {
        /// Open a connection (a `tcp-check connect` after the first closes the previous one);
        /// nil port: the check's port.
        case connect(port: UInt16?)
        case send([UInt8])
        /// Wait for bytes (or the end of input) from the server.
        case receive
        case done(HealthCheckOutcome)
    }

    private enum Plan {
        case connect
        case http(request: [UInt8], expectations: [CompiledHTTPExpectation], headRequest: Bool, disableOn404: Bool, port: UInt16?)
        case tcpCheck([CompiledTCPStep], implicitConnect: Bool)
        /// `agent-check`: `agent-send` if any, then one line.
        case agent(send: [UInt8])
    }

    private let plan: Plan
    /// A protocol check's rules (`option redis-check` …): HAProxy names no tcp-check step in their
    /// failures.
    private let protocolRules: Bool
    /// Bytes received since the last send or connect, at most `capacity`.
    private(set) var input: [UInt8] = []
    let capacity: Int
    /// tcp-check: the rule being run (index into the rules); -1 is the implicit first connect.
    private var step = -1
    /// tcp-check: an expect right after a send or connect reads first (HAProxy's must_read).
    private var mustRead = true
    private var ended = false
    /// A protocol check: what its last expect rule said when it passed.
    private var protocolOutcome: HealthCheckOutcome?
    /// An agent check: the line the agent answered, without its end (nil until one is complete).
    private(set) var agentLine: String?

    init(kind: HealthCheckKind, capacity: Int = 16384) {
        self.capacity = max(1024, capacity)
        if case .protocolCheck = kind { protocolRules = true } else { protocolRules = false }
        switch kind {
        case .connect:
            plan = .connect
        case .http(let check):
            plan = .http(request: HealthCheckProbe.request(check),
                         expectations: check.expectations.map(CompiledHTTPExpectation.init),
                         headRequest: check.method.uppercased() == "HEAD", disableOn404: check.disableOn404,
                         port: check.connectPort)
        case .tcpCheck(let steps):
            var implicit = true
            if case .connect? = steps.first { implicit = false }
            plan = .tcpCheck(steps.map(CompiledTCPStep.init), implicitConnect: implicit)
        case .protocolCheck(let check):
            let steps = ProtocolCheckRules.steps(check)
            var implicit = true
            if case .connect? = steps.first { implicit = false }
            plan = .tcpCheck(steps, implicitConnect: implicit)
        }
    }

    /// An agent check (`agent-check`), sending `send` (`agent-send`) first when not empty.
    init(agentSend send: [UInt8], capacity: Int = 16384) {
        self.capacity = max(1024, capacity)
        protocolRules = false
        plan = .agent(send: send)
    }

    /// The request `option httpchk` and `http-check send` describe (HAProxy lower-cases the header
    /// names and closes an HTTP/1.1 connection).
    static func request(_ check: HTTPCheck) -> [UInt8] {
        var text = "\(check.method) \(check.uri) \(check.version)\r\n"
        for h in check.headerList { text += "\(h.name.lowercased()): \(h.value)\r\n" }
        if let body = check.body, !body.isEmpty { text += "content-length: \(body.utf8.count)\r\n" }
        if check.version.uppercased() == "HTTP/1.1" { text += "connection: close\r\n" }
        text += "\r\n"
        if let body = check.body { text += body }
        return Array(text.utf8)
    }

    // MARK: events

    /// The first action of a check.
    mutating func start() -> Action {
        switch plan {
        case .http(_, _, _, _, let port):
            return .connect(port: port)
        case .connect, .agent:
            return .connect(port: nil)
        case .tcpCheck(let steps, let implicit):
            if implicit {
                step = -1
                return .connect(port: nil)
            }
            step = 0
            if case .connect(let port) = steps[0] { return .connect(port: port) }
            return .connect(port: nil)
        }
    }

    mutating func connected() -> Action {
        input.removeAll(keepingCapacity: true)
        ended = false
        switch plan {
        case .connect:
            return .done(HealthCheckOutcome(.layer4OK))
        case .http(let request, _, _, _, _):
            return .send(request)
        case .tcpCheck:
            mustRead = true
            return runSteps(from: step + 1)
        case .agent(let send):
            return send.isEmpty ? .receive : .send(send)
        }
    }

    /// Everything the last `.send` asked for is written.
    mutating func sent() -> Action {
        switch plan {
        case .connect:
            return .receive
        case .http, .agent:
            return .receive
        case .tcpCheck:
            mustRead = true
            return runSteps(from: step + 1)
        }
    }

    /// Bytes arrived; `count` of them at `bytes`.
    mutating func received(_ bytes: UnsafeRawBufferPointer) -> Action {
        let room = capacity - input.count
        if room > 0 { input.append(contentsOf: bytes.prefix(room)) }
        return evaluate()
    }

    /// The server closed its side.
    mutating func inputEnded() -> Action {
        ended = true
        return evaluate()
    }

    private var lastRead: Bool { ended || input.count >= capacity }

    private mutating func evaluate() -> Action {
        switch plan {
        case .connect:
            return .receive
        case .http(_, let expectations, let head, let disableOn404, _):
            return evaluateHTTP(expectations, headRequest: head, disableOn404: disableOn404)
        case .tcpCheck:
            mustRead = false
            return runSteps(from: step)
        case .agent:
            return evaluateAgent()
        }
    }

    /// HAProxy's agent reply: the line up to the first CR or LF. A NUL before it, or the end of
    /// the input without one, is an incomplete line (the monitor keeps the last status).
    private mutating func evaluateAgent() -> Action {
        for (i, b) in input.enumerated() {
            if b == 0 { break }
            if b == 10 || b == 13 {
                agentLine = String(decoding: input[..<i], as: UTF8.self)
                return .done(HealthCheckOutcome(.checked))
            }
        }
        if !lastRead { return .receive }
        return .done(HealthCheckOutcome(.checked, info: "Ignoring incomplete line from agent"))
    }

    // MARK: failures the I/O layer reports

    /// The connection could not be made (refused, unreachable): Layer4 connection problem.
    func connectFailed(errno e: Int32) -> HealthCheckOutcome {
        HealthCheckOutcome(.layer4Connection, info: HealthCheckProbe.errorText(e) + stepSuffix)
    }

    /// A socket error once connected (reset): Socket error.
    func socketError(errno e: Int32) -> HealthCheckOutcome {
        HealthCheckOutcome(.socketError, info: HealthCheckProbe.errorText(e) + stepSuffix)
    }

    /// The check's time ran out, connecting (Layer4) or waiting for the answer (Layer7).
    func timedOut(connecting: Bool) -> HealthCheckOutcome {
        if !connecting, case .tcpCheck(let steps, _) = plan, steps.indices.contains(step), case .expect(let e) = steps[step] {
            return HealthCheckOutcome(e.timeout, info: stepSuffix)
        }
        return HealthCheckOutcome(connecting ? .layer4Timeout : .layer7Timeout, info: stepSuffix)
    }

    static func errorText(_ e: Int32) -> String { String(cString: strerror(e)) }

    /// tcp-check: where the check was when the connection failed, HAProxy's words.
    private var stepSuffix: String {
        guard case .tcpCheck(let steps, _) = plan, !protocolRules else { return "" }
        if step < 0 { return " at initial connection step of tcp-check" }
        var s = " at step \(step + 1) of tcp-check"
        switch steps[step] {
        case .connect(let port): s += port.map { " (connect port \($0))" } ?? " (connect)"
        case .send: s += " (send)"
        case .expectString(let text, _): s += " (expect string '\(text)')"
        case .expectBinary(let bytes, _): s += " (expect binary '\(CompiledTCPStep.hex(bytes))')"
        case .expectRegex: s += " (expect regex)"
        case .expect: s += " (expect)"
        }
        return s
    }

    // MARK: HTTP

    private mutating func evaluateHTTP(_ expectations: [CompiledHTTPExpectation], headRequest: Bool, disableOn404: Bool) -> Action {
        let response: HealthCheckHTTPResponse
        switch HealthCheckHTTPResponse.parse(input, headRequest: headRequest, ended: lastRead) {
        case .incomplete:
            if lastRead { return .done(HealthCheckOutcome(.layer7Response)) }
            return .receive
        case .invalid:
            return .done(HealthCheckOutcome(.layer7Response))
        case .response(let r):
            response = r
        }
        // HAProxy's L7OKC: passed, on condition (the health state makes an UP server NOLB; a DOWN
        // one stays DOWN).
        if disableOn404 && response.status == 404 {
            return .done(HealthCheckOutcome(.layer7ConditionalOK, code: 404, info: response.reason))
        }
        let needsBody = expectations.contains { $0.needsBody }
        if needsBody && !response.bodyComplete && !lastRead { return .receive }
        if expectations.isEmpty {
            // HAProxy's default: any 2xx or 3xx status.
            if (200...399).contains(response.status) {
                return .done(HealthCheckOutcome(.layer7OK, code: response.status))
            }
            return .done(HealthCheckOutcome(.layer7Status, code: response.status, info: response.reason))
        }
        for e in expectations {
            if let failure = e.evaluate(response) { return .done(failure) }
        }
        return .done(HealthCheckOutcome(.layer7OK, code: response.status))
    }

    // MARK: tcp-check

    /// Runs rules from `index` until one waits for I/O; the outcome once the last one is done.
    private mutating func runSteps(from index: Int) -> Action {
        guard case .tcpCheck(let steps, _) = plan else { return .done(HealthCheckOutcome(.layer4OK)) }
        var i = max(index, 0)
        while i < steps.count {
            step = i
            switch steps[i] {
            case .connect(let port):
                // A connect after the first: a new connection (the checker closes the old one).
                return .connect(port: port)
            case .send(let bytes):
                input.removeAll(keepingCapacity: true)
                ended = false
                return .send(bytes)
            case .expect(let e):
                if mustRead { return .receive }
                if lastRead && input.isEmpty {
                    return .done(HealthCheckOutcome(e.error, info: "TCPCHK got an empty response at step \(i + 1)"))
                }
                switch e.evaluate(input, lastRead: lastRead) {
                case .wait: return .receive
                case .failed(let outcome): return .done(outcome)
                case .passed(let outcome): protocolOutcome = outcome
                }
            case .expectString, .expectBinary, .expectRegex:
                if mustRead { return .receive }
                switch steps[i].match(input, lastRead: lastRead) {
                case .wait:
                    return .receive
                case .passed:
                    break
                case .failed(let matchedUnwanted):
                    if input.isEmpty {
                        return .done(HealthCheckOutcome(.layer7Response, info: "TCPCHK got an empty response at step \(i + 1)"))
                    }
                    return .done(HealthCheckOutcome(.layer7Response, info: steps[i].failureText(matchedUnwanted: matchedUnwanted, step: i + 1)))
                }
            }
            i += 1
        }
        // Every rule ran: the last one says what passed.
        switch steps.last {
        case nil: return .done(HealthCheckOutcome(.layer4OK))
        case .connect?: return .done(HealthCheckOutcome(.layer4OK, info: protocolRules ? "" : "(tcp-check)"))
        case .expect?: return .done(protocolOutcome ?? HealthCheckOutcome(.layer7OK))
        default: return .done(HealthCheckOutcome(.layer7OK, code: 0, info: "(tcp-check)"))
        }
    }

}

// MARK: compiled rules

/// An `http-check expect` with its pattern parsed once per check.
struct CompiledHTTPExpectation {
    let expectation: HTTPCheckExpectation
    private let ranges: [ClosedRange<Int>]
    private let regex: Regex<AnyRegexOutput>?

    init(_ e: HTTPCheckExpectation) {
        expectation = e
        switch e.kind {
        case .status:
            ranges = CompiledHTTPExpectation.statusRanges(e.pattern)
            regex = nil
        case .statusRegex, .stringRegex:
            ranges = []
            regex = try? Regex(e.pattern)
        case .string:
            ranges = []
            regex = nil
        }
    }

    var needsBody: Bool { expectation.kind == .string || expectation.kind == .stringRegex }

    /// `200`, `200-299`, `200,301-302`.
    static func statusRanges(_ pattern: String) -> [ClosedRange<Int>] {
        pattern.split(separator: ",").compactMap { part in
            let bounds = part.split(separator: "-", maxSplits: 1).map { Int($0.trimmingSpaces) }
            if bounds.count == 1, let a = bounds[0] { return a...a }
            if bounds.count == 2, let a = bounds[0], let b = bounds[1], a <= b { return a...b }
            return nil
        }
    }

    /// nil when the response passes; the failure otherwise (HAProxy's statuses and info texts).
    func evaluate(_ r: HealthCheckHTTPResponse) -> HealthCheckOutcome? {
        let inverse = expectation.negated
        switch expectation.kind {
        case .status:
            let match = ranges.contains { $0.contains(r.status) }
            return match != inverse ? nil : HealthCheckOutcome(.layer7Status, code: r.status, info: r.reason)
        case .statusRegex:
            let match = regex.map { String(r.status).contains($0) } ?? false
            return match != inverse ? nil : HealthCheckOutcome(.layer7Status, code: r.status, info: r.reason)
        case .string, .stringRegex:
            if r.body.isEmpty {
                return HealthCheckOutcome(.layer7Response, code: r.status, info: "HTTP content check could not find a response body")
            }
            let match: Bool
            if expectation.kind == .string {
                match = r.body.firstRange(of: Array(expectation.pattern.utf8)) != nil
            } else {
                match = regex.map { String(decoding: r.body, as: UTF8.self).contains($0) } ?? false
            }
            if match != inverse { return nil }
            return HealthCheckOutcome(.layer7Response, code: r.status,
                                      info: inverse ? "HTTP check matched unwanted content" : "HTTP content check did not match")
        }
    }
}

/// A `tcp-check` rule with its pattern ready.
enum CompiledTCPStep {
    case connect(port: UInt16?)
    case send([UInt8])
    case expectString(String, negated: Bool)
    case expectBinary([UInt8], negated: Bool)
    case expectRegex(Regex<AnyRegexOutput>?, negated: Bool)
    /// A protocol check's expect rule.
    case expect(ProtocolExpect)

    init(_ step: TCPCheckStep) {
        switch step {
        case .connect(let port): self = .connect(port: port)
        case .send(let bytes), .sendBinary(let bytes): self = .send(bytes)
        case .expectString(let s, let negated): self = .expectString(s, negated: negated)
        case .expectBinary(let b, let negated): self = .expectBinary(b, negated: negated)
        case .expectRegex(let pattern, let negated): self = .expectRegex(try? Regex(pattern), negated: negated)
        }
    }

    enum Match { case wait, passed, failed(matchedUnwanted: Bool) }

    /// HAProxy's tcp-check expect: wait while a string could still arrive (fewer bytes than the
    /// pattern, or no match yet and more may come); negation fails on a match at once.
    func match(_ input: [UInt8], lastRead: Bool) -> Match {
        let matched: Bool
        let inverse: Bool
        switch self {
        case .expectString(let s, let negated):
            let pattern = Array(s.utf8)
            if !lastRead && input.count < pattern.count { return .wait }
            matched = input.firstRange(of: pattern) != nil
            inverse = negated
        case .expectBinary(let pattern, let negated):
            if !lastRead && input.count < pattern.count { return .wait }
            matched = input.firstRange(of: pattern) != nil
            inverse = negated
        case .expectRegex(let regex, let negated):
            matched = regex.map { String(decoding: input, as: UTF8.self).contains($0) } ?? false
            inverse = negated
        case .connect, .send, .expect:
            return .passed
        }
        if !matched && !lastRead { return .wait }
        return matched != inverse ? .passed : .failed(matchedUnwanted: matched)
    }

    func failureText(matchedUnwanted: Bool, step: Int) -> String {
        let head = matchedUnwanted ? "TCPCHK matched unwanted content" : "TCPCHK did not match content"
        switch self {
        case .expectString(let s, _): return "\(head) '\(s)' at step \(step)"
        case .expectBinary: return "\(head) (binary) at step \(step)"
        case .expectRegex: return "\(head) (regex) at step \(step)"
        case .connect, .send, .expect: return head
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789ABCDEF")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }
}

// MARK: the HTTP answer of a check

/// Just enough of an HTTP/1.x response for a check: status, reason, and the body as framed by
/// Content-Length, chunked encoding, or the end of the connection.
struct HealthCheckHTTPResponse {
    var status: Int
    var reason: String
    var body: [UInt8]
    var bodyComplete: Bool

    enum Parse {
        case incomplete
        case invalid
        case response(HealthCheckHTTPResponse)
    }

    static func parse(_ input: [UInt8], headRequest: Bool, ended: Bool) -> Parse {
        guard let headEnd = headEnd(input) else {
            if input.count >= 5, !input.starts(with: Array("HTTP/".utf8)) { return .invalid }
            return .incomplete
        }
        // Lines split on bytes: a String would take "\r\n" as one character.
        var lines = input[..<headEnd.start].split(separator: 10, omittingEmptySubsequences: false).map { line in
            String(decoding: line.last == 13 ? line.dropLast() : line, as: UTF8.self)
        }
        guard !lines.isEmpty else { return .invalid }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3, let status = Int(parts[1]) else {
            return .invalid
        }
        let reason = parts.count > 2 ? String(parts[2]) : ""
        var contentLength: Int?
        var chunked = false
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { return .invalid }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces
            if name == "content-length" {
                guard let n = Int(value), n >= 0 else { return .invalid }
                contentLength = n
            } else if name == "transfer-encoding" && value.lowercased().contains("chunked") {
                chunked = true
            }
        }
        let rest = Array(input[headEnd.end...])
        var response = HealthCheckHTTPResponse(status: status, reason: reason, body: [], bodyComplete: false)
        if headRequest || status == 204 || status == 304 || (100..<200).contains(status) {
            response.bodyComplete = true
        } else if chunked {
            let (body, complete) = dechunk(rest)
            response.body = body
            response.bodyComplete = complete
        } else if let contentLength {
            response.body = Array(rest.prefix(contentLength))
            response.bodyComplete = rest.count >= contentLength
        } else {
            response.body = rest
            response.bodyComplete = ended
        }
        return .response(response)
    }

    private static func headEnd(_ input: [UInt8]) -> (start: Int, end: Int)? {
        var i = 0
        while i < input.count {
            if input[i] == 10 {
                if i + 1 < input.count && input[i + 1] == 10 { return (i, i + 2) }
                if i + 2 < input.count && input[i + 1] == 13 && input[i + 2] == 10 { return (i, i + 3) }
            }
            i += 1
        }
        return nil
    }

    /// The data of a chunked body so far, and whether its last chunk arrived.
    private static func dechunk(_ data: [UInt8]) -> ([UInt8], Bool) {
        var body: [UInt8] = []
        var i = 0
        while true {
            guard let lf = data[i...].firstIndex(of: 10) else { return (body, false) }
            var line = data[i..<lf]
            if line.last == 13 { line = line.dropLast() }
            let sizeText = String(decoding: line, as: UTF8.self).split(separator: ";", omittingEmptySubsequences: false)
                .first.map { $0.trimmingSpaces } ?? ""
            // A malformed size ends the body where it is (the expectation judges what came).
            guard let size = Int(sizeText, radix: 16), size >= 0 else { return (body, true) }
            if size == 0 { return (body, true) }
            let start = lf + 1
            if start + size > data.count {
                body += data[start...]
                return (body, false)
            }
            body += data[start..<start + size]
            i = start + size
            if i < data.count && data[i] == 13 { i += 1 }
            guard i < data.count && data[i] == 10 else { return (body, false) }
            i += 1
        }
    }
}
