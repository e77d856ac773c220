import HTTP1
import CLibEV
import ConfigModel
import Glibc

/// Bytes in a pooled buffer: `[start, end)` are held. Buffers are taken when bytes arrive and
/// given back when empty, so an idle keep-alive connection holds none.
struct SessionBuffer {
    var base: UnsafeMutableRawPointer?
    var start = 0
    var end = 0

    var count: Int { end - start }
    var isEmpty: Bool { start == end }

    mutating func take(_ pool: BufferPool) -> UnsafeMutableRawPointer {
        if let base { return base }
        let b = pool.take()
        base = b
        return b
    }

    mutating func releaseIfEmpty(_ pool: BufferPool) {
        guard start == end, let b = base else { return }
        pool.give(b)
        base = nil
        start = 0
        end = 0
    }

    mutating func release(_ pool: BufferPool) {
        if let b = base { pool.give(b) }
        base = nil
        start = 0
        end = 0
    }

    /// Appends bytes (the caller made sure they fit).
    mutating func append(_ bytes: UnsafeRawBufferPointer, pool: BufferPool) {
        let b = take(pool)
        guard bytes.count > 0 else { return }
        (b + end).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        end += bytes.count
    }
}

/// An HTTP client connection and the requests it carries, one at a time (pipelined requests wait
/// in the buffer). The connection belongs to its listener, not to a generation: each request is a
/// session of the generation current when its head is complete, and holds that generation until
/// its response is sent. Between requests the connection holds no generation, so a reload never
/// closes it; only when the listener stops serving (the new generation dropped it, or a soft stop)
/// does an idle connection close, and a busy one answer with `Connection: close`.
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

    unowned(unsafe) let engine: Engine
    let loop: EventLoop
    /// The listener the connection came through: it says which frontend serves the next request.
    let listener: Listener
    let clientFD: Int32
    let clientAddress: SocketEndpoint?
    /// `bind … ssl`: the client connection's TLS (nil: a plain socket), with the listener's
    /// context of the generation current at accept, kept for the connection's life.
    let clientTLS: TLSConnection?
    // The session's state is touched by its own loop's thread only, one event at a time: its
    // stored properties skip the runtime's exclusivity bookkeeping (swift_beginAccess), which
    // cost about a hundred calls per request.
    @exclusivity(unchecked) private(set) var phase = Phase.idle
    @exclusivity(unchecked) private var clientIO: IOWatcher
    @exclusivity(unchecked) private var timer: TimerWatcher
    /// Counted against this frontend's connections since accept (counters carry across reloads).
    private let connectionCounters: ProxyCounters

    // Client side: request bytes in, response bytes out.
    @exclusivity(unchecked) private var clientIn = SessionBuffer()
    /// End of what the request parser consumed in `clientIn`; `[clientIn.start, requestParsed)` is
    /// request body to forward.
    @exclusivity(unchecked) private var requestParsed = 0
    @exclusivity(unchecked) private var requestParser: HTTPRequestParser
    @exclusivity(unchecked) private var clientOut = SessionBuffer()
    @exclusivity(unchecked) private var clientEOF = false

    // The request in flight (a session of `generation`).
    @exclusivity(unchecked) private(set) var generation: Generation?
    @exclusivity(unchecked) private var frontend: Frontend?
    @exclusivity(unchecked) private var backend: Backend?
    @exclusivity(unchecked) private(set) var server: BackendServer?
    @exclusivity(unchecked) private var holdsSlot = false
    @exclusivity(unchecked) private var serverConnection: ServerConnection?
    @exclusivity(unchecked) private var serverReused = false
    @exclusivity(unchecked) private var serverIn = SessionBuffer()
    @exclusivity(unchecked) private var responseParsed = 0
    @exclusivity(unchecked) private var responseParser: HTTPResponseParser
    /// The rewritten request head, kept until the response starts so a failed reused connection
    /// can be retried on a fresh one.
    @exclusivity(unchecked) private var serverOut = SessionBuffer()
    @exclusivity(unchecked) private var serverOutSent = 0
    @exclusivity(unchecked) private var requestMethod = HTTPMethod.get
    @exclusivity(unchecked) private var requestVersion = HTTPVersion.http11
    @exclusivity(unchecked) private var requestKeepAlive = true
    @exclusivity(unchecked) private var requestHasBody = false
    @exclusivity(unchecked) private var requestComplete = false
    /// The current request's head was parsed (an answer to a broken or late head cannot keep the
    /// connection).
    @exclusivity(unchecked) private var headReceived = false
    /// `option http-buffer-request`: the server is chosen once the body is in.
    @exclusivity(unchecked) private var waitingForBody = false
    @exclusivity(unchecked) private var expectsContinue = false
    @exclusivity(unchecked) private var responseStarted = false
    @exclusivity(unchecked) private var responseComplete = false
    @exclusivity(unchecked) private var responseStatus = 0
    @exclusivity(unchecked) private var localResponse = false
    @exclusivity(unchecked) private var interimResponse = false
    @exclusivity(unchecked) private var upgradeRequested = false
    /// The connection closes after this response.
    @exclusivity(unchecked) private var closeAfterResponse = false
    /// The listener no longer serves: close at the end of the request in flight.
    @exclusivity(unchecked) private var mustClose = false
    /// An idle connection whose listener stopped serving (a soft stop, or a reload that dropped
    /// it): the frontend that served it, held until the connection is idle past its keep-alive
    /// timeout, so a request already on its way is answered (with `Connection: close`) rather
    /// than met by a close. Its generation counts the connection as a session meanwhile, so it
    /// drains for it (and `hard-stop-after` ends it).
    @exclusivity(unchecked) private var lingeringFrontend: Frontend?
    @exclusivity(unchecked) private var serverEOF = false
    @exclusivity(unchecked) private var requests = 0
    @exclusivity(unchecked) private var retriesDone = 0
    @exclusivity(unchecked) private var redispatched = false
    @exclusivity(unchecked) private var termination = TerminationState()
    @exclusivity(unchecked) private var requestLine = ""
    @exclusivity(unchecked) private var bytesToClient: UInt64 = 0
    /// `option logasap`: this request's line left when its response head did.
    @exclusivity(unchecked) private var loggedEarly = false
    /// The rules' per-request storage, kept for the connection's life (allocated at its first request).
    @exclusivity(unchecked) private var scratch: HTTPRuleScratch?
    @exclusivity(unchecked) private var localAddress: SocketEndpoint?
    /// The body of a local answer, sent after `clientOut` (owned by the generation or the scratch).
    @exclusivity(unchecked) private var pendingBody: UnsafeRawBufferPointer?
    /// An answer from strata's own services (stats page, exporter): its bytes, and the applet name
    /// the log shows (`<STATS>`, `<PROMEX>`).
    @exclusivity(unchecked) private var serviceAnswer: StatsServiceAnswer?
    @exclusivity(unchecked) private var applet: StaticString?
    /// What `balance uri|url_param|hdr` hashes for this request.
    @exclusivity(unchecked) private var requestHashKey: UInt64?
    /// The server cookie persistence designated for this request.
    @exclusivity(unchecked) private var persistentServer: BackendServer?
    /// The server in use was chosen by persistence, not balancing (a redispatch then waits its turn).
    @exclusivity(unchecked) private var serverIsPersistent = false
    /// TLS towards the server with `sni EXPR` from a fetch: this request's name.
    @exclusivity(unchecked) private var requestServerName: String?

    // Timing (loop seconds) for timeouts and the log.
    @exclusivity(unchecked) private var idleSince: Double
    @exclusivity(unchecked) private var headStartedAt = 0.0
    @exclusivity(unchecked) private var requestAt = 0.0
    @exclusivity(unchecked) private var requestWall = 0.0
    @exclusivity(unchecked) private var queuedAt = -1.0
    @exclusivity(unchecked) private var queueTime = -1.0
    @exclusivity(unchecked) private var connectStartedAt = 0.0
    @exclusivity(unchecked) private var connectTime = -1.0
    @exclusivity(unchecked) private var responseTime = -1.0
    @exclusivity(unchecked) private var retryAt = 0.0
    @exclusivity(unchecked) private var socketWait = ServerSocketWait()
    @exclusivity(unchecked) private var lastClientActivity: Double
    @exclusivity(unchecked) private var lastServerActivity: Double
    @exclusivity(unchecked) private var selfRetain: Unmanaged<HTTPSession>?
    /// When the timer fires (infinity: stopped); a deadline that comes earlier re-arms it.
    @exclusivity(unchecked) private var armedDeadline = Double.infinity
    unowned(unsafe) var listenerPrev: HTTPSession?
    unowned(unsafe) var listenerNext: HTTPSession?

    init(engine: Engine, listener: Listener, frontend: Frontend, clientFD: Int32, clientAddress: SocketEndpoint?,
         tls: TLSConnection? = nil) {
        self.engine = engine
        self.loop = engine.loop
        self.listener = listener
        self.clientFD = clientFD
        self.clientAddress = clientAddress
        self.clientTLS = tls
        self.connectionCounters = frontend.counters
        let global = frontend.generation.config.config.global
        let limits = HTTPParserLimits(maxHeadSize: min(global.bufferSize, engine.loop.buffers.size),
                                      maxFieldCount: global.maxHeaders, maxChunkLineSize: 4096)
        requestParser = HTTPRequestParser(limits: limits)
        responseParser = HTTPResponseParser(limits: HTTPParserLimits(maxHeadSize: engine.loop.buffers.size,
                                                                    maxFieldCount: global.maxHeaders, maxChunkLineSize: 4096))
        idleSince = engine.loop.now
        lastClientActivity = idleSince
        lastServerActivity = idleSince
        clientIO = IOWatcher(fd: clientFD, handler: EventHandler())
        timer = TimerWatcher(handler: EventHandler())
        super.init()
        clientIO.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        timer.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    override var balanceSource: IPAddress? { clientAddress?.address }
    override var balanceKey: UInt64? { requestHashKey }

    func start() {
        selfRetain = Unmanaged.passRetained(self)
        connectionCounters.sessionStarted()
        engine.sessionStarted()
        listener.attach(self)
        if let f = listener.frontend { setTCPOptions(clientFD, keepAlive: f.proxy.tcpKeepAlive.client) }
        updateInterest()
        armTimer()
        // TLS: the ClientHello has usually arrived with the connection; try it in this loop turn.
        if clientTLS != nil { ev_feed_event(loop.raw, clientIO.raw, EV_READ_MASK) }
    }

    // MARK: events

    override func ioEvent(_ watcher: UnsafeMutablePointer<ev_io>, _ revents: Int32) {
        var revents = revents
        if let tls = clientTLS {
            guard tls.isEstablished else { return clientHandshake(tls) }
            revents = tls.events(revents)
        }
        if revents & EV_READ_MASK != 0 { clientReadable() }
        if phase != .closed, revents & EV_WRITE_MASK != 0 { flushToClient() }
        afterEvent()
    }

    /// Events of the server connection this session owns.
    override func serverEvent(_ revents: Int32) {
        var revents = revents
        if let tls = serverConnection?.tls, tls.isEstablished { revents = tls.events(revents) }
        if phase == .waitingServer {
            if revents & (EV_WRITE_MASK | EV_READ_MASK) != 0 { serverConnected() }
        } else {
            if revents & EV_READ_MASK != 0 { serverReadable() }
            if phase != .closed, revents & EV_WRITE_MASK != 0 { flushToServer() }
        }
        afterEvent()
    }

    private func afterEvent() {
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
    private func clientRead(_ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        if let tls = clientTLS { return tls.read(buffer, count) }
        return recv(clientFD, buffer, count, Int32(MSG_DONTWAIT))
    }

    @inline(__always)
    private func clientWrite(_ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        if let tls = clientTLS { return tls.write(bytes, count) }
        return send(clientFD, bytes, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
    }

    private func clientShutdownWrite() {
        if let tls = clientTLS { return tls.shutdownWrite(fd: clientFD) }
        shutdown(clientFD, Int32(SHUT_WR))
    }

    /// TLS: the handshake before the first request (no generation is held meanwhile; the idle
    /// deadline bounds it). The request may come with the handshake's last flight: read it now.
    private func clientHandshake(_ tls: TLSConnection) {
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
            lastClientActivity = loop.now
            clientReadable()
            afterEvent()
        }
    }

    // The server connection's bytes, the same way (`ServerConnection.tls` for `server … ssl`).

    @inline(__always)
    private func serverRead(_ c: ServerConnection, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        if let tls = c.tls { return tls.read(buffer, count) }
        return recv(c.fd, buffer, count, Int32(MSG_DONTWAIT))
    }

    @inline(__always)
    private func serverWrite(_ c: ServerConnection, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        if let tls = c.tls { return tls.write(bytes, count) }
        return send(c.fd, bytes, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
    }

    private func serverShutdownWrite(_ c: ServerConnection) {
        if let tls = c.tls { return tls.shutdownWrite(fd: c.fd) }
        shutdown(c.fd, Int32(SHUT_WR))
    }

    // MARK: client input

    private func clientReadable() {
        guard !clientEOF else { return }
        let pool = loop.buffers
        let buffer = clientIn.take(pool)
        if clientIn.end == pool.size { compactClientIn() }
        let space = pool.size - clientIn.end
        guard space > 0 else { return }
        let n = clientRead(buffer + clientIn.end, space)
        if n > 0 {
            // Request bytes for a server that had nothing to read: its timeout starts now.
            if phase == .exchange && requestParsed == clientIn.start && serverOutSent >= serverOut.end { lastServerActivity = loop.now }
            clientIn.end += n
            lastClientActivity = loop.now
            countIn(n)
        } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
            clientInputEnded(error: n < 0)
            return
        } else {
            clientIn.releaseIfEmpty(pool)
            return
        }
        switch phase {
        case .idle, .head:
            parseRequestHead()
        case .exchange, .waitingServer:
            if !requestComplete { parseRequestBody() }
            if waitingForBody { bodyBuffered() }
            if phase == .exchange { flushToServer() }
        case .tunnel:
            requestParsed = clientIn.end
            flushToServer()
        case .closing, .closed:
            // Nothing more is read from a closing connection.
            clientIn.start = clientIn.end
            requestParsed = clientIn.end
        }
    }

    private func clientInputEnded(error: Bool) {
        clientEOF = true
        switch phase {
        case .idle:
            close()
        case .head:
            // A request cut short before its head ended: nothing to answer (HAProxy logs CR).
            termination = TerminationState(cause: UInt8(ascii: "C"), phase: UInt8(ascii: "R"))
            close()
        case .waitingServer, .exchange:
            if !requestComplete {
                termination = TerminationState(cause: UInt8(ascii: "C"), phase: UInt8(ascii: responseStarted ? "D" : "H"))
                abortTransaction()
            } else if phase == .exchange {
                // A client that half-closed after its request still gets the response.
                closeAfterResponse = true
            }
        case .tunnel:
            if clientIn.isEmpty, let c = serverConnection { serverShutdownWrite(c) }
            tunnelMaybeDone()
        case .closing:
            close()
        case .closed:
            break
        }
    }

    /// Moves unsent bytes to the front of the client buffer (keeping the parser's view relative).
    private func compactClientIn() {
        guard clientIn.start > 0, let base = clientIn.base else { return }
        let count = clientIn.count
        if count > 0 { memmove(base, base + clientIn.start, count) }
        requestParsed -= clientIn.start
        clientIn.end = count
        clientIn.start = 0
    }

    private func parseRequestHead() {
        guard let base = clientIn.base, requestParsed < clientIn.end else {
            clientIn.releaseIfEmpty(loop.buffers)
            return
        }
        if phase == .idle {
            phase = .head
            headStartedAt = loop.now
            armTimer()
        }
        let input = UnsafeRawBufferPointer(start: base + requestParsed, count: clientIn.end - requestParsed)
        let action = requestParser.parse(input)
        switch action {
        case .needMore:
            if clientIn.start > 0 && clientIn.end == loop.buffers.size { compactClientIn() }
        case .error(let error):
            requestFailed(error)
        case .headersComplete(let headLength):
            startTransaction(head: UnsafeRawBufferPointer(start: base + requestParsed, count: headLength))
        default:
            // Between messages the parser returns a head first.
            break
        }
    }

    private func requestFailed(_ error: HTTPParseError) {
        // The request could not be understood: answer and close, as HAProxy does.
        let frontend = servingFrontend
        if generation == nil, let frontend { begin(frontend) }
        termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "R"))
        frontend?.counters.requestErrors += 1
        requestLine = "<BADREQ>"
        closeAfterResponse = true
        respondLocally(status: error.status)
    }

    /// The frontend a request arriving now is served by: the listener's, or the one a released
    /// listener left this connection with.
    private var servingFrontend: Frontend? { listener.frontend ?? lingeringFrontend }

    /// Counts a request in flight on the current generation of this listener's frontend.
    private func begin(_ frontend: Frontend) {
        // A lingering connection's hold becomes this request's (no loop turn in between: the
        // generation cannot retire meanwhile).
        endLingering(notify: false)
        self.frontend = frontend
        let g = frontend.generation!
        generation = g
        g.config.sessions += 1
        g.config.sessionsAccepted += 1
        g.sessionList.insert(self)
        requestAt = loop.now
        requestWall = wallClock()
        requests += 1
        frontend.counters.requests += 1
    }

    // MARK: a request

    private func startTransaction(head input: UnsafeRawBufferPointer) {
        if generation == nil {
            guard let frontend = servingFrontend, frontend.proxy.mode == .http else {
                // The listener now serves TCP: this connection's HTTP has nowhere to go.
                close()
                return
            }
            begin(frontend)
        }
        guard let frontend else { return }
        startRequest(input, frontend: frontend)
    }

    private func startRequest(_ input: UnsafeRawBufferPointer, frontend: Frontend) {
        headReceived = true
        // The head's facts read in place (a copy of the head costs its arrays' reference counts).
        requestMethod = requestParser.head.method
        requestVersion = requestParser.head.version
        requestKeepAlive = requestParser.head.keepAlive
        requestHasBody = requestParser.head.framing != .noBody
        upgradeRequested = requestParser.head.isUpgradeRequest
        expectsContinue = requestParser.head.expectsContinue
        waitingForBody = false
        // Only a log line prints it: no String per request when the frontend logs nothing.
        requestLine = frontend.log.isEmpty
            ? "" : String(decoding: UnsafeRawBufferPointer(rebasing: input[requestParser.head.startLine]), as: UTF8.self)
        requestComplete = false
        responseStarted = false
        responseComplete = false
        localResponse = false
        interimResponse = false
        serverEOF = false
        retriesDone = 0
        redispatched = false
        queueTime = -1
        connectTime = -1
        responseTime = -1
        responseStatus = 0
        bytesToClient = 0
        termination = TerminationState()
        closeAfterResponse = !requestKeepAlive || mustClose || clientEOF
            || frontend.proxy.http.connectionMode == .close

        let scratch = self.scratch ?? HTTPRuleScratch(capacity: loop.buffers.size)
        self.scratch = scratch
        let info = connectionInfo
        var backend: Backend?
        if let rules = frontend.rules {
            let generation = frontend.generation!
            let decision = rules.processRequest(requestParser.head, input: input, connection: info, scratch: scratch) { name in
                let chosen = name.map { generation.backends[$0] } ?? frontend.defaultBackend
                backend = chosen
                // A frontend that serves the stats page needs no backend (HAProxy checks `stats uri`
                // before switching): its own rules stand in, and a request the page does not take
                // is answered 503 below.
                return chosen?.rules ?? (frontend.proxy.stats != nil ? rules : nil)
            }
            switch decision {
            case .respond(let answer):
                consumeHead(input)
                if answer.isDenial { frontend.counters.deniedRequests += 1 }
                // HAProxy's flags: a deny is the proxy refusing (PR), a return or redirect a local
                // answer (LR).
                termination = TerminationState(cause: UInt8(ascii: answer.isDenial ? "P" : "L"), phase: UInt8(ascii: "R"))
                sendLocal(answer)
                return
            case .useService(let name):
                let answer = engine.serviceAnswer(name, requestParser.head, input: input)
                consumeHead(input)
                if let answer {
                    frontend.counters.intercepted += 1
                    sendService(answer, applet: "<PROMEX>")
                } else {
                    respondLocally(status: 503)
                }
                return
            case .forward:
                break
            }
        } else {
            backend = frontend.defaultBackend
        }
        // The stats page (`stats uri` on the frontend or the chosen backend) answers here.
        if frontend.proxy.stats != nil || backend?.proxy.stats != nil,
           let page = engine.statsPageRequest(requestParser.head, input: input, frontend: frontend, backend: backend) {
            let bodyStart = requestParsed + input.count
            let available = min(page.bodyLength, clientIn.end - bodyStart)
            let body = UnsafeRawBufferPointer(start: clientIn.base.map { $0 + bodyStart }, count: max(available, 0))
            let answer = engine.statsPageAnswer(page, requestParser.head, input: input, connection: info,
                                                scratch: scratch, frontend: frontend, body: body)
            consumeHead(input)
            // The form's body is read and dropped: nothing is forwarded.
            parseRequestBody()
            clientIn.start = requestParsed
            frontend.counters.intercepted += 1
            sendService(answer, applet: "<STATS>")
            return
        }
        guard let backend else {
            consumeHead(input)
            respondLocally(status: 503)
            return
        }
        self.backend = backend
        backend.counters.sessionStarted()
        backend.counters.requests += 1
        requestHashKey = nil
        persistentServer = nil
        if let rules = backend.rules {
            if let index = rules.persistentServer(requestParser.head, input: input, scratch: scratch,
                                                  isUsable: { i in backend.servers[i].acceptsPersistentTraffic }) {
                persistentServer = backend.servers[index]
            } else {
                requestHashKey = rules.balanceKey(for: backend.proxy.balance, requestParser.head, input: input, scratch: scratch)
            }
        }
        writeRequestHead(input, backend: backend, scratch: scratch, info: info)
        // `server … ssl sni EXPR`: rendered now, while the head is at hand.
        if let name = backend.serverName, let rules = frontend.rules {
            requestServerName = rules.render(name, requestParser.head, input: input, connection: info, scratch: scratch)
        }
        // The head was replaced by its rewritten copy; the body follows it verbatim.
        consumeHead(input)
        guard !localResponse else { return }
        phase = .waitingServer
        parseRequestBody()
        // A body refused in the bytes that came with the head was answered: nothing goes to a server.
        guard !localResponse, phase != .closed else { return }
        // `option http-buffer-request`: the body arrives (or fills the buffer) before a server is
        // chosen, within `timeout http-request`; an `Expect: 100-continue` is answered here.
        if (frontend.proxy.http.bufferRequest || backend.proxy.http.bufferRequest) && !requestComplete {
            waitingForBody = true
            if expectsContinue { appendToClient(HTTPSession.continueResponse); flushToClient() }
            armTimer()
            return
        }
        assignServer(excluding: nil)
    }

    /// A literal's bytes live in the binary: safe to share.
    nonisolated(unsafe) private static let continueResponse = UnsafeRawBufferPointer(StaticString("HTTP/1.1 100 Continue\r\n\r\n").withUTF8Buffer { $0 })

    /// The buffered body is complete, or fills the buffer: now the server is chosen.
    private func bodyBuffered() {
        guard waitingForBody, !localResponse, requestComplete || clientIn.end == loop.buffers.size else { return }
        waitingForBody = false
        assignServer(excluding: nil)
    }

    private func consumeHead(_ input: UnsafeRawBufferPointer) {
        requestParsed += input.count
        clientIn.start = requestParsed
    }

    /// The local address is read (getsockname) only by the rules that use it.
    private var connectionInfo: HTTPConnectionInfo {
        HTTPConnectionInfo(client: clientAddress, local: localAddress, tls: clientTLS, localFD: clientFD)
    }

    /// The request head as the server receives it: the rules' rewrites applied, hop-by-hop fields
    /// removed, the proxy's own fields added, and the Connection field this session needs.
    private func writeRequestHead(_ input: UnsafeRawBufferPointer, backend: Backend, scratch: HTTPRuleScratch,
                                  info: HTTPConnectionInfo) {
        let pool = loop.buffers
        serverOut.release(pool)
        let out = serverOut.take(pool)
        var writer = HTTPHeadWriter(into: UnsafeMutableRawBufferPointer(start: out, count: pool.size))
        let connectionHeader: HTTPConnectionHeader
        if upgradeRequested {
            connectionHeader = .upgrade
        } else if backend.proxy.http.connectionMode != .keepAlive || frontend?.proxy.http.connectionMode != .keepAlive {
            connectionHeader = .close
        } else {
            connectionHeader = .keepAlive
        }
        if let rules = frontend?.rules {
            rules.writeRequestHead(into: &writer, requestParser.head, input: input, connection: info, scratch: scratch,
                                   backend: backend.rules, connectionHeader: connectionHeader)
        } else {
            writer.writeStartLine(requestParser.head, from: input)
            writer.writeFields(requestParser.head, from: input, removing: upgradeRequested ? .connectionOptions : .hopByHop)
            if connectionHeader == .close { writer.writeField(name: "Connection", value: "close") }
            writer.writeEndOfHead()
        }
        if writer.overflowed {
            // The rewritten head does not fit a buffer: HAProxy answers 500 here.
            serverOut.release(pool)
            respondLocally(status: 500)
            return
        }
        serverOut.start = 0
        serverOut.end = writer.count
        serverOutSent = 0
    }

    /// Parses request body bytes that arrived: what the parser consumed is forwarded verbatim.
    private func parseRequestBody() {
        guard !requestComplete else { return }
        // An empty input still lets the parser report the end of a body it has fully counted.
        let base = clientIn.base ?? UnsafeMutableRawPointer(bitPattern: 1)!
        while true {
            let input = UnsafeRawBufferPointer(start: base + requestParsed, count: clientIn.end - requestParsed)
            let action = requestParser.parse(input)
            switch action {
            case .needMore:
                return
            case .error(let error):
                termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "D"))
                frontend?.counters.requestErrors += 1
                if responseStarted {
                    abortTransaction()
                } else {
                    closeAfterResponse = true
                    respondLocally(status: error.status)
                }
                return
            case .messageComplete(let framing):
                requestParsed += framing
                requestComplete = true
                return
            case .headersComplete:
                return
            default:
                requestParsed += action.consumed
            }
        }
    }

    // MARK: the server

    private func assignServer(excluding: BackendServer?) {
        guard let backend else { return }
        // Cookie persistence first: the designated server, while it is usable and has room.
        if let s = persistentServer, s !== excluding, s.acceptsPersistentTraffic, !s.isFull {
            persistentServer = nil
            serverIsPersistent = true
            takeSlot(s)
            obtainConnection()
            return
        }
        persistentServer = nil
        serverIsPersistent = false
        switch backend.pickServer(excluding: excluding, source: clientAddress?.address, hashKey: requestHashKey) {
        case .server(let s):
            takeSlot(s)
            obtainConnection()
        case .full:
            queuedAt = loop.now
            backend.queue.append(self)
            backend.counters.queueMax = max(backend.counters.queueMax, backend.queue.count)
            armTimer()
        case .noServer:
            termination = TerminationState(cause: UInt8(ascii: "S"), phase: UInt8(ascii: "C"))
            respondLocally(status: 503)
        }
    }

    override func leftQueue(assigned s: BackendServer) {
        queueTime = loop.now - queuedAt
        queuedAt = -1
        takeSlot(s)
        obtainConnection()
        afterEvent()
    }

    private func takeSlot(_ s: BackendServer) {
        server = s
        holdsSlot = true
        s.takeSlot()
    }

    private func releaseSlot() {
        guard holdsSlot, let s = server else { return }
        holdsSlot = false
        s.releaseSlot()
    }

    /// An idle pooled connection when `http-reuse` allows it, else a new one.
    private func obtainConnection() {
        guard let s = server, let backend else { return }
        connectStartedAt = loop.now
        let reuse = backend.proxy.http.reuse
        // safe: a client's first request never rides an idle connection another client used
        // (a failure there could not be told apart from the server refusing this client).
        let mayReuse = reuse == .always || reuse == .aggressive || (reuse == .safe && requests > 1)
        if mayReuse && backend.proxy.http.connectionMode == .keepAlive, let pooled = s.state.takeIdle(tls: s.tls?.fingerprint) {
            attach(pooled, reused: true)
            connectTime = 0
            phase = .exchange
            flushToServer()
            return
        }
        let port = s.config.port ?? localEndpoint(clientFD)?.port ?? 80
        let endpoint = SocketEndpoint(address: s.config.address, port: port)
        switch ServerConnection.open(on: loop, to: endpoint, server: s.state, keepAlive: backend.proxy.tcpKeepAlive.server) {
        case .noSocket:
            // Out of fds or memory: wait for one rather than answer 503 (ServerSocketWait).
            if let at = socketWait.retryTime(now: loop.now, limit: Double(backend.proxy.timeouts.connect ?? 5000) / 1000) {
                phase = .waitingServer
                retryAt = at
                armTimer()
                return
            }
            termination = TerminationState(cause: UInt8(ascii: "R"), phase: UInt8(ascii: "C"))
            respondLocally(status: 503)
        case .refused:
            socketWait.end()
            phase = .waitingServer
            connectFailed(timedOut: false)
        case .opened(let connection):
            socketWait.end()
            attach(connection, reused: false)
            phase = .waitingServer
            connection.watch(EV_WRITE_MASK)
            armTimer()
        }
    }

    private func attach(_ c: ServerConnection, reused: Bool) {
        serverConnection = c
        serverReused = reused
        // A new connection's bytes start a new response; the last one's end (EOF) is behind us.
        serverEOF = false
        responseParser.reset()
        serverIn.release(loop.buffers)
        responseParsed = 0
        c.owner = self
        c.requests += 1
        lastServerActivity = loop.now
    }

    private func detachServer(close closeIt: Bool) {
        guard let c = serverConnection else { return }
        serverConnection = nil
        if closeIt { c.close() } else { c.watch(0) }
    }

    private func serverConnected() {
        guard let c = serverConnection else { return }
        // `sni` from a fetch: the TLS connection is named after this request and serves it only.
        let context = server?.tls
        let dynamic = context.map { $0.constantSNI == nil && $0.settings.sni != nil } ?? false
        c.poolable = !dynamic
        switch c.advanceConnect(tls: context, serverName: dynamic ? requestServerName : nil) {
        case .inProgress:
            return
        case .failed:
            // Verification failures count as connection errors, as HAProxy's.
            connectFailed(timedOut: false)
            return
        case .established:
            break
        }
        engine.observe(server, .connected)
        connectTime = loop.now - connectStartedAt
        phase = .exchange
        lastServerActivity = loop.now
        flushToServer()
        armTimer()
    }

    private func connectFailed(timedOut: Bool) {
        detachServer(close: true)
        guard let s = server, let backend else { return }
        engine.observe(s, .connectFailed)
        let retries = backend.proxy.retries
        if retriesDone < retries {
            retriesDone += 1
            s.state.retries += 1
            backend.counters.retries += 1
            if backend.redispatchesAfterFailure(of: s, retry: retriesDone, of: retries, persistent: serverIsPersistent) {
                redispatched = true
                s.state.redispatches += 1
                backend.counters.redispatches += 1
                releaseSlot()
                assignServer(excluding: s)
            } else if timedOut {
                obtainConnection()
            } else {
                phase = .waitingServer
                retryAt = loop.now + min(Double(backend.proxy.timeouts.connect ?? 1000) / 1000, 1)
                armTimer()
            }
            return
        }
        s.state.connectionErrors += 1
        backend.counters.connectionErrors += 1
        termination = TerminationState(cause: UInt8(ascii: timedOut ? "s" : "S"), phase: UInt8(ascii: "C"))
        releaseSlot()
        respondLocally(status: 503)
    }

    /// Request bytes to the server: the rewritten head, then the body as the parser validated it.
    /// Nothing of a request strata answered itself (refused, denied) is ever sent.
    private func flushToServer() {
        guard let c = serverConnection, !localResponse, phase == .exchange || phase == .tunnel else { return }
        // A client held back by a full buffer: its timeout starts again once there is room.
        let clientInWasFull = clientIn.end == loop.buffers.size && clientIn.start == 0
        defer { if clientInWasFull && !(clientIn.end == loop.buffers.size && clientIn.start == 0) { lastClientActivity = loop.now } }
        while serverOutSent < serverOut.end, let base = serverOut.base {
            let n = serverWrite(c, base + serverOutSent, serverOut.end - serverOutSent)
            if n > 0 {
                serverOutSent += n
                lastServerActivity = loop.now
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                return
            } else {
                serverWriteFailed()
                return
            }
        }
        while requestParsed > clientIn.start, let base = clientIn.base {
            let n = serverWrite(c, base + clientIn.start, requestParsed - clientIn.start)
            if n > 0 {
                clientIn.start += n
                lastServerActivity = loop.now
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                return
            } else {
                serverWriteFailed()
                return
            }
        }
        if clientIn.isEmpty { clientIn.releaseIfEmpty(loop.buffers); requestParsed = clientIn.end }
        if phase == .tunnel && clientEOF && clientIn.isEmpty { serverShutdownWrite(c) }
    }

    private func serverWriteFailed() {
        if retryReusedConnection(neverReached: serverOutSent == 0) { return }
        termination = TerminationState(cause: UInt8(ascii: "S"), phase: UInt8(ascii: responseStarted ? "D" : "H"))
        server?.state.connectionErrors += 1
        if responseStarted { abortTransaction() } else { respondLocally(status: 502) }
    }

    /// A reused idle connection the server closed as we sent on it: nothing of the response came
    /// and the request is fully in our hands (no body streamed). It is sent again on a new
    /// connection when that is safe: the server cannot have read it (`neverReached`: the first
    /// write failed), or its method is idempotent.
    private func retryReusedConnection(neverReached: Bool = false) -> Bool {
        guard serverReused, !responseStarted, serverIn.isEmpty, !requestHasBody,
              neverReached || requestMethod.isIdempotent else { return false }
        detachServer(close: true)
        serverReused = false
        serverOutSent = 0
        guard server != nil else { return false }
        openFreshConnection()
        return true
    }

    private func openFreshConnection() {
        guard let s = server, let backend else { return }
        let port = s.config.port ?? localEndpoint(clientFD)?.port ?? 80
        switch ServerConnection.open(on: loop, to: SocketEndpoint(address: s.config.address, port: port),
                                     server: s.state, keepAlive: backend.proxy.tcpKeepAlive.server) {
        case .noSocket:
            respondLocally(status: 503)
        case .refused:
            phase = .waitingServer
            connectStartedAt = loop.now
            connectFailed(timedOut: false)
        case .opened(let connection):
            attach(connection, reused: false)
            phase = .waitingServer
            connectStartedAt = loop.now
            connection.watch(EV_WRITE_MASK)
            armTimer()
        }
    }

    // MARK: the response

    private func serverReadable() {
        guard let c = serverConnection else { return }
        let pool = loop.buffers
        let base = serverIn.take(pool)
        if serverIn.end == pool.size, serverIn.start > 0 {
            let count = serverIn.count
            memmove(base, base + serverIn.start, count)
            responseParsed -= serverIn.start
            serverIn.end = count
            serverIn.start = 0
        }
        let space = pool.size - serverIn.end
        guard space > 0 else { return }
        let n = serverRead(c, base + serverIn.end, space)
        if n > 0 {
            // Answer bytes for a client that had nothing to read: its timeout starts now.
            if clientOut.isEmpty && pendingBody == nil && responseParsed == serverIn.start { lastClientActivity = loop.now }
            serverIn.end += n
            lastServerActivity = loop.now
            if phase == .tunnel {
                responseParsed = serverIn.end
                countOut(n)
            } else {
                parseResponse()
            }
            flushToClient()
        } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
            serverIn.releaseIfEmpty(pool)
            serverInputEnded(error: n < 0)
        } else {
            serverIn.releaseIfEmpty(pool)
        }
    }

    private func serverInputEnded(error: Bool) {
        serverEOF = true
        if phase == .tunnel {
            if serverIn.isEmpty { clientShutdownWrite() }
            tunnelMaybeDone()
            return
        }
        if !responseStarted && retryReusedConnection() { return }
        if let action = responseParser.inputEnded(), case .messageComplete = action, responseStarted {
            responseComplete = true
            closeAfterResponse = true
            detachServer(close: true)
            return
        }
        termination = TerminationState(cause: UInt8(ascii: "S"), phase: UInt8(ascii: responseStarted ? "D" : "H"))
        engine.observe(server, .responseBroken)
        server?.state.connectionErrors += 1
        backend?.counters.responseErrors += 1
        detachServer(close: true)
        if responseStarted { abortTransaction() } else { respondLocally(status: 502) }
    }

    private func parseResponse() {
        guard let base = serverIn.base else { return }
        while !responseComplete {
            let input = UnsafeRawBufferPointer(start: base + responseParsed, count: serverIn.end - responseParsed)
            let action = responseParser.parse(input, requestMethod: requestMethod)
            switch action {
            case .needMore:
                return
            case .error:
                termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: responseStarted ? "D" : "H"))
                backend?.counters.responseErrors += 1
                detachServer(close: true)
                if responseStarted { abortTransaction() } else { serverIn.release(loop.buffers); respondLocally(status: 502) }
                return
            case .headersComplete(let headLength):
                responseHead(UnsafeRawBufferPointer(start: base + responseParsed, count: headLength))
                if phase == .closed || localResponse { return }
            case .messageComplete(let framing):
                responseParsed += framing
                if interimResponse {
                    interimResponse = false
                } else {
                    responseComplete = true
                }
            default:
                responseParsed += action.consumed
            }
        }
    }

    private func responseHead(_ input: UnsafeRawBufferPointer) {
        if responseTime < 0 { responseTime = loop.now - requestAt }
        serverOut.release(loop.buffers)  // the request can no longer be retried
        if responseParser.head.isInformational {
            // 100 Continue and friends go to the client as they are; the final answer follows.
            interimResponse = true
            appendToClient(input)
            responseParsed += input.count
            serverIn.start = responseParsed
            return
        }
        responseStarted = true
        responseStatus = responseParser.head.status
        engine.observe(server, .httpStatus(responseStatus))
        if responseStatus == 101 && upgradeRequested {
            appendToClient(input)
            responseParsed += input.count
            serverIn.start = responseParsed
            enterTunnel()
            return
        }
        if responseParser.head.framing == .untilClose { closeAfterResponse = true }
        if mustClose { closeAfterResponse = true }
        let connectionHeader: HTTPConnectionHeader = closeAfterResponse ? .close : .keepAlive
        if let rules = frontend?.rules, let scratch {
            let serverIndex = server.flatMap { s in backend?.servers.firstIndex { $0 === s } }
            switch rules.processResponse(responseParser.head, input: input, connection: connectionInfo, scratch: scratch,
                                         backend: backend?.rules, server: serverIndex) {
            case .forward:
                break
            case .respond(let answer):
                // The server's answer is dropped (http-response deny): the connection to it too.
                detachServer(close: true)
                serverIn.release(loop.buffers)
                responseParsed = 0
                sendLocal(answer)
                return
            }
        }
        let pool = loop.buffers
        let out = clientOut.take(pool)
        var writer = HTTPHeadWriter(into: UnsafeMutableRawBufferPointer(start: out + clientOut.end, count: pool.size - clientOut.end))
        if let rules = frontend?.rules, let scratch {
            rules.writeResponseHead(into: &writer, responseParser.head, input: input, scratch: scratch,
                                    connectionHeader: connectionHeader, clientVersion: requestVersion)
        } else {
            writer.writeStartLine(responseParser.head, from: input)
            writer.writeFields(responseParser.head, from: input, removing: .hopByHop)
            if closeAfterResponse { writer.writeField(name: "Connection", value: "close") }
            writer.writeEndOfHead()
        }
        guard !writer.overflowed else {
            termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "H"))
            detachServer(close: true)
            respondLocally(status: 502)
            return
        }
        clientOut.end += writer.count
        bytesToClient += UInt64(writer.count)
        responseParsed += input.count
        serverIn.start = responseParsed
        if frontend?.logPlan.logAsap == true { log(early: true) }
    }

    private func appendToClient(_ bytes: UnsafeRawBufferPointer) {
        let pool = loop.buffers
        _ = clientOut.take(pool)
        if clientOut.end + bytes.count > pool.size { return }
        clientOut.append(bytes, pool: pool)
    }

    /// Response bytes to the client: heads the proxy wrote, then the body as the server sent it.
    private func flushToClient() {
        let pool = loop.buffers
        // A server held back by a full buffer: its timeout starts again once there is room.
        let serverInWasFull = serverIn.end == pool.size && serverIn.start == 0
        defer { if serverInWasFull && !(serverIn.end == pool.size && serverIn.start == 0) { lastServerActivity = loop.now } }
        coalesceOutput()
        while !clientOut.isEmpty, let base = clientOut.base {
            let n = clientWrite(base + clientOut.start, clientOut.count)
            if n > 0 {
                clientOut.start += n
                lastClientActivity = loop.now
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                return
            } else {
                clientWriteFailed()
                return
            }
        }
        clientOut.releaseIfEmpty(pool)
        while let body = pendingBody, body.count > 0 {
            let n = clientWrite(body.baseAddress!, body.count)
            if n > 0 {
                pendingBody = n == body.count ? nil : UnsafeRawBufferPointer(rebasing: body[n...])
                lastClientActivity = loop.now
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                return
            } else {
                clientWriteFailed()
                return
            }
        }
        pendingBody = nil
        while responseParsed > serverIn.start, let base = serverIn.base {
            let n = clientWrite(base + serverIn.start, responseParsed - serverIn.start)
            if n > 0 {
                serverIn.start += n
                bytesToClient += UInt64(n)
                countOut(n)
                lastClientActivity = loop.now
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                return
            } else {
                clientWriteFailed()
                return
            }
        }
        if serverIn.isEmpty {
            serverIn.releaseIfEmpty(pool)
            responseParsed = serverIn.end
        }
        if phase == .tunnel && serverEOF && serverIn.isEmpty { clientShutdownWrite() }
        if phase == .closing && clientOut.isEmpty { close() }
    }

    /// What follows the head strata wrote (a local answer's body, the response body bytes already
    /// here) joins it in `clientOut`, so they leave in one send (with TLS, one record) rather than
    /// two. Only appends: a write OpenSSL is retrying stays a prefix of the next one.
    private func coalesceOutput() {
        guard !clientOut.isEmpty, let out = clientOut.base else { return }
        var room = loop.buffers.size - clientOut.end
        if let body = pendingBody {
            guard body.count <= room else { return }
            if body.count > 0 { (out + clientOut.end).copyMemory(from: body.baseAddress!, byteCount: body.count) }
            clientOut.end += body.count
            room -= body.count
            pendingBody = nil
        }
        guard room > 0, responseParsed > serverIn.start, let source = serverIn.base else { return }
        let n = min(room, responseParsed - serverIn.start)
        (out + clientOut.end).copyMemory(from: source + serverIn.start, byteCount: n)
        clientOut.end += n
        serverIn.start += n
        bytesToClient += UInt64(n)
        countOut(n)
    }

    private func clientWriteFailed() {
        termination = TerminationState(cause: UInt8(ascii: "C"), phase: UInt8(ascii: "D"))
        if generation != nil { abortTransaction() } else { close() }
    }

    // MARK: tunnels (Upgrade)

    private func enterTunnel() {
        phase = .tunnel
        requestParser.enterTunnel()
        requestComplete = true
        // Whatever the client sent after its head is already tunnel data.
        requestParsed = clientIn.end
        armTimer()
        flushToServer()
    }

    private func tunnelMaybeDone() {
        guard phase == .tunnel, clientEOF, serverEOF, clientIn.isEmpty, serverIn.isEmpty, clientOut.isEmpty else { return }
        detachServer(close: true)
        endTransaction()
        close()
    }

    // MARK: answers strata writes itself

    /// Answers with the `errorfile` for `status`, or HAProxy's page. The request's body is not
    /// read, so the connection closes after it when one was coming.
    func respondLocally(status: Int) {
        let frontend = self.frontend ?? servingFrontend
        let answer = frontend?.rules?.errorResponse(status, backend: backend?.rules) ?? HTTPLocalResponse.errorPage(status)
        sendLocal(answer)
    }

    /// Sends an answer of strata's own services (kept until its last byte is sent).
    private func sendService(_ answer: StatsServiceAnswer, applet: StaticString) {
        serviceAnswer = answer
        self.applet = applet
        termination = TerminationState(cause: UInt8(ascii: "L"), phase: UInt8(ascii: "R"))
        sendLocal(answer.response)
    }

    /// Sends an answer strata makes itself (an error, a deny, a return, a redirect) instead of
    /// anything from a server.
    private func sendLocal(_ answer: HTTPLocalResponse) {
        if generation == nil, let frontend = frontend ?? servingFrontend { begin(frontend) }
        detachServer(close: true)
        releaseSlot()
        if isQueued { backend?.queue.remove(self) }
        localResponse = true
        responseStarted = true
        responseComplete = true
        responseStatus = answer.status
        // A request without a body is complete with its head: the parser is told so and the
        // connection stays usable. One whose body was not read cannot be followed by another.
        if headReceived && !requestHasBody && !requestComplete { parseRequestBody() }
        if !headReceived || (requestHasBody && !requestComplete) || answer.closesConnection { closeAfterResponse = true }
        let pool = loop.buffers
        clientOut.release(pool)
        let out = clientOut.take(pool)
        var writer = HTTPHeadWriter(into: UnsafeMutableRawBufferPointer(start: out, count: pool.size))
        answer.writeHead(into: &writer, close: closeAfterResponse || mustClose, clientVersion: requestVersion)
        clientOut.end = writer.overflowed ? 0 : writer.count
        pendingBody = answer.body.count > 0 ? answer.body : nil
        bytesToClient = UInt64(clientOut.end + answer.body.count)
        serverIn.release(pool)
        responseParsed = 0
        serverOut.release(pool)
        phase = .exchange
        flushToClient()
    }

    // MARK: end of a request

    private func checkTransactionEnd() {
        guard generation != nil, phase == .exchange, responseComplete else { return }
        guard clientOut.isEmpty, pendingBody == nil, serverIn.start >= responseParsed else { return }
        if !requestComplete { closeAfterResponse = true }
        // The server connection goes back to the pool when it can carry another request.
        let reusable = !localResponse && requestComplete && !serverEOF && !closeAfterResponse
            && responseParser.head.keepAlive && serverIn.end == responseParsed
            && backend?.proxy.http.connectionMode == .keepAlive && frontend?.proxy.http.connectionMode == .keepAlive
        if let c = serverConnection {
            serverConnection = nil
            if reusable {
                c.park()
            } else if requestComplete && !serverEOF && serverIn.end == responseParsed {
                c.abort()
            } else {
                c.close()
            }
        }
        serverIn.release(loop.buffers)
        responseParsed = 0
        endTransaction()
        if closeAfterResponse || mustClose || clientEOF {
            close()
            return
        }
        phase = .idle
        idleSince = loop.now
        // A pipelined request may already be waiting.
        if requestParsed < clientIn.end {
            parseRequestHead()
        } else {
            clientIn.releaseIfEmpty(loop.buffers)
            if clientIn.isEmpty { requestParsed = 0 }
            armTimer()
        }
    }

    /// Logs the request and releases its generation.
    private func endTransaction() {
        guard let generation else { return }
        headReceived = false
        releaseSlot()
        if isQueued { backend?.queue.remove(self) }
        if responseStatus > 0 {
            frontend?.counters.countResponse(status: responseStatus)
            backend?.counters.countResponse(status: responseStatus)
        }
        log()
        serviceAnswer = nil
        applet = nil
        backend?.counters.sessionEnded()
        self.generation = nil
        frontend = nil
        backend = nil
        server = nil
        serverOut.release(loop.buffers)
        generation.sessionList.remove(self)
        generation.config.sessions -= 1
        engine.requestEnded(in: generation)
    }

    /// Closes the client (and server) side mid-request.
    private func abortTransaction() {
        detachServer(close: true)
        endTransaction()
        close()
    }

    override func kill() {
        if lingeringFrontend != nil { return close() }
        guard generation != nil else { return }
        generation?.config.sessionsKilled += 1
        termination = TerminationState(cause: UInt8(ascii: "K"), phase: termination.phase == UInt8(ascii: "-") ? UInt8(ascii: "D") : termination.phase)
        abortTransaction()
    }

    /// The listener stopped serving (the new generation dropped it, or a soft stop): an idle
    /// connection closes now, a busy one after its answer, which says `Connection: close`.
    func listenerReleased(previous: Frontend?) {
        mustClose = true
        if phase == .idle {
            // A request may be on its way: the connection lingers, held by the frontend that
            // served it, and closes when idle past its keep-alive timeout.
            guard let previous, previous.proxy.mode == .http, let g = previous.generation, lingeringFrontend == nil else {
                return close()
            }
            lingeringFrontend = previous
            g.config.sessions += 1
            g.sessionList.insert(self)
            armTimer()
        } else if phase == .head && generation == nil, let previous, previous.proxy.mode == .http {
            // A head already arriving is served by the generation it started under, which
            // therefore holds on until the answer is sent.
            begin(previous)
        } else {
            closeAfterResponse = true
        }
    }

    /// Gives up a lingering connection's hold on its generation (`notify`: the generation may
    /// retire now).
    private func endLingering(notify: Bool) {
        guard let f = lingeringFrontend, let g = f.generation else { return }
        lingeringFrontend = nil
        g.sessionList.remove(self)
        g.config.sessions -= 1
        if notify { engine.requestEnded(in: g) }
    }

    func close() {
        guard phase != .closed else { return }
        if generation != nil { endTransaction() }
        endLingering(notify: true)
        phase = .closed
        detachServer(close: true)
        clientIO.release(on: loop)
        timer.release(on: loop)
        clientTLS?.sendCloseNotify()
        Glibc.close(clientFD)
        clientIn.release(loop.buffers)
        clientOut.release(loop.buffers)
        serverIn.release(loop.buffers)
        serverOut.release(loop.buffers)
        listener.detach(self)
        connectionCounters.sessionEnded()
        engine.connectionEnded()
        selfRetain?.release()
        selfRetain = nil
    }

    // MARK: interest and timeouts

    private func updateInterest() {
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
        if let tls = clientTLS {
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
            serverEvents = c.tls?.interest(0) ?? EV_WRITE_MASK
        } else if phase == .exchange || phase == .tunnel {
            let roomServerIn = phase == .tunnel ? serverIn.isEmpty : (serverIn.end < size || serverIn.start > 0)
            if !serverEOF && !responseComplete && roomServerIn { serverEvents |= EV_READ_MASK }
            if phase == .tunnel && !serverEOF && serverIn.isEmpty { serverEvents |= EV_READ_MASK }
            if serverOutSent < serverOut.end || requestParsed > clientIn.start { serverEvents |= EV_WRITE_MASK }
            if let tls = c.tls {
                serverEvents = tls.interest(serverEvents)
                if serverEvents & EV_READ_MASK != 0 && tls.hasBufferedInput { c.feed(EV_READ_MASK) }
            }
        }
        c.watch(serverEvents)
    }


    private func deadline() -> Double? {
        func s(_ ms: Int?) -> Double? { ms.map { Double($0) / 1000 } }
        let f = (frontend ?? servingFrontend)?.proxy.timeouts ?? Timeouts()
        let b = backend?.proxy.timeouts ?? f
        switch phase {
        case .idle:
            let limit = requests == 0 ? (f.httpRequest ?? f.client) : (f.httpKeepAlive ?? f.httpRequest ?? f.client)
            // Lingering without any timeout set: a few seconds for a request on its way.
            if lingeringFrontend != nil { return idleSince + (s(limit) ?? HTTPSession.lingerWithoutTimeout) }
            return s(limit).map { idleSince + $0 }
        case .head:
            return s(f.httpRequest ?? f.client).map { headStartedAt + $0 }
        case .waitingServer:
            if waitingForBody { return s(f.httpRequest ?? f.client).map { headStartedAt + $0 } }
            if queuedAt >= 0 { return s(b.queue ?? b.connect).map { queuedAt + $0 } }
            if serverConnection == nil { return retryAt }
            return s(b.connect).map { connectStartedAt + $0 }
        case .exchange:
            // Each side's timeout runs while strata waits for that side: the client's while its
            // request is coming (and there is room for it) or an answer waits for it to read; the
            // server's while it owes request bytes a read or an answer strata has room for. A side
            // held back by the other one is not late (a client that stops reading a large answer
            // is governed by `timeout client`, not `timeout server`).
            let size = loop.buffers.size
            var d: Double?
            let clientRoom = clientIn.end < size || clientIn.start > 0
            if (!requestComplete && clientRoom) || !clientOut.isEmpty || pendingBody != nil || responseParsed > serverIn.start {
                d = s(f.client).map { lastClientActivity + $0 }
            }
            if serverConnection != nil, let sv = s(b.server) {
                let serverRoom = serverIn.end < size || serverIn.start > 0
                let requestPending = serverOutSent < serverOut.end || requestParsed > clientIn.start
                if (!responseComplete && serverRoom) || requestPending {
                    let t = lastServerActivity + sv
                    d = d.map { min($0, t) } ?? t
                }
            }
            return d
        case .tunnel:
            let limit = s(b.tunnel ?? min(f.client ?? Int.max, b.server ?? Int.max))
            return limit.map { max(lastClientActivity, lastServerActivity) + $0 }
        case .closing:
            return s(f.client).map { lastClientActivity + $0 } ?? loop.now + 10
        case .closed:
            return nil
        }
    }

    /// A connection with no timeout at all lingers this long after its listener stopped serving.
    static let lingerWithoutTimeout = 5.0

    private func armTimer() {
        if let d = deadline() {
            armedDeadline = d
            timer.arm(after: d - loop.now, on: loop)
        } else {
            armedDeadline = .infinity
            timer.stop(on: loop)
        }
    }

    /// After an event: a deadline that moved earlier than the armed one re-arms the timer (a
    /// later one waits for the timer to fire and re-arm).
    @inline(__always)
    private func tightenTimer() {
        guard let d = deadline(), d < armedDeadline - 0.001 else { return }
        armedDeadline = d
        timer.arm(after: d - loop.now, on: loop)
    }

    /// Before a timeout is declared, what the kernel already holds for either side is taken: the
    /// process may have been stopped for longer than a timeout, and the loop runs expired timers
    /// in the same turn as socket events it has not collected yet. True when something moved.
    private func collectReadyEvents() -> Bool {
        var fds = (pollfd(fd: -1, events: 0, revents: 0), pollfd(fd: -1, events: 0, revents: 0))
        let clientOutPending = !clientOut.isEmpty || pendingBody != nil || responseParsed > serverIn.start
        if phase != .closing {
            fds.0 = pollfd(fd: clientFD, events: Int16(POLLIN) | (clientOutPending ? Int16(POLLOUT) : 0), revents: 0)
        }
        if let c = serverConnection { fds.1 = pollfd(fd: c.fd, events: Int16(POLLIN | POLLOUT), revents: 0) }
        let ready = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: pollfd.self, capacity: 2) { poll($0, 2, 0) }
        }
        guard ready > 0 else { return false }
        let before = (lastClientActivity, lastServerActivity, phase)
        func mask(_ revents: Int16) -> Int32 {
            var m: Int32 = 0
            if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 { m |= EV_READ_MASK }
            if revents & Int16(POLLOUT) != 0 { m |= EV_WRITE_MASK }
            return m
        }
        if fds.1.revents != 0, let c = serverConnection, c.fd == fds.1.fd {
            serverEvent(mask(fds.1.revents))
        }
        if phase != .closed, fds.0.revents != 0 { ioEvent(clientIO.raw, mask(fds.0.revents)) }
        return phase == .closed || before != (lastClientActivity, lastServerActivity, phase)
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        armedDeadline = .infinity
        guard let d = deadline() else { return }
        let now = loop.now
        if d > now + 0.0005 {
            armTimer()
            return
        }
        if collectReadyEvents() {
            guard phase != .closed else { return }
            if let d = deadline(), d > now + 0.0005 { return armTimer() }
        }
        switch phase {
        case .idle:
            close()
        case .head:
            termination = TerminationState(cause: UInt8(ascii: "c"), phase: UInt8(ascii: "R"))
            requestLine = "<BADREQ>"
            closeAfterResponse = true
            respondLocally(status: 408)
        case .waitingServer:
            if waitingForBody {
                waitingForBody = false
                termination = TerminationState(cause: UInt8(ascii: "c"), phase: UInt8(ascii: "R"))
                closeAfterResponse = true
                respondLocally(status: 408)
            } else if queuedAt >= 0 {
                backend?.queue.remove(self)
                queueTime = now - queuedAt
                queuedAt = -1
                termination = TerminationState(cause: UInt8(ascii: "s"), phase: UInt8(ascii: "Q"))
                respondLocally(status: 503)
            } else if serverConnection == nil {
                openFreshConnectionForRetry()
            } else {
                connectFailed(timedOut: true)
            }
        case .exchange:
            let f = (frontend ?? servingFrontend)?.proxy.timeouts ?? Timeouts()
            let clientExpired = f.client.map { lastClientActivity + Double($0) / 1000 <= now + 0.0005 } ?? false
            if !clientExpired && !responseStarted {
                termination = TerminationState(cause: UInt8(ascii: "s"), phase: UInt8(ascii: "H"))
                detachServer(close: true)
                respondLocally(status: 504)
            } else {
                termination = TerminationState(cause: UInt8(ascii: clientExpired ? "c" : "s"), phase: UInt8(ascii: "D"))
                abortTransaction()
            }
        case .tunnel:
            termination = TerminationState(cause: UInt8(ascii: "c"), phase: UInt8(ascii: "D"))
            abortTransaction()
        case .closing:
            close()
        case .closed:
            break
        }
        if phase != .closed {
            armTimer()
            afterEvent()
        }
    }

    private func openFreshConnectionForRetry() { obtainConnection() }

    // MARK: counters and log

    private func countIn(_ n: Int) {
        frontend?.counters.bytesIn += UInt64(n)
        backend?.counters.bytesIn += UInt64(n)
        server?.state.bytesIn += UInt64(n)
    }

    private func countOut(_ n: Int) {
        frontend?.counters.bytesOut += UInt64(n)
        backend?.counters.bytesOut += UInt64(n)
        server?.state.bytesOut += UInt64(n)
    }

    /// The request's record for the statistics and the log line (`option httplog` is HAProxy's
    /// `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r`).
    /// `early`: `option logasap`'s line when the response head has been forwarded (not counted).
    private func log(early: Bool = false) {
        guard let frontend, let generation else { return }
        let ms = { (v: Double) -> Int in v < 0 ? -1 : Int((v * 1000).rounded()) }
        var r = LogRecord(mode: .http, frontend: frontend, generation: generation.id, acceptDate: requestWall)
        r.backend = backend
        r.server = server
        r.applet = applet
        r.client = clientAddress
        if localAddress == nil && frontend.logPlan.needsLocalAddress { localAddress = localEndpoint(clientFD) }
        r.local = localAddress
        r.isTLS = clientTLS != nil
        r.tls = clientTLS
        r.requestDate = requestWall
        r.request = ms(requestAt - headStartedAt)
        // Tw: -1 for a request that never reached a queue (answered before a server was chosen,
        // or given up while queued).
        r.queue = queueTime >= 0 ? ms(queueTime) : (server == nil || termination.phase == UInt8(ascii: "Q") ? -1 : 0)
        r.connect = connectTime < 0 ? -1 : ms(connectTime)
        r.response = responseTime < 0 ? -1 : ms(responseTime - max(connectTime, 0) - max(queueTime, 0))
        r.active = ms(loop.now - requestAt)
        r.total = r.active
        r.status = responseStatus > 0 ? responseStatus : -1
        r.bytesOut = bytesToClient
        r.termination = termination
        r.activeConnections = engine.currentSessions
        r.frontendConnections = frontend.counters.currentSessions
        r.backendConnections = backend?.counters.currentSessions ?? 0
        r.serverConnections = server?.state.currentSessions ?? 0
        r.retries = retriesDone
        r.redispatched = redispatched
        r.backendQueue = backend?.queue.count ?? 0
        r.requestLine = requestLine
        r.requestCaptures = scratch?.capturedRequestHeaders
        if early {
            loggedEarly = frontend.logPlan.emitEarly(r, to: frontend.log)
            return
        }
        engine.account(r)
        if !loggedEarly { frontend.logPlan.emit(r, to: frontend.log) }
        loggedEarly = false
    }
}

extension HTTPHeadWriter {
    /// `name: value\r\n` with a name and value known only at run time (configured header names).
    mutating func writeField(name: String, value: String) {
        var name = name
        var value = value
        name.withUTF8 { n in
            value.withUTF8 { v in
                write(UnsafeRawBufferPointer(n))
                write(": ")
                write(UnsafeRawBufferPointer(v))
                write("\r\n")
            }
        }
    }
}

extension HTTPSession: StatsSessionDescribing {
    var statsStartedAt: Double { requestAt }
    var statsFrontend: Frontend? { frontend }
    var statsBackend: Backend? { backend }
}
