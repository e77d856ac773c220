import ConfigModel

/// Observability (issue 6): the stats page a proxy serves (`stats enable`, `uri`, `refresh`,
/// `auth`, `realm`, `hide-version`, `admin`) and the log formats and options (`log-format`,
/// `log-format-sd`, `error-log-format`, `option log-separate-errors|logasap|dontlog-normal`).
extension KeywordReader {
    /// The samples a log line can print (the logger has the connection and the request line).
    static let loggedFetches = "src, src_port, dst, dst_port, method, path, url, query, req.ver, status, unique-id, capture.req.hdr, capture.res.hdr, fc_err, var and the ssl_* ones"

    /// The keywords of this file; false when `line` is none of them.
    func observabilityKeyword(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) -> Bool {
        switch line.keyword {
        case "stats enable", "stats uri", "stats refresh", "stats auth", "stats realm", "stats hide-version", "stats admin", "stats http-request",
             "stats show-legends", "stats show-node", "stats show-desc", "stats scope":
            var page = draft.proxy.stats ?? StatsPage(location: line.location)
            try stats(line, page: &page, draft: &draft)
            draft.proxy.stats = page
            draft.noteHTTPOnly(line.keyword, line.location)

        case "log-format", "log-format-sd", "error-log-format":
            let text = try line.argument(0, expecting: "a log format (quote it, or escape its spaces)")
            if line.args.count > 1 {
                throw line.error("'\(line.keyword)' expects one argument: quote the format or escape its spaces")
            }
            let spec: LogFormatSpec
            do throws(ConfigError) {
                spec = try LogFormatSpec(parsing: text) { expression throws(ConfigError) in
                    try KeywordReader.loggedSample(expression)
                }
            } catch {
                throw line.error(line.keyword == "log-format" ? error.message : "'\(line.keyword)': \(error.message)")
            }
            // `%rt` counts requests for `unique-id-format`; a log line does not print it yet.
            if spec.nodes.contains(where: { if case .variable("rt", _) = $0 { true } else { false } }) {
                throw line.error("'\(line.keyword)': '%rt' is not supported yet in a log line (only in unique-id-format)")
            }
            switch line.keyword {
            case "log-format":
                // The last of log-format, option tcplog and option httplog wins.
                draft.proxy.log.format = .custom(spec)
            case "log-format-sd": draft.proxy.log.structuredDataFormat = spec
            default: draft.proxy.log.errorFormat = spec
            }

        case "option log-separate-errors":
            try line.noArguments()
            draft.proxy.log.separateErrors = !line.negated
        case "option logasap":
            try line.noArguments()
            draft.proxy.log.logAsap = !line.negated
        case "option dontlog-normal":
            try line.noArguments()
            draft.proxy.log.dontLogNormal = !line.negated

        default:
            return false
        }
        return true
    }

    /// `log-tag TAG` (global or proxy): the syslog header's tag, a word of printable characters
    /// (RFC 5424's APP-NAME: at most 48).
    static func logTag(_ line: KeywordLine) throws(ConfigError) -> String {
        let tag = try line.argument(0, expecting: "a tag (for example haproxy)")
        try line.noArguments(after: 1)
        guard !tag.isEmpty, tag.utf8.count <= 48, tag.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw line.error("'log-tag': '\(tag)' is not a syslog tag (1 to 48 printable characters, no space)")
        }
        return tag
    }

    /// A `%[…]` of a log format: a fetch the log line has.
    static func loggedSample(_ text: String) throws(ConfigError) -> SampleExpression {
        let (expression, fetch) = try SampleParser.expression(text, acl: false)
        // `%[ssl_fc_err,hex]` as in HAProxy's HTTPS format.
        let hexOfErrorCode = { if case .connectionError = expression.fetch { expression.converters == [.hex] } else { false } }()
        let logConverters = expression.converters.allSatisfy { c in
            if case .json = c { return true }
            return c.isCaseMapping
        }
        if !logConverters && !hexOfErrorCode {
            throw ConfigError(nil, "'\(text)': a log line applies lower, upper and json only (other converters work in rules)")
        }
        switch expression.fetch {
        case .source, .sourcePort, .destination, .destinationPort, .method, .path, .url, .query, .requestVersion,
            .status, .constant, .sslFrontend, .tls, .uniqueID, .connectionError, .variable, .variableOrDefault, .capturedRequest, .capturedResponse, .receivedRequestLine:
            return expression
        default:
            throw ConfigError(nil, "'\(fetch.name)' cannot be logged (a log line has \(loggedFetches))")
        }
    }

    private func stats(_ line: KeywordLine, page: inout StatsPage, draft: inout ProxyDraft) throws(ConfigError) {
        switch line.keyword {
        case "stats enable":
            try line.noArguments()
        case "stats uri":
            let uri = try line.argument(0, expecting: "a URI prefix (for example /stats)")
            try line.noArguments(after: 1)
            page.uri = uri
        case "stats refresh":
            let text = try line.argument(0, expecting: "a delay (for example 10s)")
            try line.noArguments(after: 1)
            // HAProxy counts a bare number in seconds here.
            switch ConfigUnits.parseTime(text, defaultUnitMilliseconds: 1000) {
            case .success(let ms): page.refresh = ms
            case .failure(let failure): throw line.error("'stats refresh' expects a delay, got '\(text)' (\(failure))")
            }
        case "stats auth" where !page.rules.isEmpty, "stats realm" where !page.rules.isEmpty:
            throw line.error("stats 'auth'/'realm' and 'http-request' can't be used at the same time (\(draft.proxy.kind.rawValue) '\(draft.proxy.name)')")
        case "stats auth":
            let text = try line.argument(0, expecting: "USER:PASSWORD")
            try line.noArguments(after: 1)
            guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else {
                throw line.error("'stats auth' expects USER:PASSWORD, got '\(text)'")
            }
            page.credentials.append(.init(user: String(text[..<colon]), password: String(text[text.index(after: colon)...])))
        case "stats realm":
            let realm = try line.argument(0, expecting: "a realm (escape its spaces: My\\ Realm)")
            if line.args.count > 1 {
                // HAProxy 2.6 takes the first word and drops the rest without a word; so does
                // strata, saying so.
                draft.lineWarnings.append(line.error("'stats realm': only '\(realm)' is the realm, as in HAProxy ('\(line.args.dropFirst().joined(separator: " "))' ignored): quote the realm or escape its spaces"))
            }
            page.realm = realm
        case "stats hide-version":
            try line.noArguments()
            page.hideVersion = true
        case "stats show-legends":
            try line.noArguments()
            page.showLegends = true
        case "stats show-node":
            page.showNode = true
            page.nodeName = line.optionalArgument(0)
            try line.noArguments(after: 1)
        case "stats show-desc":
            page.showDescription = true
            // HAProxy takes the rest of the line as the description.
            page.description = line.args.isEmpty ? nil : line.args.joined(separator: " ")
        case "stats scope":
            let name = try line.argument(0, expecting: "a proxy name, or '.' for this one")
            try line.noArguments(after: 1)
            page.scopes.append(name == "." ? draft.proxy.name : name)
        case "stats http-request":
            // HAProxy refuses them beside `stats auth`/`stats realm` (which make such a rule).
            if !page.credentials.isEmpty || page.realm != StatsPage(location: line.location).realm {
                throw line.error("stats 'auth'/'realm' and 'http-request' can't be used at the same time (\(draft.proxy.kind.rawValue) '\(draft.proxy.name)')")
            }
            let action = try line.argument(0, expecting: "allow, deny or auth")
            var i = 1
            let ruleAction: StatsRule.Action
            switch action {
            case "allow": ruleAction = .allow
            case "deny":
                var status = 403
                if line.optionalArgument(1) == "deny_status" {
                    status = try line.integer(2, range: 0...999, name: "deny_status")
                    guard KeywordReader.errorCodes.contains(status) else {
                        throw line.error("'stats http-request deny': status code \(status) is not one strata answers (\(KeywordLine.list(KeywordReader.errorCodes.map(String.init))))")
                    }
                    i = 3
                }
                ruleAction = .deny(status: status)
            case "auth":
                var realm: String?
                if line.optionalArgument(1) == "realm" {
                    realm = try line.argument(2, expecting: "a realm after 'realm'")
                    i = 3
                }
                ruleAction = .auth(realm: realm)
            default:
                throw line.error("'stats http-request' expects allow, deny or auth, got '\(action)'")
            }
            if let last = page.rules.last, last.condition == nil {
                draft.lineWarnings.append(line.error("previous 'stats http-request' action has no condition attached, further entries are NOOP"))
            }
            var condition: Condition?
            if let word = line.optionalArgument(i) {
                guard word == "if" || word == "unless" else { throw line.error("unexpected argument '\(word)' to 'stats http-request \(action)'") }
                condition = try self.condition(line, from: i, draft: &draft, context: .statsAdmin)
            }
            page.rules.append(StatsRule(location: line.location, action: ruleAction, condition: condition))
        default:  // stats admin
            guard let word = line.optionalArgument(0), word == "if" || word == "unless" else {
                throw line.error("'stats admin' expects 'if' or 'unless' and a condition")
            }
            page.admin = try condition(line, from: 0, draft: &draft, context: .statsAdmin)
        }
    }
}
