import CLibEV
import ConfigModel
import Glibc

/// A listening socket and the frontend it serves now. The socket outlives generations: a reload
/// that keeps its key points it at the new generation's frontend, so what is queued in its
/// backlog is served by the new generation. The fd itself belongs to the listener cache.
final class Listener: EventHandler {
    struct Pause: OptionSet {
        let rawValue: Int
        /// SIGTTOU (or soft stop), until SIGTTIN.
        static let signal = Pause(rawValue: 1)
        /// The frontend or the process is at its maxconn.
        static let limit = Pause(rawValue: 2)
        /// accept() failed with EMFILE/ENFILE: waits for an fd to be freed.
        static let fdExhausted = Pause(rawValue: 4)
    }

    let key: ListenerKey
    let fd: Int32
    unowned(unsafe) let worker: Worker
    private var io: IOWatcher
    private(set) var frontend: Frontend?
    /// A canary's frontend for this listener's key (same mode as `frontend`): it takes the loop's
    /// canary share of what `pick` chooses (TCP connections, HTTP requests).
    private(set) var canaryFrontend: Frontend?
    /// `bind … ssl`: the TLS context of the frontend's generation; a connection takes the one
    /// current when it is accepted and keeps it.
    private(set) var tlsContext: TLSServerContext?
    /// `bind … accept-proxy`: connections start with a PROXY protocol header.
    private(set) var acceptProxy = false
    /// `bind … proto h2`: connections speak HTTP/2 from their first byte.
    private(set) var forcesH2 = false
    private(set) var paused: Pause = []
    /// HTTP client connections accepted here (they outlive generations, not their listener).
    private unowned(unsafe) var firstConnection: HTTPSession?
    /// HTTP/2 client connections accepted here.
    private unowned(unsafe) var firstH2Connection: H2Connection?

    private var fastOpenSet = false

    init(key: ListenerKey, fd: Int32, worker: Worker) {
        self.key = key
        self.fd = fd
        self.worker = worker
        io = IOWatcher(fd: fd, handler: EventHandler())
        super.init()
        io.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    /// Points the listener at `frontend` (nil: serves nothing), moving its generation reference.
    func serve(_ frontend: Frontend?) {
        if let old = self.frontend { old.generation.shard(worker.loop).listenerRefs -= 1 }
        self.frontend = frontend
        // Looked up only where there is something to find: a swap repoints every listener.
        if let contexts = frontend?.generation.tlsContexts, !contexts.isEmpty { tlsContext = contexts[key] } else { tlsContext = nil }
        if let keys = frontend?.acceptProxyKeys, !keys.isEmpty { acceptProxy = keys.contains(key) } else { acceptProxy = false }
        if let keys = frontend?.h2Keys, !keys.isEmpty { forcesH2 = keys.contains(key) } else { forcesH2 = false }
        // `tfo`: set (or, after a reload that dropped it, cleared) on the live socket.
        let fastOpen = frontend?.fastOpenKeys.contains(key) ?? false
        if fastOpen != fastOpenSet {
            var queue: Int32 = fastOpen ? Int32(key.backlog) : 0
            if setsockopt(fd, Int32(IPPROTO_TCP), TCP_FASTOPEN, &queue, socklen_t(MemoryLayout<Int32>.size)) == 0 { fastOpenSet = fastOpen }
        }
        if let frontend { frontend.generation.shard(worker.loop).listenerRefs += 1 }
        updateWatch()
    }

    /// Points the listener's canary share at `frontend` (nil: no canary), moving the canary
    /// generation's listener reference.
    func serveCanary(_ frontend: Frontend?) {
        if let old = canaryFrontend { old.generation.shard(worker.loop).listenerRefs -= 1 }
        canaryFrontend = frontend
        if let frontend { frontend.generation.shard(worker.loop).listenerRefs += 1 }
    }

    /// The frontend the next piece of work starts under: the canary's for the loop's canary share
    /// (a counter of this loop, no lock), else the active generation's.
    @inline(__always)
    func pick() -> Frontend? {
        if let c = canaryFrontend, worker.takesCanary() { return c }
        return frontend
    }

    func pause(_ reason: Pause) {
        paused.insert(reason)
        updateWatch()
    }

    func resume(_ reason: Pause) {
        guard paused.contains(reason) else { return }
        paused.remove(reason)
        updateWatch()
    }

    private func updateWatch() {
        io.watch(frontend != nil && paused.isEmpty ? EV_READ_MASK : 0, on: worker.loop)
    }

    override func ioEvent(_ watcher: UnsafeMutablePointer<ev_io>, _ revents: Int32) {
        acceptPending(limit: 64)
    }

    /// Accepts up to `limit` queued connections (all of them when nil) for the current frontend.
    func acceptPending(limit: Int?) {
        var accepted = 0
        while limit.map({ accepted < $0 }) ?? true {
            guard let frontend else { return }
            if let reason = worker.admissionBlock(for: frontend) {
                pause(reason)
                worker.listenerLimited(self)
                return
            }
            var storage = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    CLibEV_accept4(fd, $0, &len, CLibEV_SOCK_NONBLOCK | CLibEV_SOCK_CLOEXEC)
                }
            }
            if client < 0 {
                switch errno {
                case EINTR, ECONNABORTED, EPROTO, EPERM:
                    continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // No fd to accept with: wait until a session closes one, no busy loop.
                    worker.loop.pipes.drain()
                    pause(.fdExhausted)
                    worker.listenerStarved(self)
                    return
                default:
                    return  // EAGAIN: the backlog is empty
                }
            }
            accepted += 1
            worker.connectionAccepted(frontend)
            var peer = SocketEndpoint(storage)
            // `tcp-request connection set-dst`: the destination from then on (nil: the socket's).
            var local: SocketEndpoint?
            var expectProxy = acceptProxy
            // The connection's stick counters, when its TCP rules track some (an HTTP
            // connection gets one at its first request otherwise).
            let tracker = frontend.tcpRules?.usesStickCounters == true ? StickTracker() : nil
            if let rules = frontend.tcpRules, !rules.connection.isEmpty {
                // `tcp-request connection`: the real addresses, before anything is read.
                let decision = rules.evaluateConnection(HTTPConnectionInfo(client: peer, local: nil, tls: nil, localFD: client,
                                                                           tracker: tracker),
                                                        scratch: worker.ruleScratch)
                if decision.reject {
                    frontend.counters[worker.loop].deniedConnections += 1
                    tracker?.end()
                    if decision.silentDrop { resetOnClose(client) }
                    close(client)
                    continue
                }
                if decision.expectProxy { expectProxy = true }
                if let client = decision.client { peer = client }
                if let destination = decision.local { local = destination }
                // With `tcp-request session` rules, a session counts once they let it through.
                if rules.session.isEmpty, let tracker, !tracker.isEmpty { tracker.countSession() }
            }
            // A plain connection without a PROXY header is a session now: `tcp-request session`
            // (after a header or a TLS handshake, where those end).
            var variables: HTTPVariables = [:]
            if !expectProxy && tlsContext == nil,
               frontend.rejectsSession(HTTPConnectionInfo(client: peer, local: local, tls: nil, localFD: client, tracker: tracker),
                                       fd: client, on: worker, variables: &variables) {
                continue
            }
            worker.sessionAccepted(frontend)
            if expectProxy {
                ProxyHeaderReader(worker: worker, listener: self, frontend: frontend, fd: client, peer: peer,
                                  tlsContext: tlsContext, tracker: tracker).start()
                continue
            }
            var tls: TLSConnection?
            if let tlsContext {
                guard let connection = TLSConnection(accepted: client, context: tlsContext) else {
                    tracker?.end()
                    close(client)
                    continue
                }
                tls = connection
            }
            if frontend.proxy.mode == .http && forcesH2 && tls == nil {
                // h2c with prior knowledge: each stream picks its generation when its head is complete.
                H2Connection(worker: worker, listener: self, frontend: frontend, fd: client, clientAddress: peer,
                             localAddress: local, tls: nil, tracker: tracker, variables: variables).start(counted: false)
            } else if frontend.proxy.mode == .http {
                // Each request picks its generation when its head is complete.
                HTTPSession(worker: worker, listener: self, frontend: frontend, clientFD: client,
                            clientAddress: peer, localAddress: local, tls: tls, tracker: tracker, variables: variables).start()
            } else {
                // A TCP connection picks its generation now, for its life.
                let session = TCPSession(worker: worker, listener: pick() ?? frontend, clientFD: client,
                                         clientAddress: peer, localAddress: local, tls: tls, tracker: tracker, variables: variables)
                session.listener = self
                session.start()
            }
        }
    }

    /// Stops serving: idle HTTP connections close, busy ones close after their answer.
    func release() {
        let previous = frontend
        var cursor = firstConnection
        while let c = cursor {
            cursor = c.listenerNext
            c.listenerReleased(previous: previous)
        }
        var h2 = firstH2Connection
        while let c = h2 {
            h2 = c.listenerNext
            c.listenerReleased()
        }
        serveCanary(nil)
        serve(nil)
        io.release(on: worker.loop)
    }

    func attach(_ c: HTTPSession) {
        c.listenerPrev = nil
        c.listenerNext = firstConnection
        firstConnection?.listenerPrev = c
        firstConnection = c
    }

    func attach(_ c: H2Connection) {
        c.listenerPrev = nil
        c.listenerNext = firstH2Connection
        firstH2Connection?.listenerPrev = c
        firstH2Connection = c
    }

    func detach(_ c: H2Connection) {
        if let p = c.listenerPrev { p.listenerNext = c.listenerNext } else if firstH2Connection === c { firstH2Connection = c.listenerNext }
        c.listenerNext?.listenerPrev = c.listenerPrev
        c.listenerPrev = nil
        c.listenerNext = nil
    }

    func detach(_ c: HTTPSession) {
        if let p = c.listenerPrev { p.listenerNext = c.listenerNext } else if firstConnection === c { firstConnection = c.listenerNext }
        c.listenerNext?.listenerPrev = c.listenerPrev
        c.listenerPrev = nil
        c.listenerNext = nil
    }
}
