/// `cache NAME` (HAProxy's small object cache, configuration.txt §6): an in-memory store of
/// small answers that `http-request cache-use NAME` serves and `http-response cache-store NAME`
/// fills. Sizes are bytes, the age seconds.
public struct CacheSection: Hashable, Sendable {
    public var name: String
    public var location: SourceLocation
    /// `total-max-size MEGABYTES`: the memory the entries may take (required).
    public var totalMaxSize: Int
    /// `max-object-size BYTES`: the largest answer stored (its head and body); HAProxy's default is
    /// a 256th of `total-max-size`, and it may not exceed half of it.
    public var maxObjectSize: Int
    /// `max-age SECONDS`: the longest an entry is served, whatever the answer's own freshness says.
    public var maxAge = 60
    /// `process-vary on|off`: answers with `Vary` (on Accept-Encoding, Referer, Origin) are stored
    /// per variant; off, an answer with `Vary` is not stored.
    public var processVary = false
    /// `max-secondary-entries N`: the variants kept for one key.
    public var maxSecondaryEntries = 10

    public init(name: String, location: SourceLocation, totalMaxSize: Int = 0, maxObjectSize: Int = 0) {
        self.name = name
        self.location = location
        self.totalMaxSize = totalMaxSize
        self.maxObjectSize = maxObjectSize
    }

    /// The section without its place: what decides whether a reload keeps the entries.
    public var settings: CacheSection {
        var s = self
        s.location = SourceLocation(file: "")
        return s
    }
}
