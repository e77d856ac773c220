import CLibEV
import ConfigModel
import Glibc
import TCPWire

/// An HTTP/2 client connection. libnghttp2 does the framing, HPACK and flow control over strata's
/// socket (or its TLS); strata feeds it the bytes it reads and writes what it produces. Each
/// stream is an `H2Stream` whose request runs in an `HTTPSession` of its own, so rules, balancing,
/// logs and generations do not care which protocol carried a request: like a keep-alive request,
/// a stream is a session of the generation current when its head completes, and the connection
/// itself holds no generation. A reload therefore never resets an h2 connection; only a listener
/// the new generation no longer serves sends GOAWAY and closes once its streams are answered.
///
/// Limits (each a counter in `H2Counters` and a test): concurrent streams (SETTINGS, refused by
/// libnghttp2 above it), the header list size (`tune.bufsize`), resets of unanswered streams and
/// control frames (SETTINGS, PING, empty frames) per second (the rapid reset and flood attacks:
/// GOAWAY ENHANCE_YOUR_CALM), CONTINUATION frames per header block, and a client that stops
/// reading (`timeout client` while output waits).
final class H2Connection: EventHandler {
    unowned(unsafe) let worker: Worker
    let loop: EventLoop
    let listener: Listener
    let fd: Int32
    let clientAddress: SocketEndpoint?
    let localAddress: SocketEndpoint?
    let tls: TLSConnection?
    let settings: HTTP2Settings
    /// The PROXY protocol header the connection began with, for its streams' fetches.
    var receivedProxyHeader: ProxyHeader?
    /// The frontend's connection counters at accept (they carry across reloads).
    private var connectionCounters: CounterSet
    /// `tune.bufsize`: the most header bytes (HPACK-decoded, 32 per field as RFC 9113 counts) a
    /// request may carry, as an HTTP/1 head must fit a buffer.
    let headerListLimit: Int
    let maxHeaders: Int
    private var io: IOWatcher
    private var timer: TimerWatcher
    private(set) var session: OpaquePointer?
    var streams: [Int32: H2Stream] = [:]
    /// The rules' storage of streams that ended, for the next ones (`HTTPRuleScratch`).
    var scratches: [HTTPRuleScratch] = []
    /// The connection's stick counters (`tcp-request connection track-sc*`, or made at the first
    /// stream when the generation tracks any): every stream's session counts through them.
    var tracker: StickTracker?
    /// `tcp-request session set-var`: the variables each stream starts with.
    let sessionVariables: HTTPVariables
    private var streamsStarted = 0
    /// What libnghttp2 produced that the socket has not taken yet.
    private var output = H2Output()
    private var closed = false
    /// Closed after a GOAWAY: reading and dropping what the client still sends until it closes
    /// or `lingerTime` passes.
    private var lingering = false
    static let lingerTime = 1.0
    /// GOAWAY was sent: the connection closes when its streams end.
    private(set) var goingAway = false
    private var flushQueued = false
    private var lastActivity: Double
    private var armedDeadline = Double.infinity
    private var selfRetain: Unmanaged<H2Connection>?
    /// Tokens for resets of unanswered streams and for control frames, refilled each second.
    private var resetBudget: Double
    private var controlBudget: Double
    private var budgetAt: Double
    unowned(unsafe) var listenerPrev: H2Connection?
    unowned(unsafe) var listenerNext: H2Connection?

    /// Control frames (SETTINGS, PING, WINDOW_UPDATE on the connection, empty DATA) a client may send
    /// per second beyond a first burst of the same size.
    /// (Below libnghttp2's own bound on queued acknowledgements, 1000, which would end the
    /// connection without a GOAWAY.)
    static let controlFramesPerSecond = 500.0

    /// `counted`: the connection was already counted as a frontend session (it was an
    /// HTTPSession until ALPN chose h2).
    init(worker: Worker, listener: Listener, frontend: Frontend, fd: Int32, clientAddress: SocketEndpoint?,
         localAddress: SocketEndpoint?, tls: TLSConnection?, tracker: StickTracker? = nil, variables: HTTPVariables = [:]) {
        self.tracker = tracker
        sessionVariables = variables
        self.worker = worker
        self.loop = worker.loop
        self.listener = listener
        self.fd = fd
        self.clientAddress = clientAddress
        self.localAddress = localAddress
        self.tls = tls
        let global = frontend.generation.config.config.global
        settings = global.h2
        connectionCounters = frontend.counters
        counters = H2CounterSink(loop: worker.h2Counters, proxy: frontend.counters.h2?[worker.loop.index])
        headerListLimit = global.bufferSize
        maxHeaders = global.maxHeaders
        lastActivity = worker.loop.now
        resetBudget = Double(max(2 * settings.maxConcurrentStreams, 200))
        controlBudget = H2Connection.controlFramesPerSecond
        budgetAt = worker.loop.now
        io = IOWatcher(fd: fd, handler: EventHandler())
        timer = TimerWatcher(handler: EventHandler())
        super.init()
        io.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        timer.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    /// Counted for the process (the loop's block) and for the frontend (made once, not at
    /// every frame).
    private(set) var counters: H2CounterSink

    /// Starts serving: SETTINGS go out first, then `preface` (bytes an HTTP/1 connection had
    /// already read) is taken as the client's first bytes.
    func start(counted: Bool, countedOn: CounterSet? = nil, preface: [UInt8] = []) {
        selfRetain = Unmanaged.passRetained(self)
        if let countedOn {
            connectionCounters = countedOn
            counters = H2CounterSink(loop: worker.h2Counters, proxy: countedOn.h2?[loop.index])
        }
        if !counted {
            connectionCounters.sessionStarted(on: loop)
            worker.sessionStarted()
            listener.frontend?.setClientOptions(fd)
        }
        listener.attach(self)
        counters.connectionOpened()
        guard makeSession() else { return close() }
        if !preface.isEmpty {
            guard receive(preface) else { return afterEvent() }
        }
        readSocket()
        afterEvent()
    }

    private func makeSession() -> Bool {
        session = H2Session.make(.server, user: self, callbacks: { callbacks in
            nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, h2BeginHeaders)
            nghttp2_session_callbacks_set_on_header_callback(callbacks, h2Header)
            nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, h2FrameReceived)
            nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, h2DataChunk)
            nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, h2StreamClosed)
            nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks, h2InvalidFrame)
        }, tune: { option in
            // (libnghttp2's bound on queued acknowledgements stays above strata's flood limit.)
            nghttp2_option_set_max_outbound_ack(option, 1000)
            nghttp2_option_set_max_deflate_dynamic_table_size(option, 4096)
        }, settings: [
            H2Session.setting(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings.maxConcurrentStreams),
            H2Session.setting(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings.initialWindowSize),
            H2Session.setting(NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, settings.headerTableSize),
            H2Session.setting(NGHTTP2_SETTINGS_MAX_FRAME_SIZE, settings.maxFrameSize),
            H2Session.setting(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, headerListLimit),
        ])
        return session != nil
    }

    // MARK: events

    override func ioEvent(_ watcher: UnsafeMutablePointer<ev_io>, _ revents: Int32) {
        if lingering { return drainLingering() }
        guard !closed else { return }
        var revents = revents
        if let tls { revents = tls.events(revents) }
        if !closed, revents & EV_READ_MASK != 0 { readSocket() }
        if !closed, revents & EV_WRITE_MASK != 0 { flush() }
        afterEvent()
    }

    private func drainLingering() {
        var scratch = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = scratch.withUnsafeMutableBytes { raw -> Int in
                if let tls { return tls.read(raw.baseAddress!, raw.count) }
                return recv(fd, raw.baseAddress!, raw.count, Int32(MSG_DONTWAIT))
            }
            if n > 0 { continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
            return finish()
        }
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        if lingering { return finish() }
        armedDeadline = .infinity
        guard !closed, let d = deadline() else { return }
        if d > loop.now + 0.0005 { return armTimer() }
        if streams.isEmpty {
            // Idle past its keep-alive timeout: GOAWAY, as HAProxy does.
            goAway(NGHTTP2_NO_ERROR)
            flush()
        } else {
            counters.add(.timeouts)
        }
        close()
    }

    private func afterEvent() {
        guard !closed else { return }
        // (After a GOAWAY libnghttp2 wants no more input even while streams it counts as closed
        // on the client's side wait for their answers: those are strata's to finish.)
        if let session, streams.isEmpty, nghttp2_session_want_read(session) == 0, nghttp2_session_want_write(session) == 0,
           !output.pending {
            return close()
        }
        if goingAway && streams.isEmpty && !output.pending {
            if let session, nghttp2_session_want_write(session) == 0 { return close() }
        }
        updateInterest()
        armTimer()
    }

    /// A stream produced output (a response head, body, a reset): written once this loop turn's
    /// events are handled, in one send for every stream that did.
    func scheduleFlush() {
        guard !closed, !flushQueued else { return }
        flushQueued = true
        loop.runBeforePoll(self)
    }

    override func beforePoll() {
        flushQueued = false
        guard !closed else { return }
        flush()
        afterEvent()
    }

    // MARK: input

    private func readSocket() {
        // A buffer of the loop's pool for the time of the reads (libnghttp2 copies what it keeps).
        let pool = loop.buffers
        let buffer = pool.take()
        defer { pool.give(buffer) }
        let size = pool.size
        while !closed {
            let n = tls?.read(buffer, size) ?? recv(fd, buffer, size, Int32(MSG_DONTWAIT))
            if n > 0 {
                lastActivity = loop.now
                counters.add(.bytesIn, n)
                guard receive(UnsafeRawBufferPointer(start: buffer, count: n)) else { return }
                if n < size && tls?.hasBufferedInput != true { break }
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                break
            } else {
                // The client closed or failed: its streams end with it.
                return close()
            }
        }
        flush()
    }

    private func receive(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { receive($0) }
    }

    /// Feeds libnghttp2; false when the connection closed (a protocol error).
    private func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let session, let base = bytes.baseAddress else { return !closed }
        let r = nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        if r < 0 {
            counters.add(r == Int(NGHTTP2_ERR_FLOODED.rawValue) ? .floods : .protocolErrors)
            // libnghttp2 queued its GOAWAY for most errors: send it before closing.
            flush()
            close()
            return false
        }
        return !closed
    }

    // MARK: output

    /// Writes what libnghttp2 has to send, gathered into batches, until the socket is full.
    func flush() {
        guard !closed, let session else { return }
        let result = output.flush(session) { p, count in
            let n = tls?.write(p, count) ?? send(fd, p, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            if n > 0 {
                counters.add(.bytesOut, n)
                lastActivity = loop.now
            }
            return n
        }
        if result == .failed { close() }
    }

    private func updateInterest() {
        guard !closed else { return }
        var events: Int32 = EV_READ_MASK
        if output.pending { events |= EV_WRITE_MASK }
        if let tls {
            events = tls.interest(events)
            io.watch(events, on: loop)
            if events & EV_READ_MASK != 0 && tls.hasBufferedInput { ev_feed_event(loop.raw, io.raw, EV_READ_MASK) }
        } else {
            io.watch(events, on: loop)
        }
    }

    // MARK: timeouts

    private var frontendTimeouts: Timeouts { listener.frontend?.proxy.timeouts ?? Timeouts() }

    /// Idle (no stream): `timeout http-keep-alive` (then `http-request`, then `client`) since the
    /// last byte; output waiting for a client that does not read: `timeout client`.
    private func deadline() -> Double? {
        let t = frontendTimeouts
        if streams.isEmpty {
            if goingAway { return lastActivity + Double(t.client ?? 5000) / 1000 }
            return (t.httpKeepAlive ?? t.httpRequest ?? t.client).map { lastActivity + Double($0) / 1000 }
        }
        if output.pending { return t.client.map { lastActivity + Double($0) / 1000 } }
        return nil
    }

    private func armTimer() {
        guard let d = deadline() else {
            armedDeadline = .infinity
            timer.stop(on: loop)
            return
        }
        if abs(d - armedDeadline) < 0.001 { return }
        armedDeadline = d
        timer.arm(after: max(0, d - loop.now), on: loop)
    }

    // MARK: the connection's end

    /// GOAWAY with the last stream id accepted: the streams already started finish.
    func goAway(_ code: nghttp2_error_code) {
        guard let session, !goingAway else { return }
        goingAway = true
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
                              code.rawValue, nil, 0)
        counters.add(.goawaysSent)
    }

    /// Too many resets or control frames: GOAWAY ENHANCE_YOUR_CALM, the connection ends.
    func enhanceYourCalm() {
        guard let session else { return }
        nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        goingAway = true
        counters.add(.goawaysSent)
    }

    /// The listener stopped serving (a reload dropped it, or a soft stop).
    func listenerReleased() {
        guard !closed else { return }
        goAway(NGHTTP2_NO_ERROR)
        flush()
        afterEvent()
    }

    /// The session of a stream ended (answered or not).
    func streamSessionEnded() {
        if goingAway && streams.isEmpty { scheduleFlush() }
    }

    func close() {
        guard !closed else { return }
        closed = true
        let open = streams
        streams.removeAll()
        counters.add(.openStreams, -open.count)
        for (_, stream) in open { stream.connectionClosed() }
        if let session { nghttp2_session_del(session) }
        session = nil
        if goingAway && !output.pending && !lingering {
            // After a GOAWAY the client's frames already on their way are read and dropped for a
            // moment before the close: closing on unread bytes sends a reset, which can destroy
            // the GOAWAY before the client reads it.
            lingering = true
            tls?.sendCloseNotify()
            shutdown(fd, Int32(SHUT_WR))
            io.watch(EV_READ_MASK, on: loop)
            timer.arm(after: H2Connection.lingerTime, on: loop)
            return
        }
        finish()
    }

    private func finish() {
        io.release(on: loop)
        timer.release(on: loop)
        if !lingering { tls?.sendCloseNotify() }
        Glibc.close(fd)
        listener.detach(self)
        tracker?.end()
        tracker = nil
        counters.connectionClosed()
        connectionCounters.sessionEnded(on: loop)
        worker.connectionEnded()
        selfRetain?.release()
        selfRetain = nil
    }

    // MARK: budgets

    private func refill() {
        let now = loop.now
        let elapsed = now - budgetAt
        guard elapsed > 0 else { return }
        budgetAt = now
        let streamsPerSecond = Double(max(settings.maxConcurrentStreams, 100))
        resetBudget = min(resetBudget + elapsed * streamsPerSecond, 2 * streamsPerSecond)
        controlBudget = min(controlBudget + elapsed * H2Connection.controlFramesPerSecond, H2Connection.controlFramesPerSecond)
    }

    /// A client reset a stream strata had not answered yet (the rapid reset attack's frame).
    func unansweredStreamReset() -> Bool {
        refill()
        resetBudget -= 1
        guard resetBudget < 0 else { return true }
        counters.add(.rapidResets)
        enhanceYourCalm()
        return false
    }

    /// SETTINGS, PING, a connection WINDOW_UPDATE or an empty DATA frame arrived.
    func controlFrame() -> Bool {
        refill()
        controlBudget -= 1
        guard controlBudget < 0 else { return true }
        counters.add(.floods)
        enhanceYourCalm()
        return false
    }

    // MARK: streams

    fileprivate func beginHeaders(_ id: Int32) -> Int32 {
        guard !goingAway else { return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        streamsStarted += 1
        streams[id] = H2Stream(id: id, connection: self, ordinal: streamsStarted)
        counters.add(.streamsOpened)
        counters.add(.openStreams)
        return 0
    }
}

/// HTTP/2 counters of one loop (`worker.h2Counters`), in a cache-line block of their own: the
/// loop writes them, the exporter and `show info` read them from another thread (relaxed atomics,
/// summed over loops when read). HAProxy's h2 statistics and strata's limits.
final class H2Counters {
    enum Field: Int, CaseIterable {
        case openConnections, totalConnections, streamsOpened, openStreams, headersReceived, dataReceived,
             settingsReceived, resetsReceived, goawaysReceived, resetsSent, goawaysSent, protocolErrors, streamErrors,
             rapidResets, floods, oversizedHeaders, timeouts, bytesIn, bytesOut,
             // Towards servers (`proto h2`, `alpn h2`).
             serverConnectionsOpened, serverOpenConnections, serverStreamsOpened, serverProtocolErrors,
             serverGoawaysReceived, serverALPNChoseHTTP1
    }

    private let ints = LoopLocalInts.allocate(Field.allCases.count)

    deinit { LoopLocalInts.deallocate(ints) }

    subscript(_ f: Field) -> Int {
        get { CLibEV_load(ints + f.rawValue) }
        set { CLibEV_store(ints + f.rawValue, newValue) }
    }

    func add(_ f: Field, _ n: Int = 1) { CLibEV_store(ints + f.rawValue, CLibEV_load(ints + f.rawValue) &+ n) }

    func connectionOpened() {
        add(.openConnections)
        add(.totalConnections)
    }

    func connectionClosed() { add(.openConnections, -1) }
}

/// Where an HTTP/2 connection's events are counted: its loop's process-wide block (`show info`,
/// `strata_h2_*`) and its proxy's (`show stat`'s h2 columns, `strata_h2_frontend_*`).
struct H2CounterSink {
    let loop: H2Counters
    let proxy: H2Counters?

    func add(_ f: H2Counters.Field, _ n: Int = 1) {
        loop.add(f, n)
        proxy?.add(f, n)
    }

    func connectionOpened() {
        loop.connectionOpened()
        proxy?.connectionOpened()
    }

    func connectionClosed() {
        loop.connectionClosed()
        proxy?.connectionClosed()
    }
}

// MARK: libnghttp2's callbacks (user data: the connection)

private func connection(_ user: UnsafeMutableRawPointer?) -> H2Connection {
    Unmanaged<H2Connection>.fromOpaque(user!).takeUnretainedValue()
}

private let h2BeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, user in
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
          frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST else { return 0 }
    return connection(user).beginHeaders(frame.pointee.hd.stream_id)
}

private let h2Header: nghttp2_on_header_callback = { _, frame, name, nameLength, value, valueLength, _, user in
    guard let frame, let name, let value else { return 0 }
    let c = connection(user)
    guard let stream = c.streams[frame.pointee.hd.stream_id] else { return 0 }
    return stream.header(UnsafeBufferPointer(start: name, count: nameLength), UnsafeBufferPointer(start: value, count: valueLength))
}

private let h2FrameReceived: nghttp2_on_frame_recv_callback = { _, frame, user in
    guard let frame else { return 0 }
    let c = connection(user)
    let hd = frame.pointee.hd
    let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(hd.type) {
    case NGHTTP2_HEADERS.rawValue:
        c.counters.add(.headersReceived)
        guard let stream = c.streams[hd.stream_id] else { return 0 }
        if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
            stream.headersComplete(endStream: endStream)
        } else if endStream {
            // Trailers: the request's end.
            stream.requestEnded()
        }
    case NGHTTP2_DATA.rawValue:
        c.counters.add(.dataReceived)
        if hd.length == 0 && !endStream && !c.controlFrame() { return 0 }
        if endStream, let stream = c.streams[hd.stream_id] { stream.requestEnded() }
    case NGHTTP2_SETTINGS.rawValue:
        c.counters.add(.settingsReceived)
        if hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { _ = c.controlFrame() }
    case NGHTTP2_PING.rawValue:
        if hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { _ = c.controlFrame() }
    case NGHTTP2_WINDOW_UPDATE.rawValue:
        if hd.stream_id == 0 { _ = c.controlFrame() }
    case NGHTTP2_RST_STREAM.rawValue:
        c.counters.add(.resetsReceived)
        if let stream = c.streams[hd.stream_id], !stream.responseStarted { _ = c.unansweredStreamReset() }
    case NGHTTP2_GOAWAY.rawValue:
        c.counters.add(.goawaysReceived)
    default:
        break
    }
    return 0
}

private let h2DataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, streamID, data, length, user in
    guard let data else { return 0 }
    let c = connection(user)
    guard let stream = c.streams[streamID] else {
        // A stream already answered and forgotten: its window is given back all the same.
        if let s = c.session { nghttp2_session_consume(s, streamID, length) }
        return 0
    }
    stream.body(UnsafeBufferPointer(start: data, count: length))
    return 0
}

private let h2StreamClosed: nghttp2_on_stream_close_callback = { _, streamID, errorCode, user in
    let c = connection(user)
    if let stream = c.streams.removeValue(forKey: streamID) {
        c.counters.add(.openStreams, -1)
        stream.closed(errorCode: errorCode)
        c.streamSessionEnded()
    }
    return 0
}

private let h2InvalidFrame: nghttp2_on_invalid_frame_recv_callback = { _, _, _, user in
    connection(user).counters.add(.streamErrors)
    return 0
}
