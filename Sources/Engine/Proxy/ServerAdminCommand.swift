import ConfigModel

/// Where `set server … addr` moved a server.
struct ServerAddress: Hashable, Sendable {
    var address: IPAddress
    var port: UInt16?
}

/// The runtime API's server commands (HAProxy's server.c and proxy.c: names, arguments, answers
/// and levels), parsed into a plain value so that parsing is tested without an engine.
enum ServerAdminCommand: Equatable {
    struct Target: Equatable {
        var backend: String
        var server: String

        /// The server in the current generation, or HAProxy's answer when there is none.
        func find(_ engine: Engine) -> Result<BackendServer, ServerAdminError> {
            guard let b = engine.current?.backends[backend] else { return .failure(ServerAdminError("No such backend.")) }
            guard let s = b.servers.first(where: { $0.name == server }) else { return .failure(ServerAdminError("No such server.")) }
            return .success(s)
        }
    }

    enum AdminState: Equatable { case ready, drain, maint }

    case showServersState(backend: String?)
    /// `show servers conn [BACKEND]`: each server's connections, in use and idle.
    case showServersConnections(backend: String?)
    case showBackends
    case getWeight(Target)
    case setState(Target, AdminState)
    /// `enable server` (= `set server … state ready`).
    case enableServer(Target)
    case setHealth(Target, ServerOperationalState)
    /// `set server … weight W` and `set weight … W`: `W` or `W%` of the configured weight.
    case setWeight(Target, String)
    case setAddress(Target, address: String, port: String?)
    case setChecks(Target, enabled: Bool)
    /// `enable agent`, `disable agent`.
    case setAgent(Target, enabled: Bool)
    /// `set server … agent up|down`.
    case forceAgent(Target, up: Bool)
    /// `set server … fqdn NAME`: the resolver follows another name.
    case setFQDN(Target, String)
    /// `del server B/S`.
    case deleteServer(Target)

    static let usage = "usage: set server <backend>/<server> addr | agent | fqdn | health | state | weight"

    /// The command `words` name, or the answer explaining why they are wrong; nil when the words
    /// are not a server command at all.
    static func parse(_ words: [String]) -> Result<ServerAdminCommand, ServerAdminError>? {
        func target(_ i: Int) -> Result<Target, ServerAdminError> {
            guard i < words.count, let slash = words[i].firstIndex(of: "/") else {
                return .failure(ServerAdminError("Require 'backend/server'."))
            }
            let text = words[i]
            return .success(Target(backend: String(text[..<slash]), server: String(text[text.index(after: slash)...])))
        }
        func with(_ i: Int, _ make: (Target) -> Result<ServerAdminCommand, ServerAdminError>) -> Result<ServerAdminCommand, ServerAdminError> {
            switch target(i) {
            case .success(let t): make(t)
            case .failure(let e): .failure(e)
            }
        }
        switch (words.first, words.dropFirst().first) {
        case ("show", "servers"):
            guard words.count >= 3 else { return nil }
            switch words[2] {
            case "state": return .success(.showServersState(backend: words.count > 3 ? words[3] : nil))
            case "conn": return .success(.showServersConnections(backend: words.count > 3 ? words[3] : nil))
            default: return nil
            }
        case ("del", "server"):
            return with(2) { .success(.deleteServer($0)) }
        case ("show", "backend"):
            return .success(.showBackends)
        case ("get", "weight"):
            return with(2) { .success(.getWeight($0)) }
        case ("disable", "server"):
            return with(2) { .success(.setState($0, .maint)) }
        case ("enable", "server"):
            return with(2) { .success(.enableServer($0)) }
        case ("disable", "health"):
            return with(2) { .success(.setChecks($0, enabled: false)) }
        case ("enable", "health"):
            return with(2) { .success(.setChecks($0, enabled: true)) }
        case ("disable", "agent"):
            return with(2) { .success(.setAgent($0, enabled: false)) }
        case ("enable", "agent"):
            return with(2) { .success(.setAgent($0, enabled: true)) }
        case ("set", "weight"):
            return with(2) { t in
                guard words.count > 3 else { return .failure(ServerAdminError("Require <weight> or <weight%>.")) }
                return .success(.setWeight(t, words[3]))
            }
        case ("set", "server"):
            return with(2) { t in
                let value = words.count > 4 ? words[4] : nil
                switch words.count > 3 ? words[3] : "" {
                case "state":
                    switch value {
                    case "ready": return .success(.setState(t, .ready))
                    case "drain": return .success(.setState(t, .drain))
                    case "maint": return .success(.setState(t, .maint))
                    default: return .failure(ServerAdminError("'set server <srv> state' expects 'ready', 'drain' and 'maint'."))
                    }
                case "health":
                    switch value {
                    case "up": return .success(.setHealth(t, .running))
                    case "stopping": return .success(.setHealth(t, .stopping))
                    case "down": return .success(.setHealth(t, .stopped))
                    default: return .failure(ServerAdminError("'set server <srv> health' expects 'up', 'stopping', or 'down'."))
                    }
                case "agent":
                    switch value {
                    case "up": return .success(.forceAgent(t, up: true))
                    case "down": return .success(.forceAgent(t, up: false))
                    default: return .failure(ServerAdminError("'set server <srv> agent' expects 'up' or 'down'."))
                    }
                case "weight":
                    guard let value else { return .failure(ServerAdminError("Require <weight> or <weight%>.")) }
                    return .success(.setWeight(t, value))
                case "fqdn":
                    guard let value, !value.isEmpty else { return .failure(ServerAdminError("set server <b>/<s> fqdn requires a FQDN.")) }
                    return .success(.setFQDN(t, value))
                case "addr":
                    guard let value else {
                        return .failure(ServerAdminError("set server <b>/<s> addr requires an address and optionally a port."))
                    }
                    var port: String?
                    if words.count > 5 && words[5] == "port" { port = words.count > 6 ? words[6] : "" }
                    return .success(.setAddress(t, address: value, port: port))
                default:
                    return .failure(ServerAdminError(usage))
                }
            }
        default:
            return nil
        }
    }

    /// HAProxy's weight argument: `N` (0-256) or `N%` of the configured weight; a static
    /// algorithm (map-based hashing, static-rr) accepts only 0 and the configured weight.
    static func weight(_ text: String, initial: Int, algorithm: BalanceAlgorithm) -> Result<Int, ServerAdminError> {
        let digits = text.prefix { $0.isNumber || $0 == "-" || $0 == "+" }
        guard !digits.isEmpty, var w = Int(digits) else {
            return .failure(ServerAdminError("Empty weight string empty or preceded by garbage"))
        }
        let rest = text.dropFirst(digits.count)
        if rest == "%" {
            guard w >= 0 else { return .failure(ServerAdminError("Relative weight must be positive.")) }
            w = min(initial * min(w, 25600) / 100, 256)
        } else if w < 0 || w > 256 {
            return .failure(ServerAdminError("Absolute weight can only be between 0 and 256 inclusive."))
        } else if !rest.isEmpty {
            return .failure(ServerAdminError("Trailing garbage in weight string"))
        }
        let dynamic: Bool
        switch algorithm {
        case .roundRobin, .leastConnections, .first, .random: dynamic = true
        default: dynamic = false
        }
        if w != 0 && w != initial && !dynamic {
            return .failure(ServerAdminError("Backend is using a static LB algorithm and only accepts weights '0%' and '100%'."))
        }
        return .success(w)
    }
}

/// An answer explaining why a command was refused (HAProxy's wording).
struct ServerAdminError: Error, Equatable {
    var message: String
    init(_ message: String) { self.message = message }
}

extension ServerAdminCommand {
    /// Reading is free, every change is admin's.
    static let adminCommands = [
        command(["show", "servers", "state"], "show servers state [<backend>]",
                "dump volatile server information (all or for a single backend)", level: .user),
        command(["show", "servers", "conn"], "show servers conn [<backend>]",
                "dump server connections status (all or for a single backend)", level: .user),
        command(["show", "backend"], "show backend", "list backends in the current running config", level: .user),
        command(["del", "server"], "del server <bk>/<srv>", "remove a dynamically added server"),
        command(["get", "weight"], "get weight <bk>/<srv>", "report a server's current weight", level: .user),
        command(["disable", "server"], "disable server <bk>/<srv>", "disable a server for maintenance (use 'set server' instead)"),
        command(["enable", "server"], "enable server <bk>/<srv>", "enable a disabled server (use 'set server' instead)"),
        command(["disable", "health"], "disable health <bk>/<srv>", "disable health checks"),
        command(["enable", "health"], "enable health <bk>/<srv>", "enable health checks"),
        command(["disable", "agent"], "disable agent <bk>/<srv>", "disable agent checks"),
        command(["enable", "agent"], "enable agent <bk>/<srv>", "enable agent checks"),
        command(["set", "server"], "set server <bk>/<srv> [opts]",
                "change a server's state (ready|drain|maint), health (up|stopping|down), agent (up|down), weight, addr or fqdn"),
        command(["set", "weight"], "set weight <bk>/<srv> <weight>[%]", "change a server's weight (use 'set server' instead)"),
    ]

    private static func command(_ words: [String], _ syntax: String, _ summary: String, level: AccessLevel = .admin) -> AdminCommand {
        AdminCommand(words, usage: (syntax, summary), level: level) { c in
            switch parse(c.words) {
            case nil: .unknown
            case .failure(let e)?: .text(e.message)
            case .success(let command)?:
                switch command.execute(on: c.engine) {
                case .success(let text): .text(text)
                case .failure(let e): .text(e.message)
                }
            }
        }
    }

    /// Runs the command on `engine`'s current generation (the stats page's admin form runs these
    /// too). Loop thread.
    func execute(on engine: Engine) -> Result<String, ServerAdminError> {
        switch self {
        case .showServersState(let name):
            return ServerAdminCommand.showServersState(engine, backend: name)
        case .showServersConnections(let name):
            return ServerAdminCommand.showServersConnections(engine, backend: name)
        case .setFQDN(let t, let name):
            return t.find(engine).flatMap { engine.serviceDiscovery.setFQDN($0, to: name) }
        case .deleteServer(let t):
            return t.find(engine).flatMap { engine.serviceDiscovery.deleteServer($0) }
        case .showBackends:
            return .success((["# name"] + ServerAdminCommand.backendsInOrder(engine).map(\.name)).joined(separator: "\n"))
        case .getWeight(let t):
            return t.find(engine).map { "\($0.state.health.weight) (initial \($0.state.health.initialWeight))" }
        case .setState(let t, let wanted):
            return t.find(engine).map { s in
                engine.healthMonitor.setAdminState(s, wanted)
                return ""
            }
        case .enableServer(let t):
            return ServerAdminCommand.setState(t, .ready).execute(on: engine)
        case .setHealth(let t, let state):
            return t.find(engine).map { s in
                engine.healthMonitor.change(s) { $0.force(state, now: MonotonicClock.now()) }
                return ""
            }
        case .setWeight(let t, let text):
            return t.find(engine).flatMap { s in
                ServerAdminCommand.weight(text, initial: s.state.health.initialWeight, algorithm: s.backend.proxy.balance).map { w in
                    engine.healthMonitor.change(s) { h in
                        h.setWeight(w)
                        return nil
                    }
                    return ""
                }
            }
        case .setAddress(let t, let addressText, let portText):
            return t.find(engine).flatMap { s in ServerAdminCommand.setAddress(engine, s, addressText, portText) }
        case .setChecks(let t, let enabled):
            return t.find(engine).map { s in
                s.state.health.setChecksEnabled(enabled)
                return ""
            }
        case .setAgent(let t, let enabled):
            return t.find(engine).flatMap { s in
                guard !enabled || s.state.health.agentConfigured else {
                    return .failure(ServerAdminError("Agent was not configured on this server, cannot enable."))
                }
                s.state.health.setAgentEnabled(enabled)
                return .success("")
            }
        case .forceAgent(let t, let up):
            return t.find(engine).flatMap { s in
                guard s.state.health.agentRuns else { return .failure(ServerAdminError("agent checks are not enabled on this server.")) }
                engine.healthMonitor.change(s) { $0.forceAgent(up: up, now: MonotonicClock.now()) }
                return .success("")
            }
        }
    }

    /// The current generation's backends in configuration order (`listen` sections included).
    private static func backendsInOrder(_ engine: Engine) -> [Backend] {
        guard let current = engine.current else { return [] }
        return current.config.config.proxies.compactMap { $0.isBackend ? current.backends[$0.name] : nil }
    }

    static let serversStateHeader = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port"

    /// HAProxy's `show servers state` (version 1), what `server-state-file` holds.
    private static func showServersState(_ engine: Engine, backend name: String?) -> Result<String, ServerAdminError> {
        var backends = backendsInOrder(engine)
        if let name {
            guard let b = backends.first(where: { $0.name == name }) else { return .failure(ServerAdminError("Can't find backend.")) }
            backends = [b]
        }
        let now = MonotonicClock.now()
        var lines = [serversStateHeader]
        for b in backends {
            for s in b.servers {
                let h = s.state.health
                let c = s.config
                let agent = c.options.check.agent
                let moved = s.address
                // The name it follows now (an SRV record's target, `set server … fqdn`), and the
                // SRV label of a template's server.
                let srv = c.fqdn?.hasPrefix("_") == true ? c.fqdn : nil
                let name = srv != nil ? s.state.runtimeFQDN ?? "" : s.state.runtimeFQDN ?? c.fqdn ?? (IPAddress(c.host) == nil ? c.host : "")
                let fqdn = name.isEmpty ? "-" : name
                let fields: [String] = [
                    "\(b.proxy.id)", b.name, "\(c.id)", c.name, s.state.hasAddress ? "\(moved.address)" : "-",
                    "\(h.operational.rawValue)", "\(h.admin.rawValue)", "\(h.weight)", "\(h.initialWeight)",
                    "\(max(0, Int(now - h.lastChange)))",
                    "\(h.lastCheck.status.rawValue)", "\(h.lastCheck.status.result.rawValue)", "\(h.health)", "\(h.checkStateFlags)",
                    "\(h.agentStateFlags)", "0", "0", fqdn, "\(moved.port ?? 0)", srv ?? "-", c.options.tls == nil ? "0" : "1",
                    "\(c.options.check.port ?? 0)", c.options.check.address.map { "\($0)" } ?? "-",
                    agent.enabled ? (agent.address ?? c.options.check.address).map { "\($0)" } ?? "-" : "-",
                    "\(agent.enabled ? agent.port ?? c.options.check.port ?? 0 : 0)",
                ]
                lines.append(fields.joined(separator: " "))
            }
        }
        return .success(lines.joined(separator: "\n"))
    }

    /// HAProxy's `show servers conn` columns: each server's sessions now and at most (`used_cur`,
    /// `used_max`), its pooled idle connections, and how long one may idle
    /// (`purge_delay`, ms), and each data loop's (`idle_per_thr[N]`: a column per loop, as
    /// HAProxy has one per thread), from the counts each loop publishes of its pool.
    private static func showServersConnections(_ engine: Engine, backend name: String?) -> Result<String, ServerAdminError> {
        var backends = backendsInOrder(engine)
        if let name {
            guard let b = backends.first(where: { $0.name == name || "\($0.proxy.id)" == name }) else {
                return .failure(ServerAdminError("Can't find backend."))
            }
            backends = [b]
        }
        var lines = ["# bkname/svname bkid/svid addr port - purge_delay used_cur used_max need_est unsafe_nb safe_nb idle_lim idle_cur idle_per_thr[\(engine.workerLoops.count)]"]
        let purge = Int(Worker.idleServerConnectionLifetime * 1000)
        for b in backends {
            for s in b.servers {
                let st = s.state
                let moved = s.address
                let perLoop = st.pools.map(\.count)
                let idle = perLoop.reduce(0, +)
                lines.append("\(b.name)/\(s.name) \(b.proxy.id)/\(s.config.id) \(st.hasAddress ? "\(moved.address)" : "-") \(moved.port ?? 0) - \(purge) \(st.currentSessions) \(st.maxSessions) "
                             // HAProxy's need_est, unsafe_nb, safe_nb and idle_lim: strata estimates no need beyond what
                             // is in use, every pooled connection has served a whole exchange ("safe"), and no
                             // pool-max-conn limits the pool (-1).
                             + "\(st.currentSessions) 0 \(idle) -1 \(idle) " + perLoop.map(String.init).joined(separator: " "))
            }
        }
        return .success(lines.joined(separator: "\n"))
    }

    /// `set server B/S addr IP [port P]`: new connections and checks go there; every generation
    /// with this identity follows, and a reload that leaves the server unchanged keeps it.
    private static func setAddress(_ engine: Engine, _ s: BackendServer, _ addressText: String,
                                   _ portText: String?) -> Result<String, ServerAdminError> {
        let by = " by 'stats socket command'"
        guard let address = IPAddress(addressText) else {
            return .failure(ServerAdminError("Invalid addr '\(addressText)'\(by)"))
        }
        let old = s.address
        var new = ServerAddress(address: address, port: old.port)
        var answer = address == old.address ? "no need to change the addr" : "IP changed from '\(old.address)' to '\(address)'"
        if let portText {
            if let p = UInt16(portText), p > 0 {
                new.port = p
                answer += p == old.port ? ", no need to change the port" : ", port changed from '\(old.port ?? 0)' to '\(p)'"
            } else {
                answer += ", problem converting port '\(portText)' to an int"
            }
        }
        // HAProxy's: the address is set (and resolution maintenance ends) even when unchanged.
        engine.setAddress(of: s, to: new, by: "stats socket command")
        return .success(answer + by)
    }
}
