import CLibEV
import ConfigModel
import Glibc

// c-ares calls these with the channel (socket state) or the query (answer) as its argument.
private let socketStateCallback: CLibEV_ares_sock_state_cb = { data, fd, readable, writable in
    guard let data else { return }
    Unmanaged<NameserverChannel>.fromOpaque(data).takeUnretainedValue().socketState(fd, read: readable != 0, write: writable != 0)
}
private let answerCallback: ares_callback = { arg, status, _, abuf, alen in
    guard let arg else { return }
    let query = Unmanaged<NameserverChannel.PendingQuery>.fromOpaque(arg).takeRetainedValue()
    // The channel is being destroyed: nobody waits for this answer any more.
    guard status != ARES_EDESTRUCTION, let channel = query.channel else { return }
    channel.answered(query, status: status, abuf: abuf, length: Int(alen))
}

/// One nameserver of a `resolvers` section: a c-ares channel that asks it alone, driven by the
/// engine's loop (c-ares names the sockets to watch through its socket-state callback; its
/// timeouts are read with `ares_timeout` into one timer), and the nameserver's counters.
///
/// c-ares rather than a client of strata's own: it is the DNS client of curl and Node.js,
/// parses answers (CNAME chains, compression pointers, truncation and the retry over TCP) with
/// years of fuzzing behind it, speaks UDP and TCP, and was made to run inside someone else's
/// event loop. What strata adds is HAProxy's policy above it: every nameserver asked at once, the
/// first valid answer taken, retries, the A/AAAA fallback, `hold` periods, and the choice of an
/// address per server.
///
/// Every answer is delivered after c-ares returns (never from inside one of its calls), so a
/// completion may send the next query at once.
final class NameserverChannel: EventHandler {
    final class PendingQuery {
        weak var channel: NameserverChannel?
        let type: DNSQueryType
        let completion: (DNSAnswer) -> Void

        init(channel: NameserverChannel, type: DNSQueryType, completion: @escaping (DNSAnswer) -> Void) {
            self.channel = channel
            self.type = type
            self.completion = completion
        }
    }

    let nameserver: ResolversSection.Nameserver
    var counters = NameserverCounters()
    private unowned(unsafe) let loop: EventLoop
    private var channel: OpaquePointer?
    /// The sockets c-ares asked to watch (one a transport, usually), each with its watcher.
    private final class Socket {
        var watcher: IOWatcher
        init(fd: Int32, handler: EventHandler) { watcher = IOWatcher(fd: fd, handler: handler) }
    }
    private var sockets: [Int32: Socket] = [:]
    private let timer = TimerWatcher(handler: EventHandler())
    /// Answers waiting for c-ares to return.
    private var deferred: [(PendingQuery, DNSAnswer)] = []
    private var depth = 0

    private static let libraryInitialized: Bool = CLibEV_ares_library_init() == ARES_SUCCESS

    /// nil when c-ares cannot make a channel (out of memory, or its library failed to start).
    init?(nameserver: ResolversSection.Nameserver, section: ResolversSection, loop: EventLoop) {
        self.nameserver = nameserver
        self.loop = loop
        super.init()
        timer.setHandler(self)
        guard NameserverChannel.libraryInitialized else { return nil }
        var made: OpaquePointer?
        let status = CLibEV_ares_channel_new(&made, Int32(section.timeoutRetry), 1, nameserver.tcp ? 1 : 0,
                                             Int32(section.acceptedPayloadSize), socketStateCallback,
                                             Unmanaged.passUnretained(self).toOpaque())
        guard status == ARES_SUCCESS, let made else { return nil }
        channel = made
        let endpoint = nameserver.endpoint
        let bytes: [UInt8]
        switch endpoint.address {
        case .v4(let a): bytes = [UInt8(a >> 24), UInt8(a >> 16 & 0xff), UInt8(a >> 8 & 0xff), UInt8(a & 0xff)]
        case .v6(let b): bytes = b
        }
        let family = endpoint.address.isV6 ? AF_INET6 : AF_INET
        guard CLibEV_ares_set_server(made, family, bytes, Int32(endpoint.port)) == ARES_SUCCESS else {
            ares_destroy(made)
            channel = nil
            return nil
        }
    }

    /// Asks `name` for `type` records; `completion` gets the answer on the loop, after c-ares returns.
    func query(_ name: String, _ type: DNSQueryType, completion: @escaping (DNSAnswer) -> Void) {
        guard let channel else { return completion(.failure(.timeout)) }
        counters.sent += 1
        let pending = PendingQuery(channel: self, type: type, completion: completion)
        calling { ares_query(channel, name, 1 /* C_IN */, type.rawValue, answerCallback, Unmanaged.passRetained(pending).toOpaque()) }
    }

    /// Cancels what is in flight (no completion runs) and closes the sockets.
    func close() {
        guard let channel else { return }
        self.channel = nil
        ares_destroy(channel)
        deferred.removeAll()
        for socket in sockets.values { socket.watcher.release(on: loop) }
        sockets.removeAll()
        timer.release(on: loop)
    }

    // MARK: c-ares

    /// Runs a c-ares call, then what it answered, then re-arms the timer for its next timeout.
    private func calling(_ body: () -> Void) {
        depth += 1
        body()
        depth -= 1
        guard depth == 0 else { return }
        while !deferred.isEmpty {
            let ready = deferred
            deferred.removeAll()
            for (query, answer) in ready { query.completion(answer) }
        }
        guard let channel else { return }
        let next = CLibEV_ares_timeout(channel)
        if next >= 0 { timer.arm(after: next, on: loop) } else { timer.stop(on: loop) }
    }

    fileprivate func socketState(_ fd: Int32, read: Bool, write: Bool) {
        let events = (read ? EV_READ_MASK : 0) | (write ? EV_WRITE_MASK : 0)
        if events == 0 {
            // c-ares closes the socket after this: the watcher goes first.
            sockets.removeValue(forKey: fd)?.watcher.release(on: loop)
            return
        }
        let socket = sockets[fd] ?? Socket(fd: fd, handler: self)
        sockets[fd] = socket
        socket.watcher.watch(events, on: loop)
    }

    override func ioEvent(_ watcher: UnsafeMutablePointer<ev_io>, _ revents: Int32) {
        guard let channel else { return }
        let fd = watcher.pointee.fd
        let r = revents & EV_READ_MASK != 0 ? fd : ARES_SOCKET_BAD
        let w = revents & EV_WRITE_MASK != 0 ? fd : ARES_SOCKET_BAD
        calling { ares_process_fd(channel, r, w) }
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        guard let channel else { return }
        calling { ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD) }
    }

    fileprivate func answered(_ query: PendingQuery, status: Int32, abuf: UnsafeMutablePointer<UInt8>?, length: Int) {
        let answer: DNSAnswer
        switch status {
        case ARES_SUCCESS:
            answer = abuf.map { NameserverChannel.parse(UnsafeBufferPointer(start: $0, count: length), as: query.type) } ?? .failure(.invalid)
        case ARES_ENODATA: answer = .failure(.noData)
        case ARES_ENOTFOUND: answer = .failure(.nx)
        case ARES_EREFUSED: answer = .failure(.refused)
        case ARES_ETIMEOUT: answer = .failure(.timeout)
        case ARES_ECONNREFUSED:
            counters.sendErrors += 1
            answer = .failure(.timeout)
        case ARES_EBADRESP: answer = .failure(.invalid)
        default: answer = .failure(.other)
        }
        switch answer {
        case .failure(.nx): counters.nx += 1
        case .failure(.refused): counters.refused += 1
        case .failure(.timeout) where status == ARES_ETIMEOUT: counters.timeout += 1
        case .failure(.noData): counters.anyError += 1
        case .failure(.invalid): counters.invalid += 1
        case .failure(.other): counters.other += 1
        case .addresses(_, cname: true): counters.cname += 1
        default: break
        }
        deferred.append((query, answer))
    }

    /// c-ares's parsers over a whole answer (NOERROR with at least one answer record).
    static func parse(_ answer: UnsafeBufferPointer<UInt8>, as type: DNSQueryType) -> DNSAnswer {
        guard let base = answer.baseAddress, answer.count > 0, answer.count <= Int(Int32.max) else { return .failure(.invalid) }
        let length = Int32(answer.count)
        // An address record takes 16 bytes at least: this bounds how many the answer holds.
        var capacity = Int32(answer.count / 16 + 1)
        var host: UnsafeMutablePointer<hostent>?
        var status: Int32
        var addresses: [IPAddress] = []
        switch type {
        case .a:
            var records = [ares_addrttl](repeating: ares_addrttl(), count: Int(capacity))
            status = ares_parse_a_reply(base, length, &host, &records, &capacity)
            if status == ARES_SUCCESS {
                addresses = records.prefix(Int(capacity)).map { .v4(UInt32(bigEndian: $0.ipaddr.s_addr)) }
            }
        case .aaaa:
            var records = [ares_addr6ttl](repeating: ares_addr6ttl(), count: Int(capacity))
            status = ares_parse_aaaa_reply(base, length, &host, &records, &capacity)
            if status == ARES_SUCCESS {
                addresses = records.prefix(Int(capacity)).map { r in withUnsafeBytes(of: r.ip6addr) { .v6(Array($0.prefix(16))) } }
            }
        case .srv:
            var reply: UnsafeMutablePointer<ares_srv_reply>?
            status = ares_parse_srv_reply(base, length, &reply)
            defer { if let reply { ares_free_data(reply) } }
            guard status == ARES_SUCCESS else { return .failure(status == ARES_ENODATA ? .noData : .invalid) }
            var services: [SRVRecord] = []
            var item = reply
            while let r = item {
                if let name = r.pointee.host {
                    var target = String(cString: name).lowercased()
                    if target.hasSuffix(".") { target.removeLast() }
                    services.append(SRVRecord(target: target, port: r.pointee.port, weight: r.pointee.weight, priority: r.pointee.priority))
                }
                item = r.pointee.next
            }
            return services.isEmpty ? .failure(.noData) : .services(services)
        }
        var cname = false
        if let host {
            cname = host.pointee.h_aliases?.pointee != nil
            ares_free_hostent(host)
        }
        guard status == ARES_SUCCESS else { return .failure(status == ARES_ENODATA ? .noData : .invalid) }
        return addresses.isEmpty ? .failure(.noData) : .addresses(addresses, cname: cname)
    }
}
