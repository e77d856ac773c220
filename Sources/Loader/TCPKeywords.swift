import ConfigModel

/// The TCP layer's keywords (issue 13): `tcp-request` and `tcp-response` rules and inspect delays,
/// and the PROXY protocol options of `server` lines, with HAProxy's semantics
/// (configuration.txt §4.2 "tcp-request", §5.2 "send-proxy"). `accept-proxy` is read with the
/// other `bind` options.
extension KeywordReader {
    static let tcpConnectionActions = ["accept", "expect-proxy", "reject", "silent-drop", "track-sc0", "track-sc1", "track-sc2", "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt0",
                                       "set-src", "set-src-port", "set-dst", "set-dst-port"]
    static let otherTCPConnectionActions: Set<String> = [
        "capture", "expect-netscaler-cip", "sc-inc-gpc", "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt0",
        "set-mark", "set-tos", "set-var", "set-var-fmt",
        "track-sc0", "track-sc1", "track-sc2", "unset-var",
    ]
    static let tcpSessionActions = ["accept", "reject", "silent-drop", "track-sc0", "track-sc1", "track-sc2", "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt0",
                                    "set-var(NAME)", "set-var-fmt(NAME)", "unset-var(NAME)"]
    static let otherTCPSessionActions: Set<String> = [
        "attach-srv", "do-log", "sc-add-gpc", "sc-inc-gpc", "sc-set-gpt", "set-dst", "set-dst-port", "set-fc-mark",
        "set-fc-tos", "set-mark", "set-src", "set-src-port", "set-tos",
    ]
    static let tcpContentActions = ["accept", "reject", "silent-drop", "track-sc0", "track-sc1", "track-sc2", "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt0",
                                    "capture", "set-var(NAME)", "set-var-fmt(NAME)", "unset-var(NAME)"]
    static let otherTCPContentActions: Set<String> = [
        "do-resolve", "sc-inc-gpc", "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt0", "send-spoe-group",
        "set-bandwidth-limit", "set-dst", "set-dst-port", "set-log-level", "set-mark", "set-nice", "set-priority-class",
        "set-priority-offset", "set-src", "set-src-port", "set-tos",
        "switch-mode", "track-sc0", "track-sc1", "track-sc2", "use-service",
    ]

    /// The fetches a TCP rule can have: the connection's addresses, its TLS, the buffered payload.
    static func isTCPFetch(_ fetch: SampleFetch, layer4Only: Bool, session: Bool = false) -> Bool {
        // `tcp-request session`: the connection and its TLS, nothing read yet.
        if session, case .sslFrontend = fetch { return true }
        if session, case .tls = fetch { return true }
        // The PROXY header is read before the session rules, after the connection rules.
        if session, case .proxyProtocol = fetch { return true }
        switch fetch {
        case .source, .sourcePort, .destination, .destinationPort, .constant, .stickCounter, .variable, .variableOrDefault,
             .literalString, .literalInteger, .environment: return true
        case .proxyProtocol: return !layer4Only
        case .sslFrontend, .tls, .requestLength, .requestPayload, .sslHello, .protoHTTP, .responseLength, .responsePayload,
             .responseHelloType: return !layer4Only
        default: return false
        }
    }

    func tcpKeyword(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) -> Bool {
        switch line.keyword {
        case "tcp-request": try tcpRequest(line, draft: &draft)
        case "tcp-response": try tcpResponse(line, draft: &draft)
        default: return false
        }
        return true
    }

    private func tcpRequest(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        let kind = try line.argument(0, expecting: "connection, content, session or inspect-delay")
        switch kind {
        case "inspect-delay":
            // A backend's delay would serve its own content rules, which are not supported yet.
            guard draft.section != .backend else {
                throw line.error("'tcp-request inspect-delay' in a backend section is not supported yet (backends have no tcp-request content rules yet)")
            }
            draft.proxy.tcp.inspectDelay = try line.time(1)
            try line.noArguments(after: 2)
        case "connection":
            guard draft.section == .frontend || draft.section == .listen else {
                throw line.error("'tcp-request connection' is only allowed in frontend and listen sections")
            }
            let action = try line.argument(1, expecting: "an action (accept, reject, expect-proxy layer4)")
            var next = 2
            let rule: TCPRuleAction
            switch action {
            case "accept": rule = .accept
            case "reject": rule = .reject
            case "silent-drop": rule = .silentDrop
            case "expect-proxy":
                guard line.optionalArgument(2) == "layer4" else {
                    throw line.error("'tcp-request connection expect-proxy' expects 'layer4'")
                }
                rule = .expectProxy
                next = 3
            case _ where ConnectionAddressPart(rawValue: action) != nil:
                let text = try line.argument(2, expecting: "an expression")
                let sample: SampleExpression
                do throws(ConfigError) {
                    sample = try SampleParser.sampleForFormat(text, context: .definition)
                } catch {
                    throw line.error("'tcp-request connection \(action)': \(error.message)")
                }
                try checkTCPSample(sample, line: line, layer4Only: true, rule: "'tcp-request connection \(action)'", role: "a value")
                rule = .setAddress(ConnectionAddressPart(rawValue: action)!, sample)
                next = 3
            case _ where KeywordReader.isStickCounterAction(action):
                guard let stick = try stickCounterAction(line, at: 1, context: .definition, draft: draft, next: &next) else {
                    throw actionError(line, action, kind: "tcp-request connection", supported: KeywordReader.tcpConnectionActions,
                                      other: KeywordReader.otherTCPConnectionActions)
                }
                if case .track(let t) = stick {
                    try checkTCPSample(t.key, line: line, layer4Only: true, rule: "'tcp-request connection \(action)'")
                }
                rule = .stickCounter(stick)
            default:
                throw actionError(line, action, kind: "tcp-request connection", supported: KeywordReader.tcpConnectionActions,
                                  other: KeywordReader.otherTCPConnectionActions)
            }
            let condition = try finishRule(line, at: next, draft: &draft, context: .definition,
                                           rule: "tcp-request connection \(action)")
            try checkTCPCondition(condition, line: line, layer4Only: true, rule: "a 'tcp-request connection' rule")
            draft.proxy.tcp.connection.append(TCPRule(location: line.location, action: rule, condition: condition))
        case "content":
            guard draft.section == .frontend || draft.section == .listen else {
                throw line.error("'tcp-request content' rules are supported in frontend and listen sections only (not yet in \(draft.section.rawValue) sections)")
            }
            let action = try line.argument(1, expecting: "an action (accept, reject)")
            let rule: TCPRuleAction
            var next = 2
            switch action {
            case "accept": rule = .accept
            case "reject": rule = .reject
            case "silent-drop": rule = .silentDrop
            case _ where KeywordReader.isStickCounterAction(action):
                guard let stick = try stickCounterAction(line, at: 1, context: .tcpContent, draft: draft, next: &next) else {
                    throw actionError(line, action, kind: "tcp-request content", supported: KeywordReader.tcpContentActions,
                                      other: KeywordReader.otherTCPContentActions)
                }
                if case .track(let t) = stick {
                    try checkTCPSample(t.key, line: line, layer4Only: false, rule: "'tcp-request content \(action)'")
                }
                rule = .stickCounter(stick)
            case "capture":
                rule = try contentCapture(line, draft: &draft)
                next = 5
            default:
                guard let variable = try tcpVariableAction(action, line, kind: "tcp-request content", context: .tcpContent,
                                                           layer4Only: false, next: &next) else {
                    throw actionError(line, action, kind: "tcp-request content", supported: KeywordReader.tcpContentActions,
                                      other: KeywordReader.otherTCPContentActions)
                }
                rule = variable
            }
            let condition = try finishRule(line, at: next, draft: &draft, context: .tcpContent,
                                           rule: "tcp-request content \(action)")
            draft.proxy.tcp.content.append(TCPRule(location: line.location, action: rule, condition: condition))
            draft.tcpContentLines.append(line.location)
        case "session":
            guard draft.section == .frontend || draft.section == .listen else {
                throw line.error("'tcp-request session' rules are supported in frontend and listen sections only (not yet in \(draft.section.rawValue) sections)")
            }
            let action = try line.argument(1, expecting: "an action (accept, reject, track-sc0 …)")
            var next = 2
            let rule: TCPRuleAction
            switch action {
            case "accept": rule = .accept
            case "reject": rule = .reject
            case "silent-drop": rule = .silentDrop
            case _ where KeywordReader.isStickCounterAction(action):
                guard let stick = try stickCounterAction(line, at: 1, context: .definition, draft: draft, next: &next) else {
                    throw actionError(line, action, kind: "tcp-request session", supported: KeywordReader.tcpSessionActions,
                                      other: KeywordReader.otherTCPSessionActions)
                }
                if case .track(let t) = stick {
                    try checkTCPSample(t.key, line: line, layer4Only: true, session: true, rule: "'tcp-request session \(action)'")
                }
                rule = .stickCounter(stick)
            default:
                guard let variable = try tcpVariableAction(action, line, kind: "tcp-request session", context: .definition,
                                                           layer4Only: true, session: true, next: &next) else {
                    throw actionError(line, action, kind: "tcp-request session", supported: KeywordReader.tcpSessionActions,
                                      other: KeywordReader.otherTCPSessionActions)
                }
                // No stream exists yet: HAProxy sets such a variable nowhere.
                if let name = variable.variableName, !name.hasPrefix("sess."), !name.hasPrefix("proc.") {
                    draft.lineWarnings.append(line.error("'tcp-request session \(action)' has no effect: a session rule runs before any transaction, so only 'sess' and 'proc' variables can be set there"))
                }
                rule = variable
            }
            let condition = try finishRule(line, at: next, draft: &draft, context: .definition,
                                           rule: "tcp-request session \(action)")
            try checkTCPCondition(condition, line: line, layer4Only: true, session: true, rule: "a 'tcp-request session' rule")
            draft.proxy.tcp.session.append(TCPRule(location: line.location, action: rule, condition: condition))
        default:
            throw line.error("'tcp-request' expects connection, content, session or inspect-delay, got '\(kind)'")
        }
    }

    static let tcpResponseActions = ["accept", "close", "reject", "set-var(NAME)", "set-var-fmt(NAME)", "unset-var(NAME)"]
    static let otherTCPResponseActions: Set<String> = [
        "do-log", "sc-add-gpc", "sc-inc-gpc", "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt", "sc-set-gpt0", "send-spoe-group",
        "set-bandwidth-limit", "set-fc-mark", "set-fc-tos", "set-log-level", "set-mark", "set-nice", "set-tos",
        "silent-drop",
    ]

    /// `tcp-response inspect-delay T` and `tcp-response content accept|reject|close [if|unless
    /// COND]`, on the backend side (HAProxy: backend and listen sections, the delay in a defaults
    /// section too). Their conditions see the connection and the server's payload (`res.len`,
    /// `res.payload`, `res.ssl_hello_type`).
    private func tcpResponse(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        let kind = try line.argument(0, expecting: "content or inspect-delay")
        switch kind {
        case "inspect-delay":
            guard draft.section != .frontend else {
                throw line.error("'tcp-response inspect-delay' is only allowed in defaults, listen and backend sections")
            }
            guard line.optionalArgument(1) != nil else { throw line.error("'tcp-response inspect-delay' expects a time (for example 5s)") }
            draft.proxy.tcp.responseInspectDelay = try line.time(1)
            try line.noArguments(after: 2)
        case "content":
            guard draft.section == .backend || draft.section == .listen else {
                throw line.error("'tcp-response content' rules are supported in listen and backend sections only (not yet in \(draft.section.rawValue) sections)")
            }
            let action = try line.argument(1, expecting: "an action (accept, reject, close)")
            let rule: TCPRuleAction
            var next = 2
            switch action {
            case "accept": rule = .accept
            case "reject": rule = .reject
            case "close": rule = .close
            default:
                guard let variable = try tcpVariableAction(action, line, kind: "tcp-response content", context: .tcpResponse,
                                                           layer4Only: false, next: &next) else {
                    throw actionError(line, action, kind: "tcp-response content", supported: KeywordReader.tcpResponseActions,
                                      other: KeywordReader.otherTCPResponseActions)
                }
                rule = variable
            }
            let condition = try finishRule(line, at: next, draft: &draft, context: .tcpResponse, rule: "tcp-response content \(action)")
            try checkTCPCondition(condition, line: line, layer4Only: false, rule: "a 'tcp-response content' rule")
            draft.proxy.tcp.response.append(TCPRule(location: line.location, action: rule, condition: condition))
        default:
            throw line.error("'tcp-response' expects content or inspect-delay, got '\(kind)'")
        }
    }

    /// `set-var(NAME) EXPR`, `set-var-fmt(NAME) FMT`, `unset-var(NAME)` of a TCP rule (the action
    /// is argument 1), their samples limited to what the rule sees; nil for another action.
    private func tcpVariableAction(_ action: String, _ line: KeywordLine, kind: String, context: RuleContext,
                                   layer4Only: Bool, session: Bool = false, next: inout Int) throws(ConfigError) -> TCPRuleAction? {
        let what = "'\(kind) \(action)'"
        guard let variable = try variableRule(action, line, what: what, context: context, at: 1, next: &next) else { return nil }
        switch variable {
        case .set(let name, let value):
            try checkTCPSample(value, line: line, layer4Only: layer4Only, session: session, rule: what, role: "a value")
            return .setVariable(name: name, value: value)
        case .setFormat(let name, let value):
            for sample in value.samples {
                try checkTCPSample(sample, line: line, layer4Only: layer4Only, session: session, rule: what, role: "a value")
            }
            return .setVariableFormat(name: name, value: value)
        case .unset(let name):
            return .unsetVariable(name: name)
        }
    }

    /// `tcp-request content capture SAMPLE len N`: the slot after every request capture written
    /// before it (`capture request header` lines and these rules).
    private func contentCapture(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) -> TCPRuleAction {
        guard let text = line.optionalArgument(2) else {
            throw line.error("'tcp-request content capture' expects a sample expression and 'len N'")
        }
        let sample: SampleExpression
        do throws(ConfigError) {
            sample = try SampleParser.sampleForFormat(text, context: .tcpContent)
        } catch {
            throw line.error("'tcp-request content capture': \(error.message)")
        }
        try checkTCPSample(sample, line: line, layer4Only: false, rule: "'tcp-request content capture'", role: "a value")
        guard line.optionalArgument(3) == "len" else {
            throw line.error("'tcp-request content capture \(text)' expects 'len N' after the sample")
        }
        let length = try line.integer(4, range: 1...Int(Int32.max), name: "len")
        // A request capture slot of its own, after those declared before it (HAProxy's order).
        draft.proxy.http.captures.append(HeaderCapture(name: nil, length: length))
        return .capture(sample, length: length, slot: draft.proxy.http.captures.count - 1)
    }

    private func actionError(_ line: KeywordLine, _ action: String, kind: String, supported: [String],
                             other: Set<String>) -> ConfigError {
        let name = String(action.prefix { $0 != "(" })
        if other.contains(name) { return line.error("'\(kind) \(name)' is not supported yet") }
        return line.error("unknown action '\(action)' for '\(kind)' (expected \(KeywordLine.list(supported)))"
            + KeywordSuggestion.clause(for: action, among: supported))
    }

    /// Refuses a fetch a TCP rule cannot have (HAProxy warns that such an ACL never matches).
    func checkTCPCondition(_ condition: Condition?, line: KeywordLine, layer4Only: Bool, session: Bool = false,
                           rule: String) throws(ConfigError) {
        guard let condition else { return }
        for group in condition.alternatives {
            for term in group {
                for c in term.criteria where !KeywordReader.isTCPFetch(c.sample.fetch, layer4Only: layer4Only, session: session) {
                    let fetch = SampleParser.name(of: c.sample.fetch)
                    let what = session ? "the connection's addresses and its TLS, nothing read yet"
                        : layer4Only ? "only the connection's addresses (src, dst, src_port, dst_port)"
                        : "the connection's addresses, its TLS and the request's payload"
                    throw line.error("'\(term.name)' uses '\(fetch)', which \(rule) cannot have: it sees \(what)")
                }
            }
        }
    }

    /// Refuses a key a TCP rule cannot fetch.
    func checkTCPSample(_ sample: SampleExpression, line: KeywordLine, layer4Only: Bool, session: Bool = false,
                        rule: String, role: String = "a key") throws(ConfigError) {
        guard KeywordReader.isTCPFetch(sample.fetch, layer4Only: layer4Only, session: session) else {
            throw line.error("\(rule) cannot use '\(SampleParser.name(of: sample.fetch))' as \(role): it sees "
                + (session ? "the connection's addresses and its TLS, nothing read yet" : layer4Only ? "only the connection's addresses (src, dst, src_port, dst_port)" : "the connection's addresses, its TLS and the request's payload"))
        }
    }

    /// `send-proxy`, `send-proxy-v2`, `send-proxy-v2-ssl`, `send-proxy-v2-ssl-cn`,
    /// `no-send-proxy`, `no-send-proxy-v2`, `proxy-v2-options LIST`.
    func sendProxyOption(_ option: String, _ line: KeywordLine, at i: inout Int, into send: inout SendProxy?)
        throws(ConfigError)
    {
        var options = send?.options ?? []
        switch option {
        case "send-proxy": send = SendProxy(version: 1, options: options)
        case "send-proxy-v2": send = SendProxy(version: 2, options: options)
        case "send-proxy-v2-ssl":
            options.insert(.ssl)
            send = SendProxy(version: 2, options: options)
        case "send-proxy-v2-ssl-cn":
            options.formUnion([.ssl, .certCN])
            send = SendProxy(version: 2, options: options)
        case "no-send-proxy":
            if send?.version == 1 { send = nil }
        case "no-send-proxy-v2":
            if send?.version == 2 { send = nil }
        default:  // proxy-v2-options
            guard let list = line.optionalArgument(i + 1) else {
                throw line.error("'proxy-v2-options' expects a comma-separated list of options")
            }
            i += 1
            for word in list.split(separator: ",", omittingEmptySubsequences: false) {
                if let o = ProxyV2Option(rawValue: String(word)) {
                    options.insert(o)
                } else if ["cert-sig", "cert-key", "unique-id"].contains(word) {
                    throw line.error("'proxy-v2-options \(word)' is not supported yet (strata has \(KeywordLine.list(ProxyV2Option.allCases.map(\.rawValue))))")
                } else {
                    throw line.error("'proxy-v2-options': unknown option '\(word)' (expected \(KeywordLine.list(ProxyV2Option.allCases.map(\.rawValue))))")
                }
            }
            // Kept with version 0 until send-proxy-v2 (here or on the server line) turns it on.
            send = SendProxy(version: send?.version ?? 0, options: options)
        }
    }
}

extension TCPRuleAction {
    /// The variable a `set-var`, `set-var-fmt` or `unset-var` action names.
    var variableName: String? {
        switch self {
        case .setVariable(let name, _), .setVariableFormat(let name, _), .unsetVariable(let name): name
        default: nil
        }
    }

    /// The expressions the action evaluates (not a `track-sc*` key).
    var samples: [SampleExpression] {
        switch self {
        case .setVariable(_, let s), .capture(let s, _, _): [s]
        case .setVariableFormat(_, let f): f.samples
        default: []
        }
    }
}

extension KeywordReader {
    /// HAProxy 2.6's `httpclient.*` settings, checked as HAProxy checks them (an unknown one or a
    /// bad value is an error).
    private static func httpClientSetting(_ line: KeywordLine) throws(ConfigError) {
        switch line.keyword {
        case "httpclient.ssl.verify":
            _ = try line.choice(0, among: ["none", "required"])
        case "httpclient.resolvers.disabled":
            _ = try line.choice(0, among: ["on", "off"])
        case "httpclient.resolvers.prefer":
            _ = try line.choice(0, among: ["ipv4", "ipv6"])
        case "httpclient.ssl.ca-file", "httpclient.resolvers.id":
            _ = try line.argument(0, expecting: line.keyword == "httpclient.resolvers.id" ? "a resolvers section name" : "a file")
        case "httpclient.retries":
            _ = try line.integer(0, range: 0...Int(Int32.max), name: line.keyword)
        case "httpclient.timeout.connect":
            _ = try line.time(0)
        default:
            throw line.error("unknown keyword '\(line.keyword)' in 'global' section (HAProxy's httpclient settings: ssl.verify, ssl.ca-file, resolvers.disabled, resolvers.id, resolvers.prefer, retries, timeout.connect)")
        }
        try line.noArguments(after: 1)
    }

    /// The legacy process keywords as HAProxy 2.6 takes them: `nbproc` is an error since 2.5
    /// (HAProxy's message), `bind-process` is accepted and ignored with HAProxy's warning, and
    /// `stats bind-process` (which HAProxy 2.6 accepts without a word) with strata's. Nil for any
    /// other line.
    static func legacyWarning(_ line: KeywordLine, global: Bool) throws(ConfigError) -> ConfigError? {
        switch line.keyword {
        case "nbproc" where global:
            throw line.error("nbproc is not supported any more since HAProxy 2.5. Threads will automatically be used on multi-processor machines if available.")
        case "mworker-max-reloads" where global:
            _ = try line.integer(0, range: 0...Int(Int32.max), name: "mworker-max-reloads")
            try line.noArguments(after: 1)
            return line.error("'mworker-max-reloads' has no effect: strata reloads in place, leaving no old worker process to stop (an old generation drains inside the process; 'hard-stop-after' bounds it).")
        case _ where global && line.keyword.hasPrefix("httpclient."):
            try httpClientSetting(line)
            return line.error("'\(line.keyword)' has no effect: it configures HAProxy's internal HTTP client (used by Lua scripts and the CLI's httpclient command), which strata does not have.")
        case "stats bind-process" where global:
            return line.error("'stats bind-process' has no effect: strata is one process (its loops are threads: see 'nbthread').")
        case "bind-process" where !global:
            return line.error("'bind-process' has no effect, is deprecated, and will be removed in version 2.7.")
        default:
            return nil
        }
    }
}
