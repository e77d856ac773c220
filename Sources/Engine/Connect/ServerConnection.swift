import CLibEV
import ConfigModel
import Glibc

/// A connection to a server: the socket, its TLS (`server … ssl`) and its watcher, made the one
/// way every user of a server makes it (a TCP or HTTP session through its `ServerConnector`, a
/// health check). While in use it belongs to its `owner`, which receives its events; in HTTP it
/// waits in its server's idle pool between requests. The pool belongs to the server's carried
/// state, so an unchanged server's pooled connections serve the next generation too.
final class ServerConnection: EventHandler {
    let loop: EventLoop
    let fd: Int32
    // Touched by its loop's thread only: no runtime exclusivity checks on the hot path.
    @exclusivity(unchecked) private(set) var io: IOWatcher
    let server: ServerState
    /// What uses the connection now (a session, a health checker); nil while it waits in the pool.
    @exclusivity(unchecked) unowned(unsafe) var owner: EventHandler?
    @exclusivity(unchecked) private(set) var idleSince = 0.0
    /// Requests this connection has carried (reuse makes it more than one).
    @exclusivity(unchecked) var requests = 0
    @exclusivity(unchecked) private(set) var isClosed = false
    /// `server … ssl`: the connection's TLS, set once the TCP connection is up.
    @exclusivity(unchecked) var tls: TLSConnection?
    /// False when its TLS server name came from its request, or it began with a PROXY header
    /// (`send-proxy*`: it speaks for one client): it then serves that stream only.
    @exclusivity(unchecked) var poolable = true
    /// The server's `addressEpoch` when the address this connection went to was read.
    @exclusivity(unchecked) var addressEpoch = 0
    /// `send-proxy*`: the header to send as soon as the TCP connect is done, before any TLS.
    @exclusivity(unchecked) var proxyHeader: [UInt8]?
    /// A stream on a shared HTTP/2 connection to the server (no socket of its own: fd is -1). Its
    /// session reads and writes HTTP/1.1 through it; it is never pooled.
    @exclusivity(unchecked) var h2: H2ServerStream?

    init(loop: EventLoop, fd: Int32, server: ServerState) {
        self.loop = loop
        self.fd = fd
        self.server = server
        io = IOWatcher(fd: fd, handler: EventHandler())
        super.init()
        io.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    /// What `open` made of a connect.
    enum Opening {
        /// The connect is under way (or done): watch for `connectInterest`, then `advanceConnect`.
        case opened(ServerConnection)
        /// No socket: out of fds (EMFILE, ENFILE) or memory, a resource error and not the server's.
        case noSocket(errno: Int32)
        /// connect() failed at once (the socket is closed).
        case refused(errno: Int32)
    }

    /// Opens a non-blocking TCP connection to `endpoint` (TCP_NODELAY, SO_KEEPALIVE when asked).
    /// `buffers`: the global `tune.rcvbuf.server`/`tune.sndbuf.server`.
    /// `source`: the address (and port, 0 for any) to leave from (`source` on the backend or server).
    static func open(on loop: EventLoop, to endpoint: SocketEndpoint, server: ServerState, keepAlive: Bool,
                     buffers: SocketBufferSizes = SocketBufferSizes(), source: SocketEndpoint? = nil) -> Opening {
        let family = endpoint.address.isV6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | CLibEV_SOCK_NONBLOCK | CLibEV_SOCK_CLOEXEC, 0)
        guard fd >= 0 else { return .noSocket(errno: errno) }
        setTCPOptions(fd, keepAlive: keepAlive, receive: buffers.serverReceive, send: buffers.serverSend)
        if let source {
            // A fixed source port serves connections to several servers at once.
            var one: Int32 = 1
            if source.port != 0 { setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) }
            var (local, localLength) = source.sockaddr
            let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, localLength) } }
            if bound != 0 {
                let e = errno
                Glibc.close(fd)
                return .refused(errno: e)
            }
        }
        var (addr, len) = endpoint.sockaddr
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, len) } }
        if r != 0 && errno != EINPROGRESS {
            let e = errno
            Glibc.close(fd)
            return .refused(errno: e)
        }
        return .opened(ServerConnection(loop: loop, fd: fd, server: server))
    }

    /// How far a connect got after an event on its socket.
    enum ConnectProgress {
        case established
        /// The TLS handshake goes on: watch for `connectInterest` again.
        case inProgress
        case failed(ConnectFailure)
        /// A server offered h2 by ALPN chose HTTP/1.1 (or nothing): connect again, as HTTP/1.1.
        case reopen
    }

    enum ConnectFailure {
        /// The TCP connect failed (SO_ERROR: refused, unreachable, reset…).
        case socket(errno: Int32)
        /// OpenSSL could not make a connection object.
        case tlsSetup
        case tlsHandshake
    }

    /// The connect's next step once its socket reported an event: the TCP connect's result, then
    /// with `context` the TLS handshake (`serverName`: a name for this connection rather than the
    /// context's own).
    func advanceConnect(tls context: TLSClientContext?, serverName: String?) -> ConnectProgress {
        if let h2 { return h2.connectProgress }
        if tls == nil {
            let err = connectError
            if err != 0 { return .failed(.socket(errno: err)) }
            if let header = proxyHeader {
                // The socket's send buffer is empty: a header (at most a few hundred bytes) goes
                // whole, or the connection is unusable.
                proxyHeader = nil
                let n = header.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if n != header.count { return .failed(.socket(errno: n < 0 ? errno : EIO)) }
            }
            guard let context else { return .established }
            guard let t = TLSConnection(connected: fd, context: context, serverName: serverName) else {
                return .failed(.tlsSetup)
            }
            tls = t
        }
        guard let tls, !tls.isEstablished else { return .established }
        switch tls.handshake() {
        case .inProgress:
            return .inProgress
        case .failed:
            // A refused session must not be offered again.
            context?.forgetSession()
            return .failed(.tlsHandshake)
        case .done:
            return .established
        }
    }

    /// The socket events a connect in progress waits for: writable for TCP, then the handshake's.
    var connectInterest: Int32 { tls?.interest(0) ?? EV_WRITE_MASK }

    @inline(__always)
    func watch(_ events: Int32) {
        if let h2 { return h2.setInterest(events) }
        io.watch(events, on: loop)
    }

    /// Reports `events` to the owner in this loop turn (TLS bytes OpenSSL already holds).
    func feed(_ events: Int32) { ev_feed_event(loop.raw, io.raw, events) }

    override func ioEvent(_ watcher: UnsafeMutablePointer<ev_io>, _ revents: Int32) {
        // The strong reference keeps an owner that ends itself in this event alive until it returns.
        if let owner {
            owner.serverEvent(revents)
        } else if let tls, tls.isEstablished, idleRecordOnly(tls) {
            // TLS 1.3: a session ticket after the handshake, nothing for the application.
        } else {
            // Idle: the server closed it, or sent what nobody asked for. Either way it is done.
            server.removeIdle(self)
            close()
        }
    }

    /// Parks the connection in its server's pool, watching for the server closing it.
    func park() {
        if h2 != nil { return close() }
        // TLS with a server name of its request's (`sni` from a fetch): not for another request.
        if !poolable {
            close()
            return
        }
        // The server moved since (DNS, `set server … addr`): this session finished at the old
        // address, the next one goes to the new one.
        if addressEpoch != server.addressEpoch {
            close()
            return
        }
        owner = nil
        idleSince = loop.now
        io.watch(EV_READ_MASK, on: loop)
        server.addIdle(self, limit: 1000)
    }

    /// `notify`: TLS says close_notify first (a clean end; a failed connection sends nothing anyway).
    func close(notify: Bool = true) {
        guard !isClosed else { return }
        isClosed = true
        owner = nil
        io.release(on: loop)
        if let h2 {
            // The stream is cancelled if unfinished; the shared connection goes on.
            self.h2 = nil
            return h2.detach()
        }
        if notify { tls?.sendCloseNotify() }
        Glibc.close(fd)
    }

    /// Closes a connection whose exchange is complete with a reset (SO_LINGER 0) rather than a FIN:
    /// nothing is in flight either way, and a FIN would leave the socket in TIME_WAIT on strata's
    /// side, thousands a second when every client closes after its request.
    func abort() {
        guard !isClosed else { return }
        if tls == nil && h2 == nil {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        close()
    }

    /// An idle TLS connection became readable: true when OpenSSL consumed only protocol
    /// records (tickets) and the connection may stay pooled.
    private func idleRecordOnly(_ tls: TLSConnection) -> Bool {
        var byte: UInt8 = 0
        return tls.read(&byte, 1) < 0 && errno == EAGAIN && !tls.failed
    }

    /// The TLS settings the connection was made under (nil: plain), for reuse.
    var tlsFingerprint: Int? { tls?.clientContext?.fingerprint }

    /// SO_ERROR after a non-blocking connect.
    private var connectError: Int32 {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        return err
    }
}

extension ServerState {
    /// The most recently parked idle connection of `loop` (warmest first) made under the same TLS
    /// settings (`tls`: the server's context fingerprint, nil for plain), if any.
    func takeIdle(on loop: EventLoop, tls: Int? = nil) -> ServerConnection? {
        let pool = pools[loop.index]
        while let c = pool.connections.popLast() {
            if c.isClosed { continue }
            if c.tlsFingerprint == tls { return c }
            // The server's TLS settings changed with a reload: this connection cannot serve them.
            c.close()
        }
        return nil
    }

    func addIdle(_ c: ServerConnection, limit: Int) {
        let pool = pools[c.loop.index]
        if pool.connections.count >= limit {
            let oldest = pool.connections.removeFirst()
            oldest.close()
        }
        pool.connections.append(c)
    }

    func removeIdle(_ c: ServerConnection) {
        pools[c.loop.index].connections.removeAll { $0 === c }
    }

    /// Closes `loop`'s idle connections older than `maxIdle` seconds.
    func purgeIdle(on loop: EventLoop, now: Double, maxIdle: Double) {
        let pool = pools[loop.index]
        // (Over a copy: a connection closing takes itself out of the pool.)
        for c in pool.h2 where c.idleExpired(now: now, maxIdle: maxIdle) { c.close() }
        guard !pool.connections.isEmpty else { return }
        pool.connections.removeAll { c in
            if now - c.idleSince > maxIdle {
                c.close()
                return true
            }
            return false
        }
    }

    /// Closes `loop`'s idle connections (on that loop's thread).
    func closeIdle(on loop: EventLoop) {
        let pool = pools[loop.index]
        // HTTP/2 connections take no new stream; the streams in flight finish.
        for c in pool.h2 { c.retire() }
        for c in pool.connections { c.close() }
        pool.connections.removeAll()
    }

    /// Idle connections on every loop (a reader's count).
    var idleCount: Int { pools.reduce(0) { $0 + $1.count } }
}
