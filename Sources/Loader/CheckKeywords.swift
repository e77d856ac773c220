import ConfigModel

/// Health checks (issue 5): the check options of `server` and `default-server`, `option httpchk`
/// with `http-check send|expect`, `option tcp-check` with `tcp-check` rules, `timeout check`,
/// `option allbackups`, `option log-health-checks` and the server-state file settings (HAProxy's semantics, §5.2 and §4.2).
extension KeywordReader {
    static let httpCheckDirectives = ["connect", "disable-on-404", "expect", "send"]
    static let otherHTTPCheckDirectives: Set<String> = [
        "comment", "send-state", "set-var", "unset-var",
    ]
    static let tcpCheckDirectives = ["connect", "expect", "send", "send-binary"]
    static let otherTCPCheckDirectives: Set<String> = [
        "comment", "send-lf", "send-binary-lf", "set-var", "set-var-fmt", "unset-var",
    ]

    /// The keywords of this file; false when `line` is none of them.
    func checkKeyword(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) -> Bool {
        switch line.keyword {
        case "option httpchk":
            // A proxy's own `option httpchk` starts a new check: what its defaults section sent and
            // expected is dropped (HAProxy 2.2+ makes a new rule set), its own earlier lines kept.
            var check = HTTPCheck()
            if draft.ownHTTPCheck {
                if case .http(let current) = draft.proxy.checks.kind { check = current } else { check = draft.pendingHTTPCheck ?? check }
            }
            draft.ownHTTPCheck = true
            switch line.args.count {
            case 0: break
            case 1: check.uri = line.args[line.args.startIndex]
            case 2, 3:
                check.method = line.args[line.args.startIndex]
                check.uri = line.args[line.args.startIndex + 1]
                if line.args.count == 3 {
                    // HAProxy's old form puts headers after the version: `HTTP/1.1\r\nHost:\ www`.
                    let text = line.args[line.args.startIndex + 2]
                    // On bytes: "\r\n" is one Character, never found by splitting on Characters.
                    var parts = Array(text.utf8).split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
                        String(decoding: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self)
                    }
                    check.version = parts.removeFirst()
                    for header in parts where !header.isEmpty {
                        guard let colon = header.firstIndex(of: ":") else {
                            throw line.error("'option httpchk': '\(header)' after the version is not a header line (NAME: VALUE)")
                        }
                        check.headerList.append(.init(name: String(header[..<colon]),
                                                      value: String(header[header.index(after: colon)...].drop { $0 == " " })))
                    }
                }
            default:
                throw line.error("unexpected argument '\(line.args[line.args.startIndex + 3])' to 'option httpchk' (expected [METHOD] [URI] [VERSION])")
            }
            try checkHTTPVersion(check.version, line: line)
            draft.proxy.checks.kind = .http(check)
            draft.pendingHTTPCheck = nil

        case "option tcp-check":
            try line.noArguments()
            draft.proxy.checks.kind = .tcpCheck([])  // the steps are set once the section is read

        case "option ssl-hello-chk", "option redis-check", "option ldap-check":
            try line.noArguments()
            draft.proxy.checks.kind = .protocolCheck(line.keyword == "option ssl-hello-chk" ? .sslHello
                : line.keyword == "option redis-check" ? .redis : .ldap)

        case "option smtpchk":
            // HAProxy sends `HELO localhost` unless the arguments are HELO or EHLO and a domain.
            var command = "HELO localhost"
            if line.args.count > 2 {
                throw line.error("unexpected argument '\(line.args[line.args.startIndex + 2])' to 'option smtpchk' (expected [HELO|EHLO DOMAIN])")
            }
            if let verb = line.optionalArgument(0) {
                if let domain = line.optionalArgument(1), verb == "HELO" || verb == "EHLO" {
                    command = "\(verb) \(domain)"
                } else {
                    draft.lineWarnings.append(line.error("'option smtpchk' expects HELO or EHLO and a domain: it sends 'HELO localhost' (as HAProxy)"))
                }
            }
            draft.proxy.checks.kind = .protocolCheck(.smtp(command: command))

        case "option pgsql-check":
            guard line.optionalArgument(0) != nil, let user = line.optionalArgument(1) else {
                throw line.error("'option pgsql-check' expects 'user <username>' as argument")
            }
            guard line.optionalArgument(0) == "user" else {
                throw line.error("'option pgsql-check' only supports optional values: 'user' (got '\(line.optionalArgument(0)!)')")
            }
            try line.noArguments(after: 2)
            draft.proxy.checks.kind = .protocolCheck(.pgsql(user: user))

        case "option mysql-check":
            var user: String?
            var post41 = true
            if let option = line.optionalArgument(0) {
                guard option == "user" else {
                    throw line.error("'option mysql-check' only supports optional values: 'user' (got '\(option)')")
                }
                guard let name = line.optionalArgument(1), !name.isEmpty else {
                    throw line.error("'option mysql-check user' expects <username> as argument")
                }
                user = name
                if let version = line.optionalArgument(2) {
                    guard version == "post-41" || version == "pre-41" else {
                        throw line.error("'option mysql-check user' only supports 'post-41' and 'pre-41' (got '\(version)')")
                    }
                    post41 = version == "post-41"
                }
                try line.noArguments(after: 3)
            }
            draft.proxy.checks.kind = .protocolCheck(.mysql(user: user, post41: post41))

        case "http-check":
            try httpCheck(line, draft: &draft)

        case "tcp-check":
            let step = try tcpCheck(line)
            if !draft.ownTCPCheck {
                draft.ownTCPCheck = true
                draft.tcpCheckSteps = []  // a proxy's own rules replace those of its defaults section
            }
            draft.tcpCheckSteps.append(step)
            draft.checkRuleLines.append((line.keyword, line.location))

        case "timeout check":
            draft.proxy.checks.timeout = try line.time(0)
            try line.noArguments(after: 1)

        case "option allbackups":
            try line.noArguments()
            draft.proxy.checks.allBackups = !line.negated

        case "option log-health-checks":
            try line.noArguments()
            draft.proxy.checks.logHealthChecks = !line.negated

        case "load-server-state-from-file":
            let mode = try line.choice(0, among: ["global", "local", "none"])
            try line.noArguments(after: 1)
            draft.proxy.serverStateFile = ServerStateFileMode(rawValue: mode)!

        case "server-state-file-name":
            let name = try line.argument(0, expecting: "a file name (or use-backend-name)")
            try line.noArguments(after: 1)
            draft.proxy.serverStateFileName = name == "use-backend-name" ? draft.proxy.name : name

        default:
            return false
        }
        return true
    }

    private func checkHTTPVersion(_ version: String, line: KeywordLine) throws(ConfigError) {
        guard version == "HTTP/1.0" || version == "HTTP/1.1" else {
            throw line.error("'\(line.keyword)': version '\(version)' is not supported (strata checks with HTTP/1.0 or HTTP/1.1)")
        }
    }

    /// `http-check send meth M uri U [ver V] [hdr N V]… [body S]` and
    /// `http-check expect [!] status|rstatus|string|rstring PATTERN`.
    private func httpCheck(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        let directive = try line.argument(0, expecting: "send or expect")
        let what = "'http-check \(directive)'"
        var check: HTTPCheck
        let enabled: Bool
        if case .http(let current) = draft.proxy.checks.kind {
            check = current
            enabled = true
        } else {
            check = draft.pendingHTTPCheck ?? HTTPCheck()
            enabled = false
        }
        if !draft.ownHTTPCheck {
            // A proxy's own http-check rules replace those of its defaults section (HAProxy 2.2+).
            draft.ownHTTPCheck = true
            check.headerList = []
            check.body = nil
            check.expectations = []
        }
        switch directive {
        case "send":
            draft.httpCheckRules += 1
            var i = 1
            while let option = line.optionalArgument(i) {
                guard let value = line.optionalArgument(i + 1) else { throw line.error("\(what): '\(option)' expects a value") }
                switch option {
                case "meth": check.method = value
                case "uri": check.uri = value
                case "ver":
                    try checkHTTPVersion(value, line: line)
                    check.version = value
                case "hdr":
                    guard let headerValue = line.optionalArgument(i + 2) else {
                        throw line.error("\(what): 'hdr' expects a name and a value")
                    }
                    check.headerList.append(.init(name: value, value: headerValue))
                    i += 1
                case "body": check.body = value
                case "uri-lf", "body-lf", "comment":
                    throw line.error("\(what): '\(option)' is not supported yet")
                default:
                    throw line.error("unexpected argument '\(option)' to \(what)"
                        + KeywordSuggestion.clause(for: option, among: ["meth", "uri", "ver", "hdr", "body"]))
                }
                i += 2
            }
        case "disable-on-404":
            try line.noArguments(after: 1)
            check.disableOn404 = true
        case "connect":
            // The common use: one connect first, naming the port the check goes to. A connect
            // between the other rules (a second connection within one check) is not supported.
            guard draft.httpCheckRules == 0, check.connectPort == nil else {
                throw line.error("\(what) after other http-check rules is not supported yet (strata has one connect, first)")
            }
            var port: UInt16?
            var i = 1
            while let option = line.optionalArgument(i) {
                switch option {
                case "default":
                    i += 1
                case "port":
                    port = UInt16(try line.integer(i + 1, range: 1...65535, name: "port"))
                    i += 2
                case "addr", "send-proxy", "via-socks4", "ssl", "sni", "alpn", "proto", "linger", "comment":
                    throw line.error("\(what): '\(option)' is not supported yet (strata has 'default' and 'port')")
                default:
                    throw line.error("unexpected argument '\(option)' to \(what) (expected 'default' or 'port N')")
                }
            }
            check.connectPort = port
        case "expect":
            draft.httpCheckRules += 1
            var i = 1
            var negated = false
            if line.optionalArgument(i) == "!" {
                negated = true
                i += 1
            }
            let kinds = ["status", "rstatus", "string", "rstring"]
            guard let kindWord = line.optionalArgument(i) else { throw line.error("\(what) expects \(KeywordLine.list(kinds)) and a pattern") }
            switch kindWord {
            case "min-recv", "comment", "ok-status", "error-status", "tout-status", "on-success", "on-error",
                "status-code", "hdr", "fhdr", "string-lf", "rstring-lf", "custom":
                throw line.error("\(what): '\(kindWord)' is not supported yet (strata has \(KeywordLine.list(kinds)))")
            default: break
            }
            guard let kind = HTTPCheckExpectation.Kind(rawValue: kindWord) else {
                throw line.error("\(what) expects \(KeywordLine.list(kinds)), got '\(kindWord)'")
            }
            guard let pattern = line.optionalArgument(i + 1) else { throw line.error("\(what) \(kindWord) expects a pattern") }
            try line.noArguments(after: i + 2)
            switch kind {
            case .status:
                try checkStatusList(pattern, line: line, what: what)
            case .statusRegex, .stringRegex:
                if let problem = SampleParser.regexProblem(pattern) { throw line.error("invalid regex '\(pattern)': \(problem)") }
            case .string:
                break
            }
            check.expectations.append(HTTPCheckExpectation(kind: kind, pattern: pattern, negated: negated))
        default:
            if KeywordReader.otherHTTPCheckDirectives.contains(directive) {
                throw line.error("\(what) is not supported yet")
            }
            throw line.error("'\(directive)' is not an http-check directive"
                + KeywordSuggestion.clause(for: directive, among: KeywordReader.httpCheckDirectives))
        }
        if enabled {
            draft.proxy.checks.kind = .http(check)
        } else {
            draft.pendingHTTPCheck = check
            draft.checkRuleLines.append((line.keyword, line.location))
        }
    }

    /// `200`, `200-399`, `200,301-302`: status codes of three digits.
    private func checkStatusList(_ text: String, line: KeywordLine, what: String) throws(ConfigError) {
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = item.split(separator: "-", omittingEmptySubsequences: false)
            let valid = (1...2).contains(ends.count)
                && ends.allSatisfy { $0.count == 3 && $0.allSatisfy { $0.isASCII && $0.isNumber } && $0.first != "0" }
                && (ends.count == 1 || Int(ends[0])! <= Int(ends[1])!)
            guard valid else {
                throw line.error("\(what) status expects codes such as 200, 200-399 or 200,302, got '\(text)'")
            }
        }
    }

    /// One `tcp-check` rule.
    private func tcpCheck(_ line: KeywordLine) throws(ConfigError) -> TCPCheckStep {
        let directive = try line.argument(0, expecting: KeywordLine.list(KeywordReader.tcpCheckDirectives))
        let what = "'tcp-check \(directive)'"
        switch directive {
        case "connect":
            var port: UInt16?
            var i = 1
            while let option = line.optionalArgument(i) {
                switch option {
                case "port":
                    port = UInt16(try line.integer(i + 1, range: 1...65535, name: "port"))
                    i += 2
                case "addr", "send-proxy", "via-socks4", "ssl", "sni", "alpn", "proto", "linger", "comment",
                    "default":
                    throw line.error("\(what): '\(option)' is not supported yet (strata has 'port')")
                default:
                    throw line.error("unexpected argument '\(option)' to \(what) (expected 'port N')")
                }
            }
            return .connect(port: port)
        case "send":
            let text = try line.argument(1, expecting: "a string to send")
            try line.noArguments(after: 2)
            return .send(Array(text.utf8))
        case "send-binary":
            let text = try line.argument(1, expecting: "hexadecimal bytes to send")
            try line.noArguments(after: 2)
            return .sendBinary(try hexBytes(text, line: line, what: what))
        case "expect":
            var i = 1
            var negated = false
            if line.optionalArgument(i) == "!" {
                negated = true
                i += 1
            }
            let kinds = ["string", "rstring", "binary"]
            guard let kind = line.optionalArgument(i) else { throw line.error("\(what) expects \(KeywordLine.list(kinds)) and a pattern") }
            switch kind {
            case "min-recv", "comment", "ok-status", "error-status", "tout-status", "on-success", "on-error",
                "status-code", "rbinary", "string-lf", "binary-lf", "custom":
                throw line.error("\(what): '\(kind)' is not supported yet (strata has \(KeywordLine.list(kinds)))")
            default: break
            }
            guard kinds.contains(kind) else { throw line.error("\(what) expects \(KeywordLine.list(kinds)), got '\(kind)'") }
            guard let pattern = line.optionalArgument(i + 1) else { throw line.error("\(what) \(kind) expects a pattern") }
            try line.noArguments(after: i + 2)
            switch kind {
            case "string": return .expectString(pattern, negated: negated)
            case "rstring":
                if let problem = SampleParser.regexProblem(pattern) { throw line.error("invalid regex '\(pattern)': \(problem)") }
                return .expectRegex(pattern, negated: negated)
            case "binary": return .expectBinary(try hexBytes(pattern, line: line, what: what), negated: negated)
            default: throw line.error("\(what) expects \(KeywordLine.list(kinds)), got '\(kind)'")
            }
        default:
            if KeywordReader.otherTCPCheckDirectives.contains(directive) {
                throw line.error("\(what) is not supported yet")
            }
            throw line.error("'\(directive)' is not a tcp-check directive"
                + KeywordSuggestion.clause(for: directive, among: KeywordReader.tcpCheckDirectives))
        }
    }

    private func hexBytes(_ text: String, line: KeywordLine, what: String) throws(ConfigError) -> [UInt8] {
        let digits = Array(text.utf8)
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        guard !digits.isEmpty, digits.count % 2 == 0 else {
            throw line.error("\(what) expects an even number of hexadecimal digits, got '\(text)'")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let high = value(digits[i]), let low = value(digits[i + 1]) else {
                throw line.error("\(what) expects hexadecimal digits, got '\(text)'")
            }
            bytes.append(high << 4 | low)
            i += 2
        }
        return bytes
    }

    // MARK: server options

    /// A check option of `server` or `default-server` at `args[i]`; false when it is none (the
    /// caller reports it). `i` ends on the option's last word.
    func serverCheckOption(_ option: String, _ line: KeywordLine, at i: inout Int, into check: inout ServerCheck)
        throws(ConfigError) -> Bool
    {
        func positiveTime() throws(ConfigError) -> Int {
            guard let text = line.optionalArgument(i + 1) else { throw line.error("'\(option)' expects a time (for example 2s)") }
            let ms: Int
            switch ConfigUnits.parseTime(text) {
            case .success(let value): ms = value
            case .failure(let failure): throw line.error("'\(option)' expects a time, got '\(text)' (\(failure))")
            }
            guard ms > 0 else { throw line.error("'\(option)' expects a time greater than 0, got '\(text)'") }
            i += 1
            return ms
        }
        switch option {
        case "check": check.enabled = true
        case "check-send-proxy": check.sendProxy = true
        case "no-check-send-proxy": check.sendProxy = false
        case "no-check": check.enabled = false
        case "inter": check.interval = try positiveTime()
        case "fastinter": check.fastInterval = try positiveTime()
        case "downinter": check.downInterval = try positiveTime()
        case "rise":
            check.rise = try line.integer(i + 1, range: 1...Int(Int32.max), name: "rise")
            i += 1
        case "fall":
            check.fall = try line.integer(i + 1, range: 1...Int(Int32.max), name: "fall")
            i += 1
        case "port":
            check.port = UInt16(try line.integer(i + 1, range: 1...65535, name: "port"))
            i += 1
        case "addr":
            guard let text = line.optionalArgument(i + 1) else { throw line.error("'addr' expects an address") }
            switch addresses.address(text, family: .unspecified, in: text, allowAny: false) {
            case .success(let address): check.address = address
            case .failure(let problem): throw line.error("'addr': \(problem)")
            }
            i += 1
        case "observe":
            guard let text = line.optionalArgument(i + 1), let mode = ServerCheck.ObserveMode(rawValue: text) else {
                throw line.error("'observe' expects layer4 or layer7\(line.optionalArgument(i + 1).map { ", got '\($0)'" } ?? "")")
            }
            check.observe = mode
            i += 1
        case "error-limit":
            check.errorLimit = try line.integer(i + 1, range: 1...Int(Int32.max), name: "error-limit")
            i += 1
        case "on-error":
            let names = ["fastinter", "fail-check", "sudden-death", "mark-down"]
            guard let text = line.optionalArgument(i + 1), let mode = ServerCheck.OnError(rawValue: text) else {
                throw line.error("'on-error' expects \(KeywordLine.list(names))\(line.optionalArgument(i + 1).map { ", got '\($0)'" } ?? "")")
            }
            check.onError = mode
            i += 1
        case "agent-check": check.agent.enabled = true
        case "no-agent-check": check.agent.enabled = false
        case "agent-inter": check.agent.interval = try positiveTime()
        case "agent-port":
            check.agent.port = UInt16(try line.integer(i + 1, range: 1...65535, name: "agent-port"))
            i += 1
        case "agent-addr":
            guard let text = line.optionalArgument(i + 1) else { throw line.error("'agent-addr' expects an address") }
            switch addresses.address(text, family: .unspecified, in: text, allowAny: false) {
            case .success(let address): check.agent.address = address
            case .failure(let problem): throw line.error("'agent-addr': \(problem)")
            }
            i += 1
        case "agent-send":
            guard let text = line.optionalArgument(i + 1) else { throw line.error("'agent-send' expects a string") }
            check.agent.send = Array(text.utf8)
            i += 1
        case "on-marked-down":
            guard let text = line.optionalArgument(i + 1), text == "shutdown-sessions" else {
                throw line.error("'on-marked-down' expects shutdown-sessions\(line.optionalArgument(i + 1).map { ", got '\($0)'" } ?? "")")
            }
            check.shutdownSessionsOnDown = true
            i += 1
        default:
            return false
        }
        return true
    }
}
