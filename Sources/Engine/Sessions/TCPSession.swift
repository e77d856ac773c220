import CLibEV
import ConfigModel
import Glibc
import TCPWire

/// One direction of a TCP session: bytes read from one socket and not yet written to the other,
/// in a pooled buffer, or in a pooled pipe once the direction carries bulk data (splice).
struct Flow {
    var buffer: UnsafeMutableRawPointer?
    var head = 0
    var tail = 0
    var pipe: PipePair?
    var inPipe = 0
    /// A read filled a whole buffer: further reads splice through a pipe.
    var splice = false
    /// The source sent its FIN.
    var eof = false
    /// The FIN was passed on: shutdown(SHUT_WR) on the destination.
    var shutdownSent = false
    var bytes: UInt64 = 0

    var pending: Int { tail - head + inPipe }
    var isDone: Bool { eof && shutdownSent && pending == 0 }
}

/// A TCP session: a client connection, the server connection made for it, and the bytes between
/// them. It holds its generation for its whole life. State machine:
/// handshake? -> connecting (its `ServerConnector`: queue, connect, retries) -> established -> closed.
/// With TLS on either side (`bind … ssl`, `server … ssl`) bytes go through OpenSSL and never
/// through splice; `handshake` is the client's TLS handshake, the server's is part of `connecting`.
final class TCPSession: ListedSession {
    enum Phase { case waiting, handshake, inspecting, connecting, established, closed }

    unowned(unsafe) let worker: Worker
    let loop: EventLoop
    let generation: Generation
    let frontend: Frontend
    /// The default backend, until `use_backend` rules choose (mode tcp).
    private(set) var backend: Backend?
    // The session's state is touched by its own loop's thread only, one event at a time: its
    // stored properties skip the runtime's exclusivity bookkeeping (swift_beginAccess), as
    // HTTPSession's do (a few thousand instructions a connection).
    /// The server side: the server, its slot, the connection and its retries.
    @exclusivity(unchecked) private var connector = ServerConnector()
    var server: BackendServer? { connector.server }
    /// The address the client connected to (`%fi:%fp`), read only when a log format prints it.
    @exclusivity(unchecked) private var localAddress: SocketEndpoint?
    let clientFD: Int32
    /// The client connection's TLS (nil: a plain socket).
    private let clientTLS: TLSConnection?
    @exclusivity(unchecked) private var clientIO: IOWatcher
    @exclusivity(unchecked) private var timer: TimerWatcher
    @exclusivity(unchecked) private var c2s = Flow()
    @exclusivity(unchecked) private var s2c = Flow()
    @exclusivity(unchecked) private(set) var phase = Phase.waiting
    let clientAddress: SocketEndpoint?
    private let acceptedWall: Double
    private let acceptedAt: Double
    /// When `tcp-request content` inspection began (after the client's TLS handshake, if any).
    @exclusivity(unchecked) private var inspectStart = 0.0
    /// The backend counted this session (it ended none it did not count: a failed handshake, a
    /// rejected or never-routed connection).
    @exclusivity(unchecked) private var backendCounted = false
    /// `option splice-auto` (strata's default, `no option splice-auto` in the frontend or the
    /// backend turns it off): a read that fills a buffer switches its direction to splice.
    @exclusivity(unchecked) private var spliceAuto = true
    @exclusivity(unchecked) private var termination = TerminationState()
    /// `option logasap`: the line left when the server connection was established.
    @exclusivity(unchecked) private var loggedEarly = false
    @exclusivity(unchecked) private var lastClientActivity: Double
    @exclusivity(unchecked) private var lastServerActivity: Double
    @exclusivity(unchecked) private var selfRetain: Unmanaged<TCPSession>?
    /// The connection's stick counters (nil: no stick table in its generation).
    @exclusivity(unchecked) private var tracker: StickTracker?
    /// The `stick on|store-request` keys, given the server's id once there is one.
    @exclusivity(unchecked) private var stickStores: [(StickTable, StickKey)] = []
    /// The `tcp-request content` rule the last wait stopped at.
    @exclusivity(unchecked) private var contentResume = 0
    /// `tcp-response content`: the server's first bytes wait in `s2c` (the client's keep flowing
    /// to the server) until a rule decides, at most the backend's `tcp-response inspect-delay`
    /// from the server connection on.
    @exclusivity(unchecked) private var inspectingResponse = false
    @exclusivity(unchecked) private var responseInspectStart = 0.0
    /// The PROXY protocol header the connection began with (`accept-proxy`).
    @exclusivity(unchecked) var receivedProxyHeader: ProxyHeader?
    /// The listener it came from: a backend in mode http takes the connection there as an HTTP
    /// one (HAProxy's implicit upgrade of a TCP stream).
    weak var listener: Listener?
    /// A session `tcp-request session` rejected: it leaves no log line.
    @exclusivity(unchecked) private var unlogged = false
    /// `set-var` values of the session (every scope: a TCP session is one transaction), lent to
    /// the loop's rule scratch while a rule runs (`withRuleScratch`).
    @exclusivity(unchecked) private var variables: HTTPVariables
    /// `tcp-request content capture` values, by slot.
    @exclusivity(unchecked) private var contentCaptures: [(slot: Int, value: [UInt8])] = []

    /// `localAddress`: the destination a PROXY protocol header carried (nil: the socket's own).
    init(worker: Worker, listener frontend: Frontend, clientFD: Int32, clientAddress: SocketEndpoint?,
         localAddress: SocketEndpoint? = nil, tls: TLSConnection? = nil, tracker: StickTracker? = nil,
         variables: HTTPVariables = [:]) {
        self.localAddress = localAddress
        self.variables = variables
        self.clientTLS = tls
        self.tracker = tracker ?? (frontend.tcpRules?.usesStickCounters == true ? StickTracker() : nil)
        self.worker = worker
        self.loop = worker.loop
        self.generation = frontend.generation
        self.frontend = frontend
        self.backend = frontend.defaultBackend
        self.clientFD = clientFD
        self.clientAddress = clientAddress
        acceptedWall = wallClock()
        acceptedAt = worker.loop.now
        lastClientActivity = acceptedAt
        lastServerActivity = acceptedAt
        // Placeholders until self exists; replaced below.
        clientIO = IOWatcher(fd: clientFD, handler: EventHandler())
        timer = TimerWatcher(handler: EventHandler())
        super.init()
        clientIO.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        timer.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    private var proxyTimeouts: Timeouts { backend?.proxy.timeouts ?? frontend.proxy.timeouts }
    /// The server connection's TLS, once the connector made it.
    private var serverTLS: TLSConnection? { connector.connection?.tls }

    // MARK: start

    /// Counts the session and routes it to a server (or the queue).
    func start() {
        selfRetain = Unmanaged.passRetained(self)
        generation.shard(loop).begin(self)
        frontend.counters.sessionStarted(on: loop)
        worker.sessionStarted()
        frontend.setClientOptions(clientFD)
        if frontend.proxy.log.format == .connect, !frontend.log.isEmpty, let clientAddress {
            frontend.log.send("Connect from \(clientAddress) to \((localAddress ?? localEndpoint(clientFD)).map(\.description) ?? "-") (\(frontend.name)/TCP)")
        }
        if clientTLS != nil {
            // The client's TLS handshake comes first; the ClientHello is usually there already.
            phase = .handshake
            clientIO.watch(EV_READ_MASK, on: loop)
            armTimer()
            ev_feed_event(loop.raw, clientIO.raw, EV_READ_MASK)
            return
        }
        route()
    }

    /// TLS: advances the client's handshake; routes the session once it is done.
    private func clientHandshake(_ tls: TLSConnection) {
        switch tls.handshake() {
        case .inProgress:
            clientIO.watch(tls.interest(0), on: loop)
        case .failed:
            termination = TerminationState(cause: UInt8(ascii: "C"), phase: UInt8(ascii: "R"))
            finish()
        case .done:
            clientIO.watch(0, on: loop)
            lastClientActivity = loop.now
            phase = .waiting
            if rejectedBySession() { return }
            route()
        }
    }

    /// `tcp-request session` once the TLS handshake is done (a plain connection's ran at accept):
    /// true when the rules rejected it (closed, counted in `dses`, not logged, as HAProxy).
    private func rejectedBySession() -> Bool {
        guard let rules = frontend.tcpRules, !rules.session.isEmpty else { return false }
        let decision = rules.evaluateSession(connectionInfo, scratch: worker.ruleScratch)
        guard decision.reject else {
            variables.merge(decision.variables) { _, new in new }
            return false
        }
        frontend.counters[loop].deniedSessions += 1
        if decision.silentDrop { resetOnClose(clientFD) }
        unlogged = true
        termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "R"))
        finish()
        return true
    }

    /// The loop's rule scratch with this session's variables and captures in it, for one
    /// evaluation (the scratch is every session's of the loop: it keeps none of them after).
    private func withRuleScratch<T>(_ body: (HTTPRuleScratch) -> T) -> T {
        let scratch = worker.ruleScratch
        swap(&scratch.variables, &variables)
        swap(&scratch.contentCaptures, &contentCaptures)
        defer {
            swap(&scratch.variables, &variables)
            swap(&scratch.contentCaptures, &contentCaptures)
        }
        return body(scratch)
    }

    /// The connection as the TCP rules see it.
    private var connectionInfo: HTTPConnectionInfo {
        var info = HTTPConnectionInfo(client: clientAddress, local: localAddress, tls: clientTLS, localFD: clientFD, tracker: tracker)
        info.proxyHeader = receivedProxyHeader
        return info
    }

    /// `tcp-request content` rules first (reading the client's first bytes, up to the inspect
    /// delay), then `use_backend` in mode tcp, then the server.
    private func route() {
        if let rules = frontend.tcpRules, rules.inspectsContent {
            if !rules.content.isEmpty {
                phase = .inspecting
                inspectStart = loop.now
                clientIO.watch(clientTLS?.interest(EV_READ_MASK) ?? EV_READ_MASK, on: loop)
                armTimer()
                ev_feed_event(loop.raw, clientIO.raw, EV_READ_MASK)
                return
            }
            chooseBackend(rules)
        }
        connectToServer()
    }

    /// Inspection: reads what the client sent (kept in `c2s` for the server) and evaluates the
    /// content rules; `expired`: the inspect delay has passed.
    private func inspect(expired: Bool) {
        guard let rules = frontend.tcpRules else { return connectToServer() }
        let size = loop.buffers.size
        while !c2s.eof && c2s.tail < size {
            let buffer = c2s.buffer ?? loop.buffers.take()
            c2s.buffer = buffer
            let read: IOResult
            do {
                if let tls = clientTLS {
                    read = try syscall("SSL_read") { tls.read(buffer + c2s.tail, size - c2s.tail) }
                } else {
                    read = try syscall("recv") { Glibc.recv(clientFD, buffer + c2s.tail, size - c2s.tail, Int32(MSG_DONTWAIT)) }
                }
            } catch {
                termination = TerminationState(cause: UInt8(ascii: "C"), phase: UInt8(ascii: "R"))
                return finish()
            }
            guard case .processed(let n) = read else { break }
            if n == 0 {
                c2s.eof = true
                break
            }
            c2s.tail += n
            c2s.bytes += UInt64(n)
            frontend.counters[loop].bytesIn += UInt64(n)
            lastClientActivity = loop.now
        }
        if c2s.tail == 0, let b = c2s.buffer {
            loop.buffers.give(b)
            c2s.buffer = nil
        }
        let mayGrow = !expired && !c2s.eof && c2s.tail < size && rules.inspectDelay != nil
        let payload = UnsafeRawBufferPointer(start: c2s.buffer, count: c2s.tail)
        let info = connectionInfo
        let decision = withRuleScratch { scratch in
            withUnsafeMutablePointer(to: &contentResume) { resume in
                rules.evaluateContent(info, payload: payload, mayGrow: mayGrow, scratch: scratch, resume: resume)
            }
        }
        switch decision {
        case .wait:
            clientIO.watch(clientTLS?.interest(EV_READ_MASK) ?? EV_READ_MASK, on: loop)
            if let tls = clientTLS, tls.hasBufferedInput { ev_feed_event(loop.raw, clientIO.raw, EV_READ_MASK) }
        case .reject, .silentDrop:
            frontend.counters[loop].deniedRequests += 1
            termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "R"))
            if decision == .silentDrop { resetOnClose(clientFD) }
            finish()
        case .accept:
            clientIO.watch(0, on: loop)
            chooseBackend(rules)
            if let backend, c2s.bytes > 0 { backend.counters[loop].bytesIn += c2s.bytes }
            connectToServer()
        }
    }

    /// `tcp-response content`: reads what the server sent (up to one buffer, kept in `s2c` for the
    /// client) and evaluates the rules; `expired`: the inspect delay has passed. As HAProxy: the
    /// rules run once bytes came (or the server closed, or the delay passed); `reject` aborts the
    /// session (nothing reaches the client, counted in `dresp`, logged `PD`); `close` closes the
    /// server connection at once, what it sent goes to the client, and the session ends there.
    private func inspectResponse(expired: Bool) {
        guard let rules = backend?.responseRules, let c = connector.connection else {
            inspectingResponse = false
            return
        }
        let size = loop.buffers.size
        while !s2c.eof && s2c.tail < size {
            let buffer = s2c.buffer ?? loop.buffers.take()
            s2c.buffer = buffer
            let read: IOResult
            do {
                if let tls = c.tls {
                    read = try syscall("SSL_read") { tls.read(buffer + s2c.tail, size - s2c.tail) }
                } else {
                    read = try syscall("recv") { Glibc.recv(c.fd, buffer + s2c.tail, size - s2c.tail, Int32(MSG_DONTWAIT)) }
                }
            } catch {
                termination = TerminationState(cause: UInt8(ascii: "S"), phase: UInt8(ascii: "D"))
                return finish()
            }
            guard case .processed(let n) = read else { break }
            if n == 0 {
                s2c.eof = true
                break
            }
            s2c.tail += n
            s2c.bytes += UInt64(n)
            countBytes(n, fromServer: true)
            lastServerActivity = loop.now
        }
        if s2c.tail == 0, let b = s2c.buffer {
            loop.buffers.give(b)
            s2c.buffer = nil
        }
        if s2c.tail == 0 && !s2c.eof && !expired { return }
        let mayGrow = !expired && !s2c.eof && s2c.tail < size && rules.inspectDelay != nil
        let payload = UnsafeRawBufferPointer(start: s2c.buffer, count: s2c.tail)
        let info = connectionInfo
        switch withRuleScratch({ rules.evaluate(info, payload: payload, mayGrow: mayGrow, scratch: $0) }) {
        case .wait:
            break
        case .accept:
            inspectingResponse = false
            pump(server: true)
        case .reject:
            frontend.counters[loop].deniedResponses += 1
            backend?.counters[loop].deniedResponses += 1
            server?.state.counters[loop].deniedResponses += 1
            termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "D"))
            finish()
        case .close:
            inspectingResponse = false
            // HAProxy closes the server side without lingering; nothing more goes either way
            // but what the server already sent.
            resetOnClose(c.fd)
            shutdown(c.fd, Int32(SHUT_RDWR))
            s2c.eof = true
            if let b = c2s.buffer { loop.buffers.give(b) }
            if let p = c2s.pipe { loop.pipes.give(p, empty: false) }
            c2s = Flow(buffer: nil, head: 0, tail: 0, pipe: nil, inPipe: 0, splice: false, eof: true, shutdownSent: true, bytes: c2s.bytes)
            pump(server: true)
        }
    }

    /// Mode tcp: the first `use_backend` rule that matches, else the default backend.
    private func chooseBackend(_ rules: TCPRuleSet) {
        guard !rules.backendRules.isEmpty else { return }
        let payload = UnsafeRawBufferPointer(start: c2s.buffer, count: c2s.tail)
        let info = connectionInfo
        if let name = withRuleScratch({ rules.backendName(info, payload: payload, scratch: $0) }),
           let chosen = generation.backends[name] {
            backend = chosen
        }
    }

    private func connectToServer() {
        guard let backend else {
            termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "R"))
            finish()
            return
        }
        if backend.proxy.mode == .http, let listener { return upgradeToHTTP(backend, on: listener) }
        backend.counters.sessionStarted(on: loop)
        backendCounted = true
        // HAProxy's rule: an option set on the frontend or the backend applies.
        let f = frontend.proxy.tcp.spliceAuto, b = backend.proxy.tcp.spliceAuto
        spliceAuto = f == true || b == true || (f == nil && b == nil)
        phase = .connecting
        if backend.sendsProxy {
            connector.proxySource = ProxyHeaderSource(client: clientAddress, local: localAddress ?? localEndpoint(clientFD),
                                                      tls: clientTLS)
        }
        if let stick = backend.stickRules {
            let info = connectionInfo
            let payload = UnsafeRawBufferPointer(start: c2s.buffer, count: c2s.tail)
            let decision = withRuleScratch { stick.evaluate(info, payload: payload, scratch: $0, backend: backend) }
            connector.persistentServer = decision.server
            stickStores = decision.stores
        }
        perform(connector.start(for: self, backend: backend, worker: worker, clientFD: clientFD,
                                source: clientAddress?.address, now: loop.now))
    }

    override var balanceSource: IPAddress? { clientAddress?.address }

    /// Called by the backend when a slot frees for this queued session.
    override func leftQueue(assigned s: BackendServer) {
        perform(connector.leftQueue(assigned: s, now: loop.now))
    }

    /// Carries out what the connector asks for.
    private func perform(_ action: ServerConnector.Action) {
        if !stickStores.isEmpty, let s = connector.server {
            StickRuleSet.store(stickStores, server: s)
            stickStores = []
        }
        switch action {
        case .connecting, .waiting:
            if let c = connector.connection { c.watch(c.connectInterest) }
            armTimer()
        case .connected, .reused:
            phase = .established
            if backend?.responseRules != nil {
                inspectingResponse = true
                responseInspectStart = loop.now
            }
            if clientTLS == nil && serverTLS == nil, let backend {
                // `option splice-request|splice-response`: splice from the first byte.
                let f = frontend.proxy.tcp, b = backend.proxy.tcp
                if f.spliceRequest || b.spliceRequest { c2s.splice = true }
                if f.spliceResponse || b.spliceResponse { s2c.splice = true }
            }
            lastClientActivity = loop.now
            lastServerActivity = loop.now
            if frontend.logPlan.logAsap { log(early: true) }
            updateInterest()
            armTimer()
        case .failed(let t):
            termination = t
            finish()
        }
    }

    // MARK: events

    override func ioEvent(_ watcher: UnsafeMutablePointer<ev_io>, _ revents: Int32) {
        var revents = revents
        if let tls = clientTLS {
            if phase == .handshake { return clientHandshake(tls) }
            revents = tls.events(revents)
        }
        if phase == .inspecting { return inspect(expired: false) }
        if revents & EV_READ_MASK != 0 { pump(server: false) }
        if phase == .established, revents & EV_WRITE_MASK != 0 { pump(server: true) }
        afterPump()
    }

    /// Events of the server connection (its connect while `connecting`).
    override func serverEvent(_ revents: Int32) {
        if phase == .connecting { return perform(connector.connectEvent(now: loop.now)) }
        var revents = revents
        if let tls = serverTLS { revents = tls.events(revents) }
        if revents & EV_READ_MASK != 0 {
            if inspectingResponse { inspectResponse(expired: false) } else { pump(server: true) }
        }
        if phase == .established, revents & EV_WRITE_MASK != 0 { pump(server: false) }
        afterPump()
    }

    private func afterPump() {
        guard phase == .established else { return }
        if c2s.isDone && s2c.isDone {
            finish()
        } else {
            updateInterest()
        }
    }

    /// Moves one direction: `server` true moves server->client, false client->server.
    private func pump(server fromServer: Bool) {
        // What the server sent waits for the `tcp-response content` rules.
        guard let c = connector.connection, !(fromServer && inspectingResponse) else { return }
        let outcome: PumpOutcome
        if fromServer {
            outcome = move(&s2c, from: c.fd, to: clientFD, fromServer: true, serverTLS: c.tls)
        } else {
            outcome = move(&c2s, from: clientFD, to: c.fd, fromServer: false, serverTLS: c.tls)
        }
        switch outcome {
        case .ok:
            break
        case .sourceFailed:
            termination = TerminationState(cause: UInt8(ascii: fromServer ? "S" : "C"), phase: UInt8(ascii: "D"))
            finish()
        case .destinationFailed:
            termination = TerminationState(cause: UInt8(ascii: fromServer ? "C" : "S"), phase: UInt8(ascii: "D"))
            finish()
        }
    }

    enum PumpOutcome { case ok, sourceFailed, destinationFailed }

    /// Writes what is pending, then reads and writes until a side would block, the source ends,
    /// or a fairness bound is reached (the level-triggered loop calls again). A read happens only
    /// into an empty flow, so a slow destination stops the source being read: backpressure.
    private func move(_ flow: inout Flow, from src: Int32, to dst: Int32, fromServer: Bool,
                      serverTLS: TLSConnection?) -> PumpOutcome {
        var budget = 256 * 1024
        var drained = false
        var readSize = 0
        let now = loop.now
        let sourceTLS = fromServer ? serverTLS : clientTLS
        let destinationTLS = fromServer ? clientTLS : serverTLS
        while true {
            if flow.pending > 0 {
                let written: IOResult
                do {
                    if flow.tail > flow.head {
                        let base = flow.buffer! + flow.head
                        let count = flow.tail - flow.head
                        if let destinationTLS {
                            written = try syscall("SSL_write") { destinationTLS.write(base, count) }
                        } else {
                            written = try syscall("send") { Glibc.send(dst, base, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                        }
                    } else {
                        let count = flow.inPipe
                        let pipeFD = flow.pipe!.readFD
                        written = try syscall("splice") {
                            CLibEV_splice(pipeFD, dst, count, CLibEV_SPLICE_F_MOVE | CLibEV_SPLICE_F_NONBLOCK)
                        }
                    }
                } catch {
                    return .destinationFailed
                }
                guard case .processed(let n) = written else { return .ok }
                if fromServer { lastClientActivity = now } else { lastServerActivity = now }
                if flow.tail > flow.head {
                    flow.head += n
                    if flow.head == flow.tail {
                        loop.buffers.give(flow.buffer!)
                        flow.buffer = nil
                        flow.head = 0
                        flow.tail = 0
                    }
                } else {
                    flow.inPipe -= n
                    if fromServer { loop.pipes.countSplicedOut(n) }
                    if flow.inPipe == 0 {
                        loop.pipes.give(flow.pipe!, empty: true)
                        flow.pipe = nil
                    }
                }
                continue
            }
            if flow.eof || budget <= 0 || drained { break }
            let read: IOResult
            do {
                if flow.splice, let pipe = flow.pipe ?? loop.pipes.take() {
                    flow.pipe = pipe
                    readSize = PipePool.capacity
                    read = try syscall("splice") {
                        CLibEV_splice(src, pipe.writeFD, PipePool.capacity, CLibEV_SPLICE_F_MOVE | CLibEV_SPLICE_F_NONBLOCK)
                    }
                    if case .processed(let n) = read, n > 0 { flow.inPipe = n }
                    if case .processed(0) = read {
                        loop.pipes.give(pipe, empty: true)
                        flow.pipe = nil
                    }
                    if case .wouldBlock = read {
                        loop.pipes.give(pipe, empty: true)
                        flow.pipe = nil
                    }
                } else {
                    let buffer = flow.buffer ?? loop.buffers.take()
                    flow.buffer = buffer
                    let size = loop.buffers.size
                    readSize = size
                    if let sourceTLS {
                        read = try syscall("SSL_read") { sourceTLS.read(buffer, size) }
                    } else {
                        read = try syscall("recv") { Glibc.recv(src, buffer, size, Int32(MSG_DONTWAIT)) }
                    }
                    if case .processed(let n) = read, n > 0 {
                        flow.tail = n
                        // A full buffer means bulk data: splice from now on (both ends are plain sockets).
                        if n == size && spliceAuto && sourceTLS == nil && destinationTLS == nil { flow.splice = true }
                    } else {
                        loop.buffers.give(buffer)
                        flow.buffer = nil
                    }
                }
            } catch {
                return .sourceFailed
            }
            switch read {
            case .wouldBlock:
                break
            case .processed(0):
                flow.eof = true
            case .processed(let n):
                flow.bytes += UInt64(n)
                budget -= n
                if fromServer { lastServerActivity = now } else { lastClientActivity = now }
                countBytes(n, fromServer: fromServer)
                // A short read drained the socket: write it, then wait for the next event rather
                // than pay a recv() that would only say EAGAIN.
                if n < readSize { drained = true }
                continue
            }
            break
        }
        if flow.eof && flow.pending == 0 && !flow.shutdownSent {
            flow.shutdownSent = true
            if let destinationTLS { destinationTLS.shutdownWrite(fd: dst) } else { shutdown(dst, Int32(SHUT_WR)) }
        }
        return .ok
    }

    private func countBytes(_ n: Int, fromServer: Bool) {
        if fromServer {
            frontend.counters[loop].bytesOut += UInt64(n)
            backend?.counters[loop].bytesOut += UInt64(n)
            server?.state.counters[loop].bytesOut += UInt64(n)
        } else {
            frontend.counters[loop].bytesIn += UInt64(n)
            backend?.counters[loop].bytesIn += UInt64(n)
            server?.state.counters[loop].bytesIn += UInt64(n)
        }
    }

    private func updateInterest() {
        var clientEvents: Int32 = 0
        var serverEvents: Int32 = 0
        if !c2s.eof && c2s.pending == 0 { clientEvents |= EV_READ_MASK }
        if s2c.pending > 0 && !inspectingResponse { clientEvents |= EV_WRITE_MASK }
        if !s2c.eof && (inspectingResponse ? s2c.tail < loop.buffers.size : s2c.pending == 0) { serverEvents |= EV_READ_MASK }
        if c2s.pending > 0 { serverEvents |= EV_WRITE_MASK }
        let c = connector.connection
        if let tls = clientTLS { clientEvents = tls.interest(clientEvents) }
        if let tls = c?.tls { serverEvents = tls.interest(serverEvents) }
        clientIO.watch(clientEvents, on: loop)
        c?.watch(serverEvents)
        // Bytes OpenSSL already holds announce themselves through no socket event.
        if let tls = clientTLS, clientEvents & EV_READ_MASK != 0, tls.hasBufferedInput {
            ev_feed_event(loop.raw, clientIO.raw, EV_READ_MASK)
        }
        if let c, let tls = c.tls, serverEvents & EV_READ_MASK != 0, tls.hasBufferedInput { c.feed(EV_READ_MASK) }
    }

    // MARK: timeouts

    /// The deadline of the current phase; nil when no timeout applies.
    private func deadline() -> Double? {
        let t = proxyTimeouts
        func seconds(_ ms: Int?) -> Double? { ms.map { Double($0) / 1000 } }
        switch phase {
        case .handshake:
            return seconds(frontend.proxy.timeouts.client).map { acceptedAt + $0 }
        case .inspecting:
            // The inspect delay; `timeout client` too when it is shorter (HAProxy's).
            let delay = frontend.tcpRules?.inspectDelay.map { inspectStart + $0 }
            let client = seconds(frontend.proxy.timeouts.client).map { lastClientActivity + $0 }
            switch (delay, client) {
            case let (d?, c?): return min(d, c)
            case let (d?, nil): return d
            case let (nil, c?): return c
            default: return nil
            }
        case .connecting:
            return connector.deadline
        case .established:
            let f = frontend.proxy.timeouts
            let clientLimit = seconds(c2s.eof ? (f.clientFin ?? f.tunnel ?? f.client) : (t.tunnel ?? f.client))
            let serverLimit = seconds(s2c.eof ? (t.serverFin ?? t.tunnel ?? t.server) : (t.tunnel ?? t.server))
            let a = clientLimit.map { lastClientActivity + $0 }
            let b = serverLimit.map { lastServerActivity + $0 }
            var limit: Double?
            switch (a, b) {
            case let (x?, y?): limit = min(x, y)
            case let (x?, nil): limit = x
            case let (nil, y?): limit = y
            default: limit = nil
            }
            if inspectingResponse, let delay = backend?.responseRules?.inspectDelay {
                limit = min(limit ?? .infinity, responseInspectStart + delay)
            }
            return limit
        case .waiting, .closed:
            return nil
        }
    }

    private func armTimer() {
        if let d = deadline() {
            timer.arm(after: d - loop.now, on: loop)
        } else {
            timer.stop(on: loop)
        }
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        guard let d = deadline() else { return }
        let now = loop.now
        if d > now + 0.0005 {
            // Activity moved the deadline since the timer was armed (lazy re-arming).
            timer.arm(after: d - now, on: loop)
            return
        }
        switch phase {
        case .handshake:
            termination = TerminationState(cause: UInt8(ascii: "c"), phase: UInt8(ascii: "R"))
            finish()
        case .inspecting:
            if let delay = frontend.tcpRules?.inspectDelay, inspectStart + delay <= now + 0.0005 {
                inspect(expired: true)
            } else {
                termination = TerminationState(cause: UInt8(ascii: "c"), phase: UInt8(ascii: "R"))
                finish()
            }
        case .connecting:
            perform(connector.timerExpired(now: now))
        case .established:
            if inspectingResponse, let delay = backend?.responseRules?.inspectDelay, responseInspectStart + delay <= now + 0.0005 {
                inspectResponse(expired: true)
                afterPump()
                armTimer()
                return
            }
            let f = frontend.proxy.timeouts
            let t = proxyTimeouts
            let clientMS = c2s.eof ? (f.clientFin ?? f.tunnel ?? f.client) : (t.tunnel ?? f.client)
            let clientExpired = clientMS.map { lastClientActivity + Double($0) / 1000 <= now + 0.0005 } ?? false
            termination = TerminationState(cause: UInt8(ascii: clientExpired ? "c" : "s"), phase: UInt8(ascii: "D"))
            finish()
        case .waiting, .closed:
            break
        }
    }

    // MARK: end

    override func kill() {
        guard phase != .closed else { return }
        let phaseCode: UInt8
        switch phase {
        case .connecting: phaseCode = UInt8(ascii: connector.state == .queued ? "Q" : "C")
        default: phaseCode = UInt8(ascii: "D")
        }
        connector.leaveQueue()
        generation.shard(loop).sessionsKilled += 1
        termination = TerminationState(cause: UInt8(ascii: "K"), phase: phaseCode)
        finish()
    }

    /// A backend in mode http (HAProxy upgrades the stream): the connection, counted and tuned,
    /// with its TLS, stick counters, variables and the bytes read so far, goes on as an HTTP
    /// session on the same listener; this session ends without closing it or logging.
    private func upgradeToHTTP(_ backend: Backend, on listener: Listener) {
        phase = .closed
        clientIO.release(on: loop)
        timer.release(on: loop)
        var preface: [UInt8] = []
        if let b = c2s.buffer {
            preface = Array(UnsafeRawBufferPointer(start: b + c2s.head, count: c2s.tail - c2s.head))
            loop.buffers.give(b)
            c2s.buffer = nil
        }
        let session = HTTPSession(worker: worker, listener: listener, frontend: frontend, clientFD: clientFD,
                                  clientAddress: clientAddress, localAddress: localAddress, tls: clientTLS, tracker: tracker,
                                  variables: variables)
        session.receivedProxyHeader = receivedProxyHeader
        session.upgradedBackend = backend.proxy.name
        tracker = nil
        // The frontend's and the loop's session counts pass to the HTTP session, which ends them.
        generation.shard(loop).end(self)
        worker.requestEnded(in: generation)
        session.start(counted: true, preface: preface)
        selfRetain?.release()
        selfRetain = nil
    }

    /// Closes both sides, gives back pooled resources, logs and releases the generation.
    private func finish() {
        guard phase != .closed else { return }
        phase = .closed
        clientIO.release(on: loop)
        timer.release(on: loop)
        let clean = termination.cause == UInt8(ascii: "-")
        if clean { clientTLS?.sendCloseNotify() }
        if localAddress == nil && frontend.logPlan.needsLocalAddress { localAddress = localEndpoint(clientFD) }
        close(clientFD)
        connector.closeConnection(notify: clean)
        for flow in [c2s, s2c] {
            if let b = flow.buffer { loop.buffers.give(b) }
            if let p = flow.pipe { loop.pipes.give(p, empty: flow.inPipe == 0) }
        }
        c2s.buffer = nil; s2c.buffer = nil; c2s.pipe = nil; s2c.pipe = nil
        if !unlogged { log() }
        if let tracker {
            tracker.bytesIn += Int(truncatingIfNeeded: c2s.bytes)
            tracker.bytesOut += Int(truncatingIfNeeded: s2c.bytes)
            tracker.end()
            self.tracker = nil
        }
        connector.release()
        frontend.counters.sessionEnded(on: loop)
        if backendCounted { backend?.counters.sessionEnded(on: loop) }
        // The generation's error share: a server that could not be reached (…C), that reset or
        // closed on an error (S…), or timed out (s…).
        let cause = termination.cause
        if cause == UInt8(ascii: "S") || cause == UInt8(ascii: "s")
            || (termination.phase == UInt8(ascii: "C") && cause != UInt8(ascii: "C") && cause != UInt8(ascii: "c") && cause != UInt8(ascii: "K")) {
            generation.shard(loop).errors += 1
        }
        generation.shard(loop).end(self)
        worker.sessionEnded(in: generation)
        selfRetain?.release()
        selfRetain = nil
    }

    /// The session's record for the statistics and the log line (`option tcplog` is HAProxy's
    /// `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`).
    /// `early`: `option logasap`'s line when the server connection is established (not counted).
    private func log(early: Bool = false) {
        let ms = { (v: Double) -> Int in Int((v * 1000).rounded()) }
        var r = LogRecord(mode: .tcp, frontend: frontend, generation: generation.id, acceptDate: acceptedWall)
        // A session that never reached a backend (rejected, or no route) logs its frontend's name
        // there, as HAProxy does.
        r.backend = backendCounted ? backend : nil
        r.server = server
        r.client = clientAddress
        r.local = localAddress
        r.isTLS = clientTLS != nil
        r.tls = clientTLS
        r.queue = connector.queueTime < 0 ? (termination.phase == UInt8(ascii: "Q") ? -1 : 0) : ms(connector.queueTime)
        r.connect = connector.connectTime < 0 ? -1 : ms(connector.connectTime)
        r.total = ms(loop.now - acceptedAt)
        r.active = r.total
        r.status = 0
        r.bytesOut = s2c.bytes
        r.bytesIn = c2s.bytes
        r.termination = termination
        r.activeConnections = worker.engine.currentSessions
        r.frontendConnections = frontend.counters.currentSessions
        r.backendConnections = backend?.counters.currentSessions ?? 0
        r.serverConnections = lastServerSessions
        r.retries = connector.retries
        r.redispatched = connector.redispatched
        r.backendQueue = backend?.queued ?? 0
        r.variables = variables
        // `%hr`: the `tcp-request content capture` slots (HAProxy's request captures).
        let slots = frontend.tcpRules?.captureSlots ?? 0
        var captured: [UInt8] = []
        if slots > 0 {
            captured.append(0x7B)
            for slot in 0..<slots {
                if slot > 0 { captured.append(0x7C) }
                guard let value = contentCaptures.first(where: { $0.slot == slot })?.value else { continue }
                value.withUnsafeBytes { v in HTTPRuleSet.appendCaptured(v) { captured.append($0) } }
            }
            captured.append(0x7D)
        }
        captured.withUnsafeBytes { bytes in
            if slots > 0 { r.requestCaptures = bytes }
            if early {
                r.clientFD = clientFD  // open still: `%fi`/`%fp` read it
                loggedEarly = frontend.logPlan.emitEarly(r, to: frontend.log)
                return
            }
            worker.account(r)
            if !loggedEarly { frontend.logPlan.emit(r, to: frontend.log) }
        }
    }

    private var lastServerSessions: Int { server?.state.currentSessions ?? 0 }
}

/// `silent-drop`: the next close() of `fd` sends a reset (SO_LINGER 0) instead of a FIN, and
/// drops whatever is still unsent. HAProxy goes further (TCP_REPAIR, or a zero TTL so that even
/// the reset never reaches the client); strata's client sees the connection reset.
func resetOnClose(_ fd: Int32) {
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
}

/// TCP_NODELAY (a proxy must not add Nagle's delay to small exchanges) and SO_KEEPALIVE when asked.
/// `receive`/`send`: `tune.rcvbuf.*`/`tune.sndbuf.*` for this side (nil: the kernel's sizing).
func setTCPOptions(_ fd: Int32, keepAlive: Bool, receive: Int? = nil, send: Int? = nil) {
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    if keepAlive { setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size)) }
    if var size = receive.map(Int32.init) { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
    if var size = send.map(Int32.init) { setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
}

extension Frontend {
    /// Client connections' socket options: keep-alive and the global socket buffer sizes.
    func setClientOptions(_ fd: Int32) {
        let sizes = generation.config.config.global.socketBuffers
        setTCPOptions(fd, keepAlive: proxy.tcpKeepAlive.client, receive: sizes.clientReceive, send: sizes.clientSend)
    }
}

func localEndpoint(_ fd: Int32) -> SocketEndpoint? {
    var storage = sockaddr_storage()
    var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let ok = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) == 0 }
    }
    return ok ? SocketEndpoint(storage) : nil
}

extension TCPSession: StatsSessionDescribing {
    var statsStartedAt: Double { acceptedAt }
    var statsFrontend: Frontend? { frontend }
    var statsBackend: Backend? { backend }
}
