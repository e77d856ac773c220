import CLibEV
import ConfigModel

/// A backend (or the back half of a `listen`) in one generation: its servers, balancer and queue.
final class Backend: @unchecked Sendable {
    let proxy: Proxy
    unowned(unsafe) var generation: Generation!
    /// The configuration's servers in order, then those added at runtime (`add server`), in the
    /// order they were added: a configuration server keeps its index (cookie persistence finds it
    /// by index). This is the control loop's list (admin commands, checks, the resolvers, the
    /// stats and the exporter read it); each data loop reads its own copy, `servers(on:)`.
    private(set) var servers: [BackendServer]
    /// The configuration's servers alone, never changed: what a reload's builder reads off the
    /// loop, and what a cookie's index names on any loop (`servers` changes on the control loop
    /// with `add server` and `del server`).
    let configuredServers: [BackendServer]
    /// Per-loop counters, shared with the same-named backend of every generation.
    var counters: CounterSet
    /// What each loop keeps of the backend for itself: its servers, its queue and its balancer.
    let shards: [BackendShard]
    /// The proxy's `log` targets: server state changes go there (a `listen` shares them with its frontend).
    let log: LogSinks

    /// HTTP mode: the compiled rules.
    let rules: HTTPRuleSet?
    /// `stick on|match|store-request` rules (set once while the generation is built).
    var stickRules: StickRuleSet?
    /// `tcp-response content` rules (mode tcp).
    var responseRules: TCPResponseRuleSet?
    /// `server … ssl sni EXPR` with a fetch: rendered per request.
    var serverName: HTTPServerName?
    /// A server line has `ssl` (its TLS context is made with the generation).
    let hasTLSServers: Bool
    /// A server line has `send-proxy*`: sessions give their connector the stream's addresses.
    let sendsProxy: Bool

    convenience init(proxy: Proxy, rules: HTTPRuleSet? = nil, loops: Int = 1) {
        var unresolved: [BackendServer] = [], changed: [BackendServer] = []
        self.init(proxy: proxy, rules: rules, previous: nil, unresolved: &unresolved, changed: &changed, loops: loops)
    }

    /// `previous`: the same-named backend of the generation serving now (read off the loop: its
    /// configuration's servers only, which nothing changes). A
    /// server whose identity it has takes its state; the others get a fresh one and are added to
    /// `unresolved` (activation looks them up among every live generation's servers). A server
    /// that takes a state and whose line's options differ from the line it takes it from is added
    /// to `changed`: activation meets that state with its new line (`ServerHealth.reconcile`);
    /// the state of an unchanged line is left as it is, so an activation touches only what changed.
    init(proxy: Proxy, rules: HTTPRuleSet?, previous: Backend?, unresolved: inout [BackendServer],
         changed: inout [BackendServer], loops: Int = 1) {
        self.proxy = proxy
        self.rules = rules
        let configured = proxy.servers
        let old = previous?.configuredServers ?? []
        var servers: [BackendServer] = []
        servers.reserveCapacity(configured.count)
        // Servers usually keep their place: compare with the one at the same index first, then by
        // name (the names are hashed only once a server moved).
        var byName: [String: Int]?
        var tls = false
        for i in configured.indices {
            if case .some = configured[i].options.tls { tls = true }
            var carried: ServerState?
            var lineChanged = false
            if !old.isEmpty {
                var j = i
                if j >= old.count || old[j].state.identity.server != configured[i].name {
                    if byName == nil {
                        var names: [String: Int] = [:]
                        names.reserveCapacity(old.count)
                        for k in old.indices { names[old[k].state.identity.server] = k }
                        byName = names
                    }
                    j = byName![configured[i].name] ?? -1
                }
                if j >= 0, old[j].state.identity.matches(configured[i]) {
                    carried = old[j].state
                    // The line it was met with is the old one (an activation meets every
                    // carried state with its line): compared here, off the loop.
                    if old[j].config.options != configured[i].options { lineChanged = true }
                }
            }
            let server = BackendServer(config: configured[i], backendName: proxy.name, carried: carried, loops: loops)
            server.index = i
            if carried == nil { unresolved.append(server) } else if lineChanged { changed.append(server) }
            servers.append(server)
        }
        self.servers = servers
        configuredServers = servers
        hasTLSServers = tls
        sendsProxy = configured.contains { $0.options.sendProxy != nil }
        counters = CounterSet(loops: loops, h2: true)
        shards = (0..<max(loops, 1)).map { _ in
            BackendShard(servers: servers, balancer: Balancer(algorithm: proxy.balance, hashType: proxy.http.hashType,
                                                                                   balanceFactor: proxy.http.hashBalanceFactor, servers: servers))
        }
        log = LogSinks(proxy.log.targets, tag: proxy.log.tag)
        for s in servers { s.backend = self }
    }

    var name: String { proxy.name }

    /// The servers `loop` picks from (its own copy of `servers`, changed on its own thread).
    @inline(__always)
    func servers(on loop: EventLoop) -> [BackendServer] { shards[loop.index].servers }

    // `add server` and `del server` change `servers` on the control loop while every data loop
    // picks from it: each loop has its own copy in its shard, with the balancer made over it, and
    // the control loop hands the new list to every loop (`Engine.onEveryLoop`), each taking it
    // and making its balancer again on its own thread. Not one array swapped under the loops (an
    // atomic pointer): a loop's balancer keeps per-server state by index (smooth round robin's
    // running weights, leastconn's last pick, the consistent-hash ring's points), so the list and
    // the balancer over it must change together, at one point of that loop's events, and a loop
    // must never walk a list that another thread frees. Nothing on the hot path changes: a pick
    // reads its loop's shard, as it did. And `onEveryLoop` waits for every loop: `add server`
    // answers once every loop may pick the server, `del server` once none may.

    /// A runtime server joins a generation no loop serves yet (a reload's, before activation):
    /// every shard takes the new list here, on the control loop, before the generation is posted.
    func join(_ server: BackendServer) {
        server.backend = self
        server.index = servers.count
        servers.append(server)
        for shard in shards { shard.serve(servers, proxy: proxy) }
        if server.config.options.check.enabled || server.config.options.check.agent.enabled { generation.checkedServers.append(server) }
    }

    /// `add server` on a backend the loops serve: a new list on every loop (the balancer starts
    /// afresh with it: a consistent-hash ring is made again).
    func add(_ server: BackendServer, engine: Engine) {
        server.backend = self
        server.index = servers.count
        servers.append(server)
        publishServers(engine)
    }

    /// `del server`, for a server added at runtime (after every configuration server).
    func remove(_ server: BackendServer, engine: Engine) {
        guard let i = servers.firstIndex(where: { $0 === server }), i >= configuredServers.count else { return }
        servers.remove(at: i)
        for j in i..<servers.count { servers[j].index = j }
        publishServers(engine)
    }

    private func publishServers(_ engine: Engine) {
        let list = UncheckedSendable(servers)
        _ = engine.onEveryLoop { [self] worker in shards[worker.index].serve(list.value, proxy: proxy) }
    }

    /// Servers with free slots first; nil when every usable server is full (queue) or none is usable.
    /// Active servers when one is usable, else the first usable backup, or every usable backup
    /// with `option allbackups`. `excluding` (redispatch) is skipped unless it is the only choice.
    /// `loop`'s balancer chooses (each loop balances on its own: roundrobin on every loop is
    /// roundrobin overall; leastconn reads every loop's sessions).
    func pickServer(on loop: EventLoop, excluding: BackendServer?, source: IPAddress?, hashKey: UInt64? = nil) -> ServerPick {
        let shard = shards[loop.index]
        shard.refresh(roundRobin: proxy.balance == .roundRobin || proxy.balance == .staticRoundRobin)
        let servers = shard.servers
        let usableActives = shard.usableActives
        let firstBackup = shard.firstBackup
        let excludedIsUsable = excluding.map { $0.isUsable && !$0.config.options.backup } ?? false
        let picked: BackendServer?
        if usableActives > 0 {
            let skip = excludedIsUsable && usableActives > 1 ? excluding : nil
            if shard.hasSchedule {
                picked = shard.nextScheduled(skipping: skip)
            } else {
                picked = shard.balancer.pick(servers, source: source, hashKey: hashKey) { $0.isUsable && !$0.config.options.backup && $0 !== skip }
            }
        } else if firstBackup != nil && proxy.checks.allBackups {
            picked = shard.balancer.pick(servers, source: source, hashKey: hashKey) { $0.isUsable && $0.config.options.backup }
        } else if let firstBackup {
            picked = shard.balancer.pick(servers, source: source, hashKey: hashKey) { $0 === firstBackup }
        } else {
            return .noServer
        }
        guard let picked else { return .full }
        picked.state.counters[loop].selected += 1
        return .server(picked)
    }

    /// After a failed connection attempt (`retry` of `retries` now counted): whether to redispatch
    /// at once rather than retry the same server, as HAProxy decides with `option redispatch`: the
    /// server is no longer usable, or the interval says so (every Nth retry when N > 0, the |N|th
    /// before the last when N < 0), or the server was a balancing choice (not persistence) among
    /// several active ones by an algorithm that is not a hash, so any other server will do.
    func redispatchesAfterFailure(of server: BackendServer, retry: Int, of retries: Int, persistent: Bool, on loop: EventLoop) -> Bool {
        guard let interval = proxy.redispatch, interval != 0 else { return false }
        if !server.isUsable { return true }
        if interval > 0 ? retry % interval == 0 : retry == retries + interval + 1 { return true }
        guard !persistent, !proxy.balance.isHash else { return false }
        var actives = 0
        for s in servers(on: loop) where s.isUsable && !s.config.options.backup {
            actives += 1
            if actives > 1 { return true }
        }
        return false
    }

    /// Sessions waiting in every loop's queue (qcur).
    var queued: Int { shards.reduce(0) { $0 + $1.queuedCount } }

    /// Queues `session` on its loop (`timeout queue`), noting the backend's qmax.
    func enqueue(_ session: ListedSession, on loop: EventLoop) {
        let shard = shards[loop.index]
        shard.queue.append(session)
        shard.published()
        let total = queued
        if total > counters[loop].queueMax { counters[loop].queueMax = total }
    }

    func dequeue(_ session: ListedSession, on loop: EventLoop) {
        let shard = shards[loop.index]
        shard.queue.remove(session)
        shard.published()
    }

    /// A slot freed on one of this backend's servers, on `loop`: that loop's queue is served,
    /// and so are other loops' when sessions wait there (told through their loop).
    func slotFreed(on loop: EventLoop) {
        serveQueue(on: loop)
        guard shards.count > 1, let loops = generation?.loops else { return }
        for i in shards.indices where i != loop.index && shards[i].queuedCount > 0 {
            loops[i].post { [self] in self.serveQueue(on: loops[i]) }
        }
    }

    /// Hands free slots to `loop`'s oldest queued sessions. A slot is taken before the session
    /// leaves the queue: another loop may have taken the last one since the pick.
    func serveQueue(on loop: EventLoop) {
        let shard = shards[loop.index]
        while let session = shard.queue.first {
            guard case .server(let s) = pickServer(on: loop, excluding: nil, source: session.balanceSource, hashKey: session.balanceKey),
                  s.takeSlot(on: loop) else { return }
            shard.queue.remove(session)
            shard.published()
            session.leftQueue(assigned: s)
        }
    }
}

/// What one loop keeps of a backend: the servers it picks from, its balancer over them, and its
/// queue of sessions waiting for a slot. Touched by that loop alone (the servers and balancer are
/// replaced on its thread: see `Backend.add`); the queue's length is published for the others.
final class BackendShard: @unchecked Sendable {
    @exclusivity(unchecked) private(set) var servers: [BackendServer]
    @exclusivity(unchecked) var queue = SessionQueue()
    @exclusivity(unchecked) var balancer: Balancer
    private let count = LoopLocalInts.allocate(1)

    init(servers: [BackendServer], balancer: Balancer) {
        self.servers = servers
        self.balancer = balancer
    }

    /// Takes a new list of servers and a balancer made over it (on this shard's loop).
    func serve(_ servers: [BackendServer], proxy: Proxy) {
        self.servers = servers
        balancer = Balancer(algorithm: proxy.balance, hashType: proxy.http.hashType, balanceFactor: proxy.http.hashBalanceFactor,
                            servers: servers)
        cachedVersion = -1
    }

    // What picks need of the servers' published health, computed when it changes (a health
    // version bump, a new server list) instead of at every pick: with 1,000 servers the scan per
    // request was a third of the CPU.
    @exclusivity(unchecked) private var cachedVersion = -1
    @exclusivity(unchecked) private(set) var usableActives = 0
    @exclusivity(unchecked) private(set) var firstBackup: BackendServer?
    /// roundrobin and static-rr: the usable actives (indexes into `servers`) in the order the
    /// smooth weighted round robin gives them, one period long; empty when too long to keep
    /// (then the balancer's scan decides).
    @exclusivity(unchecked) private var schedule: [Int32] = []
    @exclusivity(unchecked) private var cursor = 0
    /// Longest schedule kept, and most steps spent making one (servers × period).
    static let scheduleLimit = 1 << 16
    static let scheduleWork = 1 << 22

    var hasSchedule: Bool { !schedule.isEmpty }

    /// Recomputes the cache when a server's published health changed since it was made.
    @inline(__always)
    func refresh(roundRobin: Bool) {
        let version = ServerState.currentHealthVersion
        guard version != cachedVersion else { return }
        cachedVersion = version
        usableActives = 0
        firstBackup = nil
        var actives: [Int32] = []
        var weights: [Int] = []
        for (i, s) in servers.enumerated() where s.isUsable {
            if s.config.options.backup {
                if firstBackup == nil { firstBackup = s }
            } else {
                usableActives += 1
                if roundRobin, s.weight > 0 {
                    actives.append(Int32(i))
                    weights.append(s.weight)
                }
            }
        }
        schedule = roundRobin ? BackendShard.smoothWeightedPeriod(actives, weights) : []
        if !schedule.isEmpty { cursor %= schedule.count }
    }

    /// One period of smooth weighted round robin over `members` (the same sequence
    /// `Balancer.smoothWeighted` gives when no server is full): in order when the weights are
    /// equal; empty when the period or the work to make it is over the limits.
    static func smoothWeightedPeriod(_ members: [Int32], _ weights: [Int]) -> [Int32] {
        guard let first = weights.first else { return [] }
        if weights.allSatisfy({ $0 == first }) { return members }
        var divisor = first
        for w in weights { divisor = gcd(divisor, w) }
        let reduced = weights.map { $0 / divisor }
        let period = reduced.reduce(0, +)
        guard period <= scheduleLimit, period * members.count <= scheduleWork else { return [] }
        var current = [Int](repeating: 0, count: members.count)
        var out: [Int32] = []
        out.reserveCapacity(period)
        for _ in 0..<period {
            var best = 0
            for i in members.indices {
                current[i] += reduced[i]
                if current[i] > current[best] { best = i }
            }
            current[best] -= period
            out.append(members[best])
        }
        return out
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

    /// The next server of the schedule that is not full (nor `skip`), nil when all are full.
    @inline(__always)
    func nextScheduled(skipping skip: BackendServer?) -> BackendServer? {
        let n = schedule.count
        for _ in 0..<n {
            let s = servers[Int(schedule[cursor])]
            cursor = cursor + 1 == n ? 0 : cursor + 1
            if s !== skip, !s.isFull, s.isUsable { return s }
        }
        return nil
    }

    deinit { LoopLocalInts.deallocate(count) }

    /// The queue's length, from any thread.
    var queuedCount: Int { CLibEV_load(count) }

    func published() { CLibEV_store(count, queue.count) }
}

enum ServerPick {
    case server(BackendServer)
    /// Every usable server is at its maxconn: wait in the queue.
    case full
    /// No server is usable.
    case noServer
}
