import ConfigModel

/// The keywords of `mode http` (issue 4): ACLs and conditions, `use_backend`, `redirect`, the
/// HTTP options, errorfiles, captures, hash balancing and cookie persistence (the `http-request`
/// and `http-response` rules are in HTTPRuleKeywords.swift), with HAProxy's semantics (configuration.txt §4.2, §7).
/// Rare lines next to `server` and `bind`: reached from ProxyKeywords' switch once the common
/// keywords have been compared.
extension KeywordReader {
    /// The status codes HAProxy can answer with an errorfile or `deny_status`.
    static let errorCodes = [200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504]

    static let httpRequestActions = [
        "add-header", "allow", "auth", "del-header", "deny", "redirect", "tarpit", "replace-header", "replace-path", "replace-pathq",
        "replace-uri", "replace-value", "return", "set-header", "set-method", "set-path", "set-query", "set-uri",
        "use-service", "track-sc0", "track-sc1", "track-sc2", "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt0",
        "set-src", "set-src-port", "set-dst", "set-dst-port", "silent-drop", "set-log-level", "reject", "set-nice", "normalize-uri", "wait-for-body",
        "cache-use", "capture", "early-hint",
    ]
    static let uriNormalizers = [
        "path-merge-slashes", "path-strip-dot", "path-strip-dotdot", "percent-decode-unreserved", "percent-to-uppercase",
        "query-sort-by-name", "fragment-strip", "fragment-encode",
    ]
    /// HAProxy's other http-request actions: "not supported yet" rather than unknown.
    static let otherHTTPRequestActions: Set<String> = [
        "disable-l7-retry", "do-resolve",
        "sc-inc-gpc",
        "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt0", "send-spoe-group", "set-bandwidth-limit",
        "set-mark", "set-pathq", "set-priority-class",
        "set-priority-offset", "set-timeout", "set-tos", "set-var", "set-var-fmt",
        "strict-mode", "track-sc0", "track-sc1", "track-sc2", "unset-var",
        "wait-for-handshake",
    ]
    static let httpResponseActions = [
        "add-header", "allow", "del-header", "deny", "replace-header", "replace-value", "return", "set-header",
        "set-status", "silent-drop", "set-log-level", "cache-store", "capture", "redirect",
    ]
    static let otherHTTPResponseActions: Set<String> = [
        "sc-inc-gpc",
        "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt0", "send-spoe-group", "set-bandwidth-limit",
        "set-mark", "set-nice", "set-timeout", "set-tos", "set-var", "set-var-fmt",
        "strict-mode", "track-sc0", "track-sc1", "track-sc2", "unset-var", "wait-for-body",
    ]

    static let httpAfterResponseActions = [
        "add-header", "allow", "del-header", "replace-header", "replace-value", "set-header", "set-status", "capture",
    ]
    static let otherHTTPAfterResponseActions: Set<String> = [
        "sc-add-gpc", "sc-inc-gpc", "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt",
        "sc-set-gpt0", "set-log-level", "strict-mode",
    ]

    /// The keywords of this file; false when `line` is none of them.
    func httpKeyword(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) -> Bool {
        switch line.keyword {
        case "acl":
            // Mode tcp has ACLs and use_backend too (their fetches are checked at the end).
            try acl(line, draft: &draft)
            return true
        case "use_backend":
            try useBackend(line, draft: &draft)
            return true
        case "redirect":
            var i = 0
            let redirect = try self.redirect(line, at: &i, context: .redirect)
            let condition = try finishRule(line, at: i, draft: &draft, context: .redirect)
            draft.proxy.http.redirectRules.append(RedirectRule(location: line.location, redirect: redirect, condition: condition))
        case "http-request": try httpRequest(line, draft: &draft)
        case "http-response": try httpResponse(line, draft: &draft)
        case "http-after-response": try httpResponse(line, draft: &draft, after: true)

        case "option forwardfor":
            draft.proxy.http.forwardFor = try forwardedHeader(line, defaultHeader: "X-Forwarded-For", ifNone: true)
        case "option forwarded":
            draft.proxy.http.forwarded = line.negated ? nil : try forwardedOption(line)
        case "option originalto":
            draft.proxy.http.originalTo = try forwardedHeader(line, defaultHeader: "X-Original-To", ifNone: false)
        case "option http-keep-alive": try connectionMode(line, .keepAlive, draft: &draft)
        case "option http-server-close": try connectionMode(line, .serverClose, draft: &draft)
        case "option httpclose": try connectionMode(line, .close, draft: &draft)
        // Accepted for what they ask and noted where strata does nothing different.
        case "option http-ignore-probes":
            try line.noArguments()
            // What strata does for every connection: one that sends nothing is closed without a
            // 408, a log line or an error counted.
            if !line.negated {
                draft.lineWarnings.append(line.error("'option http-ignore-probes' changes nothing: strata never answers, logs or counts a connection that sent nothing"))
            }
        case "option http-no-delay":
            try line.noArguments()
            if !line.negated {
                draft.lineWarnings.append(line.error("'option http-no-delay' changes nothing: strata sends every message at once (TCP_NODELAY, no MSG_MORE) on every connection"))
            }
        case "option http-pretend-keepalive":
            try line.noArguments()
            if !line.negated {
                draft.lineWarnings.append(line.error("'option http-pretend-keepalive' changes nothing: with 'option http-server-close' strata still sends 'Connection: close' to the server"))
            }
        case "option http-buffer-request":
            try line.noArguments()
            draft.proxy.http.bufferRequest = !line.negated
        case "option httplog":
            if let format = line.optionalArgument(0), format != "clf" {
                throw line.error("'option httplog' expects nothing or 'clf', got '\(format)'")
            }
            try line.noArguments(after: 1)
            draft.proxy.http.httpLog = true
            draft.proxy.http.httpLogCLF = line.optionalArgument(0) == "clf"
            // The last of log-format, option tcplog and option httplog wins.
            draft.proxy.log.format = .connect
        case "option httpslog":
            try line.noArguments()
            // HAProxy's HTTPS format, as a log-format would say it (the last of log-format,
            // option tcplog, httplog and httpslog wins).
            draft.proxy.log.format = .custom(KeywordReader.httpsLog)
        case "http-reuse":
            let value = try line.choice(0, among: ["never", "safe", "aggressive", "always"])
            try line.noArguments(after: 1)
            draft.proxy.http.reuse = HTTPReuse(rawValue: value)!
        case "timeout http-request":
            draft.proxy.timeouts.httpRequest = try line.time(0)
            try line.noArguments(after: 1)
        case "timeout http-keep-alive":
            draft.proxy.timeouts.httpKeepAlive = try line.time(0)
            try line.noArguments(after: 1)
        case "errorfile":
            let (code, message) = try errorFile(line)
            draft.proxy.http.errorFiles[code] = message
            draft.ownErrorFiles.insert(code)
        case "http-error":
            try httpError(line, draft: &draft)
        case "errorloc", "errorloc302", "errorloc303":
            // HAProxy's message for the code: a redirect to URL, kept as an errorfile is.
            guard let codeText = line.optionalArgument(0), let url = line.optionalArgument(1), !url.isEmpty else {
                throw line.error("\(line.keyword) : expects <status_code> and <url> as arguments.")
            }
            guard line.args.count == 2 else { throw line.error("\(line.keyword) : expects exactly two arguments.") }
            let code = KeywordLine.decimal(codeText) ?? 0
            guard KeywordReader.errorCodes.contains(code) else {
                throw line.error("\(line.keyword) : status code '\(code)' not handled (\(KeywordLine.list(KeywordReader.errorCodes.map(String.init))))")
            }
            guard !url.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
                throw line.error("\(line.keyword) : the URL has a control character")
            }
            let status = line.keyword == "errorloc303" ? "303 See Other" : "302 Found"
            let message = "HTTP/1.1 \(status)\r\nCache-Control: no-cache\r\nContent-length: 0\r\nLocation: \(url)\r\n\r\n"
            draft.proxy.http.errorFiles[code] = Array(message.utf8)
            draft.ownErrorFiles.insert(code)
        case "monitor fail":
            guard let word = line.optionalArgument(0), word == "if" || word == "unless" else {
                throw line.error("'monitor fail' expects 'if' or 'unless' and a condition")
            }
            draft.proxy.http.monitorFail = try condition(line, from: 0, draft: &draft, context: .httpRequest)
        case "unique-id-format":
            let text = try line.argument(0, expecting: "a log format (quote it, or escape its spaces)")
            if line.args.count > 1 {
                throw line.error("'unique-id-format' expects one argument: quote the format or escape its spaces")
            }
            draft.proxy.http.uniqueIDFormat = try uniqueIDFormat(text, line: line)
        case "unique-id-header":
            let name = try line.argument(0, expecting: "a header name (for example X-Unique-ID)")
            try line.noArguments(after: 1)
            draft.proxy.http.uniqueIDHeader = name
        case "monitor-uri":
            draft.proxy.http.monitorURI = try line.argument(0, expecting: "a URI (for example /haproxy_test)")
            try line.noArguments(after: 1)
        case "errorfiles":
            let name = try line.argument(0, expecting: "an http-errors section name")
            var codes: [Int]?
            if line.args.count > 1 {
                codes = []
                for i in 1..<line.args.count {
                    let code = try line.integer(i, range: 0...999)
                    guard KeywordReader.errorCodes.contains(code) else {
                        throw line.error("'errorfiles': status code \(code) is not one strata answers (\(KeywordLine.list(KeywordReader.errorCodes.map(String.init))))")
                    }
                    codes!.append(code)
                }
            }
            draft.errorFileImports.append((name, codes, line.location, optional: false))
        case "capture":
            try capture(line, draft: &draft)
        case "declare":
            // Slots serve `tcp-request content capture` too: not HTTP-only.
            try declareCapture(line, draft: &draft)
            return true
        case "hash-balance-factor":
            guard line.optionalArgument(0) != nil else { throw line.error("'hash-balance-factor' expects an integer argument.") }
            let factor = try line.integer(0, range: 0...Int(Int32.max), name: "hash-balance-factor")
            try line.noArguments(after: 1)
            guard factor == 0 || factor > 100 else { throw line.error("'hash-balance-factor' must be 0 or greater than 100.") }
            draft.proxy.http.hashBalanceFactor = factor
            return true  // hash balancing in mode tcp (`balance source`) too
        case "hash-type":
            let value = try line.choice(0, among: ["map-based", "consistent"])
            if let function = line.optionalArgument(1) {
                throw line.error("'hash-type \(value) \(function)': hash functions are not supported yet (strata has the default one)")
            }
            draft.proxy.http.hashType = HashType(rawValue: value)!
            return true  // also used by `balance source`: not HTTP-only
        case "cookie":
            draft.proxy.http.cookie = try cookie(line)
        default:
            return false
        }
        draft.noteHTTPOnly(line.keyword, line.location)
        return true
    }

    /// `errorfile CODE PATH`, in a proxy or an `http-errors` section: the code and the message.
    func errorFile(_ line: KeywordLine) throws(ConfigError) -> (Int, [UInt8]) {
        let code = try line.integer(0, range: 0...999)
        guard KeywordReader.errorCodes.contains(code) else {
            throw line.error("'errorfile': status code \(code) is not one strata answers (\(KeywordLine.list(KeywordReader.errorCodes.map(String.init))))")
        }
        let path = try line.argument(1, expecting: "a status code and a file (errorfile CODE PATH)")
        try line.noArguments(after: 2)
        return (code, try httpMessageFile(path, line: line, what: "'errorfile'"))
    }

    /// `http-error status N [content-type T] [default-errorfiles | errorfile F | errorfiles NAME |
    /// file F | string S] [hdr NAME VALUE]…`: the error answer for N, made when the configuration
    /// loads as an `errorfile` line's (the `lf-` forms and a `hdr` value with samples would be
    /// made per request: not yet).
    private func httpError(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        let what = "'http-error'"
        guard line.optionalArgument(0) == "status" else { throw line.error("\(what) expects 'status <code>' first") }
        let code = try line.integer(1, range: 0...999, name: "status")
        guard KeywordReader.errorCodes.contains(code) else {
            throw line.error("\(what): status code \(code) is not one strata answers (\(KeywordLine.list(KeywordReader.errorCodes.map(String.init))))")
        }
        enum Source { case none, reset, message([UInt8]), section(String), body([UInt8]) }
        var source = Source.none
        var sourceWord: String?
        var contentType: String?
        var headers: [(String, String)] = []
        var i = 2
        while let option = line.optionalArgument(i) {
            func value(_ offset: Int = 1) throws(ConfigError) -> String {
                guard let v = line.optionalArgument(i + offset) else { throw line.error("\(what): '\(option)' expects a value") }
                return v
            }
            if ["default-errorfiles", "errorfile", "errorfiles", "file", "string", "lf-file", "lf-string"].contains(option) {
                if let sourceWord { throw line.error("\(what): '\(option)' and '\(sourceWord)' both give the answer") }
                sourceWord = option
            }
            switch option {
            case "content-type": contentType = try value()
            case "default-errorfiles": source = .reset; i -= 1
            case "errorfile": source = .message(try httpMessageFile(try value(), line: line, what: what))
            case "errorfiles": source = .section(try value())
            case "string": source = .body(Array(try value().utf8))
            case "file":
                let text = try value()
                switch paths.read(paths.resolve(text, from: line.location), .httpMessage(bufferSize: paths.bufferSize)) {
                case .success(let bytes): source = .body(bytes)
                case .failure(let reason): throw line.error("\(what): cannot read file '\(text)': \(reason)")
                }
            case "lf-file", "lf-string":
                throw line.error("\(what): '\(option)' is not supported yet (strata makes error answers when the configuration loads; 'string' and 'file' are)")
            case "hdr":
                let name = try value(), text = try value(2)
                let format = try formatString(text, line: line, what: what, context: .httpRequest)
                guard format.isLiteral else {
                    throw line.error("\(what): 'hdr \(name)' with samples is not supported yet (strata makes error answers when the configuration loads)")
                }
                headers.append((name, format.parts.map { if case .literal(let t) = $0 { t } else { "" } }.joined()))
                i += 1
            default:
                throw line.error("unexpected argument '\(option)' to \(what)"
                    + KeywordSuggestion.clause(for: option, among: ["content-type", "default-errorfiles", "errorfile", "errorfiles", "file", "string", "hdr"]))
            }
            i += 2
        }
        switch source {
        case .reset:
            // HAProxy's own page for the code, over this proxy's earlier lines and `errorfiles`.
            draft.proxy.http.errorFiles.removeValue(forKey: code)
            draft.ownErrorFiles.insert(code)
        case .section(let name):
            // The section's message when it has one (checked once sections are known).
            draft.errorFileImports.append((name, [code], line.location, optional: true))
        case .message(let bytes):
            if contentType != nil || !headers.isEmpty {
                throw line.error("\(what): 'content-type' and 'hdr' cannot go with 'errorfile' (the file is the whole answer)")
            }
            draft.proxy.http.errorFiles[code] = bytes
            draft.ownErrorFiles.insert(code)
        case .none, .body:
            var body: [UInt8] = []
            if case .body(let b) = source { body = b }
            if !body.isEmpty && contentType == nil { throw line.error("\(what): a body needs 'content-type' (for example content-type text/html)") }
            var head = "HTTP/1.1 \(code) \(HTTPStatusReason.phrase(code))\r\n"
            if !body.isEmpty, let contentType { head += "content-type: \(contentType)\r\n" }
            head += "content-length: \(body.count)\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            draft.proxy.http.errorFiles[code] = Array((head + "\r\n").utf8) + body
            draft.ownErrorFiles.insert(code)
        }
    }

    // MARK: ACLs and conditions

    private func acl(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        let name = try line.argument(0, expecting: "a name, a fetch and patterns (acl NAME FETCH [flags] [patterns])")
        if !KeywordReader.isName(name), let bad = name.first(where: { !KeywordReader.isNameCharacter($0) }) {
            throw line.error("character '\(bad)' is not permitted in acl name '\(name)'")
        }
        do throws(ConfigError) {
            guard line.args.count > 1 else {
                throw line.error("acl '\(name)' expects a fetch and patterns (acl NAME FETCH [flags] [patterns])")
            }
            let (criterion, _) = try SampleParser.criterion(line.args.dropFirst(), location: line.location,
                                                            what: "acl '\(name)'", resolver: addresses.resolver, paths: paths)
            draft.addACL(name, criterion)
        } catch {
            // Reported once here: the rules naming it are not reported again as unknown.
            draft.failedACLs.insert(name)
            throw error
        }
    }

    /// Reads `if|unless COND` from `args[i]` to the end, or nothing: any other word is refused.
    func finishRule(_ line: KeywordLine, at i: Int, draft: inout ProxyDraft, context: RuleContext,
                    rule: String? = nil) throws(ConfigError) -> Condition?
    {
        guard let word = line.optionalArgument(i) else { return nil }
        guard word == "if" || word == "unless" else {
            throw line.error("unexpected argument '\(word)' to '\(rule ?? line.keyword)' (a condition starts with 'if' or 'unless')")
        }
        return try condition(line, from: i, draft: &draft, context: context)
    }

    /// `if|unless TERM…` with `!`, `||` (or `or`), implicit AND and `{ … }` anonymous ACLs.
    func condition(_ line: KeywordLine, from start: Int, draft: inout ProxyDraft, context: RuleContext)
        throws(ConfigError) -> Condition
    {
        let words = line.args.dropFirst(start)
        let inverted = words.first == "unless"
        var alternatives: [[ConditionTerm]] = [[]]
        var negated = false
        var i = words.startIndex + 1
        guard i < words.endIndex else { throw line.error("'\(words.first!)' expects a condition") }
        while i < words.endIndex {
            var word = words[i]
            i += 1
            if word == "||" || word.lowercased() == "or" {  // HAProxy reads `or` without case
                guard !alternatives[alternatives.count - 1].isEmpty, !negated else {
                    throw line.error("'\(word)' in a condition needs a term on each side")
                }
                alternatives.append([])
                continue
            }
            while word.hasPrefix("!") {
                negated.toggle()
                word.removeFirst()
            }
            if word.isEmpty { continue }
            if word == "{" {
                guard let close = words[i...].firstIndex(of: "}") else {
                    throw line.error("missing '}' after '{' in the condition")
                }
                let inner = words[i..<close]
                guard !inner.isEmpty else { throw line.error("empty anonymous ACL '{ }' in the condition") }
                let (criterion, fetch) = try SampleParser.criterion(inner, location: line.location, what: "anonymous ACL",
                                                                    resolver: addresses.resolver, paths: paths)
                do throws(ConfigError) {
                    try SampleParser.check(fetch, in: context)
                } catch {
                    throw line.error(error.message)
                }
                let text = "{ " + inner.joined(separator: " ") + " }"
                alternatives[alternatives.count - 1].append(ConditionTerm(name: text, criteria: [criterion], negated: negated))
                negated = false
                i = close + 1
                continue
            }
            if word == "}" { throw line.error("unexpected '}' in the condition (no '{' before it)") }
            if word == "if" || word == "unless" { throw line.error("unexpected '\(word)' inside the condition") }
            let criteria: [ACLCriterion]
            if let index = draft.aclIndex[word] {
                criteria = draft.proxy.http.acls[index].criteria
                draft.usedACLs.insert(word)
            } else if let predefined = try SampleParser.predefined(word, location: line.location, tcp: draft.proxy.mode == .tcp) {
                criteria = predefined
            } else if draft.failedACLs.contains(word) {
                criteria = []  // its line was refused and reported; the load fails anyway
            } else {
                let names = draft.proxy.http.acls.map(\.name)
                let hint = KeywordSuggestion.nearest(to: word, among: names).map { " (did you mean '\($0)'?)" }
                    ?? " (declare it with 'acl' before the rules that use it)"
                throw line.error("unknown ACL '\(word)'\(hint)")
            }
            for criterion in criteria {
                if let missing = context.refusal(of: SampleParser.phase(of: criterion.sample.fetch)) {
                    let fetch = SampleParser.name(of: criterion.sample.fetch)
                    throw line.error("acl '\(word)' uses '\(fetch)', which needs \(missing): it cannot be used in \(context.rule)")
                }
            }
            alternatives[alternatives.count - 1].append(ConditionTerm(name: word, criteria: criteria, negated: negated))
            negated = false
        }
        guard !alternatives[alternatives.count - 1].isEmpty, !negated else {
            throw line.error("the condition ends with '\(words.last!)': a term is missing")
        }
        return Condition(inverted: inverted, alternatives: alternatives)
    }

    // MARK: use_backend, redirect

    private func useBackend(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        let name = try line.argument(0, expecting: "a backend name (use_backend NAME [if|unless COND])")
        var dynamic: FormatString?
        if name.contains("%") {
            let format = try formatString(name, line: line, what: "'use_backend'",
                                          context: draft.proxy.mode == .tcp ? .tcpUseBackend : .useBackend)
            if !format.isLiteral { dynamic = format }
        }
        let condition = try finishRule(line, at: 1, draft: &draft,
                                       context: draft.proxy.mode == .tcp ? .tcpUseBackend : .useBackend)
        draft.proxy.http.backendRules.append(BackendSwitchRule(location: line.location, backend: name, condition: condition,
                                                               dynamic: dynamic))
    }

    /// `location|prefix|scheme TARGET`, `code N`, `drop-query`, `append-slash`, `set-cookie C`,
    /// `clear-cookie C` from `args[i]`, in any order as HAProxy reads them (`code 302 location /x`
    /// is valid); `i` ends on `if`, `unless` or past the last word. A repeated kind or cookie
    /// replaces the earlier one, as in HAProxy (a rule sets or clears one cookie).
    func redirect(_ line: KeywordLine, at i: inout Int, context: RuleContext) throws(ConfigError) -> Redirect {
        let what = line.keyword == "redirect" ? "'redirect'" : "'\(line.keyword) redirect'"
        var kind: Redirect.Kind?
        var code = 302
        var dropQuery = false, appendSlash = false
        var cookie: (value: String, set: Bool)?
        while let option = line.optionalArgument(i), option != "if" && option != "unless" {
            switch option {
            case "location", "prefix", "scheme":
                guard let target = line.optionalArgument(i + 1) else {
                    throw line.error("\(what) expects a target after '\(option)'")
                }
                let format = try formatString(target, line: line, what: what, context: context)
                kind = option == "location" ? .location(format) : option == "prefix" ? .prefix(format) : .scheme(format)
                i += 1
            case "code":
                let value = try line.integer(i + 1, range: 0...999, name: "code")
                guard [301, 302, 303, 307, 308].contains(value) else {
                    throw line.error("\(what): 'code' expects 301, 302, 303, 307 or 308, got '\(value)'")
                }
                code = value
                i += 1
            case "drop-query": dropQuery = true
            case "append-slash": appendSlash = true
            case "set-cookie", "clear-cookie":
                guard let value = line.optionalArgument(i + 1), !value.isEmpty else {
                    throw line.error("\(what): '\(option)' expects a cookie (NAME[=VALUE])")
                }
                cookie = (value, option == "set-cookie")
                i += 1
            case "ignore-empty":
                throw line.error("\(what): 'ignore-empty' is not supported yet")
            default:
                if kind == nil { throw line.error("\(what) expects location, prefix or scheme, got '\(option)'") }
                throw line.error("unexpected argument '\(option)' to \(what)"
                    + KeywordSuggestion.clause(for: option, among: ["code", "drop-query", "append-slash", "set-cookie", "clear-cookie"]))
            }
            i += 1
        }
        guard let kind else { throw line.error("\(what) expects location, prefix or scheme and a target") }
        var redirect = Redirect(kind: kind)
        redirect.code = code
        redirect.dropQuery = dropQuery
        redirect.appendSlash = appendSlash
        if let cookie {
            if cookie.set { redirect.setCookie = cookie.value } else { redirect.clearCookie = cookie.value }
        }
        return redirect
    }

    /// A log-format value, its errors prefixed with the rule.
    func formatString(_ text: String, line: KeywordLine, what: String, context: RuleContext) throws(ConfigError) -> FormatString {
        do throws(ConfigError) {
            return try SampleParser.format(text, context: context)
        } catch {
            throw line.error("\(what): \(error.message)")
        }
    }

    /// `unique-id-format FMT`: HAProxy's log-format syntax, flags included; the variables a
    /// request has when its ID is made, samples as an `http-request` rule reads them.
    private func uniqueIDFormat(_ text: String, line: KeywordLine) throws(ConfigError) -> LogFormatSpec {
        let spec: LogFormatSpec
        do throws(ConfigError) {
            spec = try LogFormatSpec(parsing: text) { expression throws(ConfigError) in
                try SampleParser.sampleForFormat(expression, context: .httpRequest)
            }
        } catch {
            throw line.error("'unique-id-format': \(error.message)")
        }
        for case .variable(let name, _) in spec.nodes where !KeywordReader.uniqueIDVariables.contains(name) {
            throw line.error("'unique-id-format': '%\(name)' is not known when the ID is made (it may use "
                + KeywordLine.list(KeywordReader.uniqueIDVariables.sorted().map { "%" + $0 }) + ")")
        }
        for case .sample(let expression, _) in spec.nodes where expression.fetch == .uniqueID {
            throw line.error("'unique-id-format': the format cannot use the ID it makes ('unique-id')")
        }
        return spec
    }

    /// `option httpslog`'s format (its `%[ssl_fc_err,hex]` takes a converter a log-format line
    /// does not, hence parsed here).
    static let httpsLog: LogFormatSpec = {
        do {
            return try LogFormatSpec(parsing: LogFormatSpec.httpsLogText) { expression throws(ConfigError) in
                try SampleParser.expression(expression, acl: false).0
            }
        } catch {
            fatalError("option httpslog's format: \(error)")
        }
    }()

    /// The engine's `HTTPUniqueIDFormat.variables`.
    static let uniqueIDVariables: Set<String> = [
        "ci", "cp", "fi", "fp", "Ts", "ms", "rt", "pid", "H", "f", "ft", "b", "HM", "HU", "HP", "HQ", "HV", "r",
    ]

    // MARK: Options

    /// `option forwardfor [except NET] [header NAME] [if-none]`, `option originalto [except NET] [header NAME]`.
    private func forwardedHeader(_ line: KeywordLine, defaultHeader: String, ifNone allowsIfNone: Bool)
        throws(ConfigError) -> ForwardedHeader
    {
        var result = ForwardedHeader(header: defaultHeader)
        var i = 0
        let options = allowsIfNone ? ["except", "header", "if-none"] : ["except", "header"]
        while let option = line.optionalArgument(i) {
            switch option {
            case "except":
                guard let text = line.optionalArgument(i + 1) else { throw line.error("'except' expects a network (for example 10.0.0.0/8)") }
                switch SampleParser.network(text, noDNS: true, resolver: addresses.resolver) {
                case .success(let network): result.except = network
                case .failure(let problem): throw line.error("'\(line.keyword)': \(problem)")
                }
                i += 2
            case "header":
                guard let name = line.optionalArgument(i + 1), !name.isEmpty else { throw line.error("'header' expects a header name") }
                result.header = name
                i += 2
            case "if-none" where allowsIfNone:
                result.ifNone = true
                i += 1
            default:
                throw line.error("unexpected argument '\(option)' to '\(line.keyword)' (expected \(KeywordLine.list(options)))")
            }
        }
        return result
    }

    /// `option forwarded [proto] [host] [by] [by_port] [for] [for_port]`, HAProxy 2.8's
    /// parameters; the `*-expr` forms are not yet.
    private func forwardedOption(_ line: KeywordLine) throws(ConfigError) -> ForwardedOption {
        var option = ForwardedOption()
        guard !line.args.isEmpty else {
            // HAProxy's default: `for` (as X-Forwarded-For) and `proto`.
            option.client = true
            option.proto = true
            return option
        }
        let known = ["proto", "host", "host-expr", "by", "by-expr", "by_port", "by_port-expr", "for", "for-expr", "for_port",
                     "for_port-expr"]
        var i = 0
        while let word = line.optionalArgument(i) {
            i += 1
            var expression: SampleExpression?
            if word.hasSuffix("-expr") {
                guard let text = line.optionalArgument(i) else { throw line.error("'option forwarded \(word)' expects a sample expression") }
                i += 1
                do throws(ConfigError) {
                    expression = try SampleParser.sampleForFormat(text, context: .httpRequest)
                } catch {
                    throw line.error("'option forwarded \(word)': \(error.message)")
                }
            }
            // A plain parameter after its `-expr` form (or the reverse) wins, as in HAProxy.
            switch word {
            case "proto": option.proto = true
            case "host", "host-expr": option.host = true; option.hostExpression = expression
            case "by", "by-expr": option.by = true; option.byExpression = expression
            case "by_port", "by_port-expr": option.byPort = true; option.byPortExpression = expression
            case "for", "for-expr": option.client = true; option.clientExpression = expression
            case "for_port", "for_port-expr": option.clientPort = true; option.clientPortExpression = expression
            default:
                throw line.error("unexpected argument '\(word)' to 'option forwarded' (expected \(KeywordLine.list(known)))")
            }
        }
        // HAProxy ignores a port without its node, with a warning: refused here.
        if option.byPort && !option.by { throw line.error("'option forwarded': 'by_port' needs 'by' or 'by-expr'") }
        if option.clientPort && !option.client { throw line.error("'option forwarded': 'for_port' needs 'for' or 'for-expr'") }
        return option
    }

    private func connectionMode(_ line: KeywordLine, _ mode: HTTPConnectionMode, draft: inout ProxyDraft) throws(ConfigError) {
        try line.noArguments()
        if !line.negated {
            draft.proxy.http.connectionMode = mode
        } else if draft.proxy.http.connectionMode == mode {
            draft.proxy.http.connectionMode = .keepAlive
        }
    }

    /// `capture request header NAME len N`, `capture response header NAME len N`, `capture cookie
    /// NAME len N`. A header capture takes the next slot of its direction (`capture.req.hdr(N)`).
    private func capture(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        let kind = try line.argument(0, expecting: "'request header NAME len N', 'response header NAME len N' or 'cookie NAME len N'")
        if kind == "cookie" {
            guard let name = line.optionalArgument(1), !name.isEmpty, line.optionalArgument(2) == "len", line.optionalArgument(3) != nil else {
                throw line.error("'capture' expects 'cookie' <cookie_name> 'len' <len>")
            }
            var length = try line.integer(3, range: 0...Int(Int32.max), name: "len")
            try line.noArguments(after: 4)
            // HAProxy's tune.http.cookielen (64 by default) bounds it, with a warning.
            if length >= 64 {
                length = 63
                draft.lineWarnings.append(line.error("truncating capture length to 63 bytes for \(draft.proxy.kind.rawValue) '\(draft.proxy.name)'"))
            }
            draft.proxy.http.cookieCapture = CookieCapture(name: name, length: length)
            return
        }
        let second = line.optionalArgument(1)
        guard kind == "request" || kind == "response", second == "header" else {
            throw line.error("'capture' expects 'request header NAME len N', 'response header NAME len N' or 'cookie NAME len N'")
        }
        guard let name = line.optionalArgument(2), !name.isEmpty else {
            throw line.error("'capture \(kind) header' expects a header name and 'len N'")
        }
        guard line.optionalArgument(3) == "len" else {
            throw line.error("'capture \(kind) header \(name)' expects 'len N' after the name")
        }
        let length = try line.integer(4, range: 0...Int(Int32.max), name: "len")
        try line.noArguments(after: 5)
        if kind == "request" {
            draft.proxy.http.captures.append(HeaderCapture(name: name, length: length))
        } else {
            draft.proxy.http.responseCaptures.append(HeaderCapture(name: name, length: length))
        }
    }

    /// `declare capture request|response len N`: a slot for the capture actions (a frontend's).
    func declareCapture(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        guard line.optionalArgument(0) == "capture" else {
            throw line.error("'declare' needs a second keyword that specify the type of declaration ('capture')")
        }
        guard let direction = line.optionalArgument(1), direction == "request" || direction == "response" else {
            throw line.error("'declare capture' requires a direction ('request' or 'response')")
        }
        guard line.optionalArgument(2) == "len" else { throw line.error("'declare capture' requires a capture length ('len')") }
        guard let text = line.optionalArgument(3) else {
            throw line.error("'declare capture': 'len' requires a numeric value that represents the capture length")
        }
        guard let length = KeywordLine.decimal(text) else { throw line.error("'declare capture': cannot parse the length '\(text)'.") }
        guard length > 0, length <= Int(Int32.max) else { throw line.error("'declare capture': length must be > 0") }
        try line.noArguments(after: 4)
        let slot = HeaderCapture(name: nil, length: length)
        if direction == "request" { draft.proxy.http.captures.append(slot) } else { draft.proxy.http.responseCaptures.append(slot) }
    }

    /// `cookie NAME insert|rewrite|prefix [indirect] [nocache] [httponly] [secure] [maxidle T] [maxlife T]`.
    private func cookie(_ line: KeywordLine) throws(ConfigError) -> CookiePersistence {
        let name = try line.argument(0, expecting: "a cookie name and insert, rewrite or prefix")
        var mode: CookiePersistence.Mode?
        var result = CookiePersistence(name: name, mode: .insert)
        var i = 1
        while let option = line.optionalArgument(i) {
            switch option {
            case "insert", "rewrite", "prefix":
                if let mode, mode.rawValue != option {
                    throw line.error("'cookie': '\(mode.rawValue)' and '\(option)' cannot be used together")
                }
                mode = CookiePersistence.Mode(rawValue: option)
            case "indirect": result.indirect = true
            case "nocache": result.nocache = true
            case "httponly": result.httpOnly = true
            case "secure": result.secure = true
            case "maxidle", "maxlife":
                guard let text = line.optionalArgument(i + 1) else { throw line.error("'\(option)' expects a time (for example 30m)") }
                let ms: Int
                switch ConfigUnits.parseTime(text, defaultUnitMilliseconds: 1000) {
                case .success(let value): ms = value
                case .failure(let failure): throw line.error("'\(option)' expects a time, got '\(text)' (\(failure))")
                }
                if option == "maxidle" { result.maxIdle = ms } else { result.maxLife = ms }
                i += 1
            case "postonly", "preserve", "domain", "dynamic", "attr":
                throw line.error("'cookie': '\(option)' is not supported yet")
            default:
                throw line.error("unexpected argument '\(option)' to 'cookie'"
                    + KeywordSuggestion.clause(for: option, among: ["insert", "rewrite", "prefix", "indirect", "nocache",
                                                                    "httponly", "secure", "maxidle", "maxlife"]))
            }
            i += 1
        }
        guard let mode else {
            throw line.error("'cookie \(name)' expects insert, rewrite or prefix (passive persistence is not supported yet)")
        }
        // The dates live in the value strata inserts: HAProxy accepts them in the other modes and
        // does nothing with them.
        if mode != .insert, result.maxIdle != nil || result.maxLife != nil {
            throw line.error("'cookie': '\(result.maxIdle != nil ? "maxidle" : "maxlife")' works in insert mode only, not with '\(mode.rawValue)'")
        }
        result.mode = mode
        return result
    }
}
