/// A parsed request or response head, as offsets into the caller's buffer plus the facts the proxy
/// needs, computed once while parsing. No strings, no dictionaries: the field array is reused from
/// one message to the next (keep it in the parser; a copy held across the next message's parse makes
/// that parse allocate).
///
/// Ranges are offsets into the input of the call that returned `.headersComplete`; they stay
/// meaningful as long as the caller keeps those bytes where they were.
public struct HTTPHead: Sendable {
    /// Whether this is a request head (else a response head).
    public internal(set) var isRequest: Bool
    /// HTTP/1.0 or HTTP/1.1 (nothing else gets this far).
    public internal(set) var version: HTTPVersion = .http11
    /// The request line or status line, without its CRLF.
    public internal(set) var startLine: Range<Int> = 0..<0
    /// The head's length in bytes, final CRLF included (the `headLength` of `.headersComplete`).
    public internal(set) var length: Int = 0

    // Request line.
    public internal(set) var method: HTTPMethod = .get
    public internal(set) var methodRange: Range<Int> = 0..<0
    public internal(set) var target: Range<Int> = 0..<0
    public internal(set) var targetForm: HTTPRequestTargetForm = .origin
    /// The authority (`host[:port]`) of an absolute-form or authority-form target. RFC 9112 §3.2.2:
    /// when present, it is the request's host, not the Host field.
    public internal(set) var targetAuthority: Range<Int>?

    // Status line.
    /// The status code (100...599) of a response.
    public internal(set) var status: Int = 0
    /// The reason phrase (possibly empty).
    public internal(set) var reason: Range<Int> = 0..<0

    /// The field lines, in order.
    public internal(set) var fields: [HTTPField] = []

    // Facts computed while parsing.
    /// How the body is delimited (RFC 9112 §6.3).
    public internal(set) var framing: HTTPFraming = .noBody
    /// The Content-Length value, when the field is present (also when framing ignores it: HEAD, 304…).
    public internal(set) var contentLength: UInt64?
    /// Content-Length came as a list or in several field lines (all equal): written as one field.
    public internal(set) var contentLengthRepeated = false
    /// Whether a Transfer-Encoding field is present.
    public internal(set) var hasTransferEncoding = false
    /// Whether `chunked` is the final transfer coding.
    public internal(set) var isChunked = false
    /// The options `Connection` lists that the parser knows.
    public internal(set) var connection: HTTPConnectionOptions = []
    /// The other tokens `Connection` lists: names of fields to remove before forwarding.
    public internal(set) var connectionTokens: [Range<Int>] = []
    /// Whether the connection may carry another message after this one: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive` (and no `close`). Always false for
    /// a response whose body ends with the connection, and for a tunnel.
    public internal(set) var keepAlive = true
    /// The Upgrade field's value (the first one), if present.
    public internal(set) var upgrade: Range<Int>?
    /// A request asking to switch protocols: HTTP/1.1, an Upgrade field, and `upgrade` in Connection
    /// (RFC 9110 §7.8; an HTTP/1.0 request's Upgrade is ignored).
    public internal(set) var isUpgradeRequest = false
    /// `Expect: 100-continue` in an HTTP/1.1 request (ignored in HTTP/1.0, RFC 9110 §10.1.1).
    public internal(set) var expectsContinue = false
    /// `TE: trailers`: the client takes trailers (a request's; TE itself is hop-by-hop).
    public internal(set) var acceptsTrailers = false
    /// The Host field's value (requests; possibly empty, which RFC 9112 §3.2 allows).
    public internal(set) var host: Range<Int>?

    init(isRequest: Bool, fieldCapacity: Int) {
        self.isRequest = isRequest
        fields.reserveCapacity(fieldCapacity)
        connectionTokens.reserveCapacity(4)
    }

    /// Clears the head for the next message, keeping the arrays' storage.
    mutating func reset() {
        version = .http11
        startLine = 0..<0
        length = 0
        method = .get
        methodRange = 0..<0
        target = 0..<0
        targetForm = .origin
        targetAuthority = nil
        status = 0
        reason = 0..<0
        fields.removeAll(keepingCapacity: true)
        framing = .noBody
        contentLength = nil
        contentLengthRepeated = false
        hasTransferEncoding = false
        isChunked = false
        connection = []
        connectionTokens.removeAll(keepingCapacity: true)
        keepAlive = true
        upgrade = nil
        isUpgradeRequest = false
        expectsContinue = false
        acceptsTrailers = false
        host = nil
    }

    /// An interim (1xx other than 101) response: the final response follows.
    public var isInformational: Bool { status >= 100 && status < 200 && status != 101 }

    /// The index of the first field named `lowercaseName` (case-insensitive) at or after `start`.
    /// Use this for fields the parser does not interpret; the interpreted ones are properties.
    public func firstIndex(ofField lowercaseName: StaticString, in input: UnsafeRawBufferPointer,
                           from start: Int = 0) -> Int? {
        var i = start
        while i < fields.count {
            if input.httpEqualsLowercase(fields[i].name, lowercaseName) { return i }
            i += 1
        }
        return nil
    }

    /// Whether a field is hop-by-hop for this message: a name RFC 9110 §7.6.1 lists, or one that
    /// `Connection` names.
    public func isHopByHop(_ field: HTTPField, in input: UnsafeRawBufferPointer) -> Bool {
        if field.knownName.isHopByHop { return true }
        for token in connectionTokens where input.httpTokensEqual(token, field.name) { return true }
        return false
    }
}

/// The HTTP versions an HTTP/1 connection carries.
public enum HTTPVersion: UInt8, Hashable, Sendable {
    case http10, http11
}

/// How a message's body is delimited (RFC 9112 §6.3).
public enum HTTPFraming: Hashable, Sendable {
    /// No body: a request without Content-Length or Transfer-Encoding; a response to HEAD; 1xx, 204, 304.
    case noBody
    /// Exactly that many bytes.
    case contentLength(UInt64)
    /// Chunked transfer coding.
    case chunked
    /// A response whose body ends when the connection closes.
    case untilClose
    /// The connection becomes a tunnel after this head: 101 Switching Protocols, or a 2xx answer to
    /// CONNECT. Every further byte is reported as body until the connection closes.
    case tunnel
}

/// Request-target forms (RFC 9112 §3.2).
public enum HTTPRequestTargetForm: UInt8, Hashable, Sendable {
    /// `/path?query`
    case origin
    /// `http://host[:port]/path?query` (only `http` and `https`)
    case absolute
    /// `host:port` (CONNECT only)
    case authority
    /// `*` (OPTIONS only)
    case asterisk
}

/// Connection options (RFC 9110 §7.6.1) that the parser interprets.
public struct HTTPConnectionOptions: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let close = HTTPConnectionOptions(rawValue: 1)
    public static let keepAlive = HTTPConnectionOptions(rawValue: 2)
    public static let upgrade = HTTPConnectionOptions(rawValue: 4)
}
