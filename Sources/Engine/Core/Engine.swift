import CLibEV
import ConfigModel
import Dispatch
import Glibc
import Synchronization

/// The process's proxy: the control loop (this object's `loop`, on the thread that calls `run`)
/// and the data loops (`workers`, a thread each). The control loop owns what is global: the live
/// generations and the current pointer as the admin socket sees them, the counters and server
/// states carried across reloads, health checks, the admin sockets, signals and reloads. Each
/// data loop owns its listeners and sessions and swaps its own reference to the current
/// generation when the control loop posts a new one (`onEveryLoop`). Every method runs on the
/// control loop's thread, except `makeGeneration` (pure: the reload builder's thread) and
/// `loop.post`; the few values the data loops read of it are shared as relaxed atomics.
public final class Engine: EventHandler, @unchecked Sendable {
    public let loop: EventLoop
    /// The data loops, `strata-loop-1` … `strata-loop-N` (set once, in `init`).
    private(set) var workers: [Worker] = []
    /// Their event loops, in order (what generations and per-loop state are sharded by).
    let workerLoops: [EventLoop]
    /// The generation new sessions start under (each data loop holds its own reference to it).
    public internal(set) var current: Generation?
    /// A canary beside `current` (`reload --canary`), with its share of new work in percent and
    /// what watches its errors (`--abort-on-errors`). See Canary.swift.
    public internal(set) var canary: Generation?
    var canaryShare = 0
    var canaryWatch: CanaryWatch?
    /// Called with the bind keys whose sockets no generation serves any more when the engine
    /// closes them by itself (a canary aborted or promoted): the daemon releases them from its
    /// listener cache.
    public var listenersClosed: ([ListenerKey]) -> Void = { _ in }
    /// Called with a line for systemd's `STATUS=` when a canary starts, changes or ends.
    public var statusChanged: (String) -> Void = { _ in }
    /// Active and draining generations, oldest first. Dropped when retired.
    var live: [Generation] = []
    /// What `rollback` restores: the configuration of the generation that was current before the
    /// current one, kept (as values: the parsed model with every file's bytes, certificates
    /// included) after that generation retires, so that a rollback reads no file. One is kept,
    /// none with `max-generations 1`.
    public private(set) var rollbackPoint: RollbackPoint?
    /// The daemon built the rollback point's generation ahead (a rollback now only binds and
    /// swaps): `show generations` says `prepared`.
    public var rollbackPrepared = false
    private var frontendCounters: [String: CounterSet] = [:]
    private var backendCounters: [String: CounterSet] = [:]
    /// Internal: a server added at runtime registers its state here (ServiceDiscovery).
    var serverStates: [ServerIdentity: ServerState] = [:]
    /// TLS session ticket keys and session caches by listener, carried across generations.
    var tlsStores: [ListenerKey: TLSSessionStore] = [:]
    private var deadlines: [Int: DrainDeadline] = [:]
    private var signalWatchers: [UnsafeMutablePointer<ev_signal>] = []
    private var signalHandler: ((Int32) -> Void)?
    private var stopping: (() -> Void)?
    /// Shared with the data loops: the connections of every loop (actconn, one read-modify-write
    /// per connection), then the process-wide `maxconn` (the control loop sets it per generation).
    private let shared = LoopLocalInts.allocate(2)
    /// What the fd limit allows: the process-wide limit of a generation without a global `maxconn`.
    private let defaultMaxconn: Int
    /// The CPUs each data loop may run on (`cpu-map`; empty: not pinned).
    private let cpuSets: [[Int]]
    private var threads: [pthread_t] = []
    /// The data loops run (before, `onEveryLoop` runs their part inline).
    private var running = false
    /// Where events are shown besides the log targets (the daemon's standard error, the stats
    /// page's event list): the message, its level, and whether a `log stdout|stderr` target
    /// already wrote it (then the terminal has it once already). Set by the daemon.
    public var notice: (_ message: String, _ level: LogLevel, _ logged: Bool) -> Void = { _, _, _ in }
    /// `show info`'s `Broker` line: the privilege broker's state, when there is one.
    public var brokerStatus: (() -> String)?
    /// Health checks (owned by the current generation) and server state changes.
    lazy var healthMonitor = HealthMonitor(engine: self)
    /// Servers that change at runtime: `resolvers`, templates, `add server` / `del server`.
    lazy var serviceDiscovery = ServiceDiscovery(engine: self)

    /// `loops`: the data loops (`nbthread`); `cpuSets[i]`: the CPUs loop i+1 is pinned to.
    public init(bufferSize: Int = 16384, loops: Int = 1, cpuSets: [[Int]] = [], defaultLoop: Bool = true) {
        loop = EventLoop(bufferSize: bufferSize, isDefault: defaultLoop)
        workerLoops = (0..<max(loops, 1)).map { EventLoop(bufferSize: bufferSize, isDefault: false, index: $0) }
        self.cpuSets = cpuSets
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        // Each session needs two fds; keep some for listeners, logs and the admin socket.
        defaultMaxconn = max(16, Int(min(limit.rlim_cur, 1 << 20)) / 2 - 32)
        super.init()
        CLibEV_store(shared + 1, defaultMaxconn)
        workers = workerLoops.map { Worker(engine: self, loop: $0) }
        // Every loop runs until `stop()`: the control loop with nothing to watch still answers
        // posts, and a data loop with no listener left still ends its sessions.
        ev_ref(loop.raw)
        for l in workerLoops { ev_ref(l.raw) }
    }

    deinit { LoopLocalInts.deallocate(shared) }

    /// Builds the runtime objects of a generation for this engine's data loops. Pure: runs on the
    /// reload builder's thread. `previous` (the generation current when the reload started, kept
    /// alive by the caller and only read) gives its counters and server states to what it has in
    /// common with the new one, so that activation looks up only what it does not have.
    public func makeGeneration(_ config: ConfigGeneration, carryingFrom previous: Generation? = nil) throws(ConfigErrors) -> Generation {
        try Generation(config: config, carryingFrom: previous, loops: workerLoops, stickTables: stickTables)
    }

    /// The stick tables, outside every generation: a reload keeps a table whose definition is
    /// unchanged, entries included (see StickTable).
    let stickTables = StickTableRegistry()
    lazy var stickTableExpiry = StickTableExpiry(registry: stickTables)

    /// A generation to check, not to serve (`strata -c`): what only the engine checks is checked.
    public static func checkGeneration(_ config: ConfigGeneration) throws(ConfigErrors) {
        _ = try Generation(config: config, loops: [])
    }

    /// The data loops' connections now (actconn).
    var connections: Int { CLibEV_load(shared) }
    /// The process-wide `maxconn` (global), or what the fd limit allows.
    var globalMaxconn: Int { CLibEV_load(shared + 1) }
    func connectionStarted() { _ = CLibEV_fetch_add(shared, 1) }
    /// `maxconnrate` / `maxsessrate`: the process's connections and sessions per second (every
    /// loop, every generation: a reload does not reset them).
    let connectionRate = RateLimiter()
    let sessionRate = RateLimiter()
    func connectionEnded() { _ = CLibEV_fetch_add(shared, -1) }
    /// Connections now, every loop counted (the log's %ac, `show info`'s CurrConns).
    var currentSessions: Int { connections }

    // MARK: the data loops

    /// Runs the data loops on their threads and the control loop on this one, until `stop()`.
    public func run() {
        startWorkers()
        loop.run()
        for w in workers { w.loop.post { w.loop.stop() } }
        for t in threads { pthread_join(t, nil) }
        threads = []
        running = false
    }

    private func startWorkers() {
        guard !running else { return }
        running = true
        for w in workers {
            let cpus = w.index < cpuSets.count ? cpuSets[w.index] : []
            let context = Unmanaged.passRetained(WorkerStart(worker: w, cpus: cpus)).toOpaque()
            var thread = pthread_t()
            pthread_create(&thread, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.run()
                return nil
            }, context)
            threads.append(thread)
        }
    }

    /// Runs `body` on every data loop's thread, one loop after the other being free to run, and
    /// waits for all of them (the control loop stops meanwhile; a data loop never waits for the
    /// control loop, so this cannot deadlock). Before the loops run, inline.
    func onEveryLoop<T>(_ body: @escaping (Worker) -> T) -> [T] {
        guard running else { return workers.map(body) }
        let results = ResultSlots<T>(count: workers.count)
        let done = Semaphore()
        let box = UncheckedSendable(body)
        for (i, w) in workers.enumerated() {
            w.loop.post {
                results.set(i, box.value(w))
                done.signal()
            }
        }
        for _ in workers { done.wait() }
        return results.values
    }


    // MARK: activation, drain and retire

    /// Makes `generation` current on every data loop: listeners whose key it keeps are pointed at
    /// it (their backlog included), new keys start listening on `listenerFDs` (each loop's own
    /// sockets), the previous generation drains. Returns the bind keys no generation serves any
    /// more (on any loop), their backlog already accepted: the caller releases their sockets.
    @discardableResult
    public func activate(_ generation: Generation, listenerFDs: [ListenerSocketKey: Int32],
                         announce: (_ closed: [ListenerKey]) -> Void = { _ in }) -> [ListenerKey] {
        // Per generation: a reload may raise, lower or remove it (nothing is sized by it).
        CLibEV_store(shared + 1, generation.config.config.global.maxconn ?? defaultMaxconn)
        serviceDiscovery.prepare(generation)
        adoptCounters(generation)
        adoptTLSStores(generation)
        adoptStickTables(generation)
        let previous = current
        current = generation
        // A canary promoted is live already.
        if generation.state != .canary { live.append(generation) }
        generation.state = .active
        if canary === generation {
            canary = nil
            canaryShare = 0
            canaryWatch?.stop()
            canaryWatch = nil
        }
        if let previous, previous !== generation {
            let cap = generation.config.config.global.maxGenerations
            rollbackPoint = cap > 1 ? RollbackPoint(previous) : nil
        }
        let fds = UncheckedSendable(listenerFDs)
        let target = UncheckedSendable(generation)
        let dropped = onEveryLoop { worker -> [ListenerKey] in
            // Each loop its own socket per bind; with `noreuseport`, loop 0's for every loop
            // (libev cannot ask for EPOLLEXCLUSIVE: every loop wakes, one accept wins). Looked
            // up for the keys the loop does not listen on yet only.
            worker.activate(target.value) { key in fds.value[ListenerSocketKey(bind: key, loop: key.reusePort ? worker.index : 0)] }
        }
        // The new generation's checkers take over before the previous one drains without any.
        healthMonitor.activate(generation)
        serviceDiscovery.activate(generation, previous: previous)
        // Between the swap and the drain: events read in order, the new generation's "active"
        // before the previous one's "draining".
        let closed = Array(Set(dropped.joined()))
        announce(closed)
        if let previous {
            startDraining(previous)
        }
        enforceMaxGenerations()
        generationActivated()
        return closed
    }

    /// Called after every activation (a reload, a rollback, a canary promoted): the daemon
    /// prepares the next rollback's generation then.
    public var generationActivated: () -> Void = {}

    /// Generations alive now (active, canary and draining): what `max-generations` bounds.
    public var liveCount: Int { live.count }

    func startDraining(_ generation: Generation) {
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

    /// A data loop has nothing of `generation` left (no session, no listener, not current).
    func loopReleased(_ generation: Generation, loop index: Int) {
        generation.releasedLoops.insert(index)
        retireIfIdle(generation)
    }

    /// `max-generations`: the oldest draining generations are closed first.
    func enforceMaxGenerations() {
        let cap = current?.config.config.global.maxGenerations ?? 8
        while live.count > cap, let oldest = live.first(where: { $0.state == .draining }) {
            kill(oldest, reason: "max-generations \(cap) exceeded")
            // A loop that could not let it go yet (a session that lingers in its close) tells
            // the control loop later: never spin here waiting for it.
            if oldest.state != .retired { break }
        }
    }

    /// Closes every session of a draining generation on every loop (counted as killed), then
    /// retires it.
    func kill(_ generation: Generation, reason: String) {
        report("generation \(generation.id): \(reason), killing \(generation.sessions) sessions", about: generation)
        let target = UncheckedSendable(generation)
        for (i, released) in onEveryLoop({ $0.kill(target.value) }).enumerated() where released {
            generation.releasedLoops.insert(i)
        }
        retireIfIdle(generation)
    }

    /// Retires a draining generation once every data loop let it go.
    func retireIfIdle(_ generation: Generation) {
        guard generation.state == .draining, generation.releasedLoops.count == workers.count else { return }
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
    /// find there is looked up here, and only the carried states whose line changed
    /// (`Generation.changedServers`, compared off the loop) meet their new line: an activation
    /// costs what changed, not what the configuration holds.
    /// `beside`: a canary, started beside the current generation: a server whose identity the
    /// current generation has keeps the current one's settings (weight, maintenance, check
    /// parameters) and messages until the canary is promoted — its line is met then — so that a
    /// canary changes nothing of the traffic it does not take, and an abort has nothing to undo.
    func adoptCounters(_ generation: Generation, beside: Bool = false) {
        // Carried states that must meet their line: those whose line changed, and those found
        // here (carried from another generation than the one this was built from).
        var reconcile = generation.changedServers
        if let from = generation.carriedFrom, let current, ObjectIdentifier(current) == from {
            for f in generation.unresolvedFrontends { adoptCounters(of: f) }
            for b in generation.unresolvedBackends { adoptCounters(of: b) }
            for s in generation.unresolvedServers where adoptState(of: s) { reconcile.append(s) }
        } else {
            // Built from another generation (or none): every name and identity is looked up, and
            // every carried state meets its line.
            reconcile = []
            for f in generation.frontends.values { adoptCounters(of: f) }
            for b in generation.backends.values {
                adoptCounters(of: b)
                for s in b.servers where adoptState(of: s) { reconcile.append(s) }
            }
        }
        generation.unresolvedFrontends = []
        generation.unresolvedBackends = []
        generation.unresolvedServers = []
        if beside {
            // Met at promotion (an activation of the same generation, carried from the same one).
            generation.changedServers = reconcile
            return
        }
        generation.changedServers = []
        for s in reconcile { healthMonitor.carry(s) }
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
        for (identity, state) in serverStates where !servers.contains(identity) { closeIdle(of: state) }
        serverStates = serverStates.filter { servers.contains($0.key) }
    }

    /// New connections and checks of `s`'s identity go to `new`, in every generation; a reload
    /// that keeps the identity keeps the move (`set server … addr`, a restored server state).
    func move(_ s: BackendServer, to new: ServerAddress) {
        s.state.runtimeAddress = new
        // Pooled connections go to the old address.
        closeIdle(of: s.state)
    }

    /// Closes `state`'s pooled connections, each loop its own.
    func closeIdle(of state: ServerState) {
        for w in workers {
            let target = UncheckedSendable(state)
            w.loop.post { target.value.closeIdle(on: w.loop) }
        }
    }

    /// The backend of the newest generation serving `server`'s state (health and address
    /// messages go to its log; its servers tell whether the backend has one left): the current
    /// generation's when it has the state (a canary's server the current one has keeps the
    /// current one's until promotion), else the canary's, else `server`'s own. Looked up when
    /// asked (on the control loop, a state change) rather than kept on every state: an
    /// activation then writes nothing per server.
    func newestBackend(of server: BackendServer) -> Backend {
        let state = server.state, name = server.backend.name
        func serving(_ g: Generation?) -> Backend? {
            guard let b = g?.backends[name] else { return nil }
            if b === server.backend { return b }
            let i = server.index
            if i < b.servers.count, b.servers[i].state === state { return b }
            return b.servers.contains { $0.state === state } ? b : nil
        }
        return serving(current) ?? serving(canary) ?? server.backend
    }

    /// Active and draining generations, oldest first.
    var liveGenerations: [Generation] { live }

    public var generations: [GenerationInfo] {
        let now = MonotonicClock.now()
        // Listeners are counted per bind: every loop has its own of each.
        return live.map { g in
            GenerationInfo(id: g.id, state: g.state, ageSeconds: now - g.builtAt, sessions: g.sessions,
                           sessionsAccepted: g.sessionsAccepted, sessionsKilled: g.sessionsKilled,
                           listeners: g.listenerRefs / max(workers.count, 1), hash: g.config.hash)
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

    /// Calls `body` on the control loop with the wait status once child process `pid` ends.
    /// On the control loop's thread (or before the engine runs).
    public func onChildExit(_ pid: Int32, _ body: @escaping (Int32) -> Void) {
        loop.watchChild(pid, body)
    }

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

    /// SIGTTOU: stop accepting on every listener of every loop (HAProxy's pause); queued
    /// connections wait.
    public func pauseListeners() {
        _ = onEveryLoop { $0.pauseListeners() }
        report("listeners paused")
    }

    /// SIGTTIN: accept again.
    public func resumeListeners() {
        _ = onEveryLoop { $0.resumeListeners() }
        report("listeners resumed")
    }

    /// `on-marked-down shutdown-sessions`: closes the sessions using the server, on every loop.
    func shutdownSessions(of state: ServerState) {
        let target = UncheckedSendable(state)
        _ = onEveryLoop { $0.shutdownSessions(of: target.value) }
    }

    /// SIGUSR1: stop listening (what is queued is served first), let every generation drain,
    /// then call `done`. Returns the bind keys whose sockets to release.
    public func softStop(done: @escaping () -> Void) -> [ListenerKey] {
        let keys = Array(Set(onEveryLoop { $0.stopListening() }.joined()))
        healthMonitor.stopAll()
        stopping = done
        // A canary drains with the rest (every loop forgot it in `stopListening`).
        if let c = canary {
            canaryWatch?.stop()
            canaryWatch = nil
            canary = nil
            canaryShare = 0
            c.state = .active
        }
        for g in live where g.state == .active { startDraining(g) }
        current = nil
        if live.isEmpty {
            stopping = nil
            done()
        }
        return keys
    }

    /// Stops the loops at once (SIGTERM/SIGINT): sessions are closed with the process.
    public func stop() { loop.stop() }
}

/// What a data loop's thread starts with.
private final class WorkerStart {
    let worker: Worker
    let cpus: [Int]

    init(worker: Worker, cpus: [Int]) {
        self.worker = worker
        self.cpus = cpus
    }

    func run() {
        _ = "strata-loop-\(worker.index + 1)".withCString { CLibEV_name_thread($0) }
        worker.threadID = Int(CLibEV_gettid())
        if !cpus.isEmpty {
            let list = cpus.map(Int32.init)
            _ = list.withUnsafeBufferPointer { CLibEV_pin_thread($0.baseAddress, Int32($0.count)) }
        }
        worker.loop.run()
    }
}

/// A value crossing to another loop's thread whose owner guarantees the access is safe (the
/// receiving loop is the only one to touch it meanwhile).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// The answers of every loop to `onEveryLoop`, each loop writing its own slot.
private final class ResultSlots<T>: @unchecked Sendable {
    private var slots: [T?]
    private let lock = Lock()

    init(count: Int) { slots = [T?](repeating: nil, count: count) }

    func set(_ i: Int, _ value: T) { lock.withLock { slots[i] = value } }
    var values: [T] { lock.withLock { slots.map { $0! } } }
}

private final class Semaphore: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    func signal() { semaphore.signal() }
    func wait() { semaphore.wait() }
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
