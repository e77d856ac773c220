import ConfigModel
import HTTP1

/// The TCP-layer rules of one proxy in one generation, compiled (HAProxy's `tcp-request
/// connection`, `tcp-request content`, and in mode tcp `use_backend`):
/// conditions compiled as HTTP rules' are, over a condition-only `HTTPRuleSet` of the same proxy
/// (its ACL fetches, `src`, `dst`, the payload fetches). Immutable once built: every loop uses it.
///
/// Evaluation: one `HTTPRuleScratch` per loop (`Worker.ruleScratch`): a rule is evaluated from
/// start to end in one event on one thread.
final class TCPRuleSet: @unchecked Sendable {
    struct Rule {
        let action: TCPRuleAction
        let condition: HTTPCompiledCondition?
        /// `.stickCounter` actions, compiled.
        let stick: HTTPCompiledStickAction?
        /// Variable and capture actions, compiled.
        let effect: TCPRuleEffect?
    }

    /// What evaluates conditions (its own rules are the proxy's HTTP ones: empty in mode tcp).
    let evaluator: HTTPRuleSet
    let connection: [Rule]
    /// `tcp-request session` rules.
    let session: [Rule]
    let content: [Rule]
    /// Mode tcp: `use_backend` rules.
    let backendRules: [(backend: String, condition: HTTPCompiledCondition?)]
    /// `tcp-request inspect-delay` in seconds (nil: no wait).
    let inspectDelay: Double?
    /// Whether a rule tracks or changes stick counters (a connection then gets a tracker).
    let usesStickCounters: Bool
    /// Mode tcp: the request capture slots (`tcp-request content capture`; `%hr` prints them).
    let captureSlots: Int
    /// Whether a connection's first bytes are read before a backend is chosen.
    var inspectsContent: Bool { !content.isEmpty || !backendRules.isEmpty }

    init(_ proxy: Proxy, evaluator: HTTPRuleSet, stickTables: [String: StickTable] = [:]) throws(ConfigError) {
        self.evaluator = evaluator
        let constants = HTTPRuleConstants()
        constants.proxyName = proxy.name
        constants.stickTables = stickTables
        func compile(_ rules: [TCPRule]) throws(ConfigError) -> [Rule] {
            var out: [Rule] = []
            for r in rules {
                var stick: HTTPCompiledStickAction?
                if case .stickCounter(let a) = r.action { stick = HTTPCompiledStickAction(a, constants: constants) }
                out.append(Rule(action: r.action,
                                condition: try r.condition.map { c throws(ConfigError) in try HTTPCompiledCondition(c, constants: constants) },
                                stick: stick, effect: TCPRuleEffect(r.action, constants: constants)))
            }
            return out
        }
        connection = try compile(proxy.tcp.connection)
        session = try compile(proxy.tcp.session)
        content = proxy.kind == .backend ? [] : try compile(proxy.tcp.content)
        if proxy.mode == .tcp {
            backendRules = evaluator.backendRules
        } else {
            backendRules = []
        }
        inspectDelay = proxy.tcp.inspectDelay.map { Double($0) / 1000 }
        let captures = content.count { if case .capture = $0.action { true } else { false } }
        // A `capture request header` slot is never filled in mode tcp (HAProxy prints it empty).
        captureSlots = proxy.mode == .tcp && captures > 0 ? proxy.http.captures.count : 0
        usesStickCounters = connection.contains { $0.stick != nil } || content.contains { $0.stick != nil }
            || session.contains { $0.stick != nil }
        self.constants = constants
    }

    private let constants: HTTPRuleConstants

    /// What `tcp-request connection` decides for a connection just accepted.
    struct ConnectionDecision {
        var reject = false
        /// `silent-drop` (with `reject`): reset the connection rather than close it.
        var silentDrop = false
        var expectProxy = false
        /// `tcp-request connection set-src|set-dst…`: the connection's addresses from now on.
        var client: SocketEndpoint?
        var local: SocketEndpoint?
        /// `tcp-request session set-var`: the variables the session starts with.
        var variables: HTTPVariables = [:]
    }

    /// Evaluates `tcp-request connection` rules in order: `accept` and `reject` end the walk,
    /// `expect-proxy layer4` notes the header and goes on (HAProxy's order).
    func evaluateConnection(_ info: HTTPConnectionInfo, scratch: HTTPRuleScratch) -> ConnectionDecision {
        var decision = ConnectionDecision()
        // `set-src` and the like change this copy for the rules after them, and the decision.
        var info = info
        withUnsafePointer(to: &info) { connection in
            let ev = HTTPEvaluation(request: nil, response: nil, connection: connection, scratch: scratch,
                                    frontend: evaluator, backend: nil)
            for rule in connection.pointee.client == nil ? [] : self.connection {
                scratch.samples.reset()
                guard rule.condition.evaluate(ev) else { continue }
                switch rule.action {
                case .accept, .close: return
                case .reject:
                    decision.reject = true
                    return
                case .silentDrop:
                    decision.reject = true
                    decision.silentDrop = true
                    return
                case .expectProxy: decision.expectProxy = true
                case .stickCounter: if let stick = rule.stick { ev.perform(stick, level: .connection) }
                case .setVariable, .setVariableFormat, .unsetVariable, .capture, .setAddress: rule.effect?.perform(ev)
                }
            }
        }
        decision.client = scratch.clientOverride
        decision.local = scratch.localOverride
        scratch.clientOverride = nil
        scratch.localOverride = nil
        return decision
    }

    /// Evaluates `tcp-request session` rules in order once the session is validated (its
    /// addresses are the PROXY header's, its TLS handshake is done): `accept` and `reject` end the
    /// walk, stick-counter actions go on. A session they let through starts counting as one in
    /// the counters it tracks (HAProxy's session_count_new after its layer-5 rules). The
    /// variables the rules set are the session's (`decision.variables`); `scratch` keeps none.
    func evaluateSession(_ info: HTTPConnectionInfo, scratch: HTTPRuleScratch) -> ConnectionDecision {
        var decision = ConnectionDecision()
        withUnsafePointer(to: info) { connection in
            let ev = HTTPEvaluation(request: nil, response: nil, connection: connection, scratch: scratch,
                                    frontend: evaluator, backend: nil)
            for rule in session {
                scratch.samples.reset()
                guard rule.condition.evaluate(ev) else { continue }
                switch rule.action {
                case .reject:
                    decision.reject = true
                    return
                case .silentDrop:
                    decision.reject = true
                    decision.silentDrop = true
                    return
                case .stickCounter: if let stick = rule.stick { ev.perform(stick, level: .connection) }
                case .setVariable, .setVariableFormat, .unsetVariable, .capture, .setAddress: rule.effect?.perform(ev)
                default: return
                }
            }
        }
        if !decision.reject, let tracker = info.tracker, !tracker.isEmpty { tracker.countSession() }
        if !scratch.variables.isEmpty {
            if !decision.reject { decision.variables = scratch.variables }
            scratch.variables = [:]
        }
        return decision
    }

    enum ContentDecision: Equatable {
        /// A rule needs bytes not there yet: wait for more (or for the inspect delay).
        case wait
        case accept
        case reject
        /// `silent-drop`: a reject whose connection is reset (SO_LINGER 0).
        case silentDrop
    }

    /// Evaluates `tcp-request content` rules over `payload`. `mayGrow`: the inspect delay has not
    /// passed, the buffer is not full and the client has not closed. `resume`: the rule a wait
    /// stopped at, where the next evaluation starts (HAProxy resumes there: the rules before it,
    /// their stick-counter actions included, are not run twice).
    func evaluateContent(_ info: HTTPConnectionInfo, payload: UnsafeRawBufferPointer, mayGrow: Bool,
                         scratch: HTTPRuleScratch, httpMode: Bool = false,
                         resume: UnsafeMutablePointer<Int>? = nil) -> ContentDecision {
        withUnsafePointer(to: info) { connection in
            var ev = HTTPEvaluation(request: nil, response: nil, connection: connection, scratch: scratch,
                                    frontend: evaluator, backend: nil)
            ev.payload = payload
            ev.payloadMayGrow = mayGrow
            var i = min(resume?.pointee ?? 0, content.count)
            while i < content.count {
                let rule = content[i]
                i += 1
                scratch.samples.reset()
                scratch.payloadMissing = false
                let matched = rule.condition.evaluate(ev)
                if scratch.payloadMissing {
                    resume?.pointee = i - 1
                    return .wait
                }
                guard matched else { continue }
                switch rule.action {
                case .reject: return .reject
                case .silentDrop: return .silentDrop
                case .stickCounter:
                    if let stick = rule.stick { ev.perform(stick, level: httpMode ? .request : .tcpContent) }
                case .setVariable, .setVariableFormat, .unsetVariable, .capture, .setAddress: rule.effect?.perform(ev)
                default: return .accept
                }
            }
            return .accept
        }
    }

    /// The first `use_backend` rule that matches, by name; nil for the default backend.
    func backendName(_ info: HTTPConnectionInfo, payload: UnsafeRawBufferPointer, scratch: HTTPRuleScratch) -> String? {
        withUnsafePointer(to: info) { connection in
            var ev = HTTPEvaluation(request: nil, response: nil, connection: connection, scratch: scratch,
                                    frontend: evaluator, backend: nil)
            ev.payload = payload
            for (i, rule) in backendRules.enumerated() {
                scratch.samples.reset()
                scratch.text.reset()
                guard rule.condition.evaluate(ev) else { continue }
                // `use_backend %[…]`: the rendered name (one no backend has: the default backend).
                if let format = evaluator.dynamicBackends[i] {
                    guard let text = ev.render(format, .raw), !text.isEmpty else { return nil }
                    return String(decoding: text, as: UTF8.self)
                }
                return rule.backend
            }
            return nil
        }
    }
}

/// A TCP rule's variable or capture action, compiled; the rule goes on to the next one.
enum TCPRuleEffect {
    case setVariable(HTTPVariableKey, HTTPCompiledSample)
    case setVariableFormat(HTTPVariableKey, HTTPCompiledFormat)
    case unsetVariable(HTTPVariableKey)
    case capture(HTTPCompiledSample, length: Int, slot: Int)
    case setAddress(ConnectionAddressPart, HTTPCompiledSample)

    init?(_ action: TCPRuleAction, constants: HTTPRuleConstants) {
        switch action {
        case .setVariable(let name, let value): self = .setVariable(HTTPVariableKey(name), HTTPCompiledSample(value, constants: constants))
        case .setVariableFormat(let name, let value):
            self = .setVariableFormat(HTTPVariableKey(name), HTTPCompiledFormat(value, constants: constants))
        case .unsetVariable(let name): self = .unsetVariable(HTTPVariableKey(name))
        case .capture(let sample, let length, let slot):
            self = .capture(HTTPCompiledSample(sample, constants: constants), length: length, slot: slot)
        case .setAddress(let part, let sample): self = .setAddress(part, HTTPCompiledSample(sample, constants: constants))
        default: return nil
        }
    }

    func perform(_ ev: HTTPEvaluation) {
        switch self {
        case .setVariable(let key, let sample): ev.setVariable(key, sample)
        case .setVariableFormat(let key, let format): ev.setVariable(key, format)
        case .unsetVariable(let key): ev.scratch.setVariable(key, nil)
        case .capture(let sample, let length, let slot):
            // HAProxy's: the sample as text, cut to `len`; no value leaves the slot as it was.
            guard let value = ev.value(sample), let text = ev.bytes(of: value) else { return }
            // Mode http: the request's slot; mode tcp: the session's list.
            ev.scratch.requestSlots.store(slot, text)
            ev.scratch.contentCaptures.removeAll { $0.slot == slot }
            ev.scratch.contentCaptures.append((slot, Array(text.prefix(length))))
        case .setAddress(let part, let sample):
            ev.setAddress(part, sample)
        }
    }
}

/// `req.proto_http`: whether the buffered bytes start with an HTTP/1 request line
/// (`METHOD SP TARGET SP HTTP/1.x CRLF`); nil while the line is not complete.
enum HTTPRequestLine {
    static func looksLikeRequest(_ b: UnsafeRawBufferPointer) -> Bool? {
        var i = 0
        while i < b.count, HTTPByteClass.token.contains(b[i]) { i += 1 }
        if i == b.count { return b.count < 1024 ? nil : false }
        guard i > 0, b[i] == UInt8(ascii: " ") else { return false }
        i += 1
        let targetStart = i
        while i < b.count, b[i] > 0x20, b[i] != 0x7F { i += 1 }
        if i == b.count { return b.count < 8192 ? nil : false }
        guard i > targetStart, b[i] == UInt8(ascii: " ") else { return false }
        i += 1
        let version = Array("HTTP/1.".utf8)
        for k in 0..<version.count {
            guard i + k < b.count else { return nil }
            guard b[i + k] == version[k] else { return false }
        }
        i += version.count
        guard i < b.count else { return nil }
        guard b[i] == UInt8(ascii: "0") || b[i] == UInt8(ascii: "1") else { return false }
        i += 1
        guard i < b.count else { return nil }
        if b[i] == 0x0A { return true }
        guard b[i] == 0x0D else { return false }
        guard i + 1 < b.count else { return nil }
        return b[i + 1] == 0x0A
    }
}
