import ConfigModel

/// The engine's side of a configuration generation: the configuration's proxies as runtime
/// objects (balancers, queues, log sinks). Sessions hold it strongly for their whole life;
/// listeners hold it while they serve it. Built off the loop by `Engine.makeGeneration`.
public final class Generation {
    public let config: ConfigGeneration
    public var id: Int { config.id }
    let frontends: [String: Frontend]
    let backends: [String: Backend]
    /// The listener keys this generation serves, with the frontend behind each.
    let listenerFrontends: [ListenerKey: Frontend]
    /// `bind … ssl`: the TLS context of each listener key that terminates TLS.
    let tlsContexts: [ListenerKey: TLSServerContext]
    let globalLog: LogSinks

    /// Sessions alive in this generation (intrusive list: the kill path walks it).
    var sessionList = SessionList()
    /// Listeners still pointing at this generation.
    var listenerRefs = 0

    /// What activation still has to look up in the engine's tables (on the loop): frontends,
    /// backends and servers whose counters and state were not found in the generation this one
    /// was built from (`carryingFrom`). Empty when everything was carried.
    var unresolvedFrontends: [Frontend] = []
    var unresolvedBackends: [Backend] = []
    var unresolvedServers: [BackendServer] = []
    /// The generation whose counters and server states this one took while it was built; nil
    /// when it took none (then activation looks every name and identity up).
    let carriedFrom: ObjectIdentifier?

    /// Throws the errors of what only the engine can check (an HTTP rule's regular expression).
    /// `previous`: the generation serving now, read (never changed) off the loop so that every
    /// proxy and server whose name and identity it already has takes its counters and state now,
    /// and activation does no lookup for them. The caller keeps `previous` alive meanwhile.
    init(config: ConfigGeneration, carryingFrom previous: Generation? = nil) throws(ConfigErrors) {
        self.config = config
        carriedFrom = previous.map(ObjectIdentifier.init)
        let global = config.config.global
        globalLog = LogSinks(global.logTargets)
        // Indexed access throughout: `for proxy in proxies` copies every Proxy (dozens of references).
        let proxies = config.config.proxies
        // One rule set per HTTP proxy: a `listen`'s front and back halves share it.
        var rules: [String: HTTPRuleSet] = [:]
        var errors: [ConfigError] = []
        for i in proxies.indices where proxies[i].mode == .http {
            do { rules[proxies[i].name + (proxies[i].kind != .frontend ? "/b" : "/f")] = try HTTPRuleSet(proxies[i]) } catch { errors.append(error) }
        }
        if !errors.isEmpty { throw ConfigErrors(errors) }
        var backends: [String: Backend] = [:]
        backends.reserveCapacity(proxies.count)
        var unresolvedBackends: [Backend] = []
        var unresolvedServers: [BackendServer] = []
        for i in proxies.indices where proxies[i].kind != .frontend {
            let name = proxies[i].name
            let rules = proxies[i].mode == .http ? rules[name + "/b"] : nil
            let old = previous?.backends[name]
            let backend = Backend(proxy: proxies[i], rules: rules, previous: old, unresolved: &unresolvedServers)
            if let old { backend.counters = old.counters } else { unresolvedBackends.append(backend) }
            backends[name] = backend
        }
        var frontends: [String: Frontend] = [:]
        frontends.reserveCapacity(proxies.count)
        var unresolvedFrontends: [Frontend] = []
        var keys: [ListenerKey: Frontend] = [:]
        var tlsContexts: [ListenerKey: TLSServerContext] = [:]
        for i in proxies.indices where proxies[i].kind != .backend && !proxies[i].disabled {
            let name = proxies[i].name
            let listen = proxies[i].kind == .listen
            let target = proxies[i].defaultBackend.flatMap { backends[$0] } ?? (listen ? backends[name] : nil)
            let frontend = Frontend(proxy: proxies[i], defaultBackend: target,
                                    rules: proxies[i].mode == .http ? rules[name + (listen ? "/b" : "/f")] : nil,
                                    log: listen ? backends[name]?.log : nil)
            if let old = previous?.frontends[name] { frontend.counters = old.counters } else { unresolvedFrontends.append(frontend) }
            frontends[name] = frontend
            keys.reserveCapacity(keys.count + proxies[i].binds.count)
            for b in proxies[i].binds.indices {
                let key = ListenerKey(proxies[i].binds[b], defaultBacklog: Frontend.defaultBacklog)
                keys[key] = frontend
                // TLS: certificates are decoded now, so a bad one fails the reload (rollback).
                if case .some = proxies[i].binds[b].tls {
                    do { tlsContexts[key] = try TLSServerContext(bind: proxies[i].binds[b], proxy: proxies[i], global: global) } catch { errors.append(error) }
                }
            }
        }
        for backend in backends.values where backend.hasTLSServers { errors += backend.makeTLSContexts(global: global) }
        if !errors.isEmpty { throw ConfigErrors(errors.sorted { ($0.location?.line ?? 0) < ($1.location?.line ?? 0) }) }
        self.tlsContexts = tlsContexts
        self.frontends = frontends
        self.backends = backends
        self.listenerFrontends = keys
        self.unresolvedFrontends = unresolvedFrontends
        self.unresolvedBackends = unresolvedBackends
        self.unresolvedServers = unresolvedServers
        for f in frontends.values { f.generation = self }
        for b in backends.values { b.generation = self }
    }

    deinit { MemoryTrim.request() }

    var state: GenerationState {
        get { config.state }
        set { config.state = newValue }
    }

    /// Nothing holds the generation for service any more: it may retire.
    var isIdle: Bool { config.sessions == 0 && listenerRefs == 0 }
}

/// A frontend (or the front half of a `listen`) in one generation.
final class Frontend {
    static let defaultBacklog = 1024
    let proxy: Proxy
    unowned(unsafe) var generation: Generation!
    let defaultBackend: Backend?
    /// Shared with the same-named frontend of every generation (set when the generation activates).
    var counters = ProxyCounters()
    let log: LogSinks
    /// The log line's format and options (`log-format`, `option httplog|tcplog`, …), compiled once.
    let logPlan: LogFormatPlan
    /// HTTP mode: the compiled rules (shared with the backend half of a `listen`).
    let rules: HTTPRuleSet?

    init(proxy: Proxy, defaultBackend: Backend?, rules: HTTPRuleSet? = nil, log: LogSinks? = nil) {
        self.proxy = proxy
        self.defaultBackend = defaultBackend
        self.rules = rules
        self.log = log ?? LogSinks(proxy.log.targets)
        logPlan = LogFormatPlan(proxy)
    }

    var name: String { proxy.name }
}

/// A backend (or the back half of a `listen`) in one generation: its servers, balancer and queue.
final class Backend {
    let proxy: Proxy
    unowned(unsafe) var generation: Generation!
    let servers: [BackendServer]
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

    /// `previous`: the same-named backend of the generation serving now (read off the loop). A
    /// server whose identity it has takes its state; the others get a fresh one and are added to
    /// `unresolved` (activation looks them up among every live generation's servers).
    init(proxy: Proxy, rules: HTTPRuleSet?, previous: Backend?, unresolved: inout [BackendServer]) {
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
            let server = BackendServer(config: configured[i], backendName: proxy.name, carried: carried)
            if carried == nil { unresolved.append(server) }
            servers.append(server)
        }
        self.servers = servers
        hasTLSServers = tls
        balancer = Balancer(algorithm: proxy.balance, hashType: proxy.http.hashType, servers: servers)
        log = LogSinks(proxy.log.targets)
        for s in servers { s.backend = self }
    }

    var name: String { proxy.name }

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

/// A `server` line in one generation, bound to the state its identity carries.
final class BackendServer {
    /// The server line; `set server … addr` rewrites its address and port (the identity keeps
    /// the configured ones).
    var config: ConfigModel.Server
    unowned(unsafe) var backend: Backend!
    var state: ServerState
    /// `ssl`: connections to the server use TLS.
    var tls: TLSClientContext?
    /// Smooth weighted round-robin's running weight.
    var currentWeight = 0

    /// `carried`: the state of the same identity in the generation serving now; nil for a new one.
    init(config: ConfigModel.Server, backendName: String, carried: ServerState? = nil) {
        self.config = config
        if let carried {
            state = carried
        } else {
            state = ServerState(identity: ServerIdentity(backend: backendName, server: config.name,
                                                         address: config.address, port: config.port))
            state.health = ServerHealth(options: config.options, now: ConfigGeneration.monotonicNow())
        }
    }

    var name: String { config.name }

    /// A session takes a slot on this server (HAProxy's scur, stot, smax).
    func takeSlot() {
        state.currentSessions += 1
        state.totalSessions += 1
        if state.currentSessions > state.maxSessions { state.maxSessions = state.currentSessions }
    }

    /// A session gives its slot back: the queues waiting for this server (its generation's and the
    /// newest one's) are served.
    func releaseSlot() {
        state.currentSessions -= 1
        backend.serveQueue()
        if let newest = state.newestBackend, newest !== backend { newest.serveQueue() }
    }
    /// The weight in effect (`set weight` changes it at runtime).
    var weight: Int { state.health.weight }
    /// UP (or starting), not in maintenance or drain, weight above 0.
    var isUsable: Bool { state.health.isUsable }
    /// A persistence cookie may still choose it (DRAIN and stopping servers included).
    var acceptsPersistentTraffic: Bool { state.health.acceptsPersistentTraffic }
    var isFull: Bool {
        guard let maxconn = config.options.maxconn, maxconn > 0 else { return false }
        return state.currentSessions >= maxconn
    }
}
