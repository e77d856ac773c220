/// A request method. The methods whose semantics the proxy needs are named; any other token is
/// `.other` (read its bytes from `HTTPHead.methodRange`). Methods are case-sensitive (RFC 9110 §9.1):
/// `get` is `.other`.
public enum HTTPMethod: UInt8, Hashable, Sendable {
    case get, head, post, put, delete, connect, options, trace, patch, other

    /// RFC 9110 §9.2.2: sending the request again has the effect of sending it once, so a proxy
    /// may retry it when the connection failed before an answer.
    public var isIdempotent: Bool {
        switch self {
        case .get, .head, .put, .delete, .options, .trace: true
        case .post, .connect, .patch, .other: false
        }
    }

    /// Names the method in `input[range]` (already known to be a token).
    @inline(__always)
    static func identify(_ input: UnsafeRawBufferPointer, _ range: Range<Int>) -> HTTPMethod {
        switch range.count {
        case 3:
            if input.httpEquals(range, "GET") { return .get }
            if input.httpEquals(range, "PUT") { return .put }
        case 4:
            if input.httpEquals(range, "POST") { return .post }
            if input.httpEquals(range, "HEAD") { return .head }
        case 5:
            if input.httpEquals(range, "PATCH") { return .patch }
            if input.httpEquals(range, "TRACE") { return .trace }
        case 6:
            if input.httpEquals(range, "DELETE") { return .delete }
        case 7:
            if input.httpEquals(range, "OPTIONS") { return .options }
            if input.httpEquals(range, "CONNECT") { return .connect }
        default:
            break
        }
        return .other
    }
}
