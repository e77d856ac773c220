import Glibc
import CLibEV

/// A per-second rate read from a total: HAProxy's `rate`/`rate_max` (its freq_ctr over the last
/// second), here the difference between two readings of the total one sampling period apart,
/// scaled to a second. Nothing on the data path: the control loop reads the totals the loops
/// already keep.
struct RateMeter {
    private var last: Int
    /// Events over the last period, per second.
    private(set) var rate = 0
    /// The highest `rate` since start (or `clear counters`).
    private(set) var max = 0

    init(_ total: Int) { last = total }

    mutating func update(_ total: Int, seconds: Double) {
        // A total that went back (`clear counters all`) restarts from it.
        let delta = total >= last ? total - last : 0
        last = total
        rate = seconds > 0 ? Int((Double(delta) / seconds).rounded()) : 0
        if rate > max { max = rate }
    }

    mutating func clearMax() { max = rate }
}

/// The rates the statistics show (HAProxy's `rate`, `rate_max`, `conn_rate`, `req_rate`, and
/// `show info`'s ConnRate, SessRate, BytesOutRate and Idle_pct), measured once a second by the
/// registry's sampler on the control loop.
final class StatsRates {
    /// A proxy's or a server's meters, by its counters (carried across generations, so a reload
    /// does not restart a rate).
    struct Meters {
        var sessions: RateMeter
        var requests: RateMeter
    }

    /// A backend's DOWN periods (no usable server), seen by the sampler: HAProxy's backend
    /// `chkdown` (times it went DOWN) and `downtime`, to the second.
    struct BackendDown {
        var down = false
        var transitions = 0
        var downSeconds = 0.0
        var since: Double?

        func seconds(now: Double) -> Double { downSeconds + (since.map { max(0, now - $0) } ?? 0) }
    }

    private(set) var counters: [ObjectIdentifier: Meters] = [:]
    private(set) var backends: [ObjectIdentifier: BackendDown] = [:]
    private(set) var connections = RateMeter(0)
    private(set) var bytesOut = RateMeter(0)
    /// Bytes given to and made by HTTP compressors, every frontend counted (`show info`'s
    /// CompressBpsIn and CompressBpsOut).
    private(set) var compressionIn = RateMeter(0)
    private(set) var compressionOut = RateMeter(0)
    /// TLS connections made (front and back), full handshakes on frontends and to servers (a new
    /// key each), and the share of frontend handshakes that resumed a session, over the last period.
    private(set) var tlsConnections = RateMeter(0)
    private(set) var frontendKeys = RateMeter(0)
    private(set) var backendKeys = RateMeter(0)
    private(set) var frontendReusePercent = 0
    private var lastFrontendHandshakes = 0
    private var lastFrontendResumed = 0
    /// Percent of the last period the data loops spent waiting (not on a CPU), all loops averaged.
    private(set) var idlePercent = 100
    /// `idlePercent` for the data loops (`maxcompcpuusage` reads it when an answer could be
    /// compressed): written here once a second, read by any loop, relaxed.
    private let sharedIdlePercent: UnsafeMutablePointer<Int> = {
        let p = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        p.initialize(to: 100)
        return p
    }()
    var loopsIdlePercent: Int { CLibEV_load(sharedIdlePercent) }

    deinit { sharedIdlePercent.deallocate() }
    private var lastSample: Double?
    private var lastCPU: Double?

    /// The meters of `c` (nil before the first sample that saw it).
    func meters(_ c: CounterSet) -> Meters? { counters[ObjectIdentifier(c)] }
    /// A backend's DOWN periods, by its counters (nil before the first sample that saw it).
    func backendDown(_ c: CounterSet) -> BackendDown? { backends[ObjectIdentifier(c)] }

    /// Reads every total now (loop thread of the engine, once a second).
    func sample(_ engine: Engine, now: Double) {
        let seconds = lastSample.map { now - $0 } ?? 0
        lastSample = now
        var next: [ObjectIdentifier: Meters] = [:]
        func update(_ c: CounterSet) {
            let id = ObjectIdentifier(c)
            guard next[id] == nil else { return }
            var m = counters[id] ?? Meters(sessions: RateMeter(c.totalSessions), requests: RateMeter(c.requests))
            m.sessions.update(c.totalSessions, seconds: seconds)
            m.requests.update(c.requests, seconds: seconds)
            next[id] = m
        }
        var nextBackends: [ObjectIdentifier: BackendDown] = [:]
        var connectionTotal = 0
        var bytesOutTotal: UInt64 = 0
        var compressionInTotal = 0, compressionOutTotal = 0
        for view in engine.statsProxies() {
            if let f = view.frontend {
                update(f.counters)
                connectionTotal += f.counters.totalSessions
                bytesOutTotal &+= f.counters.bytesOut
                compressionInTotal &+= f.counters.compressionIn
                compressionOutTotal &+= f.counters.compressionOut
            }
            if let b = view.backend {
                let id = ObjectIdentifier(b.counters)
                var d = backends[id] ?? BackendDown()
                let down = !b.servers.isEmpty && !b.servers.contains { $0.isUsable }
                if down && !d.down {
                    d.transitions += 1
                    d.since = now
                } else if !down, d.down, let since = d.since {
                    d.downSeconds += max(0, now - since)
                    d.since = nil
                }
                d.down = down
                nextBackends[id] = d
            }
            for b in view.backends {
                update(b.counters)
                for s in b.servers { update(s.state.counters) }
            }
        }
        counters = next
        backends = nextBackends
        connections.update(connectionTotal, seconds: seconds)
        bytesOut.update(Int(truncatingIfNeeded: bytesOutTotal), seconds: seconds)
        compressionIn.update(compressionInTotal, seconds: seconds)
        compressionOut.update(compressionOutTotal, seconds: seconds)
        let handshakes = TLSConnection.figure(.frontendHandshakes), resumed = TLSConnection.figure(.frontendResumed)
        tlsConnections.update(TLSConnection.figure(.cumulative), seconds: seconds)
        frontendKeys.update(handshakes - resumed, seconds: seconds)
        backendKeys.update(TLSConnection.figure(.backendFullHandshakes), seconds: seconds)
        let newHandshakes = handshakes - lastFrontendHandshakes
        frontendReusePercent = newHandshakes > 0 ? (resumed - lastFrontendResumed) * 100 / newHandshakes : 0
        lastFrontendHandshakes = handshakes
        lastFrontendResumed = resumed

        // Idle: the wall time of the period on every loop, less the CPU time their threads used.
        let cpu = engine.workers.reduce(0.0) { $0 + (StatsRates.threadCPUSeconds($1.threadID) ?? 0) }
        if let lastCPU, seconds > 0, !engine.workers.isEmpty {
            let busy = (cpu - lastCPU) / (seconds * Double(engine.workers.count))
            idlePercent = Swift.max(0, Swift.min(100, Int(((1 - busy) * 100).rounded())))
            CLibEV_store(sharedIdlePercent, idlePercent)
        }
        lastCPU = cpu
    }

    /// `clear counters`: the maxima restart from the current rates.
    func clearMaxima() {
        for key in counters.keys {
            counters[key]?.sessions.clearMax()
            counters[key]?.requests.clearMax()
        }
        connections.clearMax()
        bytesOut.clearMax()
        compressionIn.clearMax()
        compressionOut.clearMax()
        tlsConnections.clearMax()
        frontendKeys.clearMax()
        backendKeys.clearMax()
    }

    /// The CPU time (user + system) a thread of this process used, from /proc (nil: unknown).
    static func threadCPUSeconds(_ tid: Int) -> Double? {
        guard tid > 0 else { return nil }
        let fd = open("/proc/self/task/\(tid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[0..<n], as: UTF8.self)
        // The command name may hold spaces: fields are counted after its closing parenthesis.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // utime and stime are the 14th and 15th fields, the 12th and 13th after the name.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
