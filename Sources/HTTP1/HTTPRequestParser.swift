/// An incremental, allocation-free HTTP/1.1 request parser (RFC 9112, RFC 9110), for the proxy's
/// client side. A plain value: `parse` returns what it found and the I/O layer acts on it.
///
///     var parser = HTTPRequestParser(limits: limits)
///     loop: while true {
///         let action = buffer.withReadableBytes { parser.parse($0) }
///         switch action {
///         case .needMore: break loop                       // read more, call again
///         case .headersComplete: route(parser.head)        // then write the head to the server
///         case .body(let range): forward(range)            // zero-copy
///         case .chunkHeader, .chunkDataEnd: forwardFraming()
///         case .messageComplete: finishRequest()           // pipelined bytes follow
///         case .error(let error): answer(error.status); close()
///         }
///         buffer.consume(action.consumed)
///     }
///
/// See `HTTPParseAction` for the consumption contract.
///
/// Strictness, where the RFCs leave a choice:
/// - Bare LF line endings are rejected (`bareLF`), in the head, chunk lines and trailers. RFC 9112
///   §2.2 allows accepting them, but a proxy that accepts what its server rejects (or the reverse) is
///   how requests get smuggled; every real client sends CRLF.
/// - Empty lines before the request line are skipped (RFC 9112 §2.2) and count toward the head size.
/// - A request line that does not end within `maxHeadSize` is 414; a head that does not end there,
///   or that has more than `maxFieldCount` field lines, is 431 (RFC 6585 says what went wrong; HAProxy
///   answers 400).
/// - Only HTTP/1.0 and HTTP/1.1 are parsed; any other well-formed version (`HTTP/2.0`, `HTTP/0.9`)
///   is 505, a malformed one 400.
/// - Content-Length and Transfer-Encoding together are rejected, not resolved in favour of
///   Transfer-Encoding (RFC 9112 §6.3 allows either; rejecting is the only safe choice for a proxy).
/// - Request targets: see `HTTPRequestTarget` (printable ASCII except `#`; RFC 3986 authority).
/// - `Connection` elements that are not tokens are ignored; empty list elements are ignored
///   everywhere except Content-Length, where `5,` is invalid.
/// - Trailers are validated like fields and may not carry Content-Length, Transfer-Encoding or Host.
///
/// After an Upgrade or CONNECT request completes, the bytes that follow belong to the tunnel if the
/// server accepts: stop parsing until the response says, then call `enterTunnel()` (or parse the next
/// request if it refused).
public struct HTTPRequestParser: Sendable {
    private var core: HTTPMessageParser

    public init(limits: HTTPParserLimits = .default) {
        core = HTTPMessageParser(isRequest: true, limits: limits)
    }

    /// The limits this parser enforces.
    public var limits: HTTPParserLimits { core.headParser.limits }

    /// The head of the current message: valid from `.headersComplete` until the next call after
    /// `.messageComplete`. Its ranges point into the input of the call that completed it.
    public var head: HTTPHead { _read { yield core.headParser.head } }

    /// The trailer fields of the chunked message just completed (ranges into the input of the call
    /// that returned `.messageComplete`).
    public var trailerFields: [HTTPField] { _read { yield core.bodyParser.trailerFields } }
    /// The trailer field lines, CRLFs included, without the last chunk's line and the final CRLF: what
    /// to write between `0\r\n` and `\r\n` when re-chunking.
    public var trailerSection: Range<Int> { core.bodyParser.trailerSection }

    /// Payload bytes still expected before the next framing element (the rest of a Content-Length
    /// body or of a chunk's data), or nil outside counted payload. What the proxy may splice.
    public var remainingBodyLength: UInt64? {
        guard case .body = core.state else { return nil }
        return core.bodyParser.remaining
    }

    /// Whether the parser is between messages, with nothing of the next one seen.
    public var isIdle: Bool { core.isIdle }

    /// Parses what it can at the start of `input`; see `HTTPParseAction`.
    public mutating func parse(_ input: UnsafeRawBufferPointer) -> HTTPParseAction {
        core.parse(input, requestMethod: .get)
    }

    /// Accounts for `count` payload bytes the caller forwarded without passing them to `parse`
    /// (spliced). At most `remainingBodyLength` (any count in a tunnel).
    public mutating func skipBody(_ count: Int) {
        core.skipBody(count)
    }

    /// Every further byte is tunnel data, reported as `.body` until the connection ends: call after a
    /// CONNECT request got a 2xx, or an Upgrade request a 101.
    public mutating func enterTunnel() {
        core.enterTunnel()
    }

    /// The client closed its side. Returns nil between messages (a clean end), `.messageComplete` for a
    /// tunnel, and `.error(incompleteMessage)` inside a message.
    public mutating func inputEnded() -> HTTPParseAction? {
        core.inputEnded()
    }
}
