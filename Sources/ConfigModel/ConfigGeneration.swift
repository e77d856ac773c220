/// One configuration as it was loaded: a monotonic id, a content hash, the configuration and the
/// files it came from. A value of what was read, nothing more: the engine's `Generation` wraps it
/// with the live state (lifecycle, session counts, build time) that its event loop owns.
///
/// A class, not a struct, only so that a test can hold it weakly and see a retired generation's
/// configuration freed.
public final class ConfigGeneration: Sendable {
    public let id: Int
    /// Hex digest of the effective configuration (tokens, not comments or spacing).
    public let hash: String
    public let config: Config
    /// The files read, in the order they were read.
    public let files: [String]

    public init(id: Int, hash: String, config: Config, files: [String]) {
        self.id = id
        self.hash = hash
        self.config = config
        self.files = files
    }
}
