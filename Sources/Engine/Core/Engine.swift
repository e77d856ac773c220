import CLibEV
import ConfigModel
import Glibc

/// The data plane on one event loop: listeners, sessions, the generations they run under, and
/// the current-generation pointer. Every method is called on the loop's thread, except
/// `makeGeneration` (pure: called by the reload builder) and `loop.post`: it is Sendable only so
/// that work can be posted to its loop.
public final class Engine: EventHandler, @unchecked Sendable {
    public let loop: EventLoop
    /// The generation new sessions start under.
    public private(set) var current: Generation?
    /// Active and draining generations, oldest first. Dropped when retired.
    private var live: [Generation] = []
    private var listeners: [ListenerKey: Listener] = [:]
    private var starved: [Listener] = []
    private var limited: [Listener] = []
    private var frontendCounters: [String: ProxyCounters] = [:]
    private var backendCounters: [String: ProxyCounters] = [:]
    /// Internal: a server added at runtime registers its state here (ServiceDiscovery).
    var serverStates: [ServerIdentity: ServerState] = [:]
    /// TLS session ticket keys and session caches by listener, carried across generations.
    var tlsStores: [ListenerKey: TLSSessionStore] = [:]
    private var deadlines: [Int: DrainDeadline] = [:]
    private var signalWatchers: [UnsafeMutablePointer<ev_signal>] = []
    private var signalHandler: ((Int32) -> Void)?
    private let starvedRetry = TimerWatcher(handler: EventHandler())
    /// Closes idle pooled server connections (HAProxy's pool-purge-delay, 5 s).
    private let poolPurge = TimerWatcher(handler: EventHandler())
    static let idleServerConnectionLifetime = 5.0
    private var stopping: (() -> Void)?
    private(set) var currentSessions = 0
    /// The process-wide `maxconn` (global), or what the fd limit allows.
    private(set) var globalMaxconn: Int
    /// What the fd limit allows: the process-wide limit of a generation without a global `maxconn`.
    private let defaultMaxconn: Int
    /// Where events are shown besides the log targets (the daemon's standard error, the stats
    /// page's event list): the message, its level, and whether a `log stdout|stderr` target
    /// already wrote it (then the terminal has it once already). Set by the daemon.
    public var notice: (_ message: String, _ level: LogLevel, _ logged: Bool) -> Void = { _, _, _ in }
    /// Health checks (owned by the current generation) and server state changes.
    lazy var healthMonitor = HealthMonitor(engine: self)
    /// Servers that change at runtime: `resolvers`, templates, `add server` / `del server`.
    lazy var serviceDiscovery = ServiceDiscovery(engine: self)

    public init(bufferSize: Int = 16384, defaultLoop: Bool = true) {
        loop = EventLoop(bufferSize: bufferSize, isDefault: defaultLoop)
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        // Each session needs two fds; keep some for listeners, logs and the admin socket.
        defaultMaxconn = max(16, Int(min(limit.rlim_cur, 1 << 20)) / 2 - 32)
        globalMaxconn = defaultMaxconn
        super.init()
        starvedRetry.setHandler(self)
        poolPurge.setHandler(self)
        poolPurge.arm(every: 1, on: loop)
        // Housekeeping alone must not keep the loop running (a soft stop ends when sessions do).
        ev_unref(loop.raw)
    }

    /// Builds the runtime objects of a generation. Pure: runs on the reload builder's thread.
    /// `previous` (the generation current when the reload started, kept alive by the caller and
    /// only read) gives its counters and server states to what it has in common with the new
    /// one, so that activation on the loop looks up only what it does not have.
    public static func makeGeneration(_ config: ConfigGeneration,
                                      carryingFrom previous: Generation? = nil) throws(ConfigErrors) -> Generation {
        try Generation(config: config, carryingFrom: previous)
    }

    public func run() { loop.run() }

    // MARK: activation, drain and retire

    /// Makes `generation` current: listeners whose key it keeps are pointed at it (their backlog
    /// included), new keys start listening, the previous generation drains. Returns the keys no
    /// generation serves any more, their backlog already accepted: the caller releases them.
    @discardableResult
    public func activate(_ generation: Generation, listenerFDs: [ListenerKey: Int32],
                         announce: (_ closed: [ListenerKey]) -> Void = { _ in }) -> [ListenerKey] {
        // Per generation: a reload may raise, lower or remove it (nothing is sized by it).
        globalMaxconn = generation.config.config.global.maxconn ?? defaultMaxconn
        serviceDiscovery.prepare(generation)
        adoptCounters(generation)
        adoptTLSStores(generation)
        let previous = current
        current = generation
        generation.state = .active
        live.append(generation)

        var dropped: [ListenerKey] = []
        for (key, listener) in listeners where generation.listenerFrontends[key] == nil {
            // Serve what is already queued on the old generation, then stop.
            listener.acceptPending(limit: nil)
            listener.release()
            listeners[key] = nil
            dropped.append(key)
        }
        for (key, frontend) in generation.listenerFrontends {
            let listener: Listener
            if let existing = listeners[key] {
                listener = existing
            } else {
                guard let fd = listenerFDs[key] else { continue }
                listener = Listener(key: key, fd: fd, engine: self)
                listeners[key] = listener
            }
            listener.serve(frontend)
        }
        // The new generation's checkers take over before the previous one drains without any.
        healthMonitor.activate(generation)
        serviceDiscovery.activate(generation, previous: previous)
        // Between the swap and the drain: events read in order, the new generation's "active"
        // before the previous one's "draining".
        announce(dropped)
        if let previous {
            startDraining(previous)
        }
        enforceMaxGenerations()
        return dropped
    }

    private func startDraining(_ generation: Generation) {
        guard generation.state == .active else { return }
        generation.state = .draining
        generation.drainingSince = MonotonicClock.now()
        report("generation \(generation.id) draining: \(generation.sessions) sessions left", about: generation)
        if let ms = current?.config.config.global.hardStopAfter ?? generation.config.config.global.hardStopAfter {
            let deadline = DrainDeadline(engine: self, generation: generation)
            deadlines[generation.id] = deadline
            deadline.timer.arm(after: Double(ms) / 1000, on: loop)
        }
        retireIfIdle(generation)
    }

    /// `max-generations`: the oldest draining generations are closed first.
    private func enforceMaxGenerations() {
        let cap = current?.config.config.global.maxGenerations ?? 8
        while live.count > cap, let oldest = live.first(where: { $0.state == .draining }) {
            kill(oldest, reason: "max-generations \(cap) exceeded")
        }
    }

    /// Closes every session of a draining generation (counted as killed), then retires it.
    func kill(_ generation: Generation, reason: String) {
        let sessions = generation.sessionList.members
        report("generation \(generation.id): \(reason), killing \(sessions.count) sessions", about: generation)
        for s in sessions { s.kill() }
        retireIfIdle(generation)
    }

    func retireIfIdle(_ generation: Generation) {
        guard generation.state == .draining, generation.isIdle else { return }
        generation.state = .retired
        live.removeAll { $0 === generation }
        if let d = deadlines.removeValue(forKey: generation.id) { d.timer.release(on: loop) }
        report("generation \(generation.id) retired", about: generation)
        pruneCarriedState()
        if live.isEmpty, let stopping {
            self.stopping = nil
            stopping()
        }
    }

    /// Gives each proxy and server of the new generation the counters and state its identity
    /// already has, so a reload resets nothing. A generation built from the current one
    /// (`Generation(config:carryingFrom:)`, off the loop) took them already: only what it did not
    /// find there is looked up here.
    private func adoptCounters(_ generation: Generation) {
        // Servers that start with a fresh state: the carried ones meet their new line below.
        var fresh = Set<ObjectIdentifier>()
        if let from = generation.carriedFrom, let current, ObjectIdentifier(current) == from {
            for f in generation.unresolvedFrontends { adoptCounters(of: f) }
            for b in generation.unresolvedBackends { adoptCounters(of: b) }
            for s in generation.unresolvedServers where !adoptState(of: s) { fresh.insert(ObjectIdentifier(s)) }
        } else {
            for f in generation.frontends.values { adoptCounters(of: f) }
            for b in generation.backends.values {
                adoptCounters(of: b)
                for s in b.servers where !adoptState(of: s) { fresh.insert(ObjectIdentifier(s)) }
            }
        }
        generation.unresolvedFrontends = []
        generation.unresolvedBackends = []
        generation.unresolvedServers = []
        for b in generation.backends.values {
            for s in b.servers {
                s.state.newestBackend = b
                if !fresh.contains(ObjectIdentifier(s)) { healthMonitor.carry(s) }
            }
        }
    }

    private func adoptCounters(of f: Frontend) {
        if let c = frontendCounters[f.name] { f.counters = c } else { frontendCounters[f.name] = f.counters }
    }

    private func adoptCounters(of b: Backend) {
        if let c = backendCounters[b.name] { b.counters = c } else { backendCounters[b.name] = b.counters }
    }

    /// Gives `s` the state its identity already has; false when it has none (a new server).
    private func adoptState(of s: BackendServer) -> Bool {
        if let existing = serverStates[s.state.identity] {
            s.state = existing
            return true
        }
        serverStates[s.state.identity] = s.state
        return false
    }

    /// Forgets carried state that no live generation uses.
    private func pruneCarriedState() {
        // adoptCounters put every identity of `current` in the tables, so when their sizes are
        // the current generation's nothing else is in them: the common reload (same servers)
        // skips hashing every server identity twice (44 M instructions at 10,000 servers).
        if let current, frontendCounters.count == current.frontends.count,
           backendCounters.count == current.backends.count,
           serverStates.count == current.backends.values.reduce(0, { $0 + $1.servers.count })
        {
            return
        }
        var frontends = Set<String>(), backends = Set<String>(), servers = Set<ServerIdentity>()
        for g in live {
            frontends.formUnion(g.frontends.keys)
            for b in g.backends.values {
                backends.insert(b.name)
                for s in b.servers { servers.insert(s.state.identity) }
            }
        }
        frontendCounters = frontendCounters.filter { frontends.contains($0.key) }
        backendCounters = backendCounters.filter { backends.contains($0.key) }
        for (identity, state) in serverStates where !servers.contains(identity) { state.closeIdle() }
        serverStates = serverStates.filter { servers.contains($0.key) }
    }

    /// New connections and checks of `s`'s identity go to `new`, in every generation; a reload
    /// that keeps the identity keeps the move (`set server … addr`, a restored server state).
    func move(_ s: BackendServer, to new: ServerAddress) {
        let state = s.state
        state.runtimeAddress = new
        for g in liveGenerations {
            for b in g.backends.values {
                for other in b.servers where other.state === state {
                    other.config.address = new.address
                    other.config.port = new.port
                }
            }
        }
        // Pooled connections go to the old address.
        state.closeIdle()
    }

    /// Active and draining generations, oldest first.
    var liveGenerations: [Generation] { live }

    public var generations: [GenerationInfo] {
        let now = MonotonicClock.now()
        return live.map { g in
            GenerationInfo(id: g.id, state: g.state, ageSeconds: now - g.builtAt, sessions: g.sessions,
                           sessionsAccepted: g.sessionsAccepted, sessionsKilled: g.sessionsKilled,
                           listeners: g.listenerRefs, hash: g.config.hash)
        }
    }

    // MARK: sessions and admission

    func sessionStarted() { currentSessions += 1 }

    /// An HTTP client connection closed (its requests end separately).
    func connectionEnded() {
        currentSessions -= 1
        resumeWaitingListeners()
    }

    /// An HTTP request ended: its generation may retire.
    func requestEnded(in generation: Generation) {
        if generation.state == .draining { retireIfIdle(generation) }
    }

    private func resumeWaitingListeners() {
        if !limited.isEmpty {
            let waiting = limited
            limited.removeAll()
            for l in waiting { l.resume(.limit) }
        }
        if !starved.isEmpty { resumeStarved() }
    }

    func sessionEnded(in generation: Generation) {
        currentSessions -= 1
        resumeWaitingListeners()
        if generation.state == .draining { retireIfIdle(generation) }
    }

    /// Why a listener may not accept now, or nil.
    func admissionBlock(for frontend: Frontend) -> Listener.Pause? {
        if currentSessions >= globalMaxconn { return .limit }
        if let m = frontend.proxy.maxconn, m > 0, frontend.counters.currentSessions >= m { return .limit }
        return nil
    }

    func listenerLimited(_ listener: Listener) {
        if !limited.contains(where: { $0 === listener }) { limited.append(listener) }
    }

    func listenerStarved(_ listener: Listener) {
        if !starved.contains(where: { $0 === listener }) { starved.append(listener) }
        // Also retry later: fds may be freed outside the engine (another thread, a log socket).
        starvedRetry.arm(after: 0.1, on: loop)
    }

    private func resumeStarved() {
        let waiting = starved
        starved.removeAll()
        starvedRetry.stop(on: loop)
        for l in waiting { l.resume(.fdExhausted) }
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        if watcher == starvedRetry.raw {
            resumeStarved()
        } else if watcher == poolPurge.raw {
            let now = loop.now
            for state in serverStates.values { state.purgeIdle(now: now, maxIdle: Engine.idleServerConnectionLifetime) }
        }
    }

    // MARK: signals, pause, stop

    /// Calls `handler` on the loop's thread when one of `signals` arrives.
    public func onSignals(_ signals: [Int32], _ handler: @escaping (Int32) -> Void) {
        signalHandler = handler
        for s in signals {
            // An ignored disposition is inherited across exec and would discard the signal
            // before libev's signalfd sees it.
            Glibc.signal(s, SIG_DFL)
            signalWatchers.append(loop.makeSignalWatcher(s, handler: self))
        }
    }

    override func signalEvent(_ signal: Int32) { signalHandler?(signal) }

    /// Reports an event once: to the current generation's global `log` targets, then to `notice`.
    public func report(_ message: String, level: LogLevel = .notice) {
        report(message, level: level, to: current?.globalLog)
    }

    /// A generation's event goes to its own log targets once no generation is current (the last
    /// one retiring after a soft stop).
    func report(_ message: String, about generation: Generation) {
        report(message, level: .notice, to: (current ?? generation).globalLog)
    }

    /// Reports an event to `log` (a backend's, for its servers' state), then to `notice`.
    func report(_ message: String, level: LogLevel, to log: LogSinks?) {
        let logged = log?.send(message, level: level) ?? false
        notice(message, level, logged)
    }

    /// SIGTTOU: stop accepting on every listener (HAProxy's pause); queued connections wait.
    public func pauseListeners() {
        for l in listeners.values { l.pause(.signal) }
        report("listeners paused")
    }

    /// SIGTTIN: accept again.
    public func resumeListeners() {
        for l in listeners.values { l.resume(.signal) }
        report("listeners resumed")
    }

    /// SIGUSR1: stop listening (what is queued is served first), let every generation drain,
    /// then call `done`. Returns the listener keys to release.
    public func softStop(done: @escaping () -> Void) -> [ListenerKey] {
        var keys: [ListenerKey] = []
        for (key, l) in listeners {
            l.acceptPending(limit: nil)
            l.release()
            keys.append(key)
        }
        listeners.removeAll()
        healthMonitor.stopAll()
        stopping = done
        for g in live where g.state == .active { startDraining(g) }
        current = nil
        if live.isEmpty {
            stopping = nil
            done()
        }
        return keys
    }

    /// Stops the loop at once (SIGTERM/SIGINT): sessions are closed with the process.
    public func stop() { loop.stop() }
}

/// `hard-stop-after`: fires once when a draining generation's time is up.
final class DrainDeadline: EventHandler {
    unowned(unsafe) let engine: Engine
    weak var generation: Generation?
    var timer: TimerWatcher!

    init(engine: Engine, generation: Generation) {
        self.engine = engine
        self.generation = generation
        super.init()
        timer = TimerWatcher(handler: self)
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        guard let generation, generation.state == .draining else { return }
        engine.kill(generation, reason: "hard-stop-after reached")
    }
}
