import CLibEV
import ConfigModel
import Glibc

/// One event loop of the data plane, on a thread of its own (`strata-loop-N`): its listeners
/// (a socket of its own per `bind`, SO_REUSEPORT spreading connections between loops), the
/// sessions it accepted — they never move to another loop — and its own strong reference to the
/// generation new sessions start under, swapped on its own thread when the control loop posts a
/// new one. Its methods run on its thread; the control loop reaches it through `Engine.onEveryLoop`.
final class Worker: EventHandler, @unchecked Sendable {
    let loop: EventLoop
    unowned(unsafe) let engine: Engine
    /// This loop's HTTP/2 counters (its client connections and streams).
    let h2Counters = H2Counters()
    /// The generation new sessions on this loop start under.
    @exclusivity(unchecked) private(set) var current: Generation?
    /// A canary beside `current` (`reload --canary`): it takes `canaryShare` percent of this
    /// loop's new work (TCP connections, HTTP requests), chosen by a credit counter of this loop
    /// alone (no lock, no atomic): every `100 / share`-th pick on average, exactly the share over
    /// any 100 picks. Set, changed and cleared by the control loop's posts, as `current` is.
    @exclusivity(unchecked) private(set) var canary: Generation?
    @exclusivity(unchecked) private var canaryShare = 0
    @exclusivity(unchecked) private var canaryCredit = 0
    /// Persistence cookies that pin a request to one side while the canary runs (nil: none).
    @exclusivity(unchecked) private(set) var canaryPins: CanaryPins?
    /// Listener keys only the canary serves (bound for it): they close if it is aborted.
    @exclusivity(unchecked) private var canaryOnly = Set<ListenerKey>()
    /// Generations this loop still has sessions or listeners of (`current` and draining ones): it
    /// tells the control loop when one of them has nothing left here.
    @exclusivity(unchecked) private var held: [Generation] = []
    @exclusivity(unchecked) private var listeners: [ListenerKey: Listener] = [:]
    @exclusivity(unchecked) private var starved: [Listener] = []
    @exclusivity(unchecked) private var limited: [Listener] = []
    private let starvedRetry = TimerWatcher(handler: EventHandler())
    /// A listener paused by the process-wide `maxconn`: a connection ending on another loop frees
    /// room too, so the pause is retried on a timer besides this loop's own connection ends.
    private let limitRetry = TimerWatcher(handler: EventHandler())
    /// Closes idle pooled server connections (HAProxy's pool-purge-delay, 5 s).
    private let poolPurge = TimerWatcher(handler: EventHandler())
    static let idleServerConnectionLifetime = 5.0
    /// Connections on this loop now (its share of the process's `actconn`), the kernel id of its
    /// thread and the connections it accepted since start, published for `show threads` and
    /// `show activity` (the control loop reads them).
    private let published = LoopLocalInts.allocate(3)
    var currentSessions: Int {
        get { CLibEV_load(published) }
        set { CLibEV_store(published, newValue) }
    }
    var connectionsNow: Int { currentSessions }
    var threadID: Int {
        get { CLibEV_load(published + 1) }
        set { CLibEV_store(published + 1, newValue) }
    }
    var accepted: Int { CLibEV_load(published + 2) }

    /// Where this loop's TCP-layer rules compute samples (`tcp-request`, `use_backend` in mode
    /// tcp): a rule is evaluated whole within one event, so one per loop serves every session.
    private(set) lazy var ruleScratch: HTTPRuleScratch = {
        let scratch = HTTPRuleScratch(capacity: loop.buffers.size)
        scratch.mapSlot = loop.index
        return scratch
    }()

    /// This loop's libdeflate compressors, for the answers compressed whole.
    private(set) lazy var wholeMessageDeflater = WholeMessageDeflater()

    init(engine: Engine, loop: EventLoop) {
        self.engine = engine
        self.loop = loop
        super.init()
        starvedRetry.setHandler(self)
        limitRetry.setHandler(self)
        poolPurge.setHandler(self)
        poolPurge.arm(every: 1, on: loop)
        // Housekeeping alone must not keep the loop running.
        ev_unref(loop.raw)
    }

    var index: Int { loop.index }

    // MARK: generations (posted by the control loop)

    /// Makes `generation` current on this loop: listeners whose key it keeps point at it (their
    /// backlog included), new keys start listening on `socket(key)` (this loop's fd), keys it
    /// dropped accept what is queued and stop. Returns the dropped keys.
    func activate(_ generation: Generation, socket: (ListenerKey) -> Int32?) -> [ListenerKey] {
        // A canary promoted (or none): listeners serve the one generation from now on.
        let wasCanary = clearCanary()
        let previous = current
        current = generation
        if !held.contains(where: { $0 === generation }) { held.append(generation) }
        var dropped: [ListenerKey] = []
        // One lookup per listener this loop has: kept ones are repointed in the same walk.
        var kept = 0
        for (key, listener) in listeners {
            if let frontend = generation.listenerFrontends[key] {
                listener.serve(frontend)
                kept += 1
                continue
            }
            // Serve what is already queued on the old generation, then stop.
            listener.acceptPending(limit: nil)
            listener.release()
            dropped.append(key)
        }
        for key in dropped { listeners[key] = nil }
        // New keys: only when the generation has more than this loop kept.
        if kept < generation.listenerFrontends.count {
            for (key, frontend) in generation.listenerFrontends where listeners[key] == nil {
                guard let fd = socket(key) else { continue }
                let listener = Listener(key: key, fd: fd, worker: self)
                listeners[key] = listener
                listener.serve(frontend)
            }
        }
        if let previous { releaseIfIdle(previous) }
        if let wasCanary, wasCanary !== generation { releaseIfIdle(wasCanary) }
        return dropped
    }

    // MARK: a canary (posted by the control loop)

    /// The next piece of new work goes to the canary (`Listener.pick`).
    @inline(__always)
    func takesCanary() -> Bool {
        canaryCredit += canaryShare
        guard canaryCredit >= 100 else { return false }
        canaryCredit -= 100
        return true
    }

    /// Starts `generation` as a canary beside `current` at `share` percent: listeners it shares
    /// with `current` (same key, same mode) give it its share; keys only it has listen on
    /// `sockets` and serve it alone; keys only `current` has stay `current`'s.
    func startCanary(_ generation: Generation, share: Int, sockets: [ListenerKey: Int32], pins: CanaryPins? = nil) {
        canary = generation
        canaryShare = share
        canaryCredit = 0
        canaryPins = pins
        if !held.contains(where: { $0 === generation }) { held.append(generation) }
        for (key, frontend) in generation.listenerFrontends {
            if let existing = listeners[key] {
                if existing.frontend?.proxy.mode == frontend.proxy.mode { existing.serveCanary(frontend) }
            } else if let fd = sockets[key] {
                let listener = Listener(key: key, fd: fd, worker: self)
                listeners[key] = listener
                canaryOnly.insert(key)
                listener.serve(frontend)
            }
        }
    }

    func setCanaryShare(_ share: Int) { canaryShare = share }

    /// Ends the canary (aborted): no new work goes to it, its listeners that `current` does not
    /// have accept what is queued and close, its sessions drain. Returns those listeners' keys.
    func abortCanary() -> [ListenerKey] {
        var dropped: [ListenerKey] = []
        for key in canaryOnly {
            guard let listener = listeners.removeValue(forKey: key) else { continue }
            listener.acceptPending(limit: nil)
            listener.release()
            dropped.append(key)
        }
        if let g = clearCanary() { releaseIfIdle(g) }
        return dropped
    }

    /// Forgets the canary (its listeners' shares, its share); returns it.
    private func clearCanary() -> Generation? {
        guard let g = canary else { return nil }
        for l in listeners.values { l.serveCanary(nil) }
        canary = nil
        canaryShare = 0
        canaryOnly = []
        canaryPins = nil
        return g
    }

    /// Soft stop: every listener accepts what is queued and stops; nothing is current any more.
    func stopListening() -> [ListenerKey] {
        var keys: [ListenerKey] = []
        for (key, l) in listeners {
            l.acceptPending(limit: nil)
            l.release()
            keys.append(key)
        }
        listeners.removeAll()
        let wasCanary = clearCanary()
        let previous = current
        current = nil
        if let previous { releaseIfIdle(previous) }
        if let wasCanary { releaseIfIdle(wasCanary) }
        return keys
    }

    func pauseListeners() { for l in listeners.values { l.pause(.signal) } }
    func resumeListeners() { for l in listeners.values { l.resume(.signal) } }

    /// Closes this loop's sessions of `generation` (counted as killed). True when the loop has
    /// nothing of it left.
    func kill(_ generation: Generation) -> Bool {
        for s in generation.shard(loop).sessionList.members { s.kill() }
        releaseIfIdle(generation)
        return generation !== current && generation !== canary && generation.shard(loop).isIdle
    }

    /// Closes this loop's sessions that use `state`'s server (`on-marked-down shutdown-sessions`).
    func shutdownSessions(of state: ServerState) {
        for g in held {
            for s in g.shard(loop).sessionList.members {
                if let t = s as? TCPSession, t.server?.state === state {
                    t.kill()
                } else if let h = s as? HTTPSession, h.server?.state === state {
                    h.kill()
                }
            }
        }
    }

    /// Describes this loop's sessions (`show sess`): the generation's id and the line.
    func describeSessions(detailed: Bool = false) -> [(Int, String)] {
        var lines: [(Int, String)] = []
        for g in held {
            for s in g.shard(loop).sessionList.members {
                lines.append((g.id, StatsCommands.describe(s, generation: g.id, now: loop.now, detailed: detailed)))
            }
        }
        return lines
    }

    /// A generation that is not current here and has no session or listener left on this loop
    /// is let go, and the control loop told (it retires once every loop has let it go).
    private func releaseIfIdle(_ generation: Generation) {
        guard generation !== current, generation !== canary, generation.shard(loop).isIdle,
              let i = held.firstIndex(where: { $0 === generation }) else { return }
        held.remove(at: i)
        let engine = self.engine
        let index = self.index
        engine.loop.post { engine.loopReleased(generation, loop: index) }
    }

    // MARK: sessions and admission (the hot path)

    func sessionStarted() {
        currentSessions += 1
        CLibEV_store(published + 2, CLibEV_load(published + 2) &+ 1)
        engine.connectionStarted()
    }

    /// An HTTP client connection closed (its requests end separately).
    func connectionEnded() {
        currentSessions -= 1
        engine.connectionEnded()
        resumeWaitingListeners()
    }

    /// A TCP session ended: its generation may be done on this loop.
    func sessionEnded(in generation: Generation) {
        connectionEnded()
        if generation !== current && generation !== canary { releaseIfIdle(generation) }
    }

    /// An HTTP request ended: its generation may be done on this loop.
    @inline(__always)
    func requestEnded(in generation: Generation) {
        if generation !== current && generation !== canary { releaseIfIdle(generation) }
    }

    /// Why a listener may not accept now, or nil: the process's `maxconn` (every loop's
    /// connections), the frontend's (every loop's sessions of it).
    func admissionBlock(for frontend: Frontend) -> Listener.Pause? {
        if engine.connections >= engine.globalMaxconn { return .limit }
        if let m = frontend.proxy.maxconn, m > 0, frontend.counters.currentSessions >= m { return .limit }
        if frontend.limitsRates {
            let global = frontend.generation.config.config.global
            if let r = global.maxConnectionRate, !engine.connectionRate.allows(r) { return .limit }
            if let r = global.maxSessionRate, !engine.sessionRate.allows(r) { return .limit }
            if let r = frontend.proxy.sessionRateLimit, !frontend.counters.sessionRate.allows(r) { return .limit }
        }
        return nil
    }

    /// A connection was accepted (`maxconnrate`).
    func connectionAccepted(_ frontend: Frontend) {
        if frontend.limitsRates, frontend.generation.config.config.global.maxConnectionRate != nil { engine.connectionRate.record() }
    }

    /// It passed the `tcp-request connection` rules: a session (`maxsessrate`, `rate-limit sessions`).
    func sessionAccepted(_ frontend: Frontend) {
        guard frontend.limitsRates else { return }
        if frontend.generation.config.config.global.maxSessionRate != nil { engine.sessionRate.record() }
        if frontend.proxy.sessionRateLimit != nil { frontend.counters.sessionRate.record() }
    }

    func listenerLimited(_ listener: Listener) {
        if !limited.contains(where: { $0 === listener }) { limited.append(listener) }
        if !limitRetry.isActive { limitRetry.arm(after: 0.05, on: loop) }
    }

    func listenerStarved(_ listener: Listener) {
        if !starved.contains(where: { $0 === listener }) { starved.append(listener) }
        // Also retry later: fds may be freed outside this loop (another loop, a log socket).
        starvedRetry.arm(after: 0.1, on: loop)
    }

    private func resumeWaitingListeners() {
        if !limited.isEmpty { resumeLimited() }
        if !starved.isEmpty { resumeStarved() }
    }

    private func resumeLimited() {
        let waiting = limited
        limited.removeAll()
        limitRetry.stop(on: loop)
        for l in waiting { l.resume(.limit) }
    }

    private func resumeStarved() {
        let waiting = starved
        starved.removeAll()
        starvedRetry.stop(on: loop)
        for l in waiting { l.resume(.fdExhausted) }
    }

    /// A server's traffic tells its health (`observe layer4|layer7`): the control loop, which
    /// owns health, hears of it. Nothing is posted for a server without `observe`.
    @inline(__always)
    func observe(_ server: BackendServer?, _ event: HealthMonitor.Observation) {
        guard let server, let mode = server.config.options.check.observe else { return }
        let engine = self.engine
        engine.loop.post { engine.healthMonitor.observe(server, event, mode: mode) }
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        if watcher == starvedRetry.raw {
            resumeStarved()
        } else if watcher == limitRetry.raw {
            resumeLimited()
        } else if watcher == poolPurge.raw {
            let now = loop.now
            var seen = Set<ObjectIdentifier>()
            for g in held {
                for b in g.backends.values {
                    for s in b.servers(on: loop) where seen.insert(ObjectIdentifier(s.state)).inserted {
                        s.state.purgeIdle(on: loop, now: now, maxIdle: Worker.idleServerConnectionLifetime)
                    }
                }
            }
        }
    }
}
