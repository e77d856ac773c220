/// Limits a parser enforces, from the configuration.
///
/// A head is parsed in place, so the caller's buffer must hold `maxHeadSize` contiguous bytes:
/// with a smaller buffer, a head that does not fit makes the parser ask for more forever. (HAProxy
/// keeps `tune.maxrewrite` of its buffer free for rewriting; pass `bufsize - maxrewrite` here to do
/// the same.)
public struct HTTPParserLimits: Hashable, Sendable {
    /// The largest head (request or status line, field lines, final CRLF, and any empty lines before
    /// the start line) in bytes: `tune.bufsize`, because a head has to fit in one buffer to be parsed
    /// in place. Also bounds a chunked body's last chunk plus trailer section.
    public var maxHeadSize: Int
    /// The most field lines in a head (and in a trailer section): `tune.http.maxhdr`.
    public var maxFieldCount: Int
    /// The longest chunk-size line, extensions included. Nobody sends long chunk extensions, and
    /// unbounded ones are a known denial of service.
    public var maxChunkLineSize: Int

    public init(maxHeadSize: Int = 16384, maxFieldCount: Int = 101, maxChunkLineSize: Int = 4096) {
        precondition(maxHeadSize > 0 && maxHeadSize <= Int(UInt32.max), "maxHeadSize out of range")
        precondition(maxFieldCount > 0, "maxFieldCount must be positive")
        precondition(maxChunkLineSize >= 3, "maxChunkLineSize too small")
        self.maxHeadSize = maxHeadSize
        self.maxFieldCount = maxFieldCount
        self.maxChunkLineSize = maxChunkLineSize
    }

    /// HAProxy's defaults: `tune.bufsize 16384`, `tune.http.maxhdr 101`.
    public static let `default` = HTTPParserLimits()
}
