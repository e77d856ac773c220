import CLibEV
import ConfigModel
import Glibc

/// The engine's health checking: one checker per server identity, owned by the newest
/// generation (a draining generation runs none), and every change of a server's state with its
/// consequences: the transition log line in HAProxy's words, `backend … has no server
/// available!`, queued sessions served when a server comes back, `on-marked-down
/// shutdown-sessions`, and `observe` errors from live traffic.
final class HealthMonitor: EventHandler {
    unowned(unsafe) let engine: Engine
    private(set) var checkers: [ServerIdentity: HealthChecker] = [:]
    /// The agent checkers (`agent-check`), one per identity too, beside the health checkers.
    private(set) var agents: [ServerIdentity: HealthChecker] = [:]
    /// Work that must not run inside the caller (a session reporting an error must not be
    /// killed under its own feet): done on the next loop iteration.
    private let deferred = TimerWatcher(handler: EventHandler())
    private var pendingShutdowns: [ServerState] = []
    private var pendingQueues: [Backend] = []

    init(engine: Engine) {
        self.engine = engine
        super.init()
        deferred.setHandler(self)
    }

    var checkerCount: Int { checkers.count + agents.count }
    func checker(for identity: ServerIdentity) -> HealthChecker? { checkers[identity] }
    func agent(for identity: ServerIdentity) -> HealthChecker? { agents[identity] }

    private var now: Double { MonotonicClock.now() }

    // MARK: generations

    /// `generation` became current: checkers of identities it keeps check for it from now on
    /// (same phase, same counters), new ones start spread over the smallest `inter`, the others
    /// stop. Called before the previous generation drains, so it holds no checker.
    func activate(_ generation: Generation) {
        // Listed when the generation was built (off the loop): the loop does nothing for a
        // server without `check` or `agent-check`.
        let order = generation.checkedServers
        checkers = settle(checkers, order.filter { $0.config.options.check.enabled }, role: .health, for: generation)
        agents = settle(agents, order.filter { $0.config.options.check.agent.enabled }, role: .agent, for: generation)
    }

    /// The checkers of one role once `generation` is current: kept identities rebound, new ones
    /// started, the others stopped.
    private func settle(_ running: [ServerIdentity: HealthChecker], _ order: [BackendServer], role: HealthChecker.Role,
                        for generation: Generation) -> [ServerIdentity: HealthChecker] {
        var table = running
        var wanted: [ServerIdentity: BackendServer] = [:]
        wanted.reserveCapacity(order.count)
        for s in order { wanted[s.state.identity] = s }
        for (identity, checker) in table where wanted[identity] == nil {
            checker.stop()
            table[identity] = nil
        }
        let fresh = order.filter { table[$0.state.identity] == nil }
        let minInter = fresh.map { Double(max(Self.interval(of: $0, role), 1)) / 1000 }.min() ?? 0
        var position = 0
        for s in order {
            if let existing = table[s.state.identity] {
                existing.rebind(generation, server: s)
            } else {
                let checker = HealthChecker(monitor: self, generation: generation, server: s, role: role)
                table[s.state.identity] = checker
                // HAProxy spreads the first checks: server k of n starts after k/n of the smallest inter.
                checker.start(after: minInter * Double(position) / Double(max(fresh.count, 1)))
                position += 1
            }
        }
        return table
    }

    private static func interval(of server: BackendServer, _ role: HealthChecker.Role) -> Int {
        role == .agent ? server.config.options.check.agent.interval : server.config.options.check.interval
    }

    /// `add server … check`: a checker for one more server of the current generation (it checks
    /// once `enable health` turns checks on).
    func startChecking(_ server: BackendServer, for generation: Generation) {
        let identity = server.state.identity
        if server.config.options.check.enabled && checkers[identity] == nil {
            let checker = HealthChecker(monitor: self, generation: generation, server: server)
            checkers[identity] = checker
            checker.start(after: 0)
        }
        if server.config.options.check.agent.enabled && agents[identity] == nil {
            let agent = HealthChecker(monitor: self, generation: generation, server: server, role: .agent)
            agents[identity] = agent
            agent.start(after: 0)
        }
    }

    /// `del server`: its checkers stop.
    func stopChecking(_ identity: ServerIdentity) {
        checkers.removeValue(forKey: identity)?.stop()
        agents.removeValue(forKey: identity)?.stop()
    }

    /// A canary starts beside the current generation: servers only it has are checked for it
    /// (the current generation keeps every checker it has; `activate` settles who checks what
    /// when the canary is promoted or aborted).
    func include(_ generation: Generation) {
        checkers = includeFresh(checkers, generation.checkedServers.filter { $0.config.options.check.enabled }, role: .health, for: generation)
        agents = includeFresh(agents, generation.checkedServers.filter { $0.config.options.check.agent.enabled }, role: .agent, for: generation)
    }

    private func includeFresh(_ running: [ServerIdentity: HealthChecker], _ servers: [BackendServer], role: HealthChecker.Role,
                              for generation: Generation) -> [ServerIdentity: HealthChecker] {
        var table = running
        let fresh = servers.filter { table[$0.state.identity] == nil }
        let minInter = fresh.map { Double(max(Self.interval(of: $0, role), 1)) / 1000 }.min() ?? 0
        for (position, s) in fresh.enumerated() {
            let checker = HealthChecker(monitor: self, generation: generation, server: s, role: role)
            table[s.state.identity] = checker
            checker.start(after: minInter * Double(position) / Double(max(fresh.count, 1)))
        }
        return table
    }

    /// A reload kept `server`'s identity: the carried state meets the new configuration (a
    /// setting the configuration changed wins over the runtime one), and the address the admin
    /// socket set still applies.
    func carry(_ server: BackendServer) {
        if let transition = server.state.health.reconcile(with: server.config.options, now: now) {
            log(transition, server: server, in: server.backend)
        }
    }

    /// Soft stop: no generation is current, no check runs.
    func stopAll() {
        for c in checkers.values { c.stop() }
        for c in agents.values { c.stop() }
        checkers.removeAll()
        agents.removeAll()
    }

    // MARK: changes

    /// A check ended.
    func record(_ outcome: HealthCheckOutcome, for checker: HealthChecker) {
        checked(checker.server, outcome)
    }

    /// Records a check's result (`prepare` first adjusts the health, for `observe`), with HAProxy's
    /// check line before any transition under `option log-health-checks` (set_server_check_status):
    /// a result that changes the check's status or moves its health is logged, a neutral one (an
    /// agent line without a health word) never.
    private func checked(_ server: BackendServer, _ outcome: HealthCheckOutcome, agent: Bool = false,
                         prepare: (inout ServerHealth) -> Void = { _ in }) {
        let backend = engine.newestBackend(of: server)
        let logged = backend.proxy.checks.logHealthChecks
        change(server) { h in
            prepare(&h)
            let previous = agent ? h.lastAgentCheck.status : h.lastCheck.status
            let before = agent ? h.agentHealth : h.health
            let transition = agent ? h.recordAgent(outcome, now: now) : h.record(outcome, now: now)
            let after = agent ? h.agentHealth : h.health
            let result = outcome.status.result
            if logged, result != .neutral, result != .unknown, outcome.status != previous || after != before {
                // Only the value `h` here: the server's state is being changed.
                let message = HealthMonitor.checkMessage(outcome, agent: agent, health: after, rise: agent ? 1 : h.rise,
                                                         fall: agent ? 1 : h.fall, weight: h.weight, server: server, in: backend)
                engine.report(message, level: .notice, to: backend.log)
            }
            return transition
        }
    }

    /// An agent check ended, with the line the agent answered (nil: none came, or not a whole
    /// one). HAProxy's order: the admin state first, then the weight and maxconn, then the health
    /// word (`down`, `fail`, `stopped` with the `#` text as the reason; `up`), an unknown word or a
    /// refused value in the check's text.
    func recordAgent(_ result: HealthCheckOutcome, line: String?, for checker: HealthChecker) {
        let server = checker.server
        guard let line else {
            if result.status == .checked {
                // A line cut short: the last status stays, the text says why.
                server.state.health.noteAgent(info: result.info, duration: result.duration)
            } else {
                // Not reaching the agent is no error: the health check tests connectivity.
                checked(server, result, agent: true)
            }
            return
        }
        let reply = AgentReply(line)
        if let admin = reply.admin { setAdminState(server, admin) }
        var warning: String?
        if let text = reply.weight {
            switch ServerAdminCommand.weight(text, initial: server.state.health.initialWeight, algorithm: server.backend.proxy.balance) {
            case .success(let w):
                change(server) { h in
                    h.setWeight(w)
                    return nil
                }
            case .failure(let e):
                warning = e.message
            }
        }
        if let text = reply.maxconn {
            switch AgentReply.maxconn(text) {
            case .success(let n):
                server.state.health.setMaxconn(n)
                // A higher maxconn may serve the sessions queued for the server at once.
                later { $0.pendingQueues.append(engine.newestBackend(of: server)) }
            case .failure(let e):
                if warning == nil { warning = e.message }
            }
        }
        var outcome = result
        switch reply.health {
        case let word?:
            let (status, said): (HealthCheckStatus, String) = switch word {
            case .up(let w): (.layer7OK, w)
            case .down(let w): (.layer7Status, w)
            }
            // A DOWN's own text stays; otherwise an unknown word, then a warning, say more.
            var text = reply.description
            if text.isEmpty || status == .layer7OK { text = reply.firstUnknown ?? warning ?? text }
            outcome.status = status
            outcome.info = "via agent : \(said)" + (text.isEmpty ? "" : " (\(text))")
        case nil:
            if let unknown = reply.firstUnknown {
                outcome.info = "agent reports an error : \(unknown)"
            } else if let warning {
                outcome.info = "agent warns : \(warning)"
            }
        }
        checked(server, outcome, agent: true)
    }

    /// `set server … state ready|drain|maint`, and an agent's `ready`, `drain`, `maint`: drain and
    /// maintenance exclude each other, ready ends both (HAProxy's srv_adm_set_*).
    func setAdminState(_ server: BackendServer, _ wanted: ServerAdminCommand.AdminState) {
        switch wanted {
        case .ready:
            change(server) { $0.leaveDrain(now: now) }
            change(server) { $0.leaveMaintenance(now: now) }
        case .drain:
            change(server) { $0.enterDrain(now: now) }
            change(server) { $0.leaveMaintenance(now: now) }
        case .maint:
            change(server) { $0.enterMaintenance(now: now) }
            change(server) { $0.leaveDrain(now: now) }
        }
    }

    /// Applies a change to `server`'s state and does what follows from it: the log line, the
    /// backend's alert when nothing is left, queued sessions when the server can take them,
    /// sessions closed when it goes DOWN with `on-marked-down shutdown-sessions`.
    @discardableResult
    func change(_ server: BackendServer, _ body: (inout ServerHealth) -> HealthTransition?) -> HealthTransition? {
        let backend = engine.newestBackend(of: server)
        let usableBefore = backend.servers.contains { $0.isUsable }
        let wasUsable = server.isUsable
        let transition = body(&server.state.health)
        if let transition { log(transition, server: server, in: backend) }
        if usableBefore && !backend.servers.contains(where: { $0.isUsable }) {
            engine.report("backend \(backend.name) has no server available!", level: .emerg, to: backend.log)
        }
        if !wasUsable && server.isUsable {
            later { $0.pendingQueues.append(backend) }
            if server.backend !== backend { later { $0.pendingQueues.append(server.backend) } }
        }
        if let transition, transition.goesDown {
            engine.closeIdle(of: server.state)
            if server.config.options.check.shutdownSessionsOnDown, case .down = transition {
                let state = server.state
                later { $0.pendingShutdowns.append(state) }
            }
        }
        if case .leavingMaintenance? = transition { server.state.checker?.checkSoon() }
        if server.state.health.isWarming, !warmingStates.contains(where: { $0 === server.state }) {
            warmingStates.append(server.state)
            later { _ in }
        }
        return transition
    }

    /// Servers warming up (`slowstart`): their weight is stepped by the deferred timer, 20 steps
    /// over the slow start as HAProxy does, until it is whole.
    private var warmingStates: [ServerState] = []

    private func stepWarmup() {
        guard !warmingStates.isEmpty else { return }
        var next = Double.infinity
        for state in warmingStates {
            state.health.warmup(now: now)
            if state.health.isWarming { next = min(next, max(0.05, Double(state.health.slowstart) / 20_000)) }
        }
        warmingStates.removeAll { !$0.health.isWarming }
        if next.isFinite && !deferred.isActive { deferred.arm(after: next, on: engine.loop) }
    }

    /// `load-server-state-from-file`: a saved state meets this server at start (before any
    /// traffic), with the log lines HAProxy writes then. The saved port (and the saved address of
    /// a server given by name) apply as `set server … addr` would.
    func restore(_ server: BackendServer, _ saved: SavedServerState) {
        let current = server.address
        let wanted = ServerAddress(address: saved.address ?? current.address, port: saved.port)
        if saved.address != nil && !server.state.hasAddress {
            // `init-addr last`: the saved address ends the resolution maintenance of `none`.
            engine.setAddress(of: server, to: wanted, by: "server-state file", resolved: server.config.fqdn)
        } else if wanted != current {
            engine.move(server, to: wanted)
        }
        let backend = engine.newestBackend(of: server)
        let usableBefore = backend.servers.contains { $0.isUsable }
        for transition in server.state.health.restore(saved, now: now) {
            log(transition, server: server, in: backend)
        }
        if usableBefore && !backend.servers.contains(where: { $0.isUsable }) {
            engine.report("backend \(backend.name) has no server available!", level: .emerg, to: backend.log)
        }
    }

    private func later(_ add: (HealthMonitor) -> Void) {
        add(self)
        if !deferred.isActive { deferred.arm(after: 0, on: engine.loop) }
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        let shutdowns = pendingShutdowns
        let queues = pendingQueues
        pendingShutdowns.removeAll()
        pendingQueues.removeAll()
        for state in shutdowns { engine.shutdownSessions(of: state) }
        stepWarmup()
        // Each loop serves its own queue of the backend.
        for backend in queues {
            for loop in backend.generation.loops {
                let target = UncheckedSendable(backend)
                loop.post { target.value.serveQueue(on: loop) }
            }
        }
    }

    // MARK: observe

    /// What a session saw of a server (`observe layer4|layer7`).
    enum Observation {
        case connected
        case connectFailed
        case httpStatus(Int)
        /// The server closed or failed before a complete response.
        case responseBroken

        /// HAProxy's analyze statuses: nil is ignored in that mode, true an error, false a success.
        func isError(in mode: ServerCheck.ObserveMode) -> Bool? {
            switch (self, mode) {
            case (.connected, .layer4): false
            case (.connected, .layer7): nil
            case (.connectFailed, _): true
            case (.httpStatus, .layer4), (.responseBroken, .layer4): nil
            case (.httpStatus(let s), .layer7): (500...599).contains(s) && s != 501 && s != 505
            case (.responseBroken, .layer7): true
            }
        }

        var text: String {
            switch self {
            case .connected: "L4 successful connection"
            case .connectFailed: "L4 unsuccessful connection"
            case .httpStatus(let s): (500...599).contains(s) && s != 501 && s != 505 ? "Wrong http response" : "Correct http response"
            case .responseBroken: "Close from server (http)"
            }
        }
    }

    func observe(_ server: BackendServer, _ event: Observation, mode: ServerCheck.ObserveMode) {
        guard let error = event.isError(in: mode) else { return }
        let check = server.config.options.check
        guard server.state.health.observe(error: error, limit: check.errorLimit) else { return }
        let count = server.state.health.consecutiveErrors
        server.state.health.resetObserved()
        let outcome = HealthCheckOutcome(.healthAnalyze, info: "Detected \(count) consecutive errors, last one was: \(event.text)")
        switch check.onError {
        case .fastInterval:
            break
        case .failCheck:
            checked(server, outcome)
        case .suddenDeath:
            checked(server, outcome) { $0.prepareSuddenDeath() }
        case .markDown:
            checked(server, outcome) { $0.prepareMarkDown() }
        }
        server.state.checker?.hurry()
    }

    // MARK: log lines

    /// HAProxy's transition line (`Server be/s1 is DOWN, reason: …`), to the engine's notices and
    /// the backend's log targets.
    private func log(_ transition: HealthTransition, server: BackendServer, in backend: Backend) {
        let level: LogLevel
        if case .down = transition { level = .alert } else { level = .notice }
        // The backend's log alone, as HAProxy: with `log global` the global targets get it once.
        engine.report(HealthMonitor.message(transition, server: server, in: backend), level: level, to: backend.log)
    }

    /// HAProxy's check line (`Health check for server be/s1 failed, reason: …, status: 0/2 DOWN`):
    /// the check's health after the result, counted towards `fall` while UP (UP, or DRAIN at weight
    /// 0) and towards `rise` while DOWN; an agent's rise and fall are 1.
    static func checkMessage(_ outcome: HealthCheckOutcome, agent: Bool, health: Int, rise: Int, fall: Int, weight: Int,
                             server: BackendServer, in backend: Backend) -> String {
        let who = "\(agent ? "Agent" : "Health") check for \(server.config.options.backup ? "backup " : "")server \(backend.name)/\(server.name)"
        let verdict = outcome.status.result == .conditionalPass ? "conditionally succeeded" : outcome.passed ? "succeeded" : "failed"
        let status = health >= rise ? "\(health - rise + 1)/\(fall) \(weight > 0 ? "UP" : "DRAIN")" : "\(health)/\(rise) DOWN"
        return "\(who) \(verdict)\(outcome.logText), status: \(status)."
    }

    static func message(_ transition: HealthTransition, server: BackendServer, in backend: Backend) -> String {
        let who = (server.config.options.backup ? "Backup " : "") + "Server \(backend.name)/\(server.name)"
        var active = 0, backup = 0
        for s in backend.servers where s.isUsable {
            if s.config.options.backup { backup += 1 } else { active += 1 }
        }
        let onBackup = backup > 0 && active == 0 ? " Running on backup." : ""
        let left = ". \(active) active and \(backup) backup servers left.\(onBackup) \(server.state.currentSessions) sessions active, 0 requeued, 0 remaining in queue."
        let online = ". \(active) active and \(backup) backup servers online.\(onBackup) 0 sessions requeued, 0 total in queue."
        func cause(_ c: HealthCause) -> String {
            switch c {
            // Under `option log-health-checks` the check line said why: HAProxy gives no reason.
            case .check(let outcome): backend.proxy.checks.logHealthChecks ? "" : outcome.logText
            case .adminSocket: ", changed from CLI"
            case .stateFile: ", changed from server-state after a reload"
            }
        }
        switch transition {
        case .down(let c):
            return "\(who) is DOWN\(cause(c))\(left)"
        case .up(let c):
            return "\(who) is UP\(cause(c))\(online)"
        case .stopping(let c):
            return "\(who) is stopping\(cause(c))\(online)"
        case .enteringMaintenance(let wasDown, let reason):
            let why = reason.map { " (\($0))" } ?? ""
            return wasDown ? "\(who) was DOWN and now enters maintenance\(why)." : "\(who) is going DOWN for maintenance\(why)\(left)"
        case .leavingMaintenance(let drain, let resolved?):
            let name = resolved.isEmpty ? "" : " ('\(resolved)')"
            return "\(who)\(name) is UP/\(drain ? "DRAIN" : "READY") (resolves again)."
        case .leavingMaintenance(let drain, nil):
            return "\(who) is UP/\(drain ? "DRAIN" : "READY") (leaving forced maintenance)."
        case .enteringDrain:
            return "\(who) enters drain state\(server.state.health.operational == .stopped ? left : online)"
        case .leavingDrain(let down):
            return "\(who) is \(down ? "DOWN" : "UP") (leaving forced drain)."
        }
    }
}
