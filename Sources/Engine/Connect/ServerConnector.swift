import ConfigModel

/// A stream's way to its server, the same for TCP and HTTP sessions: HAProxy's backend.c (assign a
/// server, queue for a slot, connect) and the back half of its stream.c (retry, redispatch,
/// turn-around) in one value its session owns (in HTTP, its transaction: one per request). The
/// session reports what happens (its start, a slot freed for it in the queue, an event on the
/// connection, its timer) and carries out the action each call returns; the connector keeps the
/// server and its slot, the connection, and what the log says of them (Tw, Tc, retries, `+`).
///
///     idle -> queued? -> connecting (-> turnaround -> connecting)* -> established
///
/// A failed connect is retried `retries` times: on another server when `option redispatch` says
/// so (`Backend.redispatchesAfterFailure`), else on the same one, at once after a timeout and
/// after HAProxy's turn-around delay after a refusal.
struct ServerConnector {
    enum State: Equatable {
        /// Not started, between a redispatch and its pick, or given up.
        case idle
        /// In the backend's queue until a slot frees (maxconn), within `timeout queue`.
        case queued
        /// Waiting to connect again: the turn-around after a refused connect, or a file descriptor
        /// to come free (`ServerSocketWait`).
        case turnaround
        /// The TCP connect, then the TLS handshake, within `timeout connect`.
        case connecting
        case established
    }

    /// What the session does next; `connection` is the connection it concerns.
    enum Action {
        /// A new connection's connect is under way; its events go to the session, which watches
        /// it for `connectInterest` and reports them (`connectEvent`).
        case connecting
        /// An idle connection from the server's pool carries the stream: usable now.
        case reused
        /// The connection being made is up (its TLS too).
        case connected
        /// Nothing to do but wait for the connection's next event or the session's timer.
        case waiting
        /// The stream gets no server: the slot is given back and the session ends the stream
        /// (HTTP answers 503) with this termination state.
        case failed(TerminationState)
    }

    // What the stream asks for, set by its session before `start` (HTTP only; TCP leaves them).
    /// The server cookie persistence designated: tried before balancing while it takes traffic.
    var persistentServer: BackendServer?
    /// What `balance uri|url_param|hdr` hashes for this stream.
    var hashKey: UInt64?
    /// `sni EXPR` from a fetch: the TLS server name of this stream's connection.
    var serverName: String?
    /// An idle pooled connection may carry the stream (`http-reuse`).
    var mayReuse = false
    /// What a `send-proxy*` server's PROXY header says (the stream's addresses and TLS).
    var proxySource: ProxyHeaderSource?

    private(set) var state = State.idle
    /// When the current wait ends (the session's timer): `timeout queue` (else `timeout connect`)
    /// in the queue, the turn-around's end, `timeout connect` for a connect; nil when nothing is
    /// awaited. Kept rather than computed: reading it costs no copy of the connector.
    private(set) var deadline: Double?
    /// The server chosen last; kept after the slot is given back, for the log.
    private(set) var server: BackendServer?
    /// The connection being made, then in use, until the session takes it back (`takeConnection`).
    private(set) var connection: ServerConnection?
    /// `connection` came from the idle pool.
    private(set) var reused = false
    private var holdsSlot = false
    /// The server was persistence's choice, not balancing's (HAProxy's SF_DIRECT): a redispatch
    /// then waits its turn.
    private var persistent = false

    private(set) var retries = 0
    /// `reconnect` was called: the next connection is a new one (an HTTP/2 stream too).
    private var reconnecting = false
    private(set) var redispatched = false
    /// Loop seconds: when the stream entered the queue (-1: not queued).
    private(set) var queuedAt = -1.0
    /// Tw: seconds spent in the queue, -1 when the stream never left it.
    private(set) var queueTime = -1.0
    private(set) var connectStartedAt = 0.0
    /// Tc: seconds the connect took, -1 until connected, 0 on a pooled connection.
    private(set) var connectTime = -1.0
    private var socketWait = ServerSocketWait()

    // Set by `start`: they outlive the stream (the session holds its generation, which owns
    // the backend).
    private unowned(unsafe) var session: ListedSession?
    private unowned(unsafe) var worker: Worker?
    private unowned(unsafe) var backend: Backend?
    private var clientFD: Int32 = -1

    init() {}

    // MARK: events

    /// Starts the way to a server of `backend`: `session` waits in the queue and gets the
    /// connection's events; `clientFD` says which port a server without one is reached on, and
    /// `source` is the client's address.
    mutating func start(for session: ListedSession, backend: Backend, worker: Worker, clientFD: Int32,
                        source: IPAddress?, now: Double) -> Action {
        self.session = session
        self.backend = backend
        self.worker = worker
        self.clientFD = clientFD
        return assign(excluding: nil, backend: backend, session: session, source: source, now: now)
    }

    /// The backend took a slot on `server` for this queued stream.
    mutating func leftQueue(assigned server: BackendServer, now: Double) -> Action {
        queueTime = now - queuedAt
        queuedAt = -1
        self.server = server
        holdsSlot = true
        guard let backend else { return fail(serverUnavailable) }
        return open(backend: backend, now: now)
    }

    /// The connection being made reported an event on its socket.
    mutating func connectEvent(now: Double) -> Action {
        guard state == .connecting, let c = connection, let s = server else { return .waiting }
        switch c.advanceConnect(tls: s.tls, serverName: ServerConnector.usesStreamName(s) ? serverName : nil) {
        case .inProgress:
            return .waiting
        case .failed:
            return connectFailed(timedOut: false, now: now)
        case .reopen:
            closeConnection()
            guard let backend else { return fail(serverUnavailable) }
            return open(backend: backend, now: now)
        case .established:
            worker?.observe(s, .connected)
            connectTime = now - connectStartedAt
            enter(.established)
            return .connected
        }
    }

    /// The session's timer reached `deadline`.
    mutating func timerExpired(now: Double) -> Action {
        switch state {
        case .queued:
            let enteredAt = queuedAt
            leaveQueue()
            queueTime = now - enteredAt
            return fail(TerminationState(cause: UInt8(ascii: "s"), phase: UInt8(ascii: "Q")))
        case .turnaround:
            guard let backend else { return fail(serverUnavailable) }
            return open(backend: backend, now: now)
        case .connecting:
            return connectFailed(timedOut: true, now: now)
        case .idle, .established:
            return .waiting
        }
    }

    /// The pooled connection failed before anything of its answer came: a new connection (never
    /// another pooled one) to the same server, at once (HAProxy does not turn around on a reused
    /// connection). Whether the request may be sent again is the session's call.
    mutating func reconnect(now: Double) -> Action {
        closeConnection()
        reused = false
        mayReuse = false
        reconnecting = true
        guard let backend else { return fail(serverUnavailable) }
        return open(backend: backend, now: now)
    }

    // MARK: the end

    /// Gives the connection back to the session (to pool or close it when the exchange is over).
    mutating func takeConnection() -> ServerConnection? {
        defer { connection = nil }
        return connection
    }

    /// Closes the connection (`notify`: with TLS's close_notify, a clean end).
    mutating func closeConnection(notify: Bool = true) {
        connection?.close(notify: notify)
        connection = nil
    }

    /// Leaves the backend's queue (nothing when not queued).
    @inline(__always)
    mutating func leaveQueue() {
        guard state == .queued else { return }
        if let session, let worker { backend?.dequeue(session, on: worker.loop) }
        queuedAt = -1
        enter(.idle)
    }

    /// The stream is done with its server, or gives up on it: out of the queue, the connection
    /// closed, the slot given back (which serves the queues). `server` stays for the log.
    mutating func release() {
        leaveQueue()
        closeConnection()
        releaseSlot()
        enter(.idle)
    }

    /// The stream is over and logged (`release` came first): its server is forgotten, so an HTTP
    /// connection between requests reports none.
    mutating func end() {
        assert(!holdsSlot && connection == nil && state != .queued, "end before release")
        server = nil
        persistentServer = nil
    }

    // MARK: choosing and connecting

    /// Cookie persistence's server first, while it takes traffic and has room; else balancing's
    /// choice among the usable servers (`excluding` the one a redispatch leaves; `source`, the
    /// client's address, for `balance source`); else the queue.
    private mutating func assign(excluding: BackendServer?, backend: Backend, session: ListedSession, source: IPAddress?,
                                 now: Double) -> Action {
        guard let worker else { return fail(serverUnavailable) }
        let loop = worker.loop
        if let s = persistentServer, s !== excluding, s.acceptsPersistentTraffic(forced: backend.proxy.persist), !s.isFull, takeSlot(s) {
            persistentServer = nil
            persistent = true
            return open(backend: backend, now: now)
        }
        persistentServer = nil
        persistent = false
        var pick = backend.pickServer(on: loop, excluding: excluding, source: source, hashKey: hashKey)
        // Another loop may take the last slot between the pick and the take: then the queue.
        if case .server(let s) = pick, !takeSlot(s) { pick = .full }
        switch pick {
        case .server:
            return open(backend: backend, now: now)
        case .full:
            let t = backend.proxy.timeouts
            enter(.queued, until: ServerConnector.seconds(t.queue ?? t.connect).map { now + $0 })
            queuedAt = now
            backend.enqueue(session, on: loop)
            return .waiting
        case .noServer:
            return fail(serverUnavailable)
        }
    }

    /// Connects to the server whose slot the stream holds: an idle pooled connection when the
    /// stream may reuse one, else a new one.
    private mutating func open(backend: Backend, now: Double) -> Action {
        guard let s = server else { return fail(serverUnavailable) }
        connectStartedAt = now
        guard let worker else { return fail(serverUnavailable) }
        let sendProxy = s.config.options.sendProxy
        if mayReuse, sendProxy == nil, let pooled = s.state.takeIdle(on: worker.loop, tls: s.tls?.fingerprint) {
            s.state.counters[worker.loop].reuses += 1
            backend.counters[worker.loop].reuses += 1
            adopt(pooled, reused: true)
            connectTime = 0
            enter(.established)
            return .reused
        }
        let target = s.addressAndEpoch
        if s.config.options.speaksH2 && (s.config.options.forcesH2 || s.state.chosenHTTP1.load(ordering: .relaxed) != target.epoch) {
            return openStream(on: s, target: target, backend: backend, worker: worker, now: now) }
        s.state.counters[worker.loop].connectAttempts += 1
        backend.counters[worker.loop].connectAttempts += 1
        switch ServerConnection.open(on: worker.loop, to: ServerConnector.endpoint(target.address, clientFD: clientFD),
                                     server: s.state, keepAlive: backend.proxy.tcpKeepAlive.server,
                                     buffers: backend.generation?.config.config.global.socketBuffers ?? SocketBufferSizes(),
                                     source: s.config.options.source ?? backend.proxy.source) {
        case .opened(let c):
            socketWait.end()
            c.addressEpoch = target.epoch
            // TLS named after this stream's request serves that request only.
            c.poolable = !ServerConnector.usesStreamName(s)
            if let sendProxy {
                c.proxyHeader = ProxyHeaderBuilder.header(sendProxy, source: proxySource)
                c.poolable = false
            }
            adopt(c, reused: false)
            enter(.connecting, until: ServerConnector.seconds(backend.proxy.timeouts.connect).map { now + $0 })
            return .connecting
        case .refused:
            socketWait.end()
            return connectFailed(timedOut: false, backend: backend, now: now)
        case .noSocket:
            // Out of fds or memory: sessions ending free fds at any moment, so wait for one.
            if let at = socketWait.retryTime(now: now, limit: Double(backend.proxy.timeouts.connect ?? 5000) / 1000) {
                enter(.turnaround, until: at)
                return .waiting
            }
            return fail(TerminationState(cause: UInt8(ascii: "R"), phase: UInt8(ascii: "C")))
        }
    }

    /// An HTTP/2 server: a stream on one of its connections with a free stream slot (unless
    /// `http-reuse never`), else on a new connection; its connect is the connection's.
    private mutating func openStream(on s: BackendServer, target: (address: ServerAddress, epoch: Int), backend: Backend,
                                     worker: Worker, now: Double) -> Action {
        let loop = worker.loop
        let global = backend.generation?.config.config.global ?? GlobalSettings()
        let connectTimeout = ServerConnector.seconds(backend.proxy.timeouts.connect) ?? 5
        guard let (carrier, rides) = H2ServerConnection.stream(
            to: s, endpoint: ServerConnector.endpoint(target.address, clientFD: clientFD), epoch: target.epoch, loop: loop,
            share: backend.proxy.http.reuse != .never && !reconnecting, keepAlive: backend.proxy.tcpKeepAlive.server,
            buffers: global.socketBuffers, source: s.config.options.source ?? backend.proxy.source, connectTimeout: connectTimeout,
            global: global, counters: H2CounterSink(loop: worker.h2Counters, proxy: backend.counters.h2?[loop.index]))
        else {
            s.state.counters[loop].connectAttempts += 1
            backend.counters[loop].connectAttempts += 1
            return connectFailed(timedOut: false, backend: backend, now: now)
        }
        if rides {
            s.state.counters[loop].reuses += 1
            backend.counters[loop].reuses += 1
        } else {
            s.state.counters[loop].connectAttempts += 1
            backend.counters[loop].connectAttempts += 1
        }
        adopt(carrier, reused: rides)
        enter(.connecting, until: now + connectTimeout)
        return .connecting
    }

    /// A connect failed (refused, unreachable, TLS) or timed out: retry, redispatch or give up.
    private mutating func connectFailed(timedOut: Bool, now: Double) -> Action {
        guard let backend else {
            closeConnection()
            return fail(serverUnavailable)
        }
        return connectFailed(timedOut: timedOut, backend: backend, now: now)
    }

    private mutating func connectFailed(timedOut: Bool, backend: Backend, now: Double) -> Action {
        closeConnection()
        guard let s = server, let session else { return fail(serverUnavailable) }
        guard let worker else { return fail(serverUnavailable) }
        let loop = worker.loop
        worker.observe(s, .connectFailed)
        let allowed = backend.proxy.retries
        if retries < allowed {
            retries += 1
            s.state.counters[loop].retries += 1
            backend.counters[loop].retries += 1
            if backend.redispatchesAfterFailure(of: s, retry: retries, of: allowed, persistent: persistent, on: loop) {
                redispatched = true
                s.state.counters[loop].redispatches += 1
                backend.counters[loop].redispatches += 1
                releaseSlot()
                enter(.idle)
                return assign(excluding: s, backend: backend, session: session, source: session.balanceSource, now: now)
            }
            if timedOut { return open(backend: backend, now: now) }
            // A server that refused at once would most likely refuse again at once.
            enter(.turnaround, until: now + ServerConnector.turnaroundDelay(connectTimeout: backend.proxy.timeouts.connect))
            return .waiting
        }
        s.state.counters[loop].connectionErrors += 1
        backend.counters[loop].connectionErrors += 1
        return fail(TerminationState(cause: UInt8(ascii: timedOut ? "s" : "S"), phase: UInt8(ascii: "C")))
    }

    /// SC: no server could take the stream.
    private var serverUnavailable: TerminationState { TerminationState(cause: UInt8(ascii: "S"), phase: UInt8(ascii: "C")) }

    private mutating func fail(_ termination: TerminationState) -> Action {
        releaseSlot()
        enter(.idle)
        return .failed(termination)
    }

    /// Moves to `state`, whose wait ends at `deadline` (nil: nothing awaited).
    private mutating func enter(_ state: State, until deadline: Double? = nil) {
        self.state = state
        self.deadline = deadline
    }

    private mutating func adopt(_ c: ServerConnection, reused: Bool) {
        c.owner = session
        c.requests += 1
        connection = c
        self.reused = reused
    }

    /// Takes a slot on `s`: false when another loop took its last one first.
    private mutating func takeSlot(_ s: BackendServer) -> Bool {
        guard let worker, s.takeSlot(on: worker.loop) else { return false }
        server = s
        holdsSlot = true
        return true
    }

    private mutating func releaseSlot() {
        guard holdsSlot, let s = server, let worker else { return }
        holdsSlot = false
        s.releaseSlot(on: worker)
    }

    // MARK: rules

    /// Where a stream connects to a server at `moved` (`BackendServer.address`): its address and
    /// port; without a port, the port the client connected to (HAProxy's port mapping), and 0 when
    /// that cannot be read, as HAProxy leaves it (the connect then fails like any refused one).
    static func endpoint(of server: BackendServer, clientFD: Int32) -> SocketEndpoint {
        endpoint(server.address, clientFD: clientFD)
    }

    /// A server at 0.0.0.0 or `::` (`*`) is reached at the address the client connected to, as
    /// HAProxy forwards to the original destination (transparent proxying).
    static func endpoint(_ moved: ServerAddress, clientFD: Int32) -> SocketEndpoint {
        if moved.port == nil || moved.address.isAny {
            let local = localEndpoint(clientFD)
            return SocketEndpoint(address: moved.address.isAny ? local?.address ?? moved.address : moved.address,
                                  port: moved.port ?? local?.port ?? 0)
        }
        return SocketEndpoint(address: moved.address, port: moved.port!)
    }

    private static func seconds(_ ms: Int?) -> Double? { ms.map { Double($0) / 1000 } }

    /// HAProxy's turn-around after a refused connect: min(1 s, `timeout connect`).
    static func turnaroundDelay(connectTimeout: Int?) -> Double {
        min(Double(connectTimeout ?? 1000) / 1000, 1)
    }

    /// The server's TLS names each connection after its stream (`sni` with a fetch).
    private static func usesStreamName(_ s: BackendServer) -> Bool {
        guard let context = s.tls else { return false }
        return context.constantSNI == nil && context.settings.sni != nil
    }
}

/// A stream that found no fd for its server socket (EMFILE/ENFILE, or no memory). Sessions ending
/// free fds at any moment, so it tries again every 50 ms, up to its `timeout connect`, rather than
/// give up on a client that a moment later could be served.
struct ServerSocketWait {
    private var since = -1.0

    /// When to try again, or nil once `limit` seconds have passed since the first failure.
    mutating func retryTime(now: Double, limit: Double) -> Double? {
        if since < 0 { since = now }
        guard now - since < limit else {
            since = -1
            return nil
        }
        return now + 0.05
    }

    /// A socket was had: a later failure starts a new wait.
    mutating func end() { since = -1 }
}
