import ConfigModel

/// `http-request`, `http-response` and `http-after-response` rules (HAProxy's configuration.txt
/// §4.2): their actions, the values and conditions each takes, and the model they land in.
extension KeywordReader {
    func httpRequest(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        let action = try line.argument(0, expecting: "an action (\(KeywordLine.list(KeywordReader.httpRequestActions)))")
        let rule = "http-request \(action)"
        let what = "'\(rule)'"
        let context = RuleContext.httpRequest
        var i = 1
        func format(_ index: Int, _ expecting: String) throws(ConfigError) -> FormatString {
            guard let text = line.optionalArgument(index) else { throw line.error("\(what) expects \(expecting)") }
            return try formatString(text, line: line, what: what, context: context)
        }
        func word(_ index: Int, _ expecting: String) throws(ConfigError) -> String {
            guard let text = line.optionalArgument(index) else { throw line.error("\(what) expects \(expecting)") }
            return text
        }
        let result: HTTPRequestAction
        if let variable = try variableRule(action, line, what: what, context: context, next: &i) {
            switch variable {
            case .set(let name, let value): result = .setVariable(name: name, value: value)
            case .setFormat(let name, let value): result = .setVariableFormat(name: name, value: value)
            case .unset(let name): result = .unsetVariable(name: name)
            }
            let condition = try finishRule(line, at: i, draft: &draft, context: context, rule: rule)
            draft.proxy.http.requestRules.append(HTTPRequestRule(location: line.location, action: result, condition: condition))
            return
        }
        if action == "set-nice" {
            // HAProxy's scheduler priority: strata's loops have none, so the rule does nothing.
            _ = try line.integer(1, range: -1024...1024)
            _ = try finishRule(line, at: 2, draft: &draft, context: context, rule: rule)
            draft.lineWarnings.append(line.error("'http-request set-nice' changes nothing: strata runs every request at the same priority"))
            return
        }
        switch action {
        case "set-header", "add-header", "del-header", "replace-header", "replace-value":
            let edit = try headerEdit(action, line, what: what, context: context, next: &i)
            result = HTTPRequestAction(edit)
        case "set-path": result = .setPath(try format(1, "a path")); i = 2
        case "replace-path", "replace-pathq", "replace-uri":
            let regex = try word(1, "a regex and a replacement")
            let replacement = try format(2, "a replacement after the regex")
            if let problem = SampleParser.regexProblem(regex) { throw line.error("invalid regex '\(regex)': \(problem)") }
            let part: RequestTargetPart = action == "replace-uri" ? .uri : action == "replace-path" ? .path : .pathQuery
            result = .replaceTarget(part: part, regex: regex, replacement: replacement)
            i = 3
        case "set-query": result = .setQuery(try format(1, "a query")); i = 2
        case "set-uri": result = .setURI(try format(1, "a URI")); i = 2
        case "set-method": result = .setMethod(try format(1, "a method")); i = 2
        case _ where ConnectionAddressPart(rawValue: action) != nil:
            guard let text = line.optionalArgument(1) else { throw line.error("\(what) expects a sample expression") }
            do throws(ConfigError) {
                result = .setAddress(ConnectionAddressPart(rawValue: action)!, try SampleParser.sampleForFormat(text, context: context))
            } catch {
                throw line.error("\(what): \(error.message)")
            }
            i = 2
        case "deny":
            result = .deny(status: try denyStatus(line, at: &i, default: 403, what: what))
        case "tarpit":
            result = .tarpit(status: try denyStatus(line, at: &i, default: 500, what: what))
        case "return":
            result = try returnAction(line, at: &i, what: what, context: context)
        case "silent-drop":
            result = .silentDrop
        case "reject":
            result = .reject
        case "wait-for-body":
            guard line.optionalArgument(1) == "time" else { throw line.error("\(what) expects 'time T' (for example time 1s)") }
            let time = try line.time(2)
            guard time > 0 else { throw line.error("\(what): the time must be above 0") }
            var atLeast: Int?
            i = 3
            if line.optionalArgument(3) == "at-least" {
                let text = try word(4, "a size after 'at-least'")
                switch ConfigUnits.parseSize(text) {
                case .success(let size) where size > 0: atLeast = size
                case .success: throw line.error("\(what): 'at-least' must be above 0")
                case .failure(let failure): throw line.error("\(what): 'at-least' expects a size, got '\(text)' (\(failure))")
                }
                i = 5
            }
            result = .waitForBody(time: time, atLeast: atLeast)
        case "normalize-uri":
            let name = try word(1, "a normalizer (\(KeywordLine.list(KeywordReader.uriNormalizers)))")
            i = 2
            let option = line.optionalArgument(2)
            func flag(_ word: String) -> Bool {
                guard option == word else { return false }
                i = 3
                return true
            }
            switch name {
            case "path-merge-slashes": result = .normalizeURI(.pathMergeSlashes)
            case "path-strip-dot": result = .normalizeURI(.pathStripDot)
            case "path-strip-dotdot": result = .normalizeURI(.pathStripDotDot(full: flag("full")))
            case "percent-decode-unreserved": result = .normalizeURI(.percentDecodeUnreserved(strict: flag("strict")))
            case "percent-to-uppercase": result = .normalizeURI(.percentToUppercase(strict: flag("strict")))
            case "query-sort-by-name": result = .normalizeURI(.querySortByName)
            case "fragment-strip": result = .normalizeURI(.fragmentStrip)
            case "fragment-encode": result = .normalizeURI(.fragmentEncode)
            default:
                throw line.error("\(what): unknown normalizer '\(name)' (expected \(KeywordLine.list(KeywordReader.uriNormalizers)))")
            }
        case "set-log-level":
            result = .setLogLevel(try logLevel(line, what: what))
            i = 2
        case "redirect":
            result = .redirect(try redirect(line, at: &i, context: context))
        case "allow":
            result = .allow
        case "auth":
            var realm: String?
            if line.optionalArgument(1) == "realm" {
                realm = try word(2, "a realm after 'realm'")
                i = 3
            }
            result = .auth(realm: realm)
        case _ where KeywordReader.isStickCounterAction(action):
            guard let stick = try stickCounterAction(line, at: 0, context: context, draft: draft, next: &i) else {
                throw line.error("'\(action)' is not an http-request action"
                    + KeywordSuggestion.clause(for: action, among: KeywordReader.httpRequestActions))
            }
            result = .stickCounter(stick)
        case "cache-use":
            let name = try word(1, "a cache name")
            if name == "if" || name == "unless" { throw line.error("\(what) expects a cache name") }
            result = .cacheUse(name)
            i = 2
        case "capture":
            let (sample, slot) = try captureAction(line, what: what, context: context, declares: true, draft: &draft)
            result = .capture(sample, slot: slot)
            i = 4
        case _ where KeywordReader.isMapAction(action):
            switch try mapAction(action, line, what: what, context: context, draft: &draft) {
            case .set(let file, let key, let value): result = .setMap(file: file, key: key, value: value); i = 3
            case .delete(let file, let key): result = .deleteMapEntry(file: file, key: key); i = 2
            }
        case "early-hint":
            let name = try word(1, "a header name and a value")
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "!#$%&'*+-.^_`|~".contains($0)) }) else { throw line.error("\(what): '\(name)' is not a header name") }
            result = .earlyHint(name: name, value: try format(2, "a header name and a value"))
            i = 3
        case "use-service":
            let service = try word(1, "a service (prometheus-exporter)")
            guard service == "prometheus-exporter" else {
                throw line.error("\(what): service '\(service)' is not supported (strata has prometheus-exporter)")
            }
            result = .useService(service)
            i = 2
        default:
            if KeywordReader.otherHTTPRequestActions.contains(action) || action.hasPrefix("lua.") {
                throw line.error("\(what) is not supported yet")
            }
            throw line.error("'\(action)' is not an http-request action"
                + KeywordSuggestion.clause(for: action, among: KeywordReader.httpRequestActions))
        }
        let condition = try finishRule(line, at: i, draft: &draft, context: context, rule: rule)
        draft.proxy.http.requestRules.append(HTTPRequestRule(location: line.location, action: result, condition: condition))
    }

    /// `http-response` rules, and `http-after-response` ones (`after`: header, status and
    /// variable actions and `allow`, as HAProxy 2.6).
    func httpResponse(_ line: KeywordLine, draft: inout ProxyDraft, after: Bool = false) throws(ConfigError) {
        let actions = after ? KeywordReader.httpAfterResponseActions : KeywordReader.httpResponseActions
        let action = try line.argument(0, expecting: "an action (\(KeywordLine.list(actions)))")
        let rule = "\(line.keyword) \(action)"
        func add(_ result: HTTPResponseAction, _ condition: Condition?) {
            let r = HTTPResponseRule(location: line.location, action: result, condition: condition)
            if after { draft.proxy.http.afterResponseRules.append(r) } else { draft.proxy.http.responseRules.append(r) }
        }
        if after, !actions.contains(action), !action.hasPrefix("set-var"), !action.hasPrefix("unset-var"), !KeywordReader.isMapAction(action) {
            if KeywordReader.otherHTTPAfterResponseActions.contains(action) || action.hasPrefix("lua.") {
                throw line.error("'\(rule)' is not supported yet")
            }
            throw line.error("'\(action)' is not an http-after-response action"
                + KeywordSuggestion.clause(for: action, among: actions))
        }
        let what = "'\(rule)'"
        let context = RuleContext.httpResponse
        var i = 1
        func word(_ index: Int, _ expecting: String) throws(ConfigError) -> String {
            guard let text = line.optionalArgument(index) else { throw line.error("\(what) expects \(expecting)") }
            return text
        }
        let result: HTTPResponseAction
        if let variable = try variableRule(action, line, what: what, context: context, next: &i) {
            switch variable {
            case .set(let name, let value): result = .setVariable(name: name, value: value)
            case .setFormat(let name, let value): result = .setVariableFormat(name: name, value: value)
            case .unset(let name): result = .unsetVariable(name: name)
            }
            add(result, try finishRule(line, at: i, draft: &draft, context: context, rule: rule))
            return
        }
        switch action {
        case "set-header", "add-header", "del-header", "replace-header", "replace-value":
            let edit = try headerEdit(action, line, what: what, context: context, next: &i)
            result = HTTPResponseAction(edit)
        case "set-status":
            guard line.optionalArgument(1) != nil else { throw line.error("\(what) expects a status code from 100 to 999") }
            let status = try line.integer(1, range: 100...999, name: rule)
            i = 2
            var reason: String?
            if line.optionalArgument(2) == "reason" {
                reason = try word(3, "a reason phrase after 'reason'")
                i = 4
            }
            result = .setStatus(status, reason: reason)
        case "deny":
            result = .deny(status: try denyStatus(line, at: &i, default: 502, what: what))
        case "capture":
            let (sample, slot) = try captureAction(line, what: what, context: context, declares: false, draft: &draft)
            result = .capture(sample, slot: slot)
            i = 4
        case "redirect" where !after:
            result = .redirect(try redirect(line, at: &i, context: context))
        case _ where KeywordReader.isMapAction(action):
            switch try mapAction(action, line, what: what, context: context, draft: &draft) {
            case .set(let file, let key, let value): result = .setMap(file: file, key: key, value: value); i = 3
            case .delete(let file, let key): result = .deleteMapEntry(file: file, key: key); i = 2
            }
        case "allow":
            result = .allow
        case "return":
            guard case .returnResponse(let status, let contentType, let body, let headers)
                = try returnAction(line, at: &i, what: what, context: context) else { return }
            result = .returnResponse(status: status, contentType: contentType, body: body, headers: headers)
        case "silent-drop":
            result = .silentDrop
        case "set-log-level":
            result = .setLogLevel(try logLevel(line, what: what))
            i = 2
        case "cache-store":
            let name = try word(1, "a cache name")
            if name == "if" || name == "unless" { throw line.error("\(what) expects a cache name") }
            result = .cacheStore(name)
            i = 2
        default:
            if KeywordReader.otherHTTPResponseActions.contains(action) || action.hasPrefix("lua.") {
                throw line.error("\(what) is not supported yet")
            }
            throw line.error("'\(action)' is not an http-response action"
                + KeywordSuggestion.clause(for: action, among: KeywordReader.httpResponseActions))
        }
        add(result, try finishRule(line, at: i, draft: &draft, context: context, rule: rule))
    }

    /// `set-log-level LEVEL`: a syslog level's number, -1 for `silent`.
    private func logLevel(_ line: KeywordLine, what: String) throws(ConfigError) -> Int {
        let levels = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
        guard let word = line.optionalArgument(1) else {
            throw line.error("\(what) expects a level (\(KeywordLine.list(levels + ["silent"])))")
        }
        if word == "silent" { return -1 }
        guard let level = levels.firstIndex(of: word) else {
            throw line.error("\(what): unknown level '\(word)' (expected \(KeywordLine.list(levels + ["silent"])))")
        }
        return level
    }

    /// The header actions http-request and http-response share, read alike for both.
    enum VariableRule {
        case set(String, SampleExpression)
        case setFormat(String, FormatString)
        case unset(String)
    }

    /// `set-var(SCOPE.NAME) EXPR`, `set-var-fmt(SCOPE.NAME) FMT` and `unset-var(SCOPE.NAME)`;
    /// nil for another action. `at`: the action's argument (tcp-request content's is 1).
    func variableRule(_ action: String, _ line: KeywordLine, what: String, context: RuleContext, at a: Int = 0,
                      next i: inout Int) throws(ConfigError) -> VariableRule? {
        let kinds = ["set-var(", "set-var-fmt(", "unset-var("]
        guard let kind = kinds.first(where: { action.hasPrefix($0) }) else { return nil }
        guard action.hasSuffix(")") else { throw line.error("\(what): expected '\(kind)SCOPE.NAME)'") }
        let inner = String(action.dropFirst(kind.count).dropLast())
        if inner.contains(",") {
            throw line.error("\(what): conditions after the variable name (ifexists, ifnotexists, …) are not supported yet")
        }
        let name = try SampleParser.variableName(inner).get(line)
        switch kind {
        case "unset-var(":
            i = a + 1
            return .unset(name)
        case "set-var-fmt(":
            guard let text = line.optionalArgument(a + 1) else { throw line.error("\(what) expects a format string") }
            i = a + 2
            return .setFormat(name, try formatString(text, line: line, what: what, context: context))
        default:
            guard let text = line.optionalArgument(a + 1) else { throw line.error("\(what) expects a sample expression") }
            i = a + 2
            do throws(ConfigError) {
                return .set(name, try SampleParser.sampleForFormat(text, context: context))
            } catch {
                throw line.error("\(what): \(error.message)")
            }
        }
    }

    private func headerEdit(_ action: String, _ line: KeywordLine, what: String, context: RuleContext,
                            next i: inout Int) throws(ConfigError) -> HeaderEdit {
        func word(_ index: Int, _ expecting: String) throws(ConfigError) -> String {
            guard let text = line.optionalArgument(index) else { throw line.error("\(what) expects \(expecting)") }
            return text
        }
        func format(_ index: Int, _ expecting: String) throws(ConfigError) -> FormatString {
            try formatString(try word(index, expecting), line: line, what: what, context: context)
        }
        switch action {
        case "set-header", "add-header":
            let name = try word(1, "a header name and a value")
            let value = try format(2, "a value after the header name")
            i = 3
            return action == "set-header" ? .set(name: name, value: value) : .add(name: name, value: value)
        case "del-header":
            let name = try word(1, "a header name")
            if line.optionalArgument(2) == "-m" { throw line.error("\(what): '-m' is not supported yet (the name is matched exactly)") }
            i = 2
            return .delete(name: name)
        default:  // replace-header, replace-value
            let name = try word(1, "a header name, a regex and a replacement")
            let regex = try word(2, "a regex and a replacement after the header name")
            let replacement = try format(3, "a replacement after the regex")
            if let problem = SampleParser.regexProblem(regex) { throw line.error("invalid regex '\(regex)': \(problem)") }
            i = 4
            return action == "replace-header"
                ? .replaceHeader(name: name, regex: regex, replacement: replacement)
                : .replaceValue(name: name, regex: regex, replacement: replacement)
        }
    }

    /// `deny [deny_status N]` (HAProxy 2.2's `status N` too): one of the errorfile codes.
    private func denyStatus(_ line: KeywordLine, at i: inout Int, default status: Int, what: String) throws(ConfigError) -> Int {
        var status = status
        while let option = line.optionalArgument(i), option != "if" && option != "unless" {
            switch option {
            case "deny_status", "status":
                let code = try line.integer(i + 1, range: 0...999, name: option)
                guard KeywordReader.errorCodes.contains(code) else {
                    throw line.error("\(what): status code \(code) is not one strata answers (\(KeywordLine.list(KeywordReader.errorCodes.map(String.init))))")
                }
                status = code
                i += 2
            case "content-type", "string", "lf-string", "file", "lf-file", "errorfile", "errorfiles", "hdr", "default-errorfiles":
                throw line.error("\(what): '\(option)' is not supported yet (use 'http-request return' for a custom answer)")
            default:
                throw line.error("unexpected argument '\(option)' to \(what)"
                    + KeywordSuggestion.clause(for: option, among: ["deny_status"]))
            }
        }
        return status
    }

    /// `return [status N] [content-type T] [string S | lf-string S | file F | errorfile F] [hdr N V]…`.
    private func returnAction(_ line: KeywordLine, at i: inout Int, what: String,
                              context: RuleContext) throws(ConfigError) -> HTTPRequestAction {
        var status = 200
        var contentType: String?
        var body = ResponseBody.none
        var bodyWord: String?
        var headers: [HTTPRequestAction.Header] = []
        while let option = line.optionalArgument(i), option != "if" && option != "unless" {
            func value() throws(ConfigError) -> String {
                guard let v = line.optionalArgument(i + 1) else { throw line.error("\(what): '\(option)' expects a value") }
                return v
            }
            switch option {
            case "status":
                status = try line.integer(i + 1, range: 0...999, name: "status")
                guard (200...599).contains(status) else {
                    throw line.error("\(what): 'status' expects a code from 200 to 599, got '\(status)'")
                }
            case "content-type":
                contentType = try value()
            case "string", "lf-string", "file", "lf-file", "errorfile":
                if let bodyWord { throw line.error("\(what): '\(option)' and '\(bodyWord)' both give a body") }
                bodyWord = option
                let text = try value()
                switch option {
                case "string": body = .string(SampleParser.literal(text))
                case "lf-string": body = .string(try formatString(text, line: line, what: what, context: context))
                case "file", "lf-file":
                    let path = paths.resolve(text, from: line.location)
                    let bytes: [UInt8]
                    switch paths.read(path, .httpMessage(bufferSize: paths.bufferSize)) {
                    case .success(let b): bytes = b
                    case .failure(let reason): throw line.error("\(what): cannot read file '\(text)': \(reason)")
                    }
                    if option == "file" {
                        body = .file(path: text, contents: bytes)
                    } else {
                        // The file's text is a log-format string, read when the configuration loads.
                        body = .string(try formatString(String(decoding: bytes, as: UTF8.self), line: line,
                                                        what: "\(what) ('\(text)')", context: context))
                    }
                default:
                    body = .rawMessage(path: text, contents: try httpMessageFile(text, line: line, what: what))
                }
            case "hdr":
                let name = try value()
                guard let text = line.optionalArgument(i + 2) else {
                    throw line.error("\(what): 'hdr' expects a name and a value")
                }
                headers.append(.init(name: name, value: try formatString(text, line: line, what: what, context: context)))
                i += 1
            case "errorfiles", "default-errorfiles":
                if let bodyWord { throw line.error("\(what): '\(option)' and '\(bodyWord)' both give a body") }
                bodyWord = option
                if option == "errorfiles" {
                    body = .errorFilesSection(try value())
                } else {
                    body = .errorPage
                    i -= 1
                }
            default:
                throw line.error("unexpected argument '\(option)' to \(what)"
                    + KeywordSuggestion.clause(for: option, among: ["status", "content-type", "string", "lf-string", "file", "lf-file", "errorfile", "hdr"]))
            }
            i += 2
        }
        let hasBody: Bool
        switch body {
        case .none: hasBody = false
        case .string(let format): hasBody = !(format.isLiteral && format.source.isEmpty)
        case .file(_, let contents): hasBody = !contents.isEmpty
        case .rawMessage, .errorPage, .errorFilesSection:
            let word = bodyWord ?? "errorfile"
            if let contentType { throw line.error("\(what): 'content-type \(contentType)' cannot go with '\(word)' (the file is the whole answer)") }
            if !headers.isEmpty { throw line.error("\(what): 'hdr' cannot go with '\(word)' (the file is the whole answer)") }
            if word != "errorfile", !KeywordReader.errorCodes.contains(status) {
                throw line.error("\(what): '\(word)' needs a status strata has error answers for (\(KeywordLine.list(KeywordReader.errorCodes.map(String.init)))), got \(status)")
            }
            hasBody = false
        }
        if hasBody && contentType == nil {
            throw line.error("\(what): a body needs 'content-type' (for example content-type text/plain)")
        }
        if !hasBody, let contentType, bodyWord == nil {
            throw line.error("\(what): 'content-type \(contentType)' without a body (add 'string', 'lf-string' or 'file')")
        }
        if hasBody && (status == 204 || status == 304) {
            throw line.error("\(what): a \(status) answer has no body")
        }
        return .returnResponse(status: status, contentType: contentType, body: body, headers: headers)
    }

    /// A whole HTTP response read from a file (`errorfile`): a status line, headers and the empty
    /// line that ends them.
    func httpMessageFile(_ text: String, line: KeywordLine, what: String) throws(ConfigError) -> [UInt8] {
        let path = paths.resolve(text, from: line.location)
        let bytes: [UInt8]
        switch paths.read(path, .httpMessage(bufferSize: paths.bufferSize)) {
        case .success(let b): bytes = b
        case .failure(let reason): throw line.error("\(what): cannot read '\(text)': \(reason)")
        }
        if bytes.isEmpty {
            throw line.error("\(what): '\(text)' is empty: closing without an answer (HAProxy's 'errorfile 408 /dev/null') is not supported yet")
        }
        let statusLine = bytes.starts(with: Array("HTTP/1.0 ".utf8)) || bytes.starts(with: Array("HTTP/1.1 ".utf8))
        let digits = bytes.count >= 12 && bytes[9...11].allSatisfy { $0 &- UInt8(ascii: "0") < 10 }
        var endOfHead = false
        if bytes.count >= 2 {
            for j in 0..<(bytes.count - 1) where bytes[j] == 0x0A {
                if bytes[j + 1] == 0x0A || (bytes[j + 1] == 0x0D && j + 2 < bytes.count && bytes[j + 2] == 0x0A) {
                    endOfHead = true
                    break
                }
            }
        }
        guard statusLine && digits && endOfHead else {
            throw line.error("\(what): '\(text)' is not an HTTP response (a status line such as 'HTTP/1.1 503 Service Unavailable', headers, then an empty line)")
        }
        return bytes
    }
}

/// A header action as http-request and http-response both write it.
enum HeaderEdit {
    case set(name: String, value: FormatString)
    case add(name: String, value: FormatString)
    case delete(name: String)
    case replaceHeader(name: String, regex: String, replacement: FormatString)
    case replaceValue(name: String, regex: String, replacement: FormatString)
}

extension HTTPRequestAction {
    init(_ edit: HeaderEdit) {
        switch edit {
        case .set(let name, let value): self = .setHeader(name: name, value: value)
        case .add(let name, let value): self = .addHeader(name: name, value: value)
        case .delete(let name): self = .delHeader(name: name)
        case .replaceHeader(let name, let regex, let replacement): self = .replaceHeader(name: name, regex: regex, replacement: replacement)
        case .replaceValue(let name, let regex, let replacement): self = .replaceValue(name: name, regex: regex, replacement: replacement)
        }
    }
}

extension HTTPResponseAction {
    init(_ edit: HeaderEdit) {
        switch edit {
        case .set(let name, let value): self = .setHeader(name: name, value: value)
        case .add(let name, let value): self = .addHeader(name: name, value: value)
        case .delete(let name): self = .delHeader(name: name)
        case .replaceHeader(let name, let regex, let replacement): self = .replaceHeader(name: name, regex: regex, replacement: replacement)
        case .replaceValue(let name, let regex, let replacement): self = .replaceValue(name: name, regex: regex, replacement: replacement)
        }
    }
}

extension KeywordReader {
    /// `capture SAMPLE len N | id N` (HAProxy's forms): `len` (http-request, a frontend's only)
    /// declares the next request slot for this rule; `id` names a slot, which a frontend must
    /// have (checked once the proxy is read: `declare capture` may come after).
    func captureAction(_ line: KeywordLine, what: String, context: RuleContext, declares: Bool,
                       draft: inout ProxyDraft) throws(ConfigError) -> (SampleExpression, Int) {
        let expecting = declares ? "<expression> [ 'len' <length> | id <idx> ]" : "<expression> id <idx>"
        let words = (1...3).map { line.optionalArgument($0) }
        guard let text = words[0], let keyword = words[1], let value = words[2],
              !words.contains(where: { $0 == "if" || $0 == "unless" }) else {
            throw line.error("\(what) expects \(expecting)")
        }
        let sample: SampleExpression
        do throws(ConfigError) {
            sample = try SampleParser.sampleForFormat(text, context: context)
        } catch {
            throw line.error("\(what): \(error.message)")
        }
        switch keyword {
        case "len" where declares:
            guard draft.proxy.isFrontend else { throw line.error("\(what): proxy '\(draft.proxy.name)' has no frontend capability") }
            guard let length = KeywordLine.decimal(value), length > 0, length <= Int(Int32.max) else {
                throw line.error("\(what): length must be > 0")
            }
            draft.proxy.http.captures.append(HeaderCapture(name: nil, length: length))
            return (sample, draft.proxy.http.captures.count - 1)
        case "id":
            guard let id = KeywordLine.decimal(value), id >= 0, id <= Int(Int32.max) else { throw line.error("\(what): cannot parse id '\(value)'") }
            return (sample, id)
        default:
            throw line.error("\(what): expects \(declares ? "'len' or 'id'" : "'id'"), found '\(keyword)'")
        }
    }

    enum MapAction {
        case set(String, FormatString, FormatString)
        case delete(String, FormatString)
    }

    /// `set-map(FILE)`, `del-map(FILE)`, and the ACL ones (refused): the action word with its file.
    static func isMapAction(_ action: String) -> Bool {
        ["set-map", "del-map", "add-acl", "del-acl"].contains { action.hasPrefix($0) }
    }

    /// `set-map(FILE) KEYFMT VALUEFMT`, `del-map(FILE) KEYFMT`. FILE must be a map a `map*`
    /// converter of the configuration loads (checked once everything is read).
    func mapAction(_ action: String, _ line: KeywordLine, what: String, context: RuleContext,
                   draft: inout ProxyDraft) throws(ConfigError) -> MapAction {
        let kind = String(action.prefix(7))
        let rule = "'\(line.keyword) \(kind)'"
        if kind == "add-acl" || kind == "del-acl" {
            throw line.error("\(rule) is not supported yet (strata's ACL pattern files do not change at run time)")
        }
        guard action.hasPrefix(kind + "("), action.hasSuffix(")"), action.count > 9 else { throw line.error("\(rule) expects the map file in parentheses: \(kind)(FILE)") }
        let written = String(action.dropFirst(8).dropLast())
        let needed = kind == "set-map" ? 2 : 1
        var formats: [FormatString] = []
        for index in 1...needed {
            guard let text = line.optionalArgument(index), text != "if", text != "unless" else {
                throw line.error("\(rule) expects exactly \(needed) argument\(needed == 1 ? "" : "s")")
            }
            formats.append(try formatString(text, line: line, what: rule, context: context))
        }
        let file = paths.resolve(written, from: line.location)
        draft.mapActions.append((written, file, line.location))
        return kind == "set-map" ? .set(file, formats[0], formats[1]) : .delete(file, formats[0])
    }
}
