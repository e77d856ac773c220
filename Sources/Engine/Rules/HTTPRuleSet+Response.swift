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
                let backend = backend ?? self
                if let decision = backend.runResponseRules(ev) { return decision }
                if backend !== self, let decision = runResponseRules(ev) { return decision }
                scratch.beginRule()
                backend.manageServerCookies(ev, server: server)
                if scratch.response.failed { return .respond(errorResponse(500, backend: backend)) }
                return .forward
            }
        }
    }

    func runResponseRules(_ ev: HTTPEvaluation) -> HTTPResponseDecision? {
        let response = ev.response!
        for rule in responseRules {
            ev.scratch.beginRule()
            guard rule.condition.evaluate(ev) else { continue }
            switch rule.action {
            case .allow:
                return nil
            case .silentDrop:
                return .silentDrop
            case .returnResponse(let r):
                return .respond(localResponse(r, ev) ?? ev.frontend.errorResponse(500, backend: ev.backend))
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
