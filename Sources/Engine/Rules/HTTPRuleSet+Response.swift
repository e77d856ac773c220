import HTTP1
import ConfigModel

struct HTTPCompiledResponseRule {
    let action: HTTPCompiledResponseAction
    let condition: HTTPCompiledCondition?
}

enum HTTPCompiledResponseAction {
    case setHeader(HTTPCompiledFieldName, HTTPCompiledFormat)
    case addHeader(HTTPCompiledFieldName, HTTPCompiledFormat)
    case delHeader(HTTPCompiledFieldName)
    case replaceHeader(HTTPCompiledFieldName, HTTPRegex, HTTPCompiledFormat, eachValue: Bool)
    case setStatus(Int, reason: UnsafeRawBufferPointer?)
    case deny(status: Int)
    case allow
    case setVariable(HTTPVariableKey, HTTPCompiledSample)
    case setVariableFormat(HTTPVariableKey, HTTPCompiledFormat)
    case unsetVariable(HTTPVariableKey)
    case returnResponse(HTTPCompiledReturn)
    case silentDrop
    case setLogLevel(Int)
    case cacheStore(HTTPCache)
    /// `capture SAMPLE id N`: into the frontend's response slot.
    case capture(HTTPCompiledSample, slot: Int)
    case setMap(SharedMap, key: HTTPCompiledFormat, value: HTTPCompiledFormat)
    case deleteMapEntry(SharedMap, key: HTTPCompiledFormat)
    case redirect(HTTPCompiledRedirect)

    init(_ action: HTTPResponseAction, location: SourceLocation, constants: HTTPRuleConstants) throws(ConfigError) {
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
        case .setStatus(let status, let reason): self = .setStatus(status, reason: reason.map { constants.bytes($0) })
        case .deny(let status): self = .deny(status: status)
        case .allow: self = .allow
        case .setVariable(let name, let value): self = .setVariable(HTTPVariableKey(name), HTTPCompiledSample(value, constants: constants))
        case .setVariableFormat(let name, let value): self = .setVariableFormat(HTTPVariableKey(name), format(value))
        case .unsetVariable(let name): self = .unsetVariable(HTTPVariableKey(name))
        case .returnResponse(let status, let contentType, let body, let headers):
            self = .returnResponse(HTTPCompiledReturn(status: status, contentType: contentType, body: body,
                                                      headers: headers, constants: constants))
        case .silentDrop: self = .silentDrop
        case .setLogLevel(let level): self = .setLogLevel(level)
        case .cacheStore(let name): self = .cacheStore(try constants.cache(name, location))
        case .capture(let sample, let slot): self = .capture(HTTPCompiledSample(sample, constants: constants), slot: slot)
        case .setMap(let file, let key, let value):
            self = .setMap(try constants.map(file, location), key: format(key), value: format(value))
        case .deleteMapEntry(let file, let key):
            self = .deleteMapEntry(try constants.map(file, location), key: format(key))
        case .redirect(let r): self = .redirect(HTTPCompiledRedirect(r, constants: constants))
        }
    }
}

extension HTTPRuleSet {
    /// Runs the response side (call it on the frontend's rule set): the backend's then the
    /// frontend's `http-response` rules (once for a `listen`), then the backend's cookie
    /// persistence. `server`: the index in the backend's `servers` of the server that answered.
    /// Interim (1xx) responses are not processed: forward them as they are.
    func processResponse(_ head: borrowing HTTPHead, input: UnsafeRawBufferPointer,
                                connection: HTTPConnectionInfo, scratch: HTTPRuleScratch,
                                backend: HTTPRuleSet?, server: Int?) -> HTTPResponseDecision {
        scratch.beginResponse()
        return withUnsafePointer(to: head) { head -> HTTPResponseDecision in
            withUnsafePointer(to: connection) { connection -> HTTPResponseDecision in
                if head.pointee.isInformational { return .forward }
                let ev = HTTPEvaluation(request: nil, response: HTTPMessageView(input: input, head: head, edits: scratch.response),
                                        connection: connection, scratch: scratch, frontend: self, backend: backend)
                // `capture response header`: the server's answer as it came, before the rules.
                if scratch.responseSlots.count > 0, let response = ev.response {
                    scratch.responseSlots.clear()
                    HTTPRuleSet.capture(responseCaptures, of: response, into: scratch.responseSlots)
                }
                let backend = backend ?? self
                if let decision = backend.runResponseRules(ev) { return decision }
                if backend !== self, let decision = runResponseRules(ev) { return decision }
                if let facts = scratch.cache, let cache = facts.storeIn, let response = ev.response {
                    facts.plan = HTTPCachePolicy.storePlan(response, request: facts, cache: cache,
                                                           contentLength: head.pointee.contentLength, now: HTTPCachePolicy.wallSeconds())
                    if facts.plan != nil {
                        if let stored = HTTPCachePolicy.storedHead(response, capacity: scratch.reply.capacity,
                                                                   limit: cache.section.maxObjectSize) {
                            facts.head = stored.head
                            facts.etag = stored.etag
                        } else {
                            facts.plan = nil
                        }
                    }
                }
                scratch.beginRule()
                // `capture cookie`: the server's Set-Cookie after the rules, before persistence's own.
                if let name = cookieCapture, let response = ev.response {
                    captureCookie(name, of: response, setCookie: true, into: 1, scratch)
                }
                backend.manageServerCookies(ev, server: server)
                if scratch.response.failed { return .respond(errorResponse(500, backend: backend)) }
                // `http-after-response`: the backend's, then the frontend's.
                _ = backend.runResponseRules(ev, backend.afterResponseRules)
                if backend !== self { _ = runResponseRules(ev, afterResponseRules) }
                if scratch.response.failed { return .respond(errorResponse(500, backend: backend)) }
                return .forward
            }
        }
    }

    /// Whether a proxy (or its backend) has `http-after-response` rules for strata's own answers.
    func hasAfterResponseRules(backend: HTTPRuleSet?) -> Bool {
        !afterResponseRules.isEmpty || backend?.afterResponseRules.isEmpty == false
    }

    /// `http-after-response` on an answer strata makes itself (an error, a deny, a return, a
    /// redirect, a raw errorfile): its head is parsed, the backend's then this proxy's rules run
    /// on it, and the rewritten head is written to `scratch.afterReply` (valid until the next
    /// answer). The answer unchanged when a rewrite does not fit or the head does not parse.
    func afterResponse(_ answer: HTTPLocalResponse, connection: HTTPConnectionInfo, scratch: HTTPRuleScratch,
                       backend: HTTPRuleSet?) -> HTTPLocalResponse {
        let input = scratch.afterInput
        input.reset()
        var body = answer.body
        if answer.isRawMessage {
            // The raw message's head, up to its empty line; its body follows.
            guard let end = HTTPRuleSet.endOfHead(answer.body) else { return answer }
            input.append(HTTPRuleBytes.slice(answer.body, 0..<end))
            body = HTTPRuleBytes.slice(answer.body, end..<answer.body.count)
        } else {
            input.append(answer.head)
            input.append("\r\n")
        }
        guard !input.overflowed else { return answer }
        let bytes = input.bytes(from: 0)
        var parser = HTTPResponseParser()
        guard case .headersComplete = parser.parse(bytes, requestMethod: .get) else { return answer }
        scratch.beginResponse()
        let edits = scratch.response
        let status = withUnsafePointer(to: parser.head) { head -> Int? in
            withUnsafePointer(to: connection) { connection -> Int? in
                let ev = HTTPEvaluation(request: nil, response: HTTPMessageView(input: bytes, head: head, edits: edits),
                                        connection: connection, scratch: scratch, frontend: self, backend: backend)
                if let backend, backend !== self { _ = backend.runResponseRules(ev, backend.afterResponseRules) }
                _ = runResponseRules(ev, afterResponseRules)
                guard !edits.failed else { return nil }
                return edits.status ?? head.pointee.status
            }
        }
        guard let status else { return answer }
        let out = scratch.afterReply
        out.reset()
        let space = out.remaining()
        var writer = HTTPHeadWriter(into: space)
        withUnsafePointer(to: parser.head) { head in
            let response = HTTPMessageView(input: bytes, head: head, edits: edits)
            if let s = edits.status {
                writer.write("HTTP/1.1 ")
                writer.writeDecimal(UInt64(max(s, 0)))
                writer.write(byte: HTTPByte.space)
                if let reason = edits.reason {
                    writer.write(edits.resolve(reason, bytes))
                } else {
                    writer.write(HTTPErrorPages.reason(s))
                }
                writer.write("\r\n")
            } else {
                writer.writeStartLine(head.pointee, from: bytes)
            }
            // The connection's fields are the session's to write (writeHead).
            HTTPRuleSet.writeFields(&writer, response, upgrade: false)
        }
        guard !writer.overflowed else { return answer }
        out.commit(writer.count)
        var rewritten = HTTPLocalResponse(status: status, head: out.bytes(from: 0), body: body,
                                          closesConnection: answer.closesConnection)
        rewritten.isDenial = answer.isDenial
        return rewritten
    }

    /// The length of a raw message's head, its empty line included (CRLF CRLF or LF LF).
    static func endOfHead(_ b: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        while i < b.count {
            if b[i] == 0x0A {
                if i + 1 < b.count, b[i + 1] == 0x0A { return i + 2 }
                if i + 2 < b.count, b[i + 1] == 0x0D, b[i + 2] == 0x0A { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    func runResponseRules(_ ev: HTTPEvaluation) -> HTTPResponseDecision? {
        runResponseRules(ev, responseRules)
    }

    func runResponseRules(_ ev: HTTPEvaluation, _ rules: [HTTPCompiledResponseRule]) -> HTTPResponseDecision? {
        let response = ev.response!
        for rule in rules {
            ev.scratch.beginRule()
            guard rule.condition.evaluate(ev) else { continue }
            switch rule.action {
            case .allow:
                return nil
            case .silentDrop:
                return .silentDrop
            case .setLogLevel(let level):
                ev.scratch.logLevel = level
            case .cacheStore(let cache):
                // Decided once the rules are done (`HTTPRuleSet.processResponse`).
                if let facts = ev.scratch.cache, facts.storeIn == nil { facts.storeIn = cache }
            case .capture(let sample, let slot):
                ev.capture(sample, into: ev.scratch.responseSlots, slot: slot)
            case .setMap(let map, let key, let value):
                ev.setMapEntry(map, key, value)
            case .deleteMapEntry(let map, let key):
                ev.deleteMapEntry(map, key)
            case .returnResponse(let r):
                return .respond(localResponse(r, ev) ?? ev.frontend.errorResponse(500, backend: ev.backend))
            case .redirect(let r):
                return .respond(redirectResponse(r, ev) ?? ev.frontend.errorResponse(500, backend: ev.backend))
            case .deny(let status):
                var answer = ev.frontend.errorResponse(status, backend: ev.backend)
                answer.isDenial = true
                return .respond(answer)
            case .setHeader(let name, let value):
                ev.setHeader(response, name, value, replacing: true)
            case .addHeader(let name, let value):
                ev.setHeader(response, name, value, replacing: false)
            case .delHeader(let name):
                ev.deleteHeader(response, name)
            case .replaceHeader(let name, let regex, let replacement, let eachValue):
                ev.replaceHeader(response, name, regex, replacement, eachValue: eachValue)
            case .setStatus(let status, let reason):
                response.edits.status = status
                response.edits.reason = reason.flatMap { response.edits.store($0) }
            case .setVariable(let key, let sample):
                ev.setVariable(key, sample)
            case .setVariableFormat(let key, let format):
                ev.setVariable(key, format)
            case .unsetVariable(let key):
                ev.scratch.setVariable(key, nil)
            }
            if response.edits.failed { return .respond(ev.frontend.errorResponse(500, backend: ev.backend)) }
        }
        return nil
    }
}
