import HTTP1
import ConfigModel

struct HTTPCompiledRequestRule {
    let action: HTTPCompiledRequestAction
    let condition: HTTPCompiledCondition?
}

enum HTTPCompiledRequestAction {
    case setHeader(HTTPCompiledFieldName, HTTPCompiledFormat)
    case addHeader(HTTPCompiledFieldName, HTTPCompiledFormat)
    case delHeader(HTTPCompiledFieldName)
    /// `replace-header` (whole values) or `replace-value` (each comma-separated value).
    case replaceHeader(HTTPCompiledFieldName, HTTPRegex, HTTPCompiledFormat, eachValue: Bool)
    case setPath(HTTPCompiledFormat)
    case setQuery(HTTPCompiledFormat)
    case setURI(HTTPCompiledFormat)
    case setMethod(HTTPCompiledFormat)
    case replaceTarget(RequestTargetPart, HTTPRegex, HTTPCompiledFormat)
    case deny(status: Int)
    case tarpit(status: Int)
    case returnResponse(HTTPCompiledReturn)
    case redirect(HTTPCompiledRedirect)
    case allow
    case useService(String)
    /// `auth`: the 401 page with its `WWW-Authenticate` line, made when the set is built.
    case auth(HTTPLocalResponse)
    case setVariable(HTTPVariableKey, HTTPCompiledSample)
    case setVariableFormat(HTTPVariableKey, HTTPCompiledFormat)
    case unsetVariable(HTTPVariableKey)
    case stick(HTTPCompiledStickAction)
    case setAddress(ConnectionAddressPart, HTTPCompiledSample)
    case silentDrop
    case reject
    case normalizeURI(URINormalizer)
    case waitForBody(seconds: Double, atLeast: Int)
    case setLogLevel(Int)
    case cacheUse(HTTPCache)
    /// `capture SAMPLE len N | id N`: into the frontend's request slot.
    case capture(HTTPCompiledSample, slot: Int)
    /// `set-map(FILE)`, `del-map(FILE)`: the shared map itself (every loop and generation that
    /// has the file unchanged sees the change).
    case setMap(SharedMap, key: HTTPCompiledFormat, value: HTTPCompiledFormat)
    case deleteMapEntry(SharedMap, key: HTTPCompiledFormat)
    /// `early-hint NAME FMT`; `closes`: the 103 ends after this field (the next rule is not an
    /// unconditional early-hint, as HAProxy groups them).
    case earlyHint(UnsafeRawBufferPointer, HTTPCompiledFormat, closes: Bool)

    init(_ action: HTTPRequestAction, location: SourceLocation, constants: HTTPRuleConstants) throws(ConfigError) {
        func format(_ f: FormatString) -> HTTPCompiledFormat { HTTPCompiledFormat(f, constants: constants) }
        func name(_ n: String) -> HTTPCompiledFieldName { HTTPCompiledFieldName(n, constants: constants) }
        switch action {
        case .setHeader(let n, let value): self = .setHeader(name(n), format(value))
        case .addHeader(let n, let value): self = .addHeader(name(n), format(value))
        case .delHeader(let n): self = .delHeader(name(n))
        case .replaceHeader(let n, let regex, let replacement):
            self = .replaceHeader(name(n), try HTTPCompiledRequestAction.regex(regex, location), format(replacement),
                                  eachValue: false)
        case .replaceValue(let n, let regex, let replacement):
            self = .replaceHeader(name(n), try HTTPCompiledRequestAction.regex(regex, location), format(replacement),
                                  eachValue: true)
        case .setPath(let f): self = .setPath(format(f))
        case .setQuery(let f): self = .setQuery(format(f))
        case .setURI(let f): self = .setURI(format(f))
        case .setMethod(let f): self = .setMethod(format(f))
        case .replaceTarget(let part, let regex, let replacement):
            self = .replaceTarget(part, try HTTPCompiledRequestAction.regex(regex, location), format(replacement))
        case .deny(let status): self = .deny(status: status)
        case .tarpit(let status): self = .tarpit(status: status)
        case .capture(let sample, let slot): self = .capture(HTTPCompiledSample(sample, constants: constants), slot: slot)
        case .setMap(let file, let key, let value):
            self = .setMap(try constants.map(file, location), key: format(key), value: format(value))
        case .deleteMapEntry(let file, let key):
            self = .deleteMapEntry(try constants.map(file, location), key: format(key))
        case .earlyHint(let n, let value): self = .earlyHint(constants.bytes(n), format(value), closes: true)
        case .returnResponse(let status, let contentType, let body, let headers):
            self = .returnResponse(HTTPCompiledReturn(status: status, contentType: contentType, body: body,
                                                      headers: headers, constants: constants))
        case .redirect(let redirect): self = .redirect(HTTPCompiledRedirect(redirect, constants: constants))
        case .allow: self = .allow
        case .useService(let service): self = .useService(service)
        case .auth(let realm):
            self = .auth(HTTPCompiledRequestAction.challenge(realm: realm, constants: constants))
        case .setVariable(let name, let value): self = .setVariable(HTTPVariableKey(name), HTTPCompiledSample(value, constants: constants))
        case .setVariableFormat(let name, let value): self = .setVariableFormat(HTTPVariableKey(name), format(value))
        case .unsetVariable(let name): self = .unsetVariable(HTTPVariableKey(name))
        case .stickCounter(let action): self = .stick(HTTPCompiledStickAction(action, constants: constants))
        case .setAddress(let part, let value): self = .setAddress(part, HTTPCompiledSample(value, constants: constants))
        case .silentDrop: self = .silentDrop
        case .reject: self = .reject
        case .normalizeURI(let n): self = .normalizeURI(n)
        case .waitForBody(let time, let atLeast): self = .waitForBody(seconds: Double(time) / 1000, atLeast: atLeast ?? Int.max)
        case .setLogLevel(let level): self = .setLogLevel(level)
        case .cacheUse(let name): self = .cacheUse(try constants.cache(name, location))
        }
    }

    /// HAProxy's 401 page with `WWW-Authenticate: Basic realm="REALM"` (the proxy's name without
    /// a realm is filled in by the rule set: `realm` is nil here only for that).
    static func challenge(realm: String?, constants: HTTPRuleConstants) -> HTTPLocalResponse {
        let page = HTTPErrorPages.page(401)!
        let escaped = (realm ?? constants.proxyName).replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"")
        var head = Array(UnsafeRawBufferPointer(start: page.head.utf8Start, count: page.head.utf8CodeUnitCount))
        head += Array("www-authenticate: Basic realm=\"\(escaped)\"\r\n".utf8)
        return HTTPLocalResponse(status: 401, head: constants.bytes(head), body: HTTPRuleBytes.literal(page.body))
    }

    /// `replace-header` and `replace-value` match case-sensitively, as HAProxy.
    static func regex(_ pattern: String, _ location: SourceLocation) throws(ConfigError) -> HTTPRegex {
        do {
            return try HTTPRegex(pattern, ignoreCase: false)
        } catch {
            throw ConfigError(location, "invalid regex '\(pattern)': \(error.message)")
        }
    }
}

/// `http-request return`, compiled.
struct HTTPCompiledReturn {
    enum Body {
        case none
        case format(HTTPCompiledFormat)
        case bytes(UnsafeRawBufferPointer)
        case raw(UnsafeRawBufferPointer)
        /// `default-errorfiles`: the proxy's error answer for the status.
        case errorPage
    }

    let status: Int
    let contentType: UnsafeRawBufferPointer?
    let body: Body
    /// `hdr NAME VALUE`, names lowercase as HAProxy sends them.
    let headers: [(name: UnsafeRawBufferPointer, value: HTTPCompiledFormat)]

    init(status: Int, contentType: String?, body: ResponseBody, headers: [HTTPRequestAction.Header],
         constants: HTTPRuleConstants) {
        self.status = status
        self.contentType = contentType.map { constants.bytes($0) }
        switch body {
        case .none: self.body = .none
        case .string(let f): self.body = .format(HTTPCompiledFormat(f, constants: constants))
        case .file(_, let contents): self.body = .bytes(constants.bytes(contents))
        case .rawMessage(_, let contents): self.body = .raw(constants.bytes(contents))
        // The Loader resolves a section it knows: one left here has no message for the status.
        case .errorPage, .errorFilesSection: self.body = .errorPage
        }
        self.headers = headers.map { (constants.bytes($0.name, lowercased: true), HTTPCompiledFormat($0.value, constants: constants)) }
    }
}

/// `redirect` and `http-request redirect`, compiled.
struct HTTPCompiledRedirect {
    enum Kind {
        case location, prefix, scheme
    }

    let kind: Kind
    let target: HTTPCompiledFormat
    /// `redirect prefix /`: adds nothing before the path (a self-redirection), as HAProxy.
    let prefixIsSlash: Bool
    let code: Int
    let dropQuery: Bool
    let appendSlash: Bool
    /// The whole `Set-Cookie` value (`NAME=VALUE; path=/;` or `NAME=; path=/; Max-Age=0;`).
    let cookie: UnsafeRawBufferPointer?

    init(_ redirect: Redirect, constants: HTTPRuleConstants) {
        let format: FormatString
        switch redirect.kind {
        case .location(let f): kind = .location; format = f
        case .prefix(let f): kind = .prefix; format = f
        case .scheme(let f): kind = .scheme; format = f
        }
        target = HTTPCompiledFormat(format, constants: constants)
        prefixIsSlash = kind == .prefix && format.isLiteral && format.parts == [.literal("/")]
        code = redirect.code
        dropQuery = redirect.dropQuery
        appendSlash = redirect.appendSlash
        if let set = redirect.setCookie {
            cookie = constants.bytes(set + "; path=/;")
        } else if let clear = redirect.clearCookie {
            cookie = constants.bytes(clear + "; path=/; Max-Age=0;")
        } else {
            cookie = nil
        }
    }
}

extension HTTPRuleSet {
    /// Runs the request side for a frontend (see the top of HTTPRuleSet.swift): captures, this
    /// proxy's `http-request`, `redirect` and `use_backend` rules, then the backend's
    /// `http-request` and `redirect` rules. `backend` maps the `use_backend` name (nil: the
    /// default) to its rule set, or nil when there is no such backend (answered with 503).
    /// Starts a new request on `scratch`.
    /// The request's capture slots start empty, laid out as this (frontend's) rule set says.
    func beginCaptures(_ scratch: HTTPRuleScratch) {
        scratch.requestSlots.begin(captureLayout)
        scratch.responseSlots.begin(responseCaptureLayout)
        scratch.cookieSlots.begin(cookieCaptureLayout)
    }

    func processRequest(_ head: borrowing HTTPHead, input: UnsafeRawBufferPointer,
                               connection: HTTPConnectionInfo, scratch: HTTPRuleScratch, begun: Bool = false,
                               backend resolve: (String?) -> HTTPRuleSet?) -> HTTPRequestDecision {
        // `begun`: the session started the request on `scratch` itself, its capture slots too
        // (its `tcp-request content` rules ran on it already).
        if !begun {
            scratch.beginRequest()
            beginCaptures(scratch)
        }
        // A copy the rules may change (`set-src`, `set-dst`): the rules after them see the new value.
        var connection = connection
        return withUnsafePointer(to: head) { head -> HTTPRequestDecision in
            withUnsafeMutablePointer(to: &connection) { connection -> HTTPRequestDecision in
                var ev = HTTPEvaluation(request: HTTPMessageView(input: input, head: head, edits: scratch.request),
                                        response: nil, connection: UnsafePointer(connection), scratch: scratch, frontend: self,
                                        backend: nil)
                capture(ev)
                if let decision = runRequestRules(ev) { return decision }
                if let decision = runRedirectRules(ev) { return decision }
                var chosen: String?
                var resolved: HTTPRuleSet?
                if let index = firstBackendRule(ev) {
                    if dynamicBackends.isEmpty {
                        chosen = backendRules[index].backend
                    } else if let format = dynamicBackends[index] {
                        // HAProxy: a name no backend has is the default backend.
                        if let text = ev.render(format, .raw), !text.isEmpty {
                            let name = String(decoding: text, as: UTF8.self)
                            if let found = resolve(name) {
                                chosen = name
                                resolved = found
                            }
                        }
                    } else {
                        chosen = backendRules[index].backend
                    }
                }
                guard let backend = resolved ?? resolve(chosen) else { return .respond(errorResponse(503)) }
                ev.backend = backend
                if backend !== self {
                    if let decision = backend.runRequestRules(ev) { return decision }
                    if let decision = backend.runRedirectRules(ev) { return decision }
                }
                if backend.cookie?.nocache == true {
                    scratch.requestCacheable = HTTPRuleSet.isCacheable(request: ev.request!)
                }
                // `http-response redirect prefix|scheme` reads the path and Host of the request.
                if keepsRequestTarget || backend.keepsRequestTarget { scratch.keepRequest(ev.request!) }
                // `capture cookie`: the request as the rules left it (HAProxy's order).
                if let name = cookieCapture { captureCookie(name, of: ev.request!, setCookie: false, into: 0, scratch) }
                return .forward(backend: chosen)
            }
        }
    }

    /// The index of the first `use_backend` rule whose condition holds. The rules are read in
    /// place: the backend names are not copied (nor retained) along the way.
    private func firstBackendRule(_ ev: HTTPEvaluation) -> Int? {
        backendRules.withUnsafeBufferPointer { rules -> Int? in
            var i = 0
            while i < rules.count {
                ev.scratch.beginRule()
                if rules[i].condition.evaluate(ev) { return i }
                i &+= 1
            }
            return nil
        }
    }

    /// This proxy's `http-request` rules, in order, until a final one. Nil: go on.
    func runRequestRules(_ ev: HTTPEvaluation) -> HTTPRequestDecision? {
        let request = ev.request!
        for rule in requestRules {
            ev.scratch.beginRule()
            guard rule.condition.evaluate(ev) else { continue }
            switch rule.action {
            case .allow:
                return nil
            case .deny(let status):
                var answer = ev.frontend.errorResponse(status, backend: ev.backend)
                answer.isDenial = true
                return .respond(answer)
            case .useService(let service):
                return .useService(service)
            case .silentDrop:
                return .silentDrop
            case .reject:
                return .reject
            case .waitForBody(let seconds, let atLeast):
                // The session waits once the rules are done (strata's rules read no body).
                ev.scratch.waitForBody = (seconds, atLeast)
            case .normalizeURI(let normalizer):
                // HAProxy answers 400 to what a `strict` normalizer refuses.
                if !ev.normalizeURI(request, normalizer) { return .respond(ev.frontend.errorResponse(400, backend: ev.backend)) }
            case .setLogLevel(let level):
                ev.scratch.logLevel = level
            case .cacheUse(let cache):
                // The lookup happens once the rules have chosen to forward (HTTPSession+Cache.swift).
                let facts = ev.scratch.cache ?? HTTPCacheRequest()
                ev.scratch.cache = facts
                HTTPCachePolicy.prepare(request, cache: cache, byBackend: self !== ev.frontend, into: facts)
            case .capture(let sample, let slot):
                ev.capture(sample, into: ev.scratch.requestSlots, slot: slot)
            case .setMap(let map, let key, let value):
                ev.setMapEntry(map, key, value)
            case .deleteMapEntry(let map, let key):
                ev.deleteMapEntry(map, key)
            case .earlyHint(let name, let value, let closes):
                ev.earlyHint(request, name, value, closes: closes)
            case .tarpit(let status):
                var answer = ev.frontend.errorResponse(status, backend: ev.backend)
                answer.isDenial = true
                return .tarpit(answer)
            case .auth(let challenge):
                return .respond(challenge)
            case .setVariable(let key, let sample):
                ev.setVariable(key, sample)
            case .setVariableFormat(let key, let format):
                ev.setVariable(key, format)
            case .unsetVariable(let key):
                ev.scratch.setVariable(key, nil)
            case .stick(let action):
                ev.perform(action, level: .request)
            case .setAddress(let part, let sample):
                ev.setAddress(part, sample)
            case .returnResponse(let r):
                return .respond(localResponse(r, ev) ?? ev.frontend.errorResponse(500, backend: ev.backend))
            case .redirect(let r):
                return .respond(redirectResponse(r, ev) ?? ev.frontend.errorResponse(500, backend: ev.backend))
            case .setHeader(let name, let value):
                ev.setHeader(request, name, value, replacing: true)
            case .addHeader(let name, let value):
                ev.setHeader(request, name, value, replacing: false)
            case .delHeader(let name):
                ev.deleteHeader(request, name)
            case .replaceHeader(let name, let regex, let replacement, let eachValue):
                ev.replaceHeader(request, name, regex, replacement, eachValue: eachValue)
            case .setPath(let f):
                ev.rewriteTarget(request, .path, f)
            case .setQuery(let f):
                ev.rewriteTarget(request, .query, f)
            case .setURI(let f):
                ev.rewriteTarget(request, .uri, f)
            case .setMethod(let f):
                ev.rewriteMethod(request, f)
            case .replaceTarget(let part, let regex, let replacement):
                ev.replaceTarget(request, part, regex, replacement)
            }
            if request.edits.failed { return .respond(ev.frontend.errorResponse(500, backend: ev.backend)) }
        }
        return nil
    }

    /// The first `redirect` rule that applies, if any.
    func runRedirectRules(_ ev: HTTPEvaluation) -> HTTPRequestDecision? {
        for rule in redirectRules {
            ev.scratch.beginRule()
            guard rule.condition.evaluate(ev) else { continue }
            return .respond(redirectResponse(rule.redirect, ev) ?? ev.frontend.errorResponse(500, backend: ev.backend))
        }
        return nil
    }

    /// `capture request header NAME len N`: the last occurrence's whole value, truncated.
    /// With `tcp-request content capture` rules, their values take their slots among the headers'.
    private func capture(_ ev: HTTPEvaluation) {
        guard !captures.isEmpty, let request = ev.request else { return }
        HTTPRuleSet.capture(captures, of: request, into: ev.scratch.requestSlots)
    }

    /// Each header's last occurrence into its slot (truncated there); a header the message lacks
    /// leaves its slot empty.
    static func capture(_ captures: [(slot: Int, name: UnsafeRawBufferPointer)], of message: HTTPMessageView,
                        into slots: HTTPCaptureSlots) {
        for capture in captures {
            guard let value = message.lastValue(of: capture.name, split: false) else { continue }
            slots.store(capture.slot, value)
        }
    }

    /// `capture cookie NAME len N`: the first cookie of the request's `Cookie` fields (`setCookie`
    /// false) or the first of the answer's `Set-Cookie` fields (one cookie each) whose
    /// `name=value` starts with NAME, as `name=value` (blanks around `=` dropped), into cookie
    /// slot `slot`, as HAProxy captures it.
    func captureCookie(_ name: UnsafeRawBufferPointer, of message: HTTPMessageView, setCookie: Bool, into slot: Int,
                       _ scratch: HTTPRuleScratch) {
        guard scratch.cookieSlots.value(slot) == nil else { return }
        let field = setCookie ? HTTPRuleBytes.literal("set-cookie") : HTTPRuleBytes.literal("cookie")
        _ = message.forEachValue(of: field, split: false) { value in
            var p = 0
            while p < value.count {
                let (item, next) = HTTPCookieItem.parse(value, from: p)
                p = setCookie ? value.count : next
                guard let item, item.item.count >= name.count,
                      HTTPRuleBytes.slice(value, item.item.lowerBound..<item.item.lowerBound + name.count).elementsEqual(name)
                else { continue }
                let out = scratch.text
                let mark = out.count
                out.append(HTTPRuleBytes.slice(value, item.name))
                out.append(byte: 0x3D)
                out.append(HTTPRuleBytes.slice(value, item.value))
                scratch.cookieSlots.store(slot, out.bytes(from: mark))
                out.rewind(to: mark)
                return false
            }
            return true
        }
    }

    /// A captured value as `%hr` prints it: `"#{|}` and non-printable bytes written `#XX`.
    static func appendCaptured(_ value: UnsafeRawBufferPointer, _ append: (UInt8) -> Void) {
        for b in value {
            if b < 0x20 || b >= 0x7F || b == 0x22 || b == 0x23 || b == 0x7B || b == 0x7C || b == 0x7D {
                append(0x23)
                append(HTTPRules.hexDigit(b >> 4))
                append(HTTPRules.hexDigit(b & 0xF))
            } else {
                append(b)
            }
        }
    }

    /// HAProxy's request side of cacheability (for `cookie … nocache`): a safe method, no
    /// Authorization, no `Cache-Control: no-store`.
    static func isCacheable(request: HTTPMessageView) -> Bool {
        switch request.head.pointee.method {
        case .get, .head, .options, .trace: break
        default: return false
        }
        if request.edits.method != nil {
            let m = request.method
            guard HTTPRuleBytes.equals(m, HTTPRuleBytes.literal("GET"))
                || HTTPRuleBytes.equals(m, HTTPRuleBytes.literal("HEAD")) else { return false }
        }
        if request.hasField(HTTPRuleBytes.literal("authorization")) { return false }
        let noStore = !request.forEachValue(of: HTTPRuleBytes.literal("cache-control"), split: true) { value in
            !HTTPRuleBytes.hasPrefix(value, HTTPRuleBytes.literal("no-store"), ignoreCase: true)
        }
        return !noStore
    }

    // MARK: Local responses

    /// `http-request return`, `http-response return`.
    func localResponse(_ r: HTTPCompiledReturn, _ ev: HTTPEvaluation) -> HTTPLocalResponse? {
        if case .raw(let message) = r.body { return .raw(status: r.status, message) }
        if case .errorPage = r.body { return ev.frontend.errorResponse(r.status, backend: ev.backend) }
        let out = ev.scratch.reply
        out.reset()
        out.append("HTTP/1.1 ")
        out.appendDecimal(r.status)
        out.append(byte: HTTPByte.space)
        out.append(HTTPRuleBytes.literal(HTTPErrorPages.reason(r.status)))
        out.append("\r\n")
        for header in r.headers {
            guard let value = ev.render(header.value, .fieldValue), !value.isEmpty else { continue }
            out.append(header.name)
            out.append(": ")
            out.append(value)
            out.append("\r\n")
        }
        var body = HTTPRuleBytes.empty
        switch r.body {
        case .none, .raw, .errorPage: break
        case .bytes(let bytes): body = bytes
        case .format(let f):
            guard let text = ev.render(f, .raw) else { return nil }
            body = text
        }
        out.append("content-length: ")
        out.appendDecimal(body.count)
        out.append("\r\n")
        if !body.isEmpty, let type = r.contentType {
            out.append("content-type: ")
            out.append(type)
            out.append("\r\n")
        }
        let headEnd = out.count
        if case .format = r.body { out.append(body) }
        guard !out.overflowed else { return nil }
        let head = out.bytes(0..<headEnd)
        if case .format = r.body { body = out.bytes(headEnd..<out.count) }
        return HTTPLocalResponse(status: r.status, head: head, body: body)
    }

    /// `redirect` / `http-request redirect`: the Location built as HAProxy builds it.
    func redirectResponse(_ r: HTTPCompiledRedirect, _ ev: HTTPEvaluation) -> HTTPLocalResponse? {
        // A response rule's redirect reads the request as the scratch kept it.
        let requestTarget: UnsafeRawBufferPointer
        let requestHost: UnsafeRawBufferPointer?
        if let request = ev.request {
            requestTarget = request.target
            requestHost = r.kind == .scheme ? request.firstValue(of: HTTPRuleBytes.literal("host"), split: true) : nil
        } else if r.kind == .location {
            requestTarget = HTTPRuleBytes.empty
            requestHost = nil
        } else {
            guard let kept = ev.scratch.keptRequest else { return nil }
            (requestTarget, requestHost) = kept
        }
        let out = ev.scratch.reply
        out.reset()
        let code: Int
        switch r.code {
        case 301: out.append("HTTP/1.1 301 Moved Permanently\r\n"); code = 301
        case 303: out.append("HTTP/1.1 303 See Other\r\n"); code = 303
        case 307: out.append("HTTP/1.1 307 Temporary Redirect\r\n"); code = 307
        case 308: out.append("HTTP/1.1 308 Permanent Redirect\r\n"); code = 308
        default: out.append("HTTP/1.1 302 Found\r\n"); code = 302
        }
        out.append("content-length: 0\r\nlocation: ")
        let locationStart = out.count
        switch r.kind {
        case .location:
            guard let text = ev.render(r.target, .fieldValue) else { return nil }
            out.append(text)
        case .prefix, .scheme:
            if r.kind == .scheme {
                guard let scheme = ev.render(r.target, .fieldValue) else { return nil }
                out.append(scheme)
                out.append("://")
                if let host = requestHost { out.append(host) }
            } else if !r.prefixIsSlash {
                guard let prefix = ev.render(r.target, .fieldValue) else { return nil }
                out.append(prefix)
            }
            let target = requestTarget
            let parts = HTTPTargetParts(target)
            if let range = parts.pathAndQuery {
                var path = HTTPRuleBytes.slice(target, range)
                if r.dropQuery, let q = HTTPRuleBytes.firstIndex(of: HTTPByte.questionMark, in: path) {
                    path = HTTPRuleBytes.slice(path, 0..<q)
                }
                out.append(path)
            } else {
                out.append(byte: HTTPByte.slash)
            }
            if r.appendSlash, out.count > locationStart,
               out.bytes((out.count - 1)..<out.count)[0] != HTTPByte.slash {
                out.append(byte: HTTPByte.slash)
            }
        }
        out.append("\r\n")
        if code == 302 || code == 303 || code == 307 { out.append("cache-control: no-cache\r\n") }
        if let cookie = r.cookie {
            out.append("set-cookie: ")
            out.append(cookie)
            out.append("\r\n")
        }
        guard !out.overflowed else { return nil }
        return HTTPLocalResponse(status: code, head: out.bytes(from: 0), body: HTTPRuleBytes.empty)
    }
}
