/// An incremental, allocation-free HTTP/1.1 response parser for the proxy's server side.
/// Same contract and strictness as `HTTPRequestParser`; every error maps to 502.
///
/// A response's framing depends on the request it answers (RFC 9112 §6.3), so `parse` takes that
/// request's method:
/// - HEAD, and 1xx, 204, 304: no body, whatever Content-Length or Transfer-Encoding say.
/// - 101, and 2xx to CONNECT: `.tunnel`; everything after the head is body until the connection closes.
/// - Transfer-Encoding with `chunked` last: chunked; with another coding last: until close.
/// - Content-Length: that many bytes (both Content-Length and Transfer-Encoding: rejected, as nginx does).
/// - Otherwise until close (`inputEnded()` completes it).
///
/// Interim responses (1xx but 101): `.headersComplete` with `head.isInformational`, then
/// `.messageComplete`; forward them and keep calling with the same request method for the final
/// response. Pipelined responses follow each other like pipelined requests.
///
/// Leniency: a status line without the space after the code (`HTTP/1.1 200`) is accepted; status codes
/// must be 100...599. Strictness: Transfer-Encoding in an HTTP/1.0 response is rejected (RFC 9112 §6.1
/// calls its framing faulty).
public struct HTTPResponseParser: Sendable {
    private var core: HTTPMessageParser

    public init(limits: HTTPParserLimits = .default) {
        core = HTTPMessageParser(isRequest: false, limits: limits)
    }

    /// The limits this parser enforces.
    public var limits: HTTPParserLimits { core.headParser.limits }

    /// The head of the current response: valid from `.headersComplete` until the next call after
    /// `.messageComplete`. Its ranges point into the input of the call that completed it.
    public var head: HTTPHead { _read { yield core.headParser.head } }

    /// The trailer fields of the chunked response just completed.
    public var trailerFields: [HTTPField] { _read { yield core.bodyParser.trailerFields } }
    /// The trailer field lines, CRLFs included (see `HTTPRequestParser.trailerSection`).
    public var trailerSection: Range<Int> { core.bodyParser.trailerSection }

    /// Payload bytes still expected before the next framing element, or nil outside counted payload.
    public var remainingBodyLength: UInt64? {
        guard case .body = core.state else { return nil }
        return core.bodyParser.remaining
    }

    /// Whether the parser is between responses, with nothing of the next one seen.
    public var isIdle: Bool { core.isIdle }

    /// Parses what it can at the start of `input`, a response to a `requestMethod` request.
    public mutating func parse(_ input: UnsafeRawBufferPointer, requestMethod: HTTPMethod) -> HTTPParseAction {
        core.parse(input, requestMethod: requestMethod)
    }

    /// Starts afresh, failed or not: a new server connection's bytes begin a new response. (An
    /// invalid answer fails the parser for good; without this every later exchange of the client
    /// connection would be refused too.)
    public mutating func reset() {
        core.reset()
    }

    /// Accounts for `count` payload bytes forwarded without passing them to `parse` (spliced).
    public mutating func skipBody(_ count: Int) {
        core.skipBody(count)
    }

    /// The server closed its side. Returns nil between responses (the proxy decides whether a response
    /// was owed), `.messageComplete` for a body delimited by the close or a tunnel, and
    /// `.error(incompleteMessage)` inside a response.
    public mutating func inputEnded() -> HTTPParseAction? {
        core.inputEnded()
    }
}
