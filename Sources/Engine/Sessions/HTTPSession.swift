import HTTP1
import CLibEV
import ConfigModel
import Glibc
import TCPWire

/// An HTTP client connection and the requests it carries, one at a time (pipelined requests wait
/// in the buffer). The connection belongs to its listener, not to a generation: each request is a
/// session of the generation current when its head is complete, and holds that generation until
/// its response is sent. Between requests the connection holds no generation, so a reload never
/// closes it; only when the listener stops serving (the new generation dropped it, or a soft stop)
/// does an idle connection close, and a busy one answer with `Connection: close`.
///
/// The request in flight is `transaction` (HTTPTransaction.swift), its server side the
/// transaction's `ServerConnector`. The connection's events, transports, interest and end are
/// here; the request in HTTPSession+Request.swift, the server in +Server, the response and the
/// answers strata writes itself in +Response, a transaction's start, end and log line in
/// +Transaction, the deadlines in +Timeouts.
final class HTTPSession: ListedSession {
    enum Phase: Equatable {
        /// Between requests: no generation held.
        case idle
        /// A request head is arriving.
        case head
        /// Routed: waiting for a server slot, a connection, or a retry.
        case waitingServer
        /// The request and its response are flowing.
        case exchange
        /// After 101 Switching Protocols: bytes both ways until both sides close.
        case tunnel
        /// The last answer is being written; the connection closes after it.
        case closing
        case closed
    }

    unowned(unsafe) let worker: Worker
    let loop: EventLoop
    /// The listener the connection came through: it says which frontend serves the next request.
    let listener: Listener
    let clientFD: Int32
    /// The request's client address: `http-request set-src` and `set-src-port` change it for the
    /// transaction (HAProxy's stream), the next request starts from the accepted one.
    var clientAddress: SocketEndpoint?
    let acceptedClientAddress: SocketEndpoint?
    /// The local address known at accept (a PROXY header's destination), what a request's
    /// `set-dst` is undone to.
    let acceptedLocalAddress: SocketEndpoint?
    /// `set-src`/`set-dst` changed the addresses of the current request.
    var addressesChanged = false
    /// `silent-drop`: the client connection closes with a reset and no TLS close_notify.
    var droppedSilently = false
    /// `bind … ssl`: the client connection's TLS (nil: a plain socket), with the listener's
    /// context of the generation current at accept, kept for the connection's life.
    let clientTLS: TLSConnection?
    /// An HTTP/2 stream's session: the stream takes the socket's place (reads, writes, events),
    /// and the connection (`clientFD`, `clientTLS`) is its H2Connection's, never closed here.
    let stream: H2Stream?
    // The session's state is touched by its own loop's thread only, one event at a time: its
    // stored properties skip the runtime's exclusivity bookkeeping (swift_beginAccess), which
    // cost about a hundred calls per request.
    @exclusivity(unchecked) var phase = Phase.idle
    @exclusivity(unchecked) var clientIO: IOWatcher
    @exclusivity(unchecked) var timer: TimerWatcher
    /// Counted against this frontend's connections since accept (counters carry across reloads).
    private let connectionCounters: CounterSet

    /// The request in flight, from its first byte to its log line (HTTPTransaction.swift).
    @exclusivity(unchecked) var transaction = HTTPTransaction()

    // Client side: request bytes in, response bytes out.
    @exclusivity(unchecked) var clientIn = SessionBuffer()
    /// End of what the request parser consumed in `clientIn`; `[clientIn.start, requestParsed)` is
    /// request body to forward.
    @exclusivity(unchecked) var requestParsed = 0
    @exclusivity(unchecked) var requestParser: HTTPRequestParser
    @exclusivity(unchecked) var clientOut = SessionBuffer()
    /// The body of a local answer, sent after `clientOut` (owned by the generation or the
    /// transaction's service answer).
    @exclusivity(unchecked) var pendingBody: UnsafeRawBufferPointer?
    @exclusivity(unchecked) var clientEOF = false

    // Server side: the connection is the transaction's (`serverConnection`); its bytes pass here.
    @exclusivity(unchecked) var serverIn = SessionBuffer()
    @exclusivity(unchecked) var responseParsed = 0
    /// Reset for each server connection: a new connection's bytes start a new response.
    @exclusivity(unchecked) var responseParser: HTTPResponseParser
    /// The rewritten request head, kept until the response starts so a failed reused connection
    /// can be retried on a fresh one.
    @exclusivity(unchecked) var serverOut = SessionBuffer()
    @exclusivity(unchecked) var serverOutSent = 0

    // The connection's life.
    /// Requests the connection has carried.
    @exclusivity(unchecked) var requests = 0
    /// `option prefer-last-server`: the server the previous request used, by its carried state
    /// (never a generation's object: an idle connection holds no generation).
    @exclusivity(unchecked) var lastServerState: ServerState?
    /// The listener no longer serves: close at the end of the request in flight.
    @exclusivity(unchecked) var mustClose = false
    /// An idle connection whose listener stopped serving (a soft stop, or a reload that dropped
    /// it): the frontend that served it, held until the connection is idle past its keep-alive
    /// timeout, so a request already on its way is answered (with `Connection: close`) rather
    /// than met by a close. Its generation counts the connection as a session meanwhile, so it
    /// drains for it (and `hard-stop-after` ends it).
    @exclusivity(unchecked) var lingeringFrontend: Frontend?
    /// The rules' per-request storage, kept for the connection's life (allocated at its first request).
    @exclusivity(unchecked) var scratch: HTTPRuleScratch?
    @exclusivity(unchecked) var localAddress: SocketEndpoint?
    /// The PROXY protocol header the connection began with (`accept-proxy`).
    @exclusivity(unchecked) var receivedProxyHeader: ProxyHeader?
    /// A mode tcp frontend's connection whose backend is in mode http (HAProxy's implicit
    /// upgrade): each request goes to the backend of this name in its generation (the frontend's
    /// default without one), through the backend's rules only.
    @exclusivity(unchecked) var upgradedBackend: String?

    // Timing (loop seconds) for the timeouts.
    @exclusivity(unchecked) var idleSince: Double
    @exclusivity(unchecked) var lastClientActivity: Double
    @exclusivity(unchecked) var lastServerActivity: Double
    /// When the timer fires (infinity: stopped); a deadline that comes earlier re-arms it.
    @exclusivity(unchecked) var armedDeadline = Double.infinity
    @exclusivity(unchecked) var selfRetain: Unmanaged<HTTPSession>?
    /// The connection's stick counters (nil until a generation with stick tables serves it).
    @exclusivity(unchecked) var tracker: StickTracker?
    /// The request's `stick on|store-request` keys, given its server's id once it has one.
    @exclusivity(unchecked) var stickStores: [(StickTable, StickKey)] = []
    unowned(unsafe) var listenerPrev: HTTPSession?
    unowned(unsafe) var listenerNext: HTTPSession?

    /// `localAddress`: the destination a PROXY protocol header carried (nil: the socket's own).
    init(worker: Worker, listener: Listener, frontend: Frontend, clientFD: Int32, clientAddress: SocketEndpoint?,
         localAddress: SocketEndpoint? = nil, tls: TLSConnection? = nil, tracker: StickTracker? = nil,
         stream: H2Stream? = nil, variables: HTTPVariables = [:]) {
        self.localAddress = localAddress
        self.tracker = tracker
        self.stream = stream
        self.worker = worker
        self.loop = worker.loop
        self.listener = listener
        self.clientFD = clientFD
        self.clientAddress = clientAddress
        acceptedClientAddress = clientAddress
        acceptedLocalAddress = localAddress
        self.clientTLS = tls
        self.connectionCounters = frontend.counters
        let global = frontend.generation.config.config.global
        let limits = HTTPParserLimits(maxHeadSize: min(global.requestHeadLimit, worker.loop.buffers.size),
                                      maxFieldCount: global.maxHeaders, maxChunkLineSize: 4096)
        requestParser = HTTPRequestParser(limits: limits)
        responseParser = HTTPResponseParser(limits: HTTPParserLimits(maxHeadSize: worker.loop.buffers.size,
                                                                    maxFieldCount: global.maxHeaders, maxChunkLineSize: 4096))
        idleSince = worker.loop.now
        lastClientActivity = idleSince
        lastServerActivity = idleSince
        clientIO = IOWatcher(fd: clientFD, handler: EventHandler())
        timer = TimerWatcher(handler: EventHandler())
        super.init()
        clientIO.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        timer.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        startVariables(variables)
    }

    /// `tcp-request session set-var`: the connection's variables, which every request sees.
    func startVariables(_ variables: HTTPVariables) {
        guard !variables.isEmpty else { return }
        let scratch = self.scratch ?? HTTPRuleScratch(capacity: loop.buffers.size)
        self.scratch = scratch
        scratch.variables.merge(variables) { _, new in new }
    }

    // The request in flight's generation, proxies, server and server connection.
    var generation: Generation? { transaction.generation }
    var frontend: Frontend? { transaction.frontend }
    var backend: Backend? { transaction.backend }
    var server: BackendServer? { transaction.connector.server }
    var serverConnection: ServerConnection? { transaction.connector.connection }

    /// The rules that stand first for the request: the frontend's, or for an upgraded mode tcp
    /// frontend (which has none) the backend's, which then serve as both stages.
    var frontendRules: HTTPRuleSet? { frontend?.rules ?? (upgradedBackend != nil ? backend?.rules : nil) }
    /// The backend's rules as a second stage (none when they already stand first).
    var backendStageRules: HTTPRuleSet? { frontend?.rules == nil ? nil : backend?.rules }

    override var balanceSource: IPAddress? { clientAddress?.address }
    override var balanceKey: UInt64? { transaction.connector.hashKey }

    /// `counted`: the connection is already counted and tuned (a TCP session upgraded to HTTP),
    /// and `preface` is what it read of the client's bytes.
    func start(counted: Bool = false, preface: [UInt8] = []) {
        selfRetain = Unmanaged.passRetained(self)
        if stream != nil {
            // The connection is counted, attached and tuned by its H2Connection.
            updateInterest()
            armTimer()
            return
        }
        if !counted {
            connectionCounters.sessionStarted(on: loop)
            worker.sessionStarted()
            listener.frontend?.setClientOptions(clientFD)
        }
        listener.attach(self)
        if !preface.isEmpty {
            let buffer = clientIn.take(loop.buffers)
            let n = min(preface.count, loop.buffers.size - clientIn.end)
            preface.withUnsafeBytes { (buffer + clientIn.end).copyMemory(from: $0.baseAddress!, byteCount: n) }
            clientIn.end += n
            lastClientActivity = loop.now
            parseRequestHead()
            afterEvent()
            if phase == .closed { return }
        }
        updateInterest()
        armTimer()
        // TLS: the ClientHello has usually arrived with the connection; try it in this loop turn.
        if clientTLS != nil { ev_feed_event(loop.raw, clientIO.raw, EV_READ_MASK) }
    }

    // MARK: events

    override func ioEvent(_ watcher: UnsafeMutablePointer<ev_io>, _ revents: Int32) {
        var revents = revents
        if stream == nil, let tls = clientTLS {
            guard tls.isEstablished else { return clientHandshake(tls) }
            revents = tls.events(revents)
        }
        if revents & EV_READ_MASK != 0 { clientReadable() }
        if phase != .closed, revents & EV_WRITE_MASK != 0 { flushToClient() }
        afterEvent()
    }

    /// Events of the server connection the request in flight uses (its connect while waiting).
    override func serverEvent(_ revents: Int32) {
        var revents = revents
        if let tls = serverConnection?.tls, tls.isEstablished { revents = tls.events(revents) }
        if phase == .waitingServer {
            if revents & (EV_WRITE_MASK | EV_READ_MASK) != 0 { perform(transaction.connector.connectEvent(now: loop.now)) }
        } else {
            if revents & EV_READ_MASK != 0 { serverReadable() }
            if phase != .closed, revents & EV_WRITE_MASK != 0 { flushToServer() }
        }
        afterEvent()
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) { timerFired() }

    /// A slot freed for the request waiting in its backend's queue.
    override func leftQueue(assigned s: BackendServer) {
        perform(transaction.connector.leftQueue(assigned: s, now: loop.now))
        afterEvent()
    }

    func afterEvent() {
        guard phase != .closed else { return }
        checkTransactionEnd()
        guard phase != .closed else { return }
        updateInterest()
        tightenTimer()
    }

    // MARK: the client's transport

    // The client connection's bytes go through these three calls only, with recv/send's results
    // (a count, 0 at EOF, or -1 with errno, EAGAIN when it would block): the seam where a TLS
    // transport takes the socket's place.

    @inline(__always)
    func clientRead(_ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        if let stream { return stream.read(buffer, count) }
        if let tls = clientTLS { return tls.read(buffer, count) }
        return recv(clientFD, buffer, count, Int32(MSG_DONTWAIT))
    }

    @inline(__always)
    func clientWrite(_ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        if let stream { return stream.write(bytes, count) }
        if let tls = clientTLS { return tls.write(bytes, count) }
        return send(clientFD, bytes, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
    }

    func clientShutdownWrite() {
        if let stream { return stream.shutdownWrite() }
        if let tls = clientTLS { return tls.shutdownWrite(fd: clientFD) }
        shutdown(clientFD, Int32(SHUT_WR))
    }

    /// TLS: the handshake before the first request (no generation is held meanwhile; the idle
    /// deadline bounds it). The request may come with the handshake's last flight: read it now.
    func clientHandshake(_ tls: TLSConnection) {
        switch tls.handshake() {
        case .inProgress:
            updateInterest()
        case .failed:
            if let frontend = listener.frontend, !frontend.log.isEmpty {
                if frontend.logPlan.error != nil {
                    // `error-log-format`: the connection's record, ended by the client at the
                    // handshake (HAProxy's CR), with what TLS had negotiated.
                    var r = LogRecord(mode: .http, frontend: frontend, generation: frontend.generation.id, acceptDate: wallClock())
                    r.client = clientAddress
                    r.local = frontend.logPlan.needsLocalAddress ? localEndpoint(clientFD) : nil
                    r.isTLS = true
                    r.tls = tls
                    r.termination = TerminationState(cause: UInt8(ascii: "C"), phase: UInt8(ascii: "R"))
                    frontend.logPlan.emitConnectionError(r, to: frontend.log)
                } else {
                    // HAProxy's line for a connection that failed before its first request.
                    let client = clientAddress.map { "\($0.address):\($0.port)" } ?? "-:-"
                    frontend.log.send("\(client) [\(logDate(wallClock()))] \(frontend.name)/\(listener.key.endpoint): SSL handshake failure")
                }
            }
            close()
        case .done:
            // `tcp-request session`: the session is validated now (a plain one's ran at accept).
            if let frontend = listener.frontend, let rules = frontend.tcpRules, !rules.session.isEmpty {
                let decision = rules.evaluateSession(connectionInfo, scratch: worker.ruleScratch)
                if decision.reject {
                    frontend.counters[loop].deniedSessions += 1
                    if decision.silentDrop {
                        droppedSilently = true
                        resetOnClose(clientFD)
                    }
                    return close()
                }
                startVariables(decision.variables)
            }
            if listener.forcesH2 || tls.selectedH2 { return becomeH2(tls) }
            lastClientActivity = loop.now
            clientReadable()
            afterEvent()
        }
    }

    override func kill() {
        if lingeringFrontend != nil { return close() }
        guard generation != nil else { return }
        generation?.shard(loop).sessionsKilled += 1
        transaction.termination = TerminationState(cause: UInt8(ascii: "K"), phase: transaction.termination.phase == UInt8(ascii: "-") ? UInt8(ascii: "D") : transaction.termination.phase)
        abortTransaction()
    }

    /// The listener stopped serving (the new generation dropped it, or a soft stop): an idle
    /// connection closes now, a busy one after its answer, which says `Connection: close`.
    func listenerReleased(previous: Frontend?) {
        mustClose = true
        if phase == .idle {
            // A request may be on its way: the connection lingers, held by the frontend that
            // served it, and closes when idle past its keep-alive timeout.
            guard let previous, previous.proxy.mode == .http || upgradedBackend != nil, let g = previous.generation, lingeringFrontend == nil else {
                return close()
            }
            lingeringFrontend = previous
            // Counted as a session of its generation on this loop (not as accepted: no request).
            let shard = g.shard(loop)
            shard.sessions += 1
            shard.sessionList.insert(self)
            armTimer()
        } else if phase == .head && generation == nil, let previous, previous.proxy.mode == .http || upgradedBackend != nil {
            // A head already arriving is served by the generation it started under, which
            // therefore holds on until the answer is sent.
            begin(previous)
        } else {
            transaction.closeAfterResponse = true
        }
    }

    /// Gives up a lingering connection's hold on its generation (`notify`: the generation may
    /// retire now).
    func endLingering(notify: Bool) {
        guard let f = lingeringFrontend, let g = f.generation else { return }
        lingeringFrontend = nil
        g.shard(loop).end(self)
        if notify { worker.requestEnded(in: g) }
    }

    /// `silent-drop`: the next close() resets the client connection and says nothing more. An
    /// HTTP/2 stream's connection is shared: only the stream ends (it is reset).
    func dropSilently() {
        guard stream == nil else { return }
        droppedSilently = true
        resetOnClose(clientFD)
    }

    func close() {
        guard phase != .closed else { return }
        if generation != nil { endTransaction() }
        endLingering(notify: true)
        phase = .closed
        transaction.connector.closeConnection()
        clientIO.release(on: loop)
        timer.release(on: loop)
        clientIn.release(loop.buffers)
        clientOut.release(loop.buffers)
        serverIn.release(loop.buffers)
        serverOut.release(loop.buffers)
        if let stream {
            // The stick counters are the connection's: they end with it (counters this session
            // made itself, under a generation that began tracking after the connection's start, end here).
            if let tracker, tracker !== stream.connection?.tracker { tracker.end() }
            tracker = nil
            stream.sessionClosed()
        } else {
            if !droppedSilently { clientTLS?.sendCloseNotify() }
            Glibc.close(clientFD)
            listener.detach(self)
            tracker?.end()
            tracker = nil
            connectionCounters.sessionEnded(on: loop)
            worker.connectionEnded()
        }
        selfRetain?.release()
        selfRetain = nil
    }

    /// ALPN chose h2 (or the bind says `proto h2`, or a clear connection's first bytes are the
    /// HTTP/2 preface): the connection, counted and handshaken, passes to an H2Connection with
    /// what was read of it; this session ends without closing it.
    func becomeH2(_ tls: TLSConnection?, preface: [UInt8] = []) {
        guard let frontend = listener.frontend, frontend.proxy.mode == .http else { return close() }
        phase = .closed
        clientIO.release(on: loop)
        timer.release(on: loop)
        clientIn.release(loop.buffers)
        clientOut.release(loop.buffers)
        listener.detach(self)
        // The connection's stick counters go with it.
        let connection = H2Connection(worker: worker, listener: listener, frontend: frontend, fd: clientFD,
                                      clientAddress: clientAddress, localAddress: localAddress, tls: tls, tracker: tracker,
                                      variables: scratch?.variables ?? [:])
        tracker = nil
        connection.receivedProxyHeader = receivedProxyHeader
        connection.start(counted: true, countedOn: connectionCounters, preface: preface)
        selfRetain?.release()
        selfRetain = nil
    }

    // MARK: interest

    func updateInterest() {
        guard phase != .closed else { return }
        let size = loop.buffers.size
        var client: Int32 = 0
        let roomIn = clientIn.end < size || clientIn.start > 0
        switch phase {
        case .idle, .head:
            if !clientEOF && roomIn { client |= EV_READ_MASK }
        case .waitingServer, .exchange:
            // The connection keeps reading while the answer comes (what arrives waits in the
            // buffer, as a pipelined request does): the watcher then stays as it is, where dropping
            // READ and taking it back costs an epoll_ctl per request.
            if !clientEOF && roomIn { client |= EV_READ_MASK }
        case .tunnel:
            if !clientEOF && clientIn.isEmpty { client |= EV_READ_MASK }
        case .closing, .closed:
            break
        }
        if !clientOut.isEmpty || pendingBody != nil || responseParsed > serverIn.start { client |= EV_WRITE_MASK }
        if let stream {
            stream.setInterest(client)
        } else if let tls = clientTLS {
            client = tls.interest(client)
            clientIO.watch(client, on: loop)
            // Bytes OpenSSL already holds announce themselves through no socket event.
            if client & EV_READ_MASK != 0 && tls.hasBufferedInput { ev_feed_event(loop.raw, clientIO.raw, EV_READ_MASK) }
        } else {
            clientIO.watch(client, on: loop)
        }

        guard let c = serverConnection else { return }
        var serverEvents: Int32 = 0
        if phase == .waitingServer {
            // Connecting, then the TLS handshake.
            serverEvents = c.connectInterest
        } else if phase == .exchange || phase == .tunnel {
            let roomServerIn = phase == .tunnel ? serverIn.isEmpty : (serverIn.end < size || serverIn.start > 0)
            if !transaction.serverEOF && !transaction.responseComplete && roomServerIn { serverEvents |= EV_READ_MASK }
            if phase == .tunnel && !transaction.serverEOF && serverIn.isEmpty { serverEvents |= EV_READ_MASK }
            if serverOutSent < serverOut.end || requestParsed > clientIn.start { serverEvents |= EV_WRITE_MASK }
            if let tls = c.tls {
                serverEvents = tls.interest(serverEvents)
                if serverEvents & EV_READ_MASK != 0 && tls.hasBufferedInput { c.feed(EV_READ_MASK) }
            }
        }
        c.watch(serverEvents)
    }
}

extension HTTPSession: StatsSessionDescribing {
    var statsStartedAt: Double { transaction.requestAt }
    var statsFrontend: Frontend? { frontend }
    var statsBackend: Backend? { backend }
}
