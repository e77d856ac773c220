import HTTP1
import CLibEV
import ConfigModel
import Glibc

/// The checks of one server identity, on the engine's loop: a timer to the next check, then a
/// connect (a `ServerConnection`, made as a session makes one), send and read driven by a
/// `HealthCheckProbe`, each bounded by the check's timeouts. It holds the generation it checks for (always the newest one with this identity), as
/// a session holds its own; on a reload the engine hands it the new generation's server, so the
/// interval's phase and a check in flight carry over and no identity ever has two checkers.
///
/// The same machinery runs a server's agent check (`agent-check`), a second checker of its own
/// with its own address, port, interval and result.
final class HealthChecker: EventHandler {
    enum Phase { case waiting, connecting, exchanging, stopped }
    /// The server's health check, or its agent check.
    enum Role { case health, agent }

    unowned(unsafe) let monitor: HealthMonitor
    let role: Role
    private(set) var generation: Generation?
    private(set) var server: BackendServer
    let state: ServerState
    private var timer: TimerWatcher
    /// The check's connection; with TLS (`ssl` on the server without a check port or address, or
    /// `check-ssl`) the handshake is part of connecting, then the probe's bytes go through it.
    private var connection: ServerConnection?
    private(set) var phase = Phase.waiting
    private var probe: HealthCheckProbe?
    private var output: [UInt8] = []
    private var outputSent = 0
    /// Loop seconds: when the check in flight started, when its time runs out, when the next starts.
    private var startedAt = 0.0
    private var deadline = 0.0
    private(set) var nextCheckAt = 0.0
    /// The settings the check in flight started with (a reload may change them under it).
    private var readTimeout: Double?
    /// Checks started (tests count them).
    private(set) var checksStarted = 0

    init(monitor: HealthMonitor, generation: Generation, server: BackendServer, role: Role = .health) {
        self.monitor = monitor
        self.role = role
        self.generation = generation
        self.server = server
        self.state = server.state
        timer = TimerWatcher(handler: EventHandler())
        super.init()
        timer.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        switch role {
        case .health: state.checker = self
        case .agent: state.agent = self
        }
    }

    private var loop: EventLoop { monitor.engine.loop }
    private var tls: TLSConnection? { connection?.tls }
    private var settings: ServerCheck { server.config.options.check }
    private var agent: AgentCheck { settings.agent }
    /// The TLS context checks use: the server's, when it has `ssl` and the check goes to its own
    /// address and port, or with `check-ssl`. An agent speaks clear text.
    private var checkTLS: TLSClientContext? {
        guard role == .health, let context = server.tls else { return nil }
        return context.settings.checkSSL || (settings.port == nil && settings.address == nil) ? context : nil
    }

    /// The first check after `delay` seconds.
    func start(after delay: Double) {
        nextCheckAt = loop.now + delay
        timer.arm(after: delay, on: loop)
    }

    /// A reload kept the identity: check for the new generation's server from now on. The check in
    /// flight finishes with the settings it started with; a shorter `inter` applies at once.
    func rebind(_ generation: Generation, server: BackendServer) {
        self.generation = generation
        self.server = server
        if phase == .waiting {
            let sooner = loop.now + interval()
            if sooner < nextCheckAt { schedule(at: sooner) }
        }
    }

    /// Stops for good: the check in flight is dropped, the generation let go.
    func stop() {
        guard phase != .stopped else { return }
        closeConnection()
        phase = .stopped
        timer.release(on: loop)
        probe = nil
        generation = nil
        if state.checker === self { state.checker = nil }
        if state.agent === self { state.agent = nil }
    }

    /// `observe` asked for `fastinter`: the next check comes no later than that.
    func hurry() {
        guard phase == .waiting, let fast = settings.fastInterval else { return }
        let at = loop.now + Double(fast) / 1000
        if at < nextCheckAt { schedule(at: at) }
    }

    /// Leaving maintenance: HAProxy checks the server at once.
    func checkSoon() {
        guard phase == .waiting else { return }
        schedule(at: loop.now)
    }

    // MARK: scheduling

    /// HAProxy's srv_getinter: `inter` at full health, `downinter` while DOWN, `fastinter` while
    /// going up or down; `spread-checks` adds up to ±N%.
    /// An agent's is `agent-inter` (HAProxy gives it no fastinter or downinter).
    private func interval() -> Double {
        let h = state.health
        let c = settings
        var ms: Int
        if role == .agent {
            ms = c.agent.interval
        } else if h.checkConfigured && h.health == h.fullHealth {
            ms = c.interval
        } else if h.operational == .stopped && h.health == 0 {
            ms = c.downInterval ?? c.interval
        } else {
            ms = c.fastInterval ?? c.interval
        }
        let spread = generation?.config.config.global.spreadChecks ?? 0
        if spread > 0 {
            let delta = ms * min(spread, 50) / 100
            ms += delta - Int.random(in: 0...(2 * delta))
        }
        return Double(max(ms, 1)) / 1000
    }

    private func schedule(at time: Double) {
        nextCheckAt = time
        timer.arm(after: time - loop.now, on: loop)
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        switch phase {
        case .waiting:
            runCheck()
        case .connecting, .exchanging:
            if loop.now + 0.0005 < deadline {
                timer.arm(after: deadline - loop.now, on: loop)
                return
            }
            if let tls, !tls.isEstablished { return finish(HealthCheckOutcome(.layer6Timeout)) }
            finish(probe?.timedOut(connecting: phase == .connecting) ?? HealthCheckOutcome(.layer4Timeout))
        case .stopped:
            break
        }
    }

    // MARK: a check

    private func runCheck() {
        guard let generation, role == .agent ? state.health.agentRuns : state.health.checksRun else {
            // Paused (maintenance, `disable health`): look again after an interval.
            schedule(at: loop.now + interval())
            return
        }
        checksStarted += 1
        let backend = server.backend.proxy
        let capacity = generation.config.config.global.bufferSize
        var p = role == .agent ? HealthCheckProbe(agentSend: agent.send, capacity: capacity)
            : HealthCheckProbe(kind: backend.checks.kind, capacity: capacity)
        startedAt = loop.now
        // HAProxy: without `timeout check`, the whole check must end within `inter`; with it, the
        // connect gets min(`timeout connect`, `inter`) and the answer `timeout check` after that.
        let inter = Double(role == .agent ? agent.interval : settings.interval) / 1000
        if let check = backend.checks.timeout {
            readTimeout = Double(check) / 1000
            deadline = startedAt + min(backend.timeouts.connect.map { Double($0) / 1000 } ?? inter, inter)
        } else {
            readTimeout = nil
            deadline = startedAt + inter
        }
        let first = p.start()
        probe = p
        perform(first)
    }

    private func perform(_ first: HealthCheckProbe.Action) {
        var action = first
        while phase != .stopped {
            switch action {
            case .connect(let port):
                connect(port: port)
                return
            case .send(let bytes):
                output = bytes
                outputSent = 0
                guard let next = flush() else { return }
                action = next
            case .receive:
                phase = .exchanging
                connection?.watch(tls?.interest(EV_READ_MASK) ?? EV_READ_MASK)
                armDeadline()
                return
            case .done(let outcome):
                finish(outcome)
                return
            }
        }
    }

    private func connect(port: UInt16?) {
        closeConnection()
        let check = settings
        let moved = server.address
        // An agent: `agent-addr`, else the check's `addr`, else the server's; `agent-port`, else
        // the check's `port` (the Loader requires one).
        let address = role == .agent ? agent.address ?? check.address ?? moved.address : check.address ?? moved.address
        let checkPort = role == .agent ? agent.port ?? check.port : check.port
        // A check has no client whose port a server without one could take.
        guard let target = port ?? checkPort ?? moved.port else {
            finish(HealthCheckOutcome(.socketError, info: "No port available for the TCP connection"))
            return
        }
        // Checks leave from the server's `source` too, as HAProxy's.
        switch ServerConnection.open(on: loop, to: SocketEndpoint(address: address, port: target),
                                     server: state, keepAlive: false,
                                     source: server.config.options.source ?? server.backend?.proxy.source) {
        case .noSocket(let e):
            finish(HealthCheckOutcome(.socketError, info: HealthCheckProbe.errorText(e)))
        case .refused(let e):
            finish(probe?.connectFailed(errno: e) ?? HealthCheckOutcome(.layer4Connection))
        case .opened(let c):
            c.owner = self
            // HAProxy: a server's PROXY header goes with its checks too unless they have their own
            // `port` or `addr`; `check-send-proxy` sends one whatever their address, in the
            // server's version (v1 without one): UNKNOWN / LOCAL. A `tcp-check connect port N`
            // rule's connection has none.
            if port == nil && role == .health {
                if check.sendProxy {
                    let send = server.config.options.sendProxy ?? SendProxy(version: 1)
                    c.proxyHeader = ProxyHeaderBuilder.header(send, source: nil)
                } else if let send = server.config.options.sendProxy, check.port == nil, check.address == nil {
                    c.proxyHeader = ProxyHeaderBuilder.header(send, source: nil)
                }
            }
            connection = c
            phase = .connecting
            c.watch(c.connectInterest)
            armDeadline()
        }
    }

    private func armDeadline() {
        timer.arm(after: deadline - loop.now, on: loop)
    }

    override func serverEvent(_ revents: Int32) {
        guard let c = connection else { return }
        switch phase {
        case .connecting:
            switch c.advanceConnect(tls: checkTLS, serverName: checkTLS?.settings.checkSNI) {
            case .inProgress:
                c.watch(c.connectInterest)
                return
            case .failed(.socket(let err)):
                return finish(probe?.connectFailed(errno: err) ?? HealthCheckOutcome(.layer4Connection))
            case .failed(.tlsSetup):
                return finish(HealthCheckOutcome(.socketError, info: "SSL allocation failure"))
            case .failed(.tlsHandshake):
                return finish(HealthCheckOutcome(.layer6Response, info: "SSL handshake failure"))
            case .reopen:
                // (Only HTTP/2 streams are told so; a check has a connection of its own.)
                return finish(HealthCheckOutcome(.layer4Connection))
            case .established:
                break
            }
            phase = .exchanging
            c.watch(0)
            if let r = readTimeout { deadline = loop.now + r }
            guard var p = probe else { return }
            let next = p.connected()
            probe = p
            perform(next)
        case .exchanging:
            let revents = tls?.events(revents) ?? revents
            if !output.isEmpty, revents & EV_WRITE_MASK != 0 {
                guard let next = flush() else { return }
                perform(next)
            } else if revents & EV_READ_MASK != 0 {
                read()
            }
        case .waiting, .stopped:
            break
        }
    }

    /// Writes what is left of `output`: the probe's next action once all is sent, nil while the
    /// socket is full (or the check ended on an error).
    private func flush() -> HealthCheckProbe.Action? {
        phase = .exchanging
        guard let c = connection else { return nil }
        let fd = c.fd
        while outputSent < output.count {
            let n = output.withUnsafeBytes { bytes in
                if let tls { return tls.write(bytes.baseAddress! + outputSent, bytes.count - outputSent) }
                return send(fd, bytes.baseAddress! + outputSent, bytes.count - outputSent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if n > 0 {
                outputSent += n
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                c.watch(tls?.interest(EV_WRITE_MASK) ?? EV_WRITE_MASK)
                armDeadline()
                return nil
            } else {
                let e = errno
                finish(probe?.socketError(errno: e) ?? HealthCheckOutcome(.socketError))
                return nil
            }
        }
        output = []
        c.watch(0)
        guard var p = probe else { return nil }
        let next = p.sent()
        probe = p
        return next
    }

    private func read() {
        readOnce()
        // TLS: records OpenSSL already holds announce themselves through no socket event.
        while phase == .exchanging, probe != nil, let tls, tls.hasBufferedInput { readOnce() }
    }

    private func readOnce() {
        guard var p = probe, let fd = connection?.fd else { return }
        let buffer = loop.buffers.take()
        defer { loop.buffers.give(buffer) }
        let n = tls.map { $0.read(buffer, loop.buffers.size) } ?? recv(fd, buffer, loop.buffers.size, Int32(MSG_DONTWAIT))
        let next: HealthCheckProbe.Action
        if n > 0 {
            next = p.received(UnsafeRawBufferPointer(start: buffer, count: n))
        } else if n == 0 {
            next = p.inputEnded()
        } else if errno == EAGAIN || errno == EINTR {
            return
        } else {
            let e = errno
            finish(p.socketError(errno: e))
            return
        }
        probe = p
        if case .receive = next { return }
        perform(next)
    }

    private func closeConnection() {
        connection?.close()
        connection = nil
    }

    /// The check is over: its result goes to the server's state, the next one is scheduled.
    private func finish(_ result: HealthCheckOutcome) {
        guard phase != .stopped else { return }
        closeConnection()
        let agentLine = probe?.agentLine
        probe = nil
        output = []
        var outcome = result
        // A connect-only check over TLS passed the handshake too (HAProxy's L6OK).
        if outcome.status == .layer4OK && checkTLS != nil { outcome.status = .layer6OK }
        outcome.duration = max(0, Int(((loop.now - startedAt) * 1000).rounded()))
        phase = .waiting
        switch role {
        case .health: monitor.record(outcome, for: self)
        case .agent: monitor.recordAgent(outcome, line: agentLine, for: self)
        }
        guard phase == .waiting else { return }
        schedule(at: loop.now + interval())
    }
}
