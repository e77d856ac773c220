import CLibEV
import ConfigModel

/// The engine's side of a configuration generation: the configuration's proxies as runtime
/// objects (balancers, queues, log sinks), and the generation's live state. Sessions hold it
/// strongly for their whole life; listeners hold it while they serve it. Built off the loop by
/// `Engine.makeGeneration`.
public final class Generation: @unchecked Sendable {
    public let config: ConfigGeneration
    /// Its configuration's id, or the one it was given when it was built ahead of its use (a
    /// rollback's standby takes the next id only when the rollback happens).
    public var id: Int { assignedID ?? config.id }
    private var assignedID: Int?

    /// Gives a generation built ahead (never activated yet) the id it serves under. Control loop,
    /// before any data loop sees the generation.
    public func assign(id: Int) {
        precondition(state == .loading, "only a generation not yet activated takes an id")
        assignedID = id
    }
    /// CLOCK_MONOTONIC seconds when the engine took the loaded configuration: what its age counts from.
    let builtAt: Double

    // Bookkeeping owned by the control loop (admin socket, exporter, stats page read it there).
    var state: GenerationState = .loading
    /// Monotonic seconds when the generation started draining.
    var drainingSince: Double?
    /// The data loops that have nothing of it left (it retires when every loop is in).
    var releasedLoops = Set<Int>()

    /// The event loops the generation runs on, and what each of them keeps of it (its sessions,
    /// its listeners): a loop touches only its own shard.
    let loops: [EventLoop]
    let shards: [GenerationShard]

    let frontends: [String: Frontend]
    let backends: [String: Backend]
    /// The listener keys this generation serves, with the frontend behind each.
    let listenerFrontends: [ListenerKey: Frontend]
    /// How many binds it serves.
    public var listenerCount: Int { listenerFrontends.count }
    /// `bind … ssl`: the TLS context of each listener key that terminates TLS.
    let tlsContexts: [ListenerKey: TLSServerContext]
    let globalLog: LogSinks
    /// The stick tables its proxies declare, by name, with their configuration. They live
    /// outside the generation (`StickTableRegistry`): one kept by a reload is the same object
    /// in both generations.
    let stickTables: [String: (StickTable, StickTableConfig)]
    /// What the reload did to the tables the previous configuration had (one line each): a
    /// table kept with its entries, or started empty because its definition changed.
    public let stickTableChanges: [String]
    /// Whether a connection needs a `StickTracker` (some table exists).
    let tracksStickCounters: Bool
    /// The maps its converters read, by path; shared with the generation before it for each file
    /// that did not change (see SharedMap).
    let maps: [String: SharedMap]
    /// Its `cache` sections' stores, by name: the previous generation's own object when the
    /// section is unchanged (its entries carry on), else a new, empty one.
    let caches: [String: HTTPCache]

    /// What activation still has to look up in the engine's tables (on the loop): frontends,
    /// backends and servers whose counters and state were not found in the generation this one
    /// was built from (`carryingFrom`). Empty when everything was carried.
    var unresolvedFrontends: [Frontend] = []
    var unresolvedBackends: [Backend] = []
    var unresolvedServers: [BackendServer] = []
    /// Servers that took their state from the generation this one was built from and whose line
    /// changed (`Backend.init`): activation meets their state with the new line. A server whose
    /// line did not change keeps its state untouched (its state was met with that same line when
    /// the generation it came from was activated). A canary's stay listed until its promotion.
    var changedServers: [BackendServer] = []
    /// The servers with `check`, in the configuration's order (runtime servers joined before
    /// activation after them): what the health monitor starts or takes over at activation,
    /// listed off the loop.
    var checkedServers: [BackendServer] = []
    /// Every `cookie` value a server of a backend with cookie persistence has, under that
    /// backend's cookie name: what pins a request to a canary or to the active generation
    /// (`CanaryPins`).
    let persistenceCookies: Set<PersistenceCookie>
    /// A server line follows a name (`Server.fqdn`): service discovery has work at activation.
    /// Found when the generation is built, off the loop.
    let hasNamedServers: Bool
    /// The generation whose counters and server states this one took while it was built; nil
    /// when it took none (then activation looks every name and identity up).
    public let carriedFrom: ObjectIdentifier?

    /// Throws the errors of what only the engine can check (an HTTP rule's regular expression).
    /// `previous`: the generation serving now, read (never changed) off the loop so that every
    /// proxy and server whose name and identity it already has takes its counters and state now,
    /// and activation does no lookup for them. The caller keeps `previous` alive meanwhile.
    init(config: ConfigGeneration, carryingFrom previous: Generation? = nil, loops: [EventLoop],
         stickTables registry: StickTableRegistry? = nil) throws(ConfigErrors) {
        self.config = config
        self.loops = loops
        shards = loops.map { _ in GenerationShard() }
        let n = loops.count
        builtAt = MonotonicClock.now()
        carriedFrom = previous.map(ObjectIdentifier.init)
        let global = config.config.global
        globalLog = LogSinks(global.logTargets, tag: global.logTag)
        // Indexed access throughout: `for proxy in proxies` copies every Proxy (dozens of references).
        let proxies = config.config.proxies
        var stickTables: [String: (StickTable, StickTableConfig)] = [:]
        var tableObjects: [String: StickTable] = [:]
        var changes: [String] = []
        for i in proxies.indices {
            guard let t = proxies[i].stickTable else { continue }
            if let registry {
                let (table, carried, replaced) = registry.table(for: t)
                stickTables[t.name] = (table, t)
                if carried {
                    changes.append("stick-table '\(t.name)' kept with its entries")
                } else if replaced {
                    changes.append("stick-table '\(t.name)' changed (type, key length, size or stored data): it starts empty")
                }
            } else {
                stickTables[t.name] = (StickTable(t), t)
            }
            tableObjects[t.name] = stickTables[t.name]!.0
        }
        self.stickTables = stickTables
        tracksStickCounters = !stickTables.isEmpty
        // The maps: the previous generation's own object when the file is unchanged (its runtime
        // changes carry on), else a new one from the file.
        var maps: [String: SharedMap] = [:]
        for (path, file) in config.config.maps {
            if let old = previous?.maps[path], old.digest == file.digest {
                if old.slotCount == n + 1 {
                    old.require(file.matches, file.outputs)
                    maps[path] = old
                } else {
                    maps[path] = SharedMap(file, slots: n + 1, entriesOf: old)
                }
            } else {
                maps[path] = SharedMap(file, slots: n + 1)
            }
        }
        self.maps = maps
        var caches: [String: HTTPCache] = [:]
        for section in config.config.caches {
            if let old = previous?.caches[section.name], old.section.settings == section.settings {
                caches[section.name] = old
                changes.append("cache '\(section.name)' kept with its entries")
            } else {
                if previous?.caches[section.name] != nil {
                    changes.append("cache '\(section.name)' changed: it starts empty")
                }
                caches[section.name] = HTTPCache(section)
            }
        }
        self.caches = caches
        stickTableChanges = changes
        // One rule set per HTTP proxy: a `listen`'s front and back halves share it.
        var rules: [String: HTTPRuleSet] = [:]
        var errors: [ConfigError] = []
        for i in proxies.indices where proxies[i].mode == .http {
            do { rules[proxies[i].name + (proxies[i].kind != .frontend ? "/b" : "/f")] = try HTTPRuleSet(proxies[i], stickTables: tableObjects, maps: maps, caches: caches) } catch { errors.append(error) }
        }
        // The TCP layer's rules of each frontend that has some (any mode).
        var tcpRules: [String: TCPRuleSet] = [:]
        for i in proxies.indices where proxies[i].kind != .backend
            && (!proxies[i].tcp.connection.isEmpty || !proxies[i].tcp.content.isEmpty || !proxies[i].tcp.session.isEmpty
                || (proxies[i].mode == .tcp && !proxies[i].http.backendRules.isEmpty))
        {
            do throws(ConfigError) {
                let key = proxies[i].name + (proxies[i].kind != .frontend ? "/b" : "/f")
                let evaluator: HTTPRuleSet
                if let existing = rules[key] { evaluator = existing } else { evaluator = try HTTPRuleSet(proxies[i], stickTables: tableObjects, maps: maps, caches: caches) }
                tcpRules[proxies[i].name] = try TCPRuleSet(proxies[i], evaluator: evaluator, stickTables: tableObjects)
            } catch {
                errors.append(error)
            }
        }
        if !errors.isEmpty { throw ConfigErrors(errors) }
        var backends: [String: Backend] = [:]
        backends.reserveCapacity(proxies.count)
        var unresolvedBackends: [Backend] = []
        var unresolvedServers: [BackendServer] = []
        var changedServers: [BackendServer] = []
        var checkedServers: [BackendServer] = []
        var cookies = Set<PersistenceCookie>()
        var named = false
        for i in proxies.indices where proxies[i].kind != .frontend {
            let name = proxies[i].name
            let rules = proxies[i].mode == .http ? rules[name + "/b"] : nil
            let old = previous?.backends[name]
            let backend = Backend(proxy: proxies[i], rules: rules, previous: old, unresolved: &unresolvedServers,
                                  changed: &changedServers, loops: n)
            if !proxies[i].stickRules.isEmpty {
                do throws(ConfigError) {
                    let evaluator: HTTPRuleSet
                    if let rules { evaluator = rules } else { evaluator = try HTTPRuleSet(proxies[i], stickTables: tableObjects, caches: caches) }
                    backend.stickRules = try StickRuleSet(proxies[i], evaluator: evaluator, stickTables: tableObjects)
                } catch {
                    errors.append(error)
                }
            }
            if !proxies[i].tcp.response.isEmpty {
                do throws(ConfigError) {
                    let evaluator: HTTPRuleSet
                    if let rules { evaluator = rules } else { evaluator = try HTTPRuleSet(proxies[i], stickTables: tableObjects, maps: maps, caches: caches) }
                    backend.responseRules = try TCPResponseRuleSet(proxies[i], evaluator: evaluator, stickTables: tableObjects)
                } catch {
                    errors.append(error)
                }
            }
            if let old { backend.counters = old.counters } else { unresolvedBackends.append(backend) }
            backends[name] = backend
            for s in backend.servers where s.config.options.check.enabled || s.config.options.check.agent.enabled { checkedServers.append(s) }
            if !named { named = proxies[i].servers.contains { $0.fqdn != nil } }
            if let cookie = proxies[i].http.cookie {
                for s in proxies[i].servers.indices {
                    if let value = proxies[i].servers[s].options.cookie { cookies.insert(PersistenceCookie(name: cookie.name, value: value)) }
                }
            }
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
                                    tcpRules: tcpRules[name],
                                    log: listen ? backends[name]?.log : nil, loops: n)
            if let old = previous?.frontends[name] { frontend.counters = old.counters } else { unresolvedFrontends.append(frontend) }
            frontends[name] = frontend
            keys.reserveCapacity(keys.count + proxies[i].binds.count)
            for b in proxies[i].binds.indices {
                let key = ListenerKey(proxies[i].binds[b])
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
        self.changedServers = changedServers
        self.checkedServers = checkedServers
        persistenceCookies = cookies
        hasNamedServers = named
        let globalRates = global.maxConnectionRate != nil || global.maxSessionRate != nil
        for f in frontends.values {
            f.generation = self
            if globalRates { f.limitProcessRates() }
        }
        for b in backends.values { b.generation = self }
    }

    deinit { MemoryTrim.request() }

    /// Sessions alive now, every loop counted (TCP connections; in HTTP, requests in flight).
    var sessions: Int { shards.reduce(0) { $0 + $1.sessions } }
    var sessionsAccepted: Int { shards.reduce(0) { $0 + $1.sessionsAccepted } }
    /// Sessions closed at the `hard-stop-after` deadline or by `max-generations`.
    var sessionsKilled: Int { shards.reduce(0) { $0 + $1.sessionsKilled } }
    /// Listeners still pointing at this generation, every loop counted.
    var listenerRefs: Int { shards.reduce(0) { $0 + $1.listenerRefs } }
    /// Sessions that ended in an error of its making, every loop counted (`GenerationShard.errors`).
    var errors: Int { shards.reduce(0) { $0 + $1.errors } }

    /// `loop`'s shard.
    @inline(__always) func shard(_ loop: EventLoop) -> GenerationShard { shards[loop.index] }
}

/// What one event loop keeps of a generation: its sessions (an intrusive list for the kill path,
/// and counts) and the listeners pointing at it. Written by that loop alone; the counts are
/// published for the control loop (`show generations`, the exporter).
final class GenerationShard: @unchecked Sendable {
    @exclusivity(unchecked) var sessionList = SessionList()
    private let counts = LoopLocalInts.allocate(5)

    deinit { LoopLocalInts.deallocate(counts) }

    var sessions: Int {
        get { CLibEV_load(counts) }
        set { CLibEV_store(counts, newValue) }
    }
    var sessionsAccepted: Int {
        get { CLibEV_load(counts + 1) }
        set { CLibEV_store(counts + 1, newValue) }
    }
    var sessionsKilled: Int {
        get { CLibEV_load(counts + 2) }
        set { CLibEV_store(counts + 2, newValue) }
    }
    var listenerRefs: Int {
        get { CLibEV_load(counts + 3) }
        set { CLibEV_store(counts + 3, newValue) }
    }
    /// Sessions that ended in an error of the generation's making: an HTTP answer 5xx (its own
    /// or its server's), a server that could not be reached or reset the connection. What a
    /// canary's error share is measured with (`CanaryWatch`).
    var errors: Int {
        get { CLibEV_load(counts + 4) }
        set { CLibEV_store(counts + 4, newValue) }
    }

    /// Nothing on this loop holds the generation any more.
    var isIdle: Bool { sessions == 0 && listenerRefs == 0 }

    /// A session of this loop starts under the generation.
    @inline(__always)
    func begin(_ s: ListedSession) {
        sessions += 1
        sessionsAccepted += 1
        sessionList.insert(s)
    }

    @inline(__always)
    func end(_ s: ListedSession) {
        sessionList.remove(s)
        sessions -= 1
    }
}
