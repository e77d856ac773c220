import HTTP1
import ConfigModel

// The per-request HTTP logic of one proxy: ACLs and conditions, `http-request` and
// `http-response` rules, `redirect`, `use_backend`, `option forwardfor` / `originalto`, cookie
// persistence, hash balancing keys, header captures and local answers (HAProxy's semantics,
// doc/configuration.txt). Values and pure functions over the parser's `HTTPHead` and the bytes it
// points into; no socket, no Foundation, no allocation per request in steady state.
//
// HOW THE SESSION CALLS IT
//
// Per generation, off the event loop: `try HTTPRuleSet(proxy)` for every HTTP proxy (frontend,
// backend, listen); it throws a `ConfigError` (with the line) for a regex `regcomp` refuses. The
// generation keeps the sets (backends by name) and frees them with itself. Immutable once built:
// any loop may use them at once.
//
// Per client connection: one `HTTPRuleScratch(capacity: tune.bufsize)`, kept for the connection's
// whole life and used by one request at a time (its buffers are allocated on first use, then
// reused). Per request, the session keeps nothing else: the rewrites, the local answer, the
// captures and the persistence facts live in the scratch until the next `processRequest`.
//
// The head bytes: pass, to every call about a request, the same bytes the parser returned
// `.headersComplete` for (`input`), at the same offsets, unchanged, from `processRequest` until
// `writeRequestHead` has returned (the buffer may move in between: only offsets are kept); the
// same for a response from `processResponse` to `writeResponseHead`. Pass `parser.head` straight
// in (`borrowing`); never keep a copy of it (a copy makes the parser's next reset allocate).
//
// 1. `.headersComplete` for a request:
//      let decision = frontend.processRequest(parser.head, input: input, connection: info,
//                                             scratch: scratch) { name in generation.backend(name) }
//    runs, in HAProxy's order: the frontend's `capture request header`s, its `http-request` rules,
//    its `redirect` rules, its `use_backend` rules; then asks the closure for the backend's rule set
//    (`name` is the `use_backend` target, nil for the default backend, `default_backend` or the
//    proxy itself for a `listen`; return nil when there is none: answered 503); then that
//    backend's `http-request` and `redirect` rules (not twice when it is the frontend itself).
//      .respond(r)    send `r.writeHead(into: &writer, close:, clientVersion:)` then `r.body`; close
//                     the connection afterwards when `r.closesConnection`. Nothing is forwarded.
//      .useService(s) hand the request to the service `s` (`prometheus-exporter`).
//      .forward(b)    go on with the backend it named (nil: the default one):
// 2. Choose the server on that backend's set, `be`:
//      if let i = be.persistentServer(parser.head, input:, scratch:, isUsable: { … }) → server i
//      (only with `cookie`; it also removes or strips the cookie in what is forwarded), else
//      be.balanceKey(for: proxy.balance, parser.head, input:, scratch:) → `Balancer.pick(hashKey:)`
//      (nil: round robin).
// 3. frontend.writeRequestHead(into: &writer, parser.head, input:, connection:, scratch:,
//                              backend: be, connectionHeader: .keepAlive | .close | .upgrade)
//    writes the head for the server (rewrites applied, hop-by-hop fields removed, X-Forwarded-For,
//    X-Original-To, the Connection field asked for). `writer.overflowed`: answer
//    `frontend.errorResponse(500, backend: be)`. The body follows as received.
// 4. `.headersComplete` for the response (1xx interim ones: forward them untouched, no call):
//      frontend.processResponse(responseParser.head, input:, connection:, scratch:, backend: be,
//                               server: i)   // i: index of the server in `be`'s servers
//    runs `be`'s then the frontend's `http-response` rules, then cookie persistence.
//      .forward      frontend.writeResponseHead(into: &writer, responseParser.head, input:, scratch:,
//                                               connectionHeader:, clientVersion: request's version)
//      .respond(r)   send `r` instead of the server's response (e.g. 502 for `http-response deny`).
// 5. The session's own errors (400 bad request, 408, 503 no server, 504, 502 bad response):
//      frontend.errorResponse(status, backend: be or nil) – the `errorfile`s, else HAProxy's pages.
// `scratch.capturedRequestHeaders` is the log's `%hr` for the current request.
//
// Costs: in a release build none of these calls allocates once the scratch's buffers exist, with
// one exception: glibc's `regexec` mallocs when it extracts groups, which only `replace-header` /
// `replace-value` with `\N` references ask for. Debug builds allocate coroutine frames when
// iterating arrays; measure with `-c release`.

/// The HTTP rules of one proxy, compiled: see the comment at the top of this file for the calls a
/// session makes.
final class HTTPRuleSet: @unchecked Sendable {
    /// The proxy's name.
    let name: String
    let nameBytes: UnsafeRawBufferPointer

    let requestRules: [HTTPCompiledRequestRule]
    let redirectRules: [(redirect: HTTPCompiledRedirect, condition: HTTPCompiledCondition?)]
    let backendRules: [(backend: String, condition: HTTPCompiledCondition?)]
    /// The `use_backend` rules with a log-format name, by index in `backendRules`.
    let dynamicBackends: [Int: HTTPCompiledFormat]
    let responseRules: [HTTPCompiledResponseRule]
    /// `http-after-response`: every answer, the server's and strata's own.
    let afterResponseRules: [HTTPCompiledResponseRule]
    let forwardFor: HTTPCompiledForwardedHeader?
    let originalTo: HTTPCompiledForwardedHeader?
    /// `option forwarded` (RFC 7239), a backend's.
    let forwarded: HTTPCompiledForwarded?
    /// `capture request|response header`: each header's lowercase name and its slot.
    let captures: [(slot: Int, name: UnsafeRawBufferPointer)]
    let responseCaptures: [(slot: Int, name: UnsafeRawBufferPointer)]
    /// The frontend's request and response slots (header captures, `declare capture`,
    /// `http-request capture … len`).
    let captureLayout: HTTPCaptureSlots.Layout
    let responseCaptureLayout: HTTPCaptureSlots.Layout
    /// `capture cookie NAME len N`: NAME, and its two slots of N bytes (request, response).
    let cookieCapture: UnsafeRawBufferPointer?
    let cookieCaptureLayout: HTTPCaptureSlots.Layout
    /// `%hs` of a request that got no answer from a server: the slots, empty (`{|}`).
    let noResponseCaptures: UnsafeRawBufferPointer
    let errorFiles: [Int: UnsafeRawBufferPointer]
    let cookie: HTTPCompiledCookie?
    /// Each server's `cookie` value, in the order of the proxy's `servers`.
    let serverCookies: [UnsafeRawBufferPointer?]
    let balanceName: UnsafeRawBufferPointer?
    /// An `http-response redirect prefix|scheme` rule reads the request's target and Host.
    let keepsRequestTarget: Bool
    /// `balance hash EXPR`: the expression.
    let balanceSample: HTTPCompiledSample?
    /// `unique-id-format` and `unique-id-header` (a frontend's: HAProxy reads them on the
    /// frontend only).
    let uniqueIDFormat: HTTPUniqueIDFormat?
    /// `monitor fail if|unless COND`.
    let monitorFail: HTTPCompiledCondition?
    let uniqueIDHeader: UnsafeRawBufferPointer?

    private let constants: HTTPRuleConstants

    /// Compiles `proxy.http` (and the server cookies and balancing parameter). Throws the first
    /// invalid regular expression, with its location.
    init(_ proxy: Proxy, stickTables: [String: StickTable] = [:], maps: [String: SharedMap] = [:],
         caches: [String: HTTPCache] = [:]) throws(ConfigError) {
        let constants = HTTPRuleConstants()
        constants.caches = caches
        constants.userlists = proxy.http.userlists
        constants.maps = maps
        constants.proxyName = proxy.name
        constants.stickTables = stickTables
        self.constants = constants
        name = proxy.name
        nameBytes = constants.bytes(proxy.name)
        let http = proxy.http

        func condition(_ c: Condition?) throws(ConfigError) -> HTTPCompiledCondition? {
            guard let c else { return nil }
            return try HTTPCompiledCondition(c, constants: constants)
        }

        var requestRules: [HTTPCompiledRequestRule] = []
        for (i, rule) in http.requestRules.enumerated() {
            var action = try HTTPCompiledRequestAction(rule.action, location: rule.location, constants: constants)
            if case .earlyHint(let name, let value, _) = action, i + 1 < http.requestRules.count,
               case .earlyHint = http.requestRules[i + 1].action, http.requestRules[i + 1].condition == nil {
                action = .earlyHint(name, value, closes: false)
            }
            requestRules.append(HTTPCompiledRequestRule(action: action, condition: try condition(rule.condition)))
        }
        self.requestRules = requestRules

        var redirectRules: [(redirect: HTTPCompiledRedirect, condition: HTTPCompiledCondition?)] = []
        for rule in http.redirectRules {
            redirectRules.append((HTTPCompiledRedirect(rule.redirect, constants: constants), try condition(rule.condition)))
        }
        self.redirectRules = redirectRules

        var backendRules: [(backend: String, condition: HTTPCompiledCondition?)] = []
        var dynamicBackends: [Int: HTTPCompiledFormat] = [:]
        for rule in http.backendRules {
            if let format = rule.dynamic { dynamicBackends[backendRules.count] = HTTPCompiledFormat(format, constants: constants) }
            backendRules.append((rule.backend, try condition(rule.condition)))
        }
        self.backendRules = backendRules
        self.dynamicBackends = dynamicBackends

        var responseRules: [HTTPCompiledResponseRule] = []
        for rule in http.responseRules {
            responseRules.append(HTTPCompiledResponseRule(
                action: try HTTPCompiledResponseAction(rule.action, location: rule.location, constants: constants),
                condition: try condition(rule.condition)))
        }
        self.responseRules = responseRules
        keepsRequestTarget = http.responseRules.contains { rule in
            if case .redirect(let r) = rule.action, !{ if case .location = r.kind { true } else { false } }() { return true }
            return false
        }
        var afterResponseRules: [HTTPCompiledResponseRule] = []
        for rule in http.afterResponseRules {
            afterResponseRules.append(HTTPCompiledResponseRule(
                action: try HTTPCompiledResponseAction(rule.action, location: rule.location, constants: constants),
                condition: try condition(rule.condition)))
        }
        self.afterResponseRules = afterResponseRules

        forwardFor = http.forwardFor.map { HTTPCompiledForwardedHeader($0, constants: constants) }
        originalTo = http.originalTo.map { HTTPCompiledForwardedHeader($0, constants: constants) }
        forwarded = proxy.kind == .frontend ? nil : http.forwarded.map { HTTPCompiledForwarded($0, constants: constants) }
        captures = http.captures.enumerated().compactMap { i, c in c.name.map { (i, constants.bytes($0, lowercased: true)) } }
        responseCaptures = http.responseCaptures.enumerated().compactMap { i, c in
            c.name.map { (i, constants.bytes($0, lowercased: true)) }
        }
        captureLayout = HTTPCaptureSlots.Layout(http.captures.map(\.length))
        responseCaptureLayout = HTTPCaptureSlots.Layout(http.responseCaptures.map(\.length))
        cookieCapture = http.cookieCapture.map { constants.bytes($0.name) }
        cookieCaptureLayout = HTTPCaptureSlots.Layout(http.cookieCapture.map { [$0.length, $0.length] } ?? [])
        noResponseCaptures = http.responseCaptures.isEmpty
            ? HTTPRuleBytes.empty : constants.bytes("{" + String(repeating: "|", count: http.responseCaptures.count - 1) + "}")
        var errorFiles: [Int: UnsafeRawBufferPointer] = [:]
        for (status, message) in http.errorFiles { errorFiles[status] = constants.bytes(message) }
        self.errorFiles = errorFiles
        cookie = http.cookie.map { HTTPCompiledCookie($0, constants: constants) }
        monitorFail = try condition(http.monitorFail)
        uniqueIDFormat = http.uniqueIDFormat.map { HTTPUniqueIDFormat($0, constants: constants) }
        uniqueIDHeader = uniqueIDFormat == nil ? nil : http.uniqueIDHeader.map { constants.bytes($0) }
        serverCookies = proxy.servers.map { server in server.options.cookie.map { constants.bytes($0) } }
        switch proxy.balance {
        case .urlParameter(let name): balanceName = constants.bytes(name)
        case .header(let name): balanceName = constants.bytes(name, lowercased: true)
        default: balanceName = nil
        }
        if case .hash(let expression, _) = proxy.balance {
            balanceSample = HTTPCompiledSample(expression, constants: constants)
        } else {
            balanceSample = nil
        }
    }

    /// Whether `monitor fail` holds for this request (the `monitor-uri` answer is then 503).
    func monitorFails(_ head: borrowing HTTPHead, input: UnsafeRawBufferPointer, connection: HTTPConnectionInfo,
                      scratch: HTTPRuleScratch) -> Bool {
        guard let monitorFail else { return false }
        scratch.beginRule()
        return withUnsafePointer(to: head) { head in
            withUnsafePointer(to: connection) { connection in
                monitorFail.evaluate(HTTPEvaluation(request: HTTPMessageView(input: input, head: head, edits: scratch.request),
                                                    response: nil, connection: connection, scratch: scratch, frontend: self,
                                                    backend: nil))
            }
        }
    }

    /// The answer for `status`: this proxy's `errorfile` for it (the backend's first, when given),
    /// else HAProxy's page.
    func errorResponse(_ status: Int, backend: HTTPRuleSet? = nil) -> HTTPLocalResponse {
        if let backend, backend !== self, let message = backend.errorFiles[status] {
            return .raw(status: status, message)
        }
        if let message = errorFiles[status] { return .raw(status: status, message) }
        return .errorPage(status)
    }
}

/// `option forwardfor` / `option originalto`, compiled.
struct HTTPCompiledForwardedHeader {
    let name: UnsafeRawBufferPointer
    let lowercaseName: UnsafeRawBufferPointer
    let except: HTTPCompiledNetwork?
    let ifNone: Bool

    init(_ header: ForwardedHeader, constants: HTTPRuleConstants) {
        name = constants.bytes(header.header)
        lowercaseName = constants.bytes(header.header, lowercased: true)
        except = header.except.map(HTTPCompiledNetwork.init)
        ifNone = header.ifNone
    }
}

/// `option forwarded`, its `-expr` samples compiled.
struct HTTPCompiledForwarded {
    let option: ForwardedOption
    let host: HTTPCompiledSample?
    let by: HTTPCompiledSample?
    let byPort: HTTPCompiledSample?
    let client: HTTPCompiledSample?
    let clientPort: HTTPCompiledSample?

    init(_ option: ForwardedOption, constants: HTTPRuleConstants) {
        self.option = option
        host = option.hostExpression.map { HTTPCompiledSample($0, constants: constants) }
        by = option.byExpression.map { HTTPCompiledSample($0, constants: constants) }
        byPort = option.byPortExpression.map { HTTPCompiledSample($0, constants: constants) }
        client = option.clientExpression.map { HTTPCompiledSample($0, constants: constants) }
        clientPort = option.clientPortExpression.map { HTTPCompiledSample($0, constants: constants) }
    }
}

/// A field name as a rule writes it and as it is compared.
struct HTTPCompiledFieldName {
    let name: UnsafeRawBufferPointer
    let lowercase: UnsafeRawBufferPointer
    let knownName: HTTPFieldName

    init(_ name: String, constants: HTTPRuleConstants) {
        self.name = constants.bytes(name)
        lowercase = constants.bytes(name, lowercased: true)
        knownName = HTTPFieldName.identify(self.name, 0..<self.name.count)
    }
}
