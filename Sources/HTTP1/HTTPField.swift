/// One field line of a head or a trailer section, as offsets into the input it was parsed from.
/// The value is trimmed of leading and trailing whitespace. 20 bytes, no references.
public struct HTTPField: Hashable, Sendable {
    var nameStart: UInt32
    package var nameCount: UInt32
    var valueStart: UInt32
    var valueCount: UInt32
    /// The field's name when it is one the proxy interprets or removes.
    public var knownName: HTTPFieldName

    init(name: Range<Int>, value: Range<Int>, knownName: HTTPFieldName) {
        nameStart = UInt32(truncatingIfNeeded: name.lowerBound)
        nameCount = UInt32(truncatingIfNeeded: name.count)
        valueStart = UInt32(truncatingIfNeeded: value.lowerBound)
        valueCount = UInt32(truncatingIfNeeded: value.count)
        self.knownName = knownName
    }

    /// The name's bytes in the input.
    @inline(__always)
    public var name: Range<Int> { Int(nameStart)..<Int(nameStart) + Int(nameCount) }
    /// The value's bytes in the input (without the whitespace around it; may be empty).
    @inline(__always)
    public var value: Range<Int> { Int(valueStart)..<Int(valueStart) + Int(valueCount) }
}

/// Field names the parser recognises (case-insensitively) while parsing, so that nothing has to
/// compare names again to interpret or remove them.
public enum HTTPFieldName: UInt8, Hashable, Sendable {
    case other
    case host
    case contentLength
    case transferEncoding
    case connection
    case upgrade
    case expect
    case keepAlive
    case proxyConnection
    case te
    case trailer

    /// Whether RFC 9110 §7.6.1 has an intermediary remove this field before forwarding, whatever
    /// `Connection` lists: Connection, Keep-Alive, Proxy-Connection, TE, Upgrade. (Transfer-Encoding is
    /// also hop-by-hop, but a proxy that passes chunked framing through keeps it; see `HTTPHeadWriter`.)
    public var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .te, .upgrade: return true
        default: return false
        }
    }

    /// Names the field in `input[range]` (already known to be a token).
    @inline(__always)
    package static func identify(_ input: UnsafeRawBufferPointer, _ range: Range<Int>) -> HTTPFieldName {
        switch range.count {
        case 2:
            if input.httpEqualsLowercase(range, "te") { return .te }
        case 4:
            if input.httpEqualsLowercase(range, "host") { return .host }
        case 6:
            if input.httpEqualsLowercase(range, "expect") { return .expect }
        case 7:
            if input.httpEqualsLowercase(range, "upgrade") { return .upgrade }
            if input.httpEqualsLowercase(range, "trailer") { return .trailer }
        case 10:
            if input.httpEqualsLowercase(range, "connection") { return .connection }
            if input.httpEqualsLowercase(range, "keep-alive") { return .keepAlive }
        case 14:
            if input.httpEqualsLowercase(range, "content-length") { return .contentLength }
        case 16:
            if input.httpEqualsLowercase(range, "proxy-connection") { return .proxyConnection }
        case 17:
            if input.httpEqualsLowercase(range, "transfer-encoding") { return .transferEncoding }
        default:
            break
        }
        return .other
    }
}
