import ConfigModel

/// HAProxy's operational state of a server (`srv_op_state`).
enum ServerOperationalState: Int, Sendable {
    case stopped = 0
    case starting = 1
    case running = 2
    case stopping = 3
}

/// HAProxy's administrative flags (`srv_admin_state`).
struct ServerAdminFlags: OptionSet, Hashable, Sendable {
    let rawValue: Int
    init(rawValue: Int) { self.rawValue = rawValue }

    /// Maintenance forced from the admin socket, or by `disabled` in the configuration.
    static let forcedMaintenance = ServerAdminFlags(rawValue: 0x01)
    /// The configuration says `disabled` (a marker: maintenance itself is `forcedMaintenance`).
    static let configMaintenance = ServerAdminFlags(rawValue: 0x04)
    /// Drain forced from the admin socket: no new traffic, persistence still allowed.
    static let forcedDrain = ServerAdminFlags(rawValue: 0x08)
    /// No address for the server's name (HAProxy's RMAINT): `init-addr none`, a template's free
    /// slot, an answer without an address for it, an error past its `hold`. Set and cleared by
    /// the resolver (and cleared by `set server … addr`), independently of forced maintenance.
    static let resolutionMaintenance = ServerAdminFlags(rawValue: 0x20)
    /// Either kind of maintenance.
    static let maintenance: ServerAdminFlags = [.forcedMaintenance, .resolutionMaintenance]
}

/// Why a server's operational state changed, for the transition log line.
enum HealthCause: Equatable {
    case check(HealthCheckOutcome)
    /// `set server … health …`.
    case adminSocket
    /// `load-server-state-from-file` at start.
    case stateFile
}

/// A change worth a log line, as HAProxy words them.
enum HealthTransition: Equatable {
    case down(HealthCause)
    case up(HealthCause)
    case stopping(HealthCause)
    /// `reason`: why the resolver put the server there (`DNS NX status`, `No IP for server`).
    case enteringMaintenance(wasDown: Bool, reason: String? = nil)
    /// `resolved`: the name that resolves again (leaving resolution maintenance).
    case leavingMaintenance(drain: Bool, resolved: String? = nil)
    case enteringDrain
    case leavingDrain(down: Bool)

    /// The server may no longer take traffic because of this change.
    var goesDown: Bool {
        switch self {
        case .down, .enteringMaintenance: true
        default: false
        }
    }
}

/// A server's health and administrative state, what the balancer reads and what a reload
/// carries: operational state with HAProxy's rise/fall counter, admin flags (MAINT, DRAIN),
/// the configured and runtime weights, and the last check's result. A plain value: every change
/// is a `mutating` method that returns the transition to log, if any.
struct ServerHealth: Sendable {
    var operational = ServerOperationalState.running
    var admin: ServerAdminFlags = []
    /// HAProxy's check health: 0 … rise+fall-1; the server is UP from `rise` on.
    var health: Int
    var rise: Int
    var fall: Int
    /// `check` on the server line.
    var checkConfigured: Bool
    /// False after `disable health`.
    var checkEnabled = true
    var lastCheck = HealthCheckOutcome(.initializing)
    /// `srv_iweight`: the configured weight; `srv_uweight`: the weight in effect.
    var initialWeight: Int
    var weight: Int
    /// `observe`: errors in a row seen in live traffic.
    var consecutiveErrors = 0
    /// `agent-check`: configured, not disabled from the socket (`disable agent`), the agent's own
    /// health (HAProxy gives an agent a rise and a fall of 1: 1 up, 0 down) and its last result.
    var agentConfigured: Bool
    var agentEnabled = true
    var agentHealth = 1
    var lastAgentCheck = HealthCheckOutcome(.initializing)
    /// An agent's `maxconn:N`: the server's maxconn from then on (nil: the configured one), until
    /// the configuration changes it.
    var runtimeMaxconn: Int?
    /// The stats page's `chkfail` (failed checks while not yet DOWN) and `chkdown` (UP to DOWN).
    var failedChecks = 0
    var downTransitions = 0
    /// Monotonic seconds of the last operational or admin change.
    var lastChange: Double
    /// HAProxy's `downtime`: seconds spent DOWN (maintenance included) in the periods that
    /// ended, and the start of the one going on (nil: not DOWN now).
    private(set) var downSeconds = 0.0
    private(set) var downSince: Double?
    /// What the balancer reads (kept in step with every change: one load on the hot path).
    private(set) var isUsable = true
    /// `slowstart` (ms, 0 without): after the server comes UP from DOWN or maintenance, the
    /// weight in effect grows from 1 to `weight` over that time (HAProxy's warmup), in steps
    /// the health monitor makes.
    var slowstart = 0
    private(set) var warmingSince: Double?
    private(set) var warmupWeight: Int?
    /// The weight the balancer uses: `weight`, or less while warming up.
    var effectiveWeight: Int { warmupWeight.map { min($0, weight) } ?? weight }
    var isWarming: Bool { warmingSince != nil }

    /// One warmup step at `now`: the weight in proportion of the time since the server came UP.
    mutating func warmup(now: Double) {
        guard let since = warmingSince else { return }
        let elapsed = (now - since) * 1000
        if elapsed >= Double(slowstart) || weight == 0 || operational != .running {
            warmingSince = nil
            warmupWeight = nil
        } else {
            warmupWeight = max(1, Int(Double(weight) * elapsed / Double(slowstart)))
        }
    }
    /// The options this state was last reconciled with (a reload compares against them).
    var configured: ServerOptions

    /// A server as HAProxy starts one: UP (with checks: one failure away from DOWN), in
    /// maintenance when the configuration says `disabled`.
    init(options: ServerOptions, now: Double = 0) {
        configured = options
        rise = max(1, options.check.rise)
        fall = max(1, options.check.fall)
        checkConfigured = options.check.enabled
        agentConfigured = options.check.agent.enabled
        health = rise
        initialWeight = options.weight
        weight = options.weight
        slowstart = options.slowstart ?? 0
        lastChange = now
        if options.disabled {
            admin = [.forcedMaintenance, .configMaintenance]
            operational = .stopped
            health = 0
            downSince = now
        }
        refresh()
    }

    var inMaintenance: Bool { !admin.isDisjoint(with: .maintenance) }
    /// In maintenance for want of an address.
    var inResolutionMaintenance: Bool { admin.contains(.resolutionMaintenance) }
    var inDrain: Bool { admin.contains(.forcedDrain) }
    var fullHealth: Int { rise + fall - 1 }
    /// Agent checks run: configured and not disabled (maintenance does not pause them, as in
    /// HAProxy: the agent's `ready` is what ends the maintenance its `maint` began).
    var agentRuns: Bool { agentConfigured && agentEnabled }
    /// HAProxy's check_notify_success: a server whose agent said `down` stays DOWN whatever its
    /// health check says.
    private var agentAllowsUp: Bool { !agentRuns || agentHealth > 0 }
    /// `srv_agent_state`: configured 0x02, enabled 0x04, agent 0x10 (never paused).
    var agentStateFlags: Int { agentConfigured ? 0x12 | (agentEnabled ? 0x04 : 0) : 0 }
    /// Checks run now: configured, not disabled from the socket, not paused by maintenance.
    var checksRun: Bool { checkConfigured && checkEnabled && !inMaintenance }

    /// `srv_check_state`: configured 0x02, enabled 0x04, paused (maintenance) 0x08.
    var checkStateFlags: Int {
        (checkConfigured ? 0x02 : 0) | (checkConfigured && checkEnabled ? 0x04 : 0) | (inMaintenance ? 0x08 : 0)
    }

    /// Persistence (a cookie naming the server) may still reach a draining or stopping server.
    var acceptsPersistentTraffic: Bool { !inMaintenance && operational != .stopped }
    /// ... and, with `option persist`, a DOWN one not in maintenance.
    var acceptsForcedPersistence: Bool { !inMaintenance }

    /// The stats page's status column: UP, DOWN, MAINT, `MAINT (resolution)`, DRAIN, NOLB,
    /// `UP 1/3`, `DOWN 1/2`, `no check`.
    var statusText: String {
        if inResolutionMaintenance { return "MAINT (resolution)" }
        if inMaintenance { return "MAINT" }
        if inDrain && operational != .stopped { return agentRuns ? "DRAIN (agent)" : "DRAIN" }
        // HAProxy names the agent when it is what holds the server DOWN.
        if operational == .stopped && agentRuns && agentHealth == 0 { return "DOWN (agent)" }
        if !checkConfigured || !checkEnabled {
            switch operational {
            case .stopped: return "DOWN"
            case .stopping: return "NOLB"
            default: return weight == 0 ? "DRAIN" : "no check"
            }
        }
        switch operational {
        case .stopped:
            return health > 0 ? "DOWN \(health)/\(rise)" : "DOWN"
        case .stopping:
            return health == fullHealth ? "NOLB" : "NOLB \(health - rise + 1)/\(fall)"
        default:
            if health == fullHealth { return weight == 0 ? "DRAIN" : "UP" }
            return "UP \(health - rise + 1)/\(fall)"
        }
    }

    private mutating func refresh() {
        isUsable = weight > 0 && !inMaintenance && !inDrain && (operational == .running || operational == .starting)
    }

    /// Seconds spent DOWN since start, the period going on included.
    func downtime(now: Double) -> Double { downSeconds + (downSince.map { max(0, now - $0) } ?? 0) }

    private mutating func setOperational(_ state: ServerOperationalState, now: Double) {
        if state == .running && operational == .stopped && slowstart > 0 {
            warmingSince = now
            warmupWeight = 1
        }
        if state == .stopped && operational != .stopped {
            downTransitions += 1
            downSince = now
        } else if state != .stopped, operational == .stopped, let since = downSince {
            downSeconds += max(0, now - since)
            downSince = nil
        }
        operational = state
        lastChange = now
        refresh()
    }

    // MARK: checks

    /// Records a check's result (HAProxy's health counter): a failure counts down and falls to 0
    /// below `rise`; a success counts up and jumps to full health at `rise`.
    mutating func record(_ outcome: HealthCheckOutcome, now: Double) -> HealthTransition? {
        lastCheck = outcome
        if outcome.status == .layer7ConditionalOK {
            // `disable-on-404`: a DOWN server is not brought back by a 404 (HAProxy counts it as
            // a failed check then); an UP one goes NOLB, still checked, still persistent.
            if operational == .stopped {
                if health > 0 { failedChecks += 1; health = 0 }
                return nil
            }
            if health < fullHealth { health = fullHealth }
            guard operational != .stopping, !inMaintenance, agentAllowsUp else { return nil }
            setOperational(.stopping, now: now)
            return .stopping(.check(outcome))
        }
        if outcome.failed {
            if health > 0 {
                failedChecks += 1
                health -= 1
                if health < rise { health = 0 }
            }
            if health == 0, operational != .stopped, !inMaintenance {
                setOperational(.stopped, now: now)
                return .down(.check(outcome))
            }
        } else if outcome.passed {
            if health < fullHealth {
                health += 1
                if health >= rise { health = fullHealth }
            }
            if health >= rise, operational != .running, !inMaintenance, agentAllowsUp {
                setOperational(.running, now: now)
                return .up(.check(outcome))
            }
        }
        return nil
    }

    /// Records an agent check's result, by HAProxy's rules for an agent: not reaching it, or no
    /// health word in its line, changes nothing; its `down`, `fail` or `stopped` (L7STS) takes the
    /// server DOWN; its `up` (L7OK) brings it back when the health check agrees, but not out of
    /// NOLB (only health checks decide that).
    mutating func recordAgent(_ outcome: HealthCheckOutcome, now: Double) -> HealthTransition? {
        lastAgentCheck = outcome
        switch outcome.status {
        case .layer7Status:
            agentHealth = 0
            guard operational != .stopped, !inMaintenance else { return nil }
            setOperational(.stopped, now: now)
            return .down(.check(outcome))
        case .layer7OK:
            agentHealth = 1
            guard operational == .stopped, !inMaintenance, !(checkConfigured && checkEnabled && health < rise) else { return nil }
            setOperational(.running, now: now)
            return .up(.check(outcome))
        default:
            return nil
        }
    }

    /// An agent line without a complete line (closed early): the status stays, the text says why.
    mutating func noteAgent(info: String, duration: Int) {
        lastAgentCheck.info = info
        lastAgentCheck.duration = duration
    }

    /// An agent's `maxconn:N`.
    mutating func setMaxconn(_ n: Int) { runtimeMaxconn = n }

    /// `enable agent`, `disable agent`.
    mutating func setAgentEnabled(_ on: Bool) { agentEnabled = on }

    /// `set server … agent up|down`: the agent's health forced, the server UP or DOWN with it
    /// (HAProxy's srv_set_running and srv_set_stopped, whatever the health check says).
    mutating func forceAgent(up: Bool, now: Double) -> HealthTransition? {
        agentHealth = up ? 1 : 0
        guard !inMaintenance else { return nil }
        if up {
            guard operational == .stopped else { return nil }
            setOperational(.running, now: now)
            return .up(.adminSocket)
        }
        guard operational != .stopped else { return nil }
        setOperational(.stopped, now: now)
        return .down(.adminSocket)
    }

    /// `observe` … `on-error sudden-death`: one more failed check marks the server DOWN.
    mutating func prepareSuddenDeath() {
        if health > rise { health = rise + 1 }
    }

    /// `observe` … `on-error mark-down`: the next failure marks the server DOWN.
    mutating func prepareMarkDown() {
        health = rise
    }

    /// Counts an error (true) or a success seen in live traffic; true when the limit is reached
    /// (the counter starts again).
    mutating func observe(error: Bool, limit: Int) -> Bool {
        guard error else {
            consecutiveErrors = 0
            return false
        }
        consecutiveErrors += 1
        guard consecutiveErrors >= max(1, limit) else { return false }
        return true
    }

    mutating func resetObserved() { consecutiveErrors = 0 }

    // MARK: admin

    /// `disable server`, `set server … state maint`.
    mutating func enterMaintenance(now: Double) -> HealthTransition? {
        enter(.forcedMaintenance, reason: nil, now: now)
    }

    /// `enable server`, `set server … state ready|drain`: UP again, with checks one failure away
    /// from DOWN (HAProxy checks it at once), unless the server has no address.
    mutating func leaveMaintenance(now: Double) -> HealthTransition? {
        leave(.forcedMaintenance, resolved: nil, now: now)
    }

    /// The resolver found no address for the server (`reason`, HAProxy's words).
    mutating func enterResolutionMaintenance(reason: String, now: Double) -> HealthTransition? {
        enter(.resolutionMaintenance, reason: reason, now: now)
    }

    /// The server has an address again (`name`: what resolved; nil when the socket set it).
    mutating func leaveResolutionMaintenance(name: String?, now: Double) -> HealthTransition? {
        leave(.resolutionMaintenance, resolved: name ?? "", now: now)
    }

    /// Each kind of maintenance is a flag of its own; the server goes down with the first and
    /// comes back with the last.
    private mutating func enter(_ flag: ServerAdminFlags, reason: String?, now: Double) -> HealthTransition? {
        guard !admin.contains(flag) else { return nil }
        let already = inMaintenance
        admin.insert(flag)
        guard !already else { return nil }
        let wasDown = operational == .stopped
        health = 0
        operational = .stopped
        if !wasDown {
            lastChange = now
            downSince = now
        }
        refresh()
        return .enteringMaintenance(wasDown: wasDown, reason: reason)
    }

    private mutating func leave(_ flag: ServerAdminFlags, resolved: String?, now: Double) -> HealthTransition? {
        guard admin.contains(flag) else { return nil }
        admin.remove(flag)
        guard !inMaintenance else {
            refresh()
            return nil
        }
        if checkConfigured && checkEnabled { health = rise }
        setOperational(.running, now: now)
        return .leavingMaintenance(drain: inDrain, resolved: resolved)
    }

    mutating func enterDrain(now: Double) -> HealthTransition? {
        guard !inDrain else { return nil }
        admin.insert(.forcedDrain)
        lastChange = now
        refresh()
        return inMaintenance ? nil : .enteringDrain
    }

    mutating func leaveDrain(now: Double) -> HealthTransition? {
        guard inDrain else { return nil }
        admin.remove(.forcedDrain)
        lastChange = now
        refresh()
        return inMaintenance ? nil : .leavingDrain(down: operational == .stopped)
    }

    /// `set server … health up|stopping|down`.
    mutating func force(_ state: ServerOperationalState, now: Double) -> HealthTransition? {
        switch state {
        case .running, .starting:
            health = fullHealth
            guard operational != .running, !inMaintenance else { return nil }
            setOperational(.running, now: now)
            return .up(.adminSocket)
        case .stopped:
            health = 0
            guard operational != .stopped, !inMaintenance else { return nil }
            setOperational(.stopped, now: now)
            return .down(.adminSocket)
        case .stopping:
            guard operational != .stopping, !inMaintenance else { return nil }
            setOperational(.stopping, now: now)
            return .stopping(.adminSocket)
        }
    }

    mutating func setWeight(_ w: Int) {
        weight = w
        refresh()
    }

    mutating func setChecksEnabled(_ on: Bool) { checkEnabled = on }

    // MARK: server-state file

    /// A process starts with `load-server-state-from-file`: the saved operational state (with its
    /// check health), admin state, weight and check state meet this fresh server's configuration,
    /// by HAProxy's rules (its srv_state_srv_update): the operational state is taken as saved;
    /// maintenance set from the socket is kept, and a `disabled` server that the socket had
    /// enabled stays enabled, unless `disabled` itself changed in the configuration since; a drain
    /// is kept unless it came from a weight of 0 that the configuration has raised since; the
    /// runtime weight is kept while the configured weight is the same; `disable health` is kept.
    /// Returns the transitions to log, in order.
    mutating func restore(_ saved: SavedServerState, now: Double) -> [HealthTransition] {
        var transitions: [HealthTransition] = []
        func note(_ t: HealthTransition?) { if let t { transitions.append(t) } }
        func go(_ state: ServerOperationalState) -> HealthTransition? {
            // In maintenance the server stays stopped; leaving it sets the state again.
            guard operational != state, !inMaintenance else { return nil }
            setOperational(state, now: now)
            switch state {
            case .stopped: return .down(.stateFile)
            case .stopping: return .stopping(.stateFile)
            case .running, .starting: return nil
            }
        }
        health = saved.checkHealth
        switch ServerOperationalState(rawValue: saved.operationalState) ?? .running {
        case .stopped:
            health = 0
            note(go(.stopped))
        case .starting:
            if rise == 1 {
                health = fullHealth
                note(go(.running))
            } else {
                if health < 1 || health >= rise { health = rise - 1 }
                if !inMaintenance { operational = .starting }
            }
        case .stopping:
            if fall == 1 {
                health = 0
                note(go(.stopped))
            } else {
                if health < rise || health > rise + fall - 2 { health = rise }
                note(go(.stopping))
            }
        case .running:
            health = fullHealth
            note(go(.running))
        }

        let savedForced = saved.adminState & ServerAdminFlags.forcedMaintenance.rawValue != 0
        let savedConfig = saved.adminState & ServerAdminFlags.configMaintenance.rawValue != 0
        let config = admin.contains(.configMaintenance)
        // A fresh server is in maintenance exactly when its configuration says `disabled`: when
        // `disabled` changed since the file was written, the configuration is what it already is.
        if savedConfig == config {
            if savedForced && !config {
                note(enterMaintenance(now: now))
            } else if !savedForced && config {
                note(leaveMaintenance(now: now))
            }
        }
        if !inMaintenance, saved.adminState & ServerAdminFlags.forcedDrain.rawValue != 0,
           saved.initialWeight > 0 || initialWeight == 0 {
            note(enterDrain(now: now))
        }

        lastChange = now - Double(saved.secondsSinceLastChange)
        lastCheck = HealthCheckOutcome(HealthCheckStatus(rawValue: saved.checkStatus) ?? .unknown)
        // Only `disable health` is taken from the saved check state.
        if checkConfigured, saved.checkState & 0x02 != 0, saved.checkState & 0x04 == 0 { checkEnabled = false }
        // And `disable agent`, likewise.
        if agentConfigured, saved.agentState & 0x02 != 0, saved.agentState & 0x04 == 0 { agentEnabled = false }
        if saved.initialWeight == initialWeight { weight = saved.userWeight }
        if inMaintenance { health = 0 }
        refresh()
        return transitions
    }

    // MARK: reload

    /// A reload kept this server's identity: keep what the runtime set, except where the new
    /// configuration changed the setting (HAProxy's server-state rules: a configuration change
    /// wins over a socket change). Returns the transition to log when `disabled` changed.
    mutating func reconcile(with options: ServerOptions, now: Double) -> HealthTransition? {
        let previous = configured
        configured = options
        slowstart = options.slowstart ?? 0
        var transition: HealthTransition?
        if options.weight != previous.weight {
            initialWeight = options.weight
            weight = options.weight
        }
        if options.maxconn != previous.maxconn { runtimeMaxconn = nil }
        let hadAgent = agentConfigured
        agentConfigured = options.check.agent.enabled
        if agentConfigured != hadAgent {
            // An agent added starts up, as in a new process; one removed no longer holds the
            // server DOWN (what remains decides below).
            agentHealth = 1
            agentEnabled = true
            lastAgentCheck = HealthCheckOutcome(.initializing)
        }
        if options.disabled != previous.disabled {
            if options.disabled {
                transition = enterMaintenance(now: now)
                admin.insert(.configMaintenance)
            } else {
                admin.remove(.configMaintenance)
                transition = leaveMaintenance(now: now)
            }
        }
        let check = options.check
        let wasConfigured = checkConfigured
        rise = max(1, check.rise)
        fall = max(1, check.fall)
        checkConfigured = check.enabled
        if check.enabled && !wasConfigured {
            // Checks added: as HAProxy starts a checked server (UP, one failure away), or DOWN
            // where the socket put it.
            checkEnabled = true
            if operational != .stopped { health = rise }
        } else if !check.enabled && wasConfigured {
            // Checks removed: nothing could bring a DOWN server back; it starts as an unchecked one.
            lastCheck = HealthCheckOutcome(.initializing)
            health = rise
            if operational == .stopped && !inMaintenance && agentAllowsUp { setOperational(.running, now: now) }
        } else if operational == .stopped {
            health = min(health, rise - 1)
        } else {
            health = max(rise, min(health, fullHealth))
        }
        if hadAgent && !agentConfigured && !checkConfigured && operational == .stopped && !inMaintenance {
            // Only its agent held this unchecked server DOWN.
            setOperational(.running, now: now)
        }
        if hadAgent && !agentConfigured && !checkConfigured && operational == .stopped && !inMaintenance {
            // Only its agent held this unchecked server DOWN.
            setOperational(.running, now: now)
        }
        if inMaintenance { health = 0 }
        refresh()
        return transition
    }
}
