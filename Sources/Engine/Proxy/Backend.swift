import ConfigModel

/// A backend (or the back half of a `listen`) in one generation: its servers, balancer and queue.
final class Backend {
    let proxy: Proxy
    unowned(unsafe) var generation: Generation!
    /// The configuration's servers in order, then those added at runtime (`add server`), in the
    /// order they were added: a configuration server keeps its index (cookie persistence finds it
    /// by index).
    private(set) var servers: [BackendServer]
    /// The configuration's servers alone, never changed: what a reload's builder reads off the
    /// loop (`servers` changes on the loop with `add server` and `del server`).
    let configuredServers: [BackendServer]
    var counters = ProxyCounters()
    /// Sessions waiting for a server slot (maxconn), oldest first.
    var queue = SessionQueue()
    var balancer: Balancer
    /// The proxy's `log` targets: server state changes go there (a `listen` shares them with its frontend).
    let log: LogSinks

    /// HTTP mode: the compiled rules.
    let rules: HTTPRuleSet?
    /// `server … ssl sni EXPR` with a fetch: rendered per request.
    var serverName: HTTPServerName?
    /// A server line has `ssl` (its TLS context is made with the generation).
    let hasTLSServers: Bool

    convenience init(proxy: Proxy, rules: HTTPRuleSet? = nil) {
        var unresolved: [BackendServer] = []
        self.init(proxy: proxy, rules: rules, previous: nil, unresolved: &unresolved)
    }

    /// `previous`: the same-named backend of the generation serving now (read off the loop: its
    /// configuration's servers only, which nothing changes). A
    /// server whose identity it has takes its state; the others get a fresh one and are added to
    /// `unresolved` (activation looks them up among every live generation's servers).
    init(proxy: Proxy, rules: HTTPRuleSet?, previous: Backend?, unresolved: inout [BackendServer]) {
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
                }
            }
            let server = BackendServer(config: configured[i], backendName: proxy.name, carried: carried)
            if carried == nil { unresolved.append(server) }
            servers.append(server)
        }
        self.servers = servers
        configuredServers = servers
        hasTLSServers = tls
        balancer = Balancer(algorithm: proxy.balance, hashType: proxy.http.hashType, servers: servers)
        log = LogSinks(proxy.log.targets)
        for s in servers { s.backend = self }
    }

    var name: String { proxy.name }

    /// `add server` (or a runtime server joining a new generation): the balancer starts afresh
    /// with it (a consistent-hash ring is made again).
    func add(_ server: BackendServer) {
        server.backend = self
        servers.append(server)
        balancer = Balancer(algorithm: proxy.balance, hashType: proxy.http.hashType, servers: servers)
    }

    /// `del server`, for a server added at runtime (after every configuration server).
    func remove(_ server: BackendServer) {
        guard let i = servers.firstIndex(where: { $0 === server }), i >= proxy.servers.count else { return }
        servers.remove(at: i)
        balancer = Balancer(algorithm: proxy.balance, hashType: proxy.http.hashType, servers: servers)
    }

    /// Servers with free slots first; nil when every usable server is full (queue) or none is usable.
    /// Active servers when one is usable, else the first usable backup, or every usable backup
    /// with `option allbackups`. `excluding` (redispatch) is skipped unless it is the only choice.
    func pickServer(excluding: BackendServer?, source: IPAddress?, hashKey: UInt64? = nil) -> ServerPick {
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
        let picked: BackendServer?
        if usableActives > 0 {
            let skip = excludedIsUsable && usableActives > 1 ? excluding : nil
            picked = balancer.pick(servers, source: source, hashKey: hashKey) { $0.isUsable && !$0.config.options.backup && $0 !== skip }
        } else if firstBackup != nil && proxy.checks.allBackups {
            picked = balancer.pick(servers, source: source, hashKey: hashKey) { $0.isUsable && $0.config.options.backup }
        } else if let firstBackup {
            picked = balancer.pick(servers, source: source, hashKey: hashKey) { $0 === firstBackup }
        } else {
            return .noServer
        }
        guard let picked else { return .full }
        picked.state.selected += 1
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

    /// A slot freed on one of this backend's servers: hand it to the oldest queued session.
    func serveQueue() {
        while let session = queue.first {
            guard case .server(let s) = pickServer(excluding: nil, source: session.balanceSource, hashKey: session.balanceKey) else { return }
            queue.remove(session)
            session.leftQueue(assigned: s)
        }
    }
}

enum ServerPick {
    case server(BackendServer)
    /// Every usable server is at its maxconn: wait in the queue.
    case full
    /// No server is usable.
    case noServer
}
