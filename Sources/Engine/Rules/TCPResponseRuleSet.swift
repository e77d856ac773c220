import ConfigModel

/// A backend's `tcp-response content` rules, compiled (HAProxy's response content inspection):
/// conditions compiled as HTTP rules' are, over a condition-only `HTTPRuleSet` of the same proxy,
/// evaluated on the connection and the server's first bytes (`res.len`, `res.payload`,
/// `res.ssl_hello_type` read them as the payload). Immutable once built: every loop uses it.
final class TCPResponseRuleSet: @unchecked Sendable {
    private let evaluator: HTTPRuleSet
    private let rules: [(action: TCPRuleAction, condition: HTTPCompiledCondition?, effect: TCPRuleEffect?)]
    /// `tcp-response inspect-delay` in seconds (nil: no wait, the rules see the first bytes).
    let inspectDelay: Double?
    /// Owns what the compiled conditions point into.
    private let constants: HTTPRuleConstants

    init(_ proxy: Proxy, evaluator: HTTPRuleSet, stickTables: [String: StickTable] = [:]) throws(ConfigError) {
        self.evaluator = evaluator
        let constants = HTTPRuleConstants()
        constants.proxyName = proxy.name
        constants.stickTables = stickTables
        var rules: [(TCPRuleAction, HTTPCompiledCondition?, TCPRuleEffect?)] = []
        for r in proxy.tcp.response {
            rules.append((r.action, try r.condition.map { c throws(ConfigError) in try HTTPCompiledCondition(c, constants: constants) },
                          TCPRuleEffect(r.action, constants: constants)))
        }
        self.rules = rules
        inspectDelay = proxy.tcp.responseInspectDelay.map { Double($0) / 1000 }
        self.constants = constants
    }

    enum Decision: Equatable {
        /// A rule needs bytes not there yet: wait for more (or for the inspect delay).
        case wait
        case accept
        case reject
        case close
    }

    /// Evaluates the rules in order over `payload` (what the server sent so far). `mayGrow`: the
    /// inspect delay has not passed, the buffer is not full and the server has not closed. No
    /// rule matching means accept (HAProxy's default).
    func evaluate(_ info: HTTPConnectionInfo, payload: UnsafeRawBufferPointer, mayGrow: Bool,
                  scratch: HTTPRuleScratch) -> Decision {
        withUnsafePointer(to: info) { connection in
            var ev = HTTPEvaluation(request: nil, response: nil, connection: connection, scratch: scratch,
                                    frontend: evaluator, backend: nil)
            ev.payload = payload
            ev.payloadMayGrow = mayGrow
            for rule in rules {
                scratch.samples.reset()
                scratch.payloadMissing = false
                let matched = rule.condition.evaluate(ev)
                // HAProxy's MISS: wait while the delay runs, a non-match once it is over.
                if scratch.payloadMissing { return .wait }
                guard matched else { continue }
                if let effect = rule.effect {
                    effect.perform(ev)
                    continue
                }
                switch rule.action {
                case .reject, .silentDrop: return .reject
                case .close: return .close
                default: return .accept
                }
            }
            return .accept
        }
    }
}
