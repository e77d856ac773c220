import CLibEV
import ConfigModel

/// A backend (or the back half of a `listen`) in one generation: its servers, balancer and queue.
final class Backend: @unchecked Sendable {
    let proxy: Proxy
    unowned(unsafe) var generation: Generation!
    let servers: [BackendServer]
    /// Per-loop counters, shared with the same-named backend of every generation.
    var counters: CounterSet
    /// What each loop keeps of the backend for itself: its queue and its balancer.
    let shards: [BackendShard]
    /// The proxy's `log` targets: server state changes go there (a `listen` shares them with its frontend).
    let log: LogSinks

    /// HTTP mode: the compiled rules.
    let rules: HTTPRuleSet?
    /// `server … ssl sni EXPR` with a fetch: rendered per request.
    var serverName: HTTPServerName?
    /// A server line has `ssl` (its TLS context is made with the generation).
    let hasTLSServers: Bool
    /// A server line has `send-proxy*`: sessions give their connector the stream's addresses.
    let sendsProxy: Bool

    convenience init(proxy: Proxy, rules: HTTPRuleSet? = nil, loops: Int = 1) {
        var unresolved: [BackendServer] = []
        self.init(proxy: proxy, rules: rules, previous: nil, unresolved: &unresolved, loops: loops)
    }

    /// `previous`: the same-named backend of the generation serving now (read off the loop). A
    /// server whose identity it has takes its state; the others get a fresh one and are added to
    /// `unresolved` (activation looks them up among every live generation's servers).
    init(proxy: Proxy, rules: HTTPRuleSet?, previous: Backend?, unresolved: inout [BackendServer], loops: Int = 1) {
        self.proxy = proxy
        self.rules = rules
        let configured = proxy.servers
        let old = previous?.servers ?? []
        var servers: [BackendServer] = []
        servers.reserveCapacity(configured.count)
        // Servers usually keep their place: compare with the one at the same index first, then by
        // name (the names are hashed only once a server moved).
        var byName: [String: Int]?
        var tls = false
        for i in configured.indices {
            if case .some = configured[i].options.tls { tls = true }
            var carried: ServerState?
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
                if j >= 0, old[j].state.identity.address == configured[i].address,
                   old[j].state.identity.port == configured[i].port
                {
                    carried = old[j].state
                }
            }
            let server = BackendServer(config: configured[i], backendName: proxy.name, carried: carried, loops: loops)
            server.index = i
            if carried == nil { unresolved.append(server) }
            servers.append(server)
        }
        self.servers = servers
        hasTLSServers = tls
        sendsProxy = configured.contains { $0.options.sendProxy != nil }
        counters = CounterSet(loops: loops)
        shards = (0..<max(loops, 1)).map { _ in
            BackendShard(balancer: Balancer(algorithm: proxy.balance, hashType: proxy.http.hashType, servers: servers))
        }
        log = LogSinks(proxy.log.targets)
        for s in servers { s.backend = self }
    }

    var name: String { proxy.name }

    /// Servers with free slots first; nil when every usable server is full (queue) or none is usable.
    /// Active servers when one is usable, else the first usable backup, or every usable backup
    /// with `option allbackups`. `excluding` (redispatch) is skipped unless it is the only choice.
    /// `loop`'s balancer chooses (each loop balances on its own: roundrobin on every loop is
    /// roundrobin overall; leastconn reads every loop's sessions).
    func pickServer(on loop: EventLoop, excluding: BackendServer?, source: IPAddress?, hashKey: UInt64? = nil) -> ServerPick {
        var usableActives = 0
        var firstBackup: BackendServer?
        var excludedIsUsable = false
        for s in servers where s.isUsable {
            if s.config.options.backup {
                if firstBackup == nil { firstBackup = s }
            } else {
                usableActives += 1
                if s === excluding { excludedIsUsable = true }
            }
        }
        let shard = shards[loop.index]
        let picked: BackendServer?
        if usableActives > 0 {
            let skip = excludedIsUsable && usableActives > 1 ? excluding : nil
            picked = shard.balancer.pick(servers, source: source, hashKey: hashKey) { $0.isUsable && !$0.config.options.backup && $0 !== skip }
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
    func redispatchesAfterFailure(of server: BackendServer, retry: Int, of retries: Int, persistent: Bool) -> Bool {
        guard let interval = proxy.redispatch, interval != 0 else { return false }
        if !server.isUsable { return true }
        if interval > 0 ? retry % interval == 0 : retry == retries + interval + 1 { return true }
        guard !persistent, !proxy.balance.isHash else { return false }
        var actives = 0
        for s in servers where s.isUsable && !s.config.options.backup {
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

/// What one loop keeps of a backend: its queue of sessions waiting for a slot, and its balancer.
/// Touched by that loop alone; the queue's length is published for the others.
final class BackendShard: @unchecked Sendable {
    @exclusivity(unchecked) var queue = SessionQueue()
    @exclusivity(unchecked) var balancer: Balancer
    private let count = LoopLocalInts.allocate(1)

    init(balancer: Balancer) {
        self.balancer = balancer
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
