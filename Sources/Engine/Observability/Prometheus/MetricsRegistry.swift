import CLibEV
import ConfigModel
import Glibc
import Synchronization

/// What the exporter, the stats page and `show info` know beyond the live objects: every reload's
/// outcome (counts, a duration histogram, the last messages), lifecycle events, and a history of
/// the sessions each generation held (one sample a second, the last five minutes) for the stats
/// page's chart. One per engine, used on its loop's thread; sampling is a timer on that loop that
/// reads the generations' session counts (no work on the data path).
public final class MetricsRegistry: EventHandler {
    /// Upper bounds of `strata_reload_duration_seconds`'s buckets.
    static let reloadBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
    /// Samples kept for the chart (one a second).
    static let historyLength = 300

    struct ReloadRecord: Sendable {
        /// Wall-clock seconds.
        var time: Double
        var success: Bool
        var generation: Int
        var seconds: Double
        var messages: [String]
    }

    struct Event: Sendable {
        var time: Double
        var message: String
    }

    /// One second of the chart: the sessions of each live generation.
    struct Sample: Sendable {
        var time: Double
        var generations: [(id: Int, state: GenerationState, sessions: Int)]
    }

    weak var engine: Engine?
    /// What the stats page names itself (set by the daemon; `stats hide-version` hides the version).
    public var productVersion = ""
    /// `show info`'s Release_date (`YYYY/MM/DD`, HAProxy's format; set by the daemon).
    public var productReleaseDate = ""
    /// Wall-clock seconds when the registry (the process's engine) started.
    let startedAt: Double
    private(set) var reloadsSucceeded = 0
    private(set) var reloadsFailed = 0
    /// Per bucket (same order as `reloadBuckets`, then +Inf), not cumulative.
    private(set) var reloadBucketCounts = [Int](repeating: 0, count: MetricsRegistry.reloadBuckets.count + 1)
    private(set) var reloadSecondsSum = 0.0
    /// How long the last reload that succeeded took to build (`show info`'s LastReloadMs).
    private(set) var lastSuccessfulReloadSeconds: Double?
    private(set) var lastReloads: [ReloadRecord] = []
    /// Canaries aborted by the error watch (`--abort-on-errors`) and by `canary abort`.
    private(set) var canaryAbortsAutomatic = 0
    private(set) var canaryAbortsAdmin = 0
    private(set) var events: [Event] = []
    private(set) var history: [Sample] = []
    /// Session, request, connection and byte rates and the loops' idle time, measured by the sampler.
    let rates = StatsRates()
    /// `show errors`: each proxy's last invalid request and response.
    let errors = StatsErrorCaptures()
    private let sampler = TimerWatcher(handler: EventHandler())
    private var sampling = false

    init(engine: Engine) {
        self.engine = engine
        startedAt = wallClock()
        super.init()
    }

    // MARK: one per engine

    private static let registries = Locked<[ObjectIdentifier: MetricsRegistry]>([:])

    static func of(_ engine: Engine) -> MetricsRegistry {
        registries.withLock { table in
            let key = ObjectIdentifier(engine)
            if let r = table[key], r.engine === engine { return r }
            let r = MetricsRegistry(engine: engine)
            table[key] = r
            return r
        }
    }

    // MARK: reloads and events

    /// A reload finished (loop thread): counts, the duration histogram, the last 20 outcomes.
    public func recordReload(success: Bool, generation: Int, seconds: Double, messages: [String]) {
        if success {
            reloadsSucceeded += 1
            lastSuccessfulReloadSeconds = seconds
        } else {
            reloadsFailed += 1
        }
        let bucket = MetricsRegistry.reloadBuckets.firstIndex { seconds <= $0 } ?? MetricsRegistry.reloadBuckets.count
        reloadBucketCounts[bucket] += 1
        reloadSecondsSum += seconds
        lastReloads.append(ReloadRecord(time: wallClock(), success: success, generation: generation, seconds: seconds, messages: messages))
        if lastReloads.count > 20 { lastReloads.removeFirst(lastReloads.count - 20) }
    }

    /// A canary was aborted (loop thread).
    func recordCanaryAbort(automatic: Bool) {
        if automatic { canaryAbortsAutomatic += 1 } else { canaryAbortsAdmin += 1 }
    }

    /// A lifecycle message (drain, kill, retire, reload): the stats page lists the last 50.
    public func recordEvent(_ message: String) {
        events.append(Event(time: wallClock(), message: message))
        if events.count > 50 { events.removeFirst(events.count - 50) }
    }

    // MARK: the chart's history

    /// Starts sampling every second (idempotent; loop thread). The timer does not keep the loop
    /// running on its own.
    public func startSampling() {
        guard !sampling, let engine else { return }
        sampling = true
        sampler.setHandler(self)
        sampler.arm(every: 1, on: engine.loop)
        ev_unref(engine.loop.raw)
        sample()
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) { sample() }

    /// Records the sessions of every live generation now.
    func sample() {
        guard let engine else { return }
        rates.sample(engine, now: MonotonicClock.now())
        let gens = engine.liveGenerations.map { ($0.id, $0.state, $0.sessions) }
        history.append(Sample(time: wallClock(), generations: gens))
        if history.count > MetricsRegistry.historyLength { history.removeFirst(history.count - MetricsRegistry.historyLength) }
    }
}

extension Engine {
    /// The engine's reload counts, events and session history (created on first use).
    public var metrics: MetricsRegistry { MetricsRegistry.of(self) }
}
