import CLibEV
import ConfigModel
import Glibc
import TCPWire

/// A connection accepted on a `bind … accept-proxy` (or told by `tcp-request connection
/// expect-proxy layer4`) while its PROXY protocol header (v1 or v2) is read: HAProxy's embryonic
/// session. The header is consumed exactly — peeked, then read up to its last byte — so the
/// client's first bytes stay in the socket for the session (and for its TLS handshake). The
/// addresses it carries become the session's `src` and `dst`. It waits `timeout client` at most
/// (HAProxy's handshake timeout); a header that does not parse closes the connection, is logged as
/// HAProxy logs it, and counted as a request error of the frontend (`ereq`).
///
/// While it waits it is a session of its generation (a drain waits for it, `hard-stop-after`
/// closes it) and a connection of its loop (`maxconn`).
final class ProxyHeaderReader: ListedSession {
    unowned(unsafe) let worker: Worker
    let listener: Listener
    let frontend: Frontend
    let generation: Generation
    let fd: Int32
    let peer: SocketEndpoint?
    private let tlsContext: TLSServerContext?
    @exclusivity(unchecked) private var io: IOWatcher
    @exclusivity(unchecked) private var timer: TimerWatcher
    /// The header's bytes read from the socket so far (a prefix of it).
    @exclusivity(unchecked) private var received: [UInt8] = []
    @exclusivity(unchecked) private var selfRetain: Unmanaged<ProxyHeaderReader>?
    @exclusivity(unchecked) private var done = false
    private let maxLength: Int
    /// What `tcp-request connection` tracked, handed to the session (released here otherwise).
    @exclusivity(unchecked) private var tracker: StickTracker?

    init(worker: Worker, listener: Listener, frontend: Frontend, fd: Int32, peer: SocketEndpoint?,
         tlsContext: TLSServerContext?, tracker: StickTracker? = nil) {
        self.tracker = tracker
        self.worker = worker
        self.listener = listener
        self.frontend = frontend
        self.generation = frontend.generation
        self.fd = fd
        self.peer = peer
        self.tlsContext = tlsContext
        maxLength = min(frontend.generation.config.config.global.bufferSize, worker.loop.buffers.size)
        io = IOWatcher(fd: fd, handler: EventHandler())
        timer = TimerWatcher(handler: EventHandler())
        super.init()
        io.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        timer.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit { tracker?.end() }

    func start() {
        selfRetain = Unmanaged.passRetained(self)
        generation.shard(worker.loop).begin(self)
        worker.sessionStarted()
        io.watch(EV_READ_MASK, on: worker.loop)
        if let ms = frontend.proxy.timeouts.client { timer.arm(after: Double(ms) / 1000, on: worker.loop) }
        // The header usually came with the connection.
        ev_feed_event(worker.loop.raw, io.raw, EV_READ_MASK)
    }

    override func ioEvent(_ watcher: UnsafeMutablePointer<ev_io>, _ revents: Int32) {
        guard !done else { return }
        let loop = worker.loop
        let buffer = loop.buffers.take()
        defer { loop.buffers.give(buffer) }
        let have = received.count
        if have > 0 { received.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: have) } }
        let room = maxLength - have
        let peeked = Glibc.recv(fd, buffer + have, room, Int32(MSG_PEEK | MSG_DONTWAIT))
        if peeked < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return }
            return fail(nil)
        }
        if peeked == 0 { return fail(nil) }  // closed before its header: not logged (HAProxy's CO_ER_PRX_EMPTY)
        switch ProxyHeaderParser.parse(UnsafeRawBufferPointer(start: buffer, count: have + peeked), maxLength: maxLength) {
        case .needMore:
            // Every byte so far belongs to the header: take them off the socket, wait for the rest.
            guard consume(peeked, into: buffer + have) else { return fail(nil) }
            received.append(contentsOf: UnsafeRawBufferPointer(start: buffer + have, count: peeked))
            if received.count >= maxLength { fail(.tooLong) }
        case .invalid(let error):
            fail(error)
        case .complete(let header):
            guard consume(header.length - have, into: buffer + have) else { return fail(nil) }
            handOff(header)
        }
    }

    /// Reads exactly `count` bytes the peek showed (they are in the socket already).
    private func consume(_ count: Int, into p: UnsafeMutableRawPointer) -> Bool {
        var got = 0
        while got < count {
            let n = Glibc.recv(fd, p + got, count - got, Int32(MSG_DONTWAIT))
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return false
            }
            got += n
        }
        return true
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        guard !done else { return }
        logError("Timeout while waiting for PROXY protocol header")
        end()
        close(fd)
    }

    override func kill() {
        guard !done else { return }
        generation.shard(worker.loop).sessionsKilled += 1
        end()
        close(fd)
    }

    /// A malformed header (`error`), or the client gone or failing before its header (nil).
    private func fail(_ error: ProxyHeaderError?) {
        if let error {
            frontend.counters[worker.loop].requestErrors += 1
            logError(error.rawValue)
        }
        end()
        close(fd)
    }

    /// HAProxy's line for a connection that failed before its session: `ADDR:PORT [DATE] FRONTEND/BIND: MESSAGE`.
    private func logError(_ message: String) {
        guard !frontend.log.isEmpty else { return }
        let bind = frontend.proxy.binds.first { ListenerKey($0) == listener.key }
        let name = bind?.name ?? listener.key.endpoint.description
        let client = peer.map { "\($0.address):\($0.port)" } ?? "unknown"
        frontend.log.send("\(client) [\(logDate(wallClock()))] \(frontend.name)/\(name): \(message)",
                          level: frontend.proxy.log.separateErrors ? .err : .info)
    }

    /// Stops watching and leaves the generation; the fd stays for the caller.
    private func end() {
        done = true
        io.release(on: worker.loop)
        timer.release(on: worker.loop)
        generation.shard(worker.loop).end(self)
        worker.sessionEnded(in: generation)
        selfRetain?.release()
        selfRetain = nil
    }

    /// The header is read: the session starts with its addresses (LOCAL, UNKNOWN and the families
    /// strata does not carry keep the connection's own).
    private func handOff(_ header: ProxyHeader) {
        var client = peer
        var local: SocketEndpoint?
        if let s = header.source, let d = header.destination {
            client = ProxyHeaderReader.endpoint(s)
            local = ProxyHeaderReader.endpoint(d)
        }
        let loop = worker.loop
        done = true
        io.release(on: loop)
        timer.release(on: loop)
        var variables: HTTPVariables = [:]
        if tlsContext == nil,
           frontend.rejectsSession({ var info = HTTPConnectionInfo(client: client, local: local, tls: nil, localFD: fd, tracker: tracker)
                                     info.proxyHeader = header
                                     return info }(),
                                   fd: fd, on: worker, variables: &variables) {
            tracker = nil
            finishHandOff()
            return
        }
        var tls: TLSConnection?
        if let tlsContext {
            guard let connection = TLSConnection(accepted: fd, context: tlsContext) else {
                finishHandOff()
                close(fd)
                return
            }
            tls = connection
        }
        // The session begins before this one ends: the generation is held throughout.
        if frontend.proxy.mode == .http && listener.forcesH2 && tls == nil {
            let connection = H2Connection(worker: worker, listener: listener, frontend: frontend, fd: fd, clientAddress: client,
                                          localAddress: local, tls: nil, tracker: tracker, variables: variables)
            connection.receivedProxyHeader = header
            connection.start(counted: false)
        } else if frontend.proxy.mode == .http {
            let session = HTTPSession(worker: worker, listener: listener, frontend: frontend, clientFD: fd, clientAddress: client,
                                      localAddress: local, tls: tls, tracker: tracker, variables: variables)
            session.receivedProxyHeader = header
            session.start()
        } else {
            // A canary's share of TCP connections, as at accept without a PROXY header.
            let session = TCPSession(worker: worker, listener: listener.pick() ?? frontend, clientFD: fd, clientAddress: client,
                                     localAddress: local, tls: tls, tracker: tracker, variables: variables)
            session.receivedProxyHeader = header
            session.listener = listener
            session.start()
        }
        tracker = nil
        generation.shard(loop).sessionsAccepted -= 1
        finishHandOff()
    }

    private func finishHandOff() {
        generation.shard(worker.loop).end(self)
        worker.sessionEnded(in: generation)
        selfRetain?.release()
        selfRetain = nil
    }

    static func endpoint(_ a: ProxyAddress) -> SocketEndpoint {
        if a.isV6 {
            return SocketEndpoint(address: .v6(a.bytes), port: a.port)
        }
        let v4 = UInt32(a.bytes[0]) << 24 | UInt32(a.bytes[1]) << 16 | UInt32(a.bytes[2]) << 8 | UInt32(a.bytes[3])
        return SocketEndpoint(address: .v4(v4), port: a.port)
    }
}
