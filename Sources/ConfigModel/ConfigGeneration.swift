#if canImport(Glibc)
import Glibc
#endif

public enum GenerationState: String, Hashable, Sendable {
    case loading
    case active
    case draining
    case retired
    case failed
}

/// One configuration as the process serves it: immutable configuration, a monotonic id and a
/// content hash. Sessions and health checks hold it strongly for their whole life; it is freed
/// when the last of them, and the last listener serving it, let go.
///
/// `state` and the counters are bookkeeping owned by the event loop that runs the generation:
/// they are written on that loop's thread only and read there (admin socket, exporter).
public final class ConfigGeneration: @unchecked Sendable {
    public let id: Int
    /// Hex digest of the effective configuration (tokens, not comments or spacing).
    public let hash: String
    public let config: Config
    /// The files read, in the order they were read.
    public let files: [String]
    /// CLOCK_MONOTONIC seconds at which the build finished.
    public let builtAt: Double

    public var state: GenerationState = .loading
    /// Monotonic seconds when the generation started draining.
    public var drainingSince: Double?
    /// Sessions alive now (TCP connections; in HTTP, requests in flight).
    public var sessions = 0
    public var sessionsAccepted = 0
    /// Sessions closed at the `hard-stop-after` deadline or by `max-generations`.
    public var sessionsKilled = 0

    public init(id: Int, hash: String, config: Config, files: [String]) {
        self.id = id
        self.hash = hash
        self.config = config
        self.files = files
        self.builtAt = ConfigGeneration.monotonicNow()
    }

    public static func monotonicNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
