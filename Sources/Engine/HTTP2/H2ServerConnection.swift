import CLibEV
import ConfigModel
import Glibc

/// An HTTP/2 connection to a server (`server … proto h2`, or `ssl alpn h2`): libnghttp2's client
/// session over one `ServerConnection` (its socket and TLS), carrying the requests of many
/// sessions at once as streams. Each request's session sees an HTTP/1.1 server through an
/// `H2ServerStream` (its `ServerConnection` has no socket of its own), so rules, logs, retries and
/// timeouts are HTTP/1's.
///
/// The connections live in the server's carried per-loop pool (`IdlePool.h2`), like idle HTTP/1
/// connections: an unchanged server keeps them across reloads, each new stream rides one with a
/// free stream slot (the server's SETTINGS_MAX_CONCURRENT_STREAMS), and one idle past the pool's
/// lifetime closes. A GOAWAY from the server, its address moving or the server leaving the
/// configuration stops new streams; the streams in flight finish.
final class H2ServerConnection: EventHandler {
    enum Phase { case connecting, ready, failed, closed }

    let loop: EventLoop
    let state: ServerState
    let transport: ServerConnection
    private let tlsContext: TLSClientContext?
    /// `alpn h2` without `proto h2`: the server must choose h2 in the handshake.
    private let needsALPN: Bool
    private(set) var phase = Phase.connecting
    private(set) var session: OpaquePointer?
    var streams: [Int32: H2ServerStream] = [:]
    /// Streams whose sessions wait for the connect.
    private var waiting: [H2ServerStream] = []
    /// No new streams: GOAWAY received, or the pool let go of the connection.
    private(set) var goingAway = false
    /// ALPN chose HTTP/1.1: the waiting streams connect again (`ConnectProgress.reopen`).
    private(set) var choseHTTP1 = false
    private(set) var idleSince: Double
    private var output = H2Output()
    private var flushQueued = false
    private var timer: TimerWatcher
    private let connectTimeout: Double
    let headerListLimit: Int
    let maxHeaders: Int
    var counters: H2CounterSink

    init(loop: EventLoop, transport: ServerConnection, state: ServerState, tls: TLSClientContext?, needsALPN: Bool,
         connectTimeout: Double, headerListLimit: Int, maxHeaders: Int, counters: H2CounterSink) {
        self.loop = loop
        self.transport = transport
        self.state = state
        self.tlsContext = tls
        self.needsALPN = needsALPN
        self.connectTimeout = connectTimeout
        self.headerListLimit = headerListLimit
        self.maxHeaders = maxHeaders
        self.counters = counters
        idleSince = loop.now
        timer = TimerWatcher(handler: EventHandler())
        super.init()
        timer.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        transport.owner = self
        transport.watch(transport.connectInterest)
        timer.arm(after: connectTimeout, on: loop)
    }

    /// A stream for one request to `server` on `loop`: on a pooled connection with a free stream
    /// slot when `share` allows, else on a new connection. Nil when no socket could be had
    /// (`errno` says why). `rides`: the stream uses a connection that was already there.
    static func stream(to server: BackendServer, endpoint: SocketEndpoint, epoch: Int, loop: EventLoop, share: Bool,
                       keepAlive: Bool, buffers: SocketBufferSizes, source: SocketEndpoint?, connectTimeout: Double,
                       global: GlobalSettings, counters: H2CounterSink) -> (carrier: ServerConnection, rides: Bool)? {
        let pool = server.state.pools[loop.index]
        let fingerprint = server.tls?.fingerprint
        if share {
            for c in pool.h2 where c.takesStreams && c.transport.addressEpoch == epoch && c.transport.tlsFingerprint == fingerprint
                && (c.phase == .connecting || c.tlsContext?.fingerprint == fingerprint) {
                return (c.open(), true)
            }
        }
        switch ServerConnection.open(on: loop, to: endpoint, server: server.state, keepAlive: keepAlive, buffers: buffers,
                                     source: source) {
        case .opened(let transport):
            transport.addressEpoch = epoch
            let c = H2ServerConnection(loop: loop, transport: transport, state: server.state, tls: server.tls,
                                       needsALPN: !server.config.options.forcesH2, connectTimeout: connectTimeout,
                                       headerListLimit: global.bufferSize, maxHeaders: global.maxHeaders, counters: counters)
            // `http-reuse never`: the connection is its stream's alone, and closes after it.
            if !share { c.goingAway = true }
            pool.h2.append(c)
            counters.add(.serverConnectionsOpened)
            counters.add(.serverOpenConnections)
            return (c.open(), false)
        case .noSocket(let e), .refused(let e):
            errno = e
            return nil
        }
    }

    /// Room for one more stream (the server's concurrent stream limit, 100 until its SETTINGS).
    private var takesStreams: Bool {
        guard !goingAway, phase == .connecting || phase == .ready else { return false }
        var limit = 100
        if let session { limit = Int(nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)) }
        return streams.count + waiting.count < limit
    }

    private func open() -> ServerConnection {
        let carrier = ServerConnection(loop: loop, fd: -1, server: state)
        let stream = H2ServerStream(connection: self, carrier: carrier, scheme: transport.tls == nil && tlsContext == nil ? "http" : "https")
        carrier.h2 = stream
        waiting.append(stream)
        return carrier
    }

    // MARK: the connect

    override func serverEvent(_ revents: Int32) {
        switch phase {
        case .connecting:
            connectProgress()
        case .ready:
            var revents = revents
            if let tls = transport.tls { revents = tls.events(revents) }
            if revents & EV_READ_MASK != 0 { readSocket() }
            if phase == .ready, revents & EV_WRITE_MASK != 0 { flush() }
            afterEvent()
        case .failed, .closed:
            break
        }
    }

    private func connectProgress() {
        switch transport.advanceConnect(tls: tlsContext, serverName: nil) {
        case .inProgress:
            transport.watch(transport.connectInterest)
        case .failed, .reopen:
            fail()
        case .established:
            if needsALPN, let tls = transport.tls, !tls.selectedH2 {
                // The server chose HTTP/1.1 (or nothing): its streams connect again as HTTP/1.1.
                counters.add(.serverALPNChoseHTTP1)
                state.chosenHTTP1.store(transport.addressEpoch, ordering: .relaxed)
                choseHTTP1 = true
                return fail()
            }
            guard makeSession() else { return fail() }
            phase = .ready
            timer.stop(on: loop)
            idleSince = loop.now
            flush()
            let started = waiting
            for stream in started { stream.connectionReady() }
            afterEvent()
        }
    }

    /// The connect failed: the streams waiting for it see their connect fail (retries and
    /// redispatch are their sessions' business), and the pool forgets it.
    private func fail() {
        guard phase == .connecting else { return }
        phase = .failed
        let failed = waiting
        waiting.removeAll()
        release()
        for stream in failed { stream.connectionReady() }
    }

    private func makeSession() -> Bool {
        session = H2Session.make(.client, user: self, callbacks: { callbacks in
            nghttp2_session_callbacks_set_on_header_callback(callbacks, h2sHeader)
            nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, h2sFrameReceived)
            nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, h2sDataChunk)
            nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, h2sStreamClosed)
        }, settings: [
            H2Session.setting(NGHTTP2_SETTINGS_ENABLE_PUSH, 0),
            H2Session.setting(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2ServerStream.windowSize),
            H2Session.setting(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, headerListLimit),
        ])
        // The connection's window beyond the 64 KiB default, so that streams do not wait on each other.
        guard let session else { return false }
        return nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, H2ServerStream.connectionWindowSize) == 0
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        // `timeout connect` passed. (The pool may hold the last reference: kept for the call.)
        withExtendedLifetime(self) { if phase == .connecting { fail() } }
    }

    // MARK: streams

    /// `stream`'s request head is ready: it becomes an HTTP/2 stream. False when the connection
    /// cannot take it.
    func submit(_ stream: H2ServerStream, _ nva: UnsafePointer<nghttp2_nv>, _ count: Int, hasBody: Bool) -> Int32? {
        guard phase == .ready, let session else { return nil }
        let id: Int32
        if hasBody {
            var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: h2sReadBody)
            id = nghttp2_submit_request(session, nil, nva, count, &provider, nil)
        } else {
            id = nghttp2_submit_request(session, nil, nva, count, nil, nil)
        }
        guard id > 0 else {
            // Stream ids ran out: this connection takes no more.
            goingAway = true
            return nil
        }
        streams[id] = stream
        if let i = waiting.firstIndex(where: { $0 === stream }) { waiting.remove(at: i) }
        counters.add(.serverStreamsOpened)
        scheduleFlush()
        return id
    }

    /// The stream's session let go of it (answered, failed or abandoned).
    func detach(_ stream: H2ServerStream) {
        waiting.removeAll { $0 === stream }
        if streams.isEmpty && waiting.isEmpty {
            idleSince = loop.now
            if goingAway { scheduleFlush() }
        }
    }

    /// Written once this loop turn's events are handled, in one send for every stream that wrote.
    func scheduleFlush() {
        guard phase == .ready, !flushQueued else { return }
        flushQueued = true
        loop.runBeforePoll(self)
    }

    override func beforePoll() {
        flushQueued = false
        guard phase == .ready else { return }
        withExtendedLifetime(self) {
            flush()
            afterEvent()
        }
    }

    // MARK: bytes

    private func readSocket() {
        let pool = loop.buffers
        let buffer = pool.take()
        defer { pool.give(buffer) }
        let size = pool.size
        while phase == .ready, let session {
            let n = transport.tls?.read(buffer, size) ?? recv(transport.fd, buffer, size, Int32(MSG_DONTWAIT))
            if n > 0 {
                let r = nghttp2_session_mem_recv(session, buffer.assumingMemoryBound(to: UInt8.self), n)
                if r < 0 {
                    counters.add(.serverProtocolErrors)
                    flush()
                    return close()
                }
                if n < size && transport.tls?.hasBufferedInput != true { break }
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                break
            } else {
                return close()
            }
        }
        flush()
    }

    /// `closing`: a last attempt (the GOAWAY), whose failure changes nothing.
    private func flush(closing: Bool = false) {
        guard phase == .ready, let session else { return }
        let transport = self.transport
        let result = output.flush(session) { p, count in
            if let tls = transport.tls { return tls.write(p, count) }
            return send(transport.fd, p, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        }
        if result == .failed && !closing { close() }
    }

    private func afterEvent() {
        guard phase == .ready, let session else { return }
        let done = streams.isEmpty && waiting.isEmpty && !output.pending
        if done && (goingAway || (nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0)) {
            return close()
        }
        var events: Int32 = EV_READ_MASK
        if output.pending { events |= EV_WRITE_MASK }
        if let tls = transport.tls {
            events = tls.interest(events)
            transport.watch(events)
            if events & EV_READ_MASK != 0 && tls.hasBufferedInput { transport.feed(EV_READ_MASK) }
        } else {
            transport.watch(events)
        }
    }

    /// The server sent GOAWAY: the streams it took finish, no new one starts here.
    fileprivate func goAwayReceived() {
        goingAway = true
        counters.add(.serverGoawaysReceived)
    }

    // MARK: the pool's end of it

    /// Without streams for more than `maxIdle` seconds: for the pool to close.
    func idleExpired(now: Double, maxIdle: Double) -> Bool {
        phase == .ready && streams.isEmpty && waiting.isEmpty && now - idleSince > maxIdle
    }

    /// The pool lets go (the server left, or moved): idle now, closed; else after its streams.
    func retire() {
        goingAway = true
        if phase == .ready && streams.isEmpty && waiting.isEmpty { close() }
    }

    /// Closes the connection: streams in flight see their server close.
    func close() {
        guard phase != .closed && phase != .failed else { return }
        if phase == .ready, let session {
            nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, NGHTTP2_NO_ERROR.rawValue, nil, 0)
            flush(closing: true)
        }
        phase = .closed
        let open = Array(streams.values) + waiting
        streams.removeAll()
        waiting.removeAll()
        release()
        for stream in open { stream.connectionClosed() }
    }

    private func release() {
        if let session { nghttp2_session_del(session) }
        session = nil
        timer.release(on: loop)
        transport.close()
        counters.add(.serverOpenConnections, -1)
        state.pools[loop.index].h2.removeAll { $0 === self }
    }
}

/// What libnghttp2 produced that the socket has not taken yet, gathered into batches.
struct H2Output {
    private var bytes: [UInt8] = []
    private var start = 0
    /// Output gathered before a write (a few frames in one send, or one TLS record).
    static let batch = 16384

    var pending: Bool { start < bytes.count }

    enum Result { case done, blocked, failed }

    /// Writes through `write` (send's results) until libnghttp2 has nothing more or the socket is full.
    mutating func flush(_ session: OpaquePointer, write: (UnsafeRawPointer, Int) -> Int) -> Result {
        while true {
            if start < bytes.count {
                let n = bytes.withUnsafeBytes { write($0.baseAddress! + start, bytes.count - start) }
                if n > 0 {
                    start += n
                    if start < bytes.count { continue }
                    bytes.removeAll(keepingCapacity: true)
                    start = 0
                } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                    return .blocked
                } else {
                    return .failed
                }
            }
            while bytes.count < H2Output.batch {
                var data: UnsafePointer<UInt8>?
                let n = nghttp2_session_mem_send(session, &data)
                if n < 0 { return .failed }
                if n == 0 { break }
                bytes.append(contentsOf: UnsafeBufferPointer(start: data, count: n))
            }
            if bytes.isEmpty { return .done }
        }
    }
}

// MARK: libnghttp2's callbacks (user data: the connection)

private func serverConnection(_ user: UnsafeMutableRawPointer?) -> H2ServerConnection {
    Unmanaged<H2ServerConnection>.fromOpaque(user!).takeUnretainedValue()
}

private let h2sHeader: nghttp2_on_header_callback = { _, frame, name, nameLength, value, valueLength, _, user in
    guard let frame, let name, let value else { return 0 }
    guard let stream = serverConnection(user).streams[frame.pointee.hd.stream_id] else { return 0 }
    return stream.header(UnsafeBufferPointer(start: name, count: nameLength), UnsafeBufferPointer(start: value, count: valueLength))
}

private let h2sFrameReceived: nghttp2_on_frame_recv_callback = { _, frame, user in
    guard let frame else { return 0 }
    let c = serverConnection(user)
    let hd = frame.pointee.hd
    let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(hd.type) {
    case NGHTTP2_HEADERS.rawValue:
        c.streams[hd.stream_id]?.headersComplete(endStream: endStream)
    case NGHTTP2_DATA.rawValue:
        if endStream { c.streams[hd.stream_id]?.responseEnded() }
    case NGHTTP2_GOAWAY.rawValue:
        c.goAwayReceived()
    default:
        break
    }
    return 0
}

private let h2sDataChunk: nghttp2_on_data_chunk_recv_callback = { session, _, streamID, data, length, user in
    guard let data else { return 0 }
    guard let stream = serverConnection(user).streams[streamID], stream.isAttached else {
        // A stream its session left: the bytes are dropped, the window given back.
        if let session { nghttp2_session_consume(session, streamID, length) }
        return 0
    }
    stream.body(UnsafeBufferPointer(start: data, count: length))
    return 0
}

private let h2sStreamClosed: nghttp2_on_stream_close_callback = { _, streamID, errorCode, user in
    let c = serverConnection(user)
    if let stream = c.streams.removeValue(forKey: streamID) {
        stream.closed(errorCode: errorCode)
        c.detach(stream)
    }
    return 0
}

private let h2sReadBody: nghttp2_data_source_read_callback = { _, streamID, buffer, length, flags, _, user in
    guard let buffer, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    guard let stream = serverConnection(user).streams[streamID] else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
    return stream.readBody(buffer, length, flags)
}
