/// What a parser found in the bytes it was given, and how many of them it consumed.
///
/// The contract with the caller (the I/O layer):
/// - The caller passes the bytes it holds that no earlier action consumed, starting with the oldest.
/// - Every action except `.needMore` and `.error` consumes a prefix of the input, `consumed` bytes
///   long; the caller drops them (after forwarding them, or not) and calls `parse` again with what is
///   left, even when nothing is left: a message that ends exactly at the end of the input reports
///   `.messageComplete` on the next call. Call `parse` until it answers `.needMore` or `.error`.
/// - `.needMore` consumes nothing: the caller reads more and presents the same bytes again with the
///   new ones appended. A head (or a chunk line, or a trailer section) therefore has to fit in the
///   caller's buffer, which is what the limits enforce. The parser remembers how far it scanned, so
///   bytes are examined once however they are split.
/// - Ranges are offsets into the input of the call that returned the action.
public enum HTTPParseAction: Hashable, Sendable {
    /// Nothing consumed; present the same bytes again with more appended.
    case needMore
    /// The head is complete and described by the parser's `head`, whose ranges point into
    /// `input[0..<headLength]` (which may start with empty lines a client sent before the request line).
    case headersComplete(headLength: Int)
    /// Payload bytes (de-chunked): `input[range]`, where `range.lowerBound` is always 0. Forward them
    /// as they are; nothing was copied.
    case body(Range<Int>)
    /// A chunk-size line (with its extensions) announcing `size` bytes of chunk data, never 0:
    /// `input[0..<lineLength]`. Pass it through, or drop it and write your own framing.
    case chunkHeader(size: UInt64, lineLength: Int)
    /// The CRLF that ends a chunk's data: `input[0..<2]`.
    case chunkDataEnd
    /// The message ended. `framingLength` bytes are consumed: 0 for a message framed by
    /// Content-Length, with no body or ended by the connection's close; for a chunked body the last
    /// chunk, the trailer section (validated; see the parser's `trailerFields` and `trailerSection`,
    /// ranges into this same input) and the final CRLF. The parser is then ready for the next message.
    case messageComplete(framingLength: Int)
    /// The message is invalid; the parser stays failed and answers the same error from now on.
    case error(HTTPParseError)

    /// How many input bytes the action consumed.
    @inline(__always)
    public var consumed: Int {
        switch self {
        case .needMore, .error: return 0
        case .headersComplete(let length): return length
        case .body(let range): return range.upperBound
        case .chunkHeader(_, let length): return length
        case .chunkDataEnd: return 2
        case .messageComplete(let length): return length
        }
    }
}
