/// The state machine both parsers share: head, then body, then the next message.
package struct HTTPMessageParser {
    enum State {
        /// Between messages; the previous head stays readable until the next parse.
        case idle
        case head
        case body
        case failed(HTTPParseError)
    }

    private(set) var state: State = .idle
    private(set) var headParser: HTTPHeadParser
    private(set) var bodyParser: HTTPBodyParser

    init(isRequest: Bool, limits: HTTPParserLimits) {
        headParser = HTTPHeadParser(isRequest: isRequest, limits: limits)
        bodyParser = HTTPBodyParser(isRequest: isRequest, limits: limits)
    }

    var isIdle: Bool {
        switch state {
        case .idle: return true
        case .head: return !headParser.hasPartialMessage
        default: return false
        }
    }

    mutating func parse(_ input: UnsafeRawBufferPointer, requestMethod: HTTPMethod) -> HTTPParseAction {
        switch state {
        case .idle:
            headParser.reset()
            state = .head
            fallthrough
        case .head:
            switch headParser.parse(input, requestMethod: requestMethod) {
            case .needMore:
                return .needMore
            case .error(let error):
                state = .failed(error)
                return .error(error)
            case .complete(let headLength):
                bodyParser.start(headParser.head.framing)
                state = .body
                return .headersComplete(headLength: headLength)
            }
        case .body:
            let action = bodyParser.parse(input)
            switch action {
            case .messageComplete: state = .idle
            case .error(let error): state = .failed(error)
            default: break
            }
            return action
        case .failed(let error):
            return .error(error)
        }
    }

    /// Forgets the message in progress, and a failure: the next bytes start a new message (a
    /// response parser meets a new server connection).
    mutating func reset() {
        state = .idle
    }

    mutating func skipBody(_ count: Int) {
        guard case .body = state else { preconditionFailure("skipBody outside a body") }
        bodyParser.skip(count)
    }

    mutating func enterTunnel() {
        switch state {
        case .idle, .body:
            bodyParser.startTunnel()
            state = .body
        case .head:
            precondition(!headParser.hasPartialMessage, "enterTunnel inside a head")
            bodyParser.startTunnel()
            state = .body
        case .failed:
            break
        }
    }

    mutating func inputEnded() -> HTTPParseAction? {
        switch state {
        case .idle:
            return nil
        case .head:
            guard headParser.hasPartialMessage else { return nil }
            let error = HTTPParseError(.incompleteMessage, inResponse: !headParser.head.isRequest)
            state = .failed(error)
            return .error(error)
        case .body:
            switch bodyParser.state {
            case .untilClose, .done, .contentLength(0):
                state = .idle
                return .messageComplete(framingLength: 0)
            default:
                let error = HTTPParseError(.incompleteMessage, inResponse: !headParser.head.isRequest)
                state = .failed(error)
                return .error(error)
            }
        case .failed(let error):
            return .error(error)
        }
    }
}
