import CLibEV
import ConfigModel
import Glibc

/// The runtime API socket (`stats socket`): HAProxy's text protocol. One command a line (or
/// several separated by `;`); every answer ends with an empty line. Without `prompt` the
/// connection closes after the first line's answers; with it, a `> ` prompt follows each answer
/// until `quit`. A connection idle for `stats timeout` in both directions closes.
///
/// What a client can make strata hold is bounded, as HAProxy bounds it: at most `maxconn`
/// connections (then the socket stops accepting until one closes), and per connection one
/// buffer of answers the client has not taken (then strata stops reading its commands).
public final class AdminServer: EventHandler {
    let engine: Engine
    let fd: Int32
    let level: AccessLevel
    let maxconn: Int
    let timeout: Double
    /// Answers not yet taken by a client past which strata runs none of its commands and reads
    /// no more of them (HAProxy: its response buffer); also the longest command.
    let outputLimit: Int
    let commands: AdminCommandTable
    private var io: IOWatcher
    /// Retries accepting after accept() found no fd (EMFILE/ENFILE): no busy loop meanwhile.
    private var retry: TimerWatcher
    private var starved = false
    private var listening = true
    private var connections: [ObjectIdentifier: AdminConnection] = [:]
    /// `expose-fd listeners`: the listening sockets `_getsocks` hands over.
    let exposedListeners: (() -> [ListenerSocketKey: Int32])?

    public init(engine: Engine, fd: Int32, level: AccessLevel, maxconn: Int = StatsSocket.defaultMaxconn,
                timeoutMilliseconds: Int, commands: AdminCommandTable,
                exposedListeners: (() -> [ListenerSocketKey: Int32])? = nil) {
        self.exposedListeners = exposedListeners
        self.engine = engine
        self.fd = fd
        self.level = level
        self.maxconn = max(1, maxconn)
        self.timeout = Double(timeoutMilliseconds) / 1000
        self.outputLimit = engine.loop.buffers.size
        self.commands = commands
        io = IOWatcher(fd: fd, handler: EventHandler())
        retry = TimerWatcher(handler: EventHandler())
        super.init()
        io.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        retry.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        updateWatch()
    }

    /// Accepts while under `maxconn`; at it the watcher stops, so the kernel's backlog holds
    /// the others (HAProxy's full listener) until a connection closes.
    private func updateWatch() {
        guard listening else { return }
        io.watch(!starved && connections.count < maxconn ? EV_READ_MASK : 0, on: engine.loop)
    }

    override func ioEvent(_ watcher: UnsafeMutablePointer<ev_io>, _ revents: Int32) {
        while listening && connections.count < maxconn {
            let client = CLibEV_accept4(fd, nil, nil, CLibEV_SOCK_NONBLOCK | CLibEV_SOCK_CLOEXEC)
            if client < 0 {
                switch errno {
                case EINTR, ECONNABORTED, EPROTO:
                    continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    starved = true
                    retry.arm(after: 0.1, on: engine.loop)
                default:
                    break  // EAGAIN: the backlog is empty
                }
                break
            }
            let c = AdminConnection(server: self, fd: client)
            connections[ObjectIdentifier(c)] = c
        }
        updateWatch()
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        starved = false
        updateWatch()
    }

    func closed(_ c: AdminConnection) {
        connections[ObjectIdentifier(c)] = nil
        updateWatch()
    }

    /// Stops accepting and closes the socket (its path is removed by the caller).
    public func close() {
        guard listening else { return }
        listening = false
        io.release(on: engine.loop)
        retry.release(on: engine.loop)
        Glibc.close(fd)
    }

    /// Binds a unix stream socket at `path` with `mode`, listening. A socket file there is
    /// replaced only when nobody answers on it, or with `replacingLive` (`-sf`/`-st`: the
    /// process being replaced answers on it): another process's live socket is never unlinked.
    public static func bindUnix(path: String, mode: UInt32?, replacingLive: Bool = false) throws(SystemError) -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw SystemError("bind \(path)", errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &addr.sun_path) { dst in for (i, b) in bytes.enumerated() { dst[i] = b } }
        switch UnixSocketFile.probe(path) {
        case .absent:
            break
        case .stale:
            unlink(path)
        case .live where replacingLive:
            unlink(path)
        case .live(let pid):
            throw SystemError("bind \(path) (\(pid.map { "process \($0)" } ?? "another process") answers on it)", errno: EADDRINUSE)
        case .notASocket:
            throw SystemError("bind \(path) (not a socket)", errno: EEXIST)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | CLibEV_SOCK_NONBLOCK | CLibEV_SOCK_CLOEXEC, 0)
        guard fd >= 0 else { throw SystemError("socket", errno: errno) }
        // Linux creates the socket file with the socket's own mode (less the umask): set first,
        // the file never exists with more permissions than `mode` (then chmod makes it exact).
        if let mode { fchmod(fd, mode_t(mode)) }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else {
            let e = errno
            Glibc.close(fd)
            throw SystemError("bind \(path)", errno: e)
        }
        if let mode { chmod(path, mode_t(mode)) }
        guard listen(fd, 128) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw SystemError("listen \(path)", errno: e)
        }
        return fd
    }

    /// Binds a TCP admin socket (`ipv4@ADDR:PORT`).
    public static func bindTCP(_ endpoint: SocketEndpoint) throws(SystemError) -> Int32 {
        let family = endpoint.address.isV6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | CLibEV_SOCK_NONBLOCK | CLibEV_SOCK_CLOEXEC, 0)
        guard fd >= 0 else { throw SystemError("socket", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var (addr, len) = endpoint.sockaddr
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard r == 0, listen(fd, 128) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw SystemError("bind \(endpoint)", errno: e)
        }
        return fd
    }
}

/// One client of the admin socket. Commands run one at a time in the order sent; while a reload
/// is answering, or while the answers the client has not taken reach the server's bound, its
/// next commands stay unread in the kernel's buffers (so the client's own sends block).
final class AdminConnection: EventHandler {
    unowned let server: AdminServer
    let fd: Int32
    private var io: IOWatcher
    private var timer: TimerWatcher
    private var input: AdminInput
    /// The idle timeout, which `set timeout cli` changes for this connection.
    private let settings: AdminSessionSettings
    private var scratch = [UInt8](repeating: 0, count: 4096)
    private var output: [UInt8] = []
    /// Bytes of `output` already sent.
    private var sent = 0
    /// A command's answer is awaited (a reload answers when it is done).
    private var busy = false
    private var interactive = false
    /// The last command taken ended its line (without `prompt`, the connection's last).
    private var lineEnded = false
    /// The client shut its side: what it sent before is still answered.
    private var inputClosed = false
    /// Closes once the answers are written.
    private var ending = false
    private var closed = false
    /// Inside `advance()`: an answer given at once must not re-enter it.
    private var advancing = false

    init(server: AdminServer, fd: Int32) {
        self.server = server
        self.fd = fd
        input = AdminInput(limit: server.outputLimit)
        settings = AdminSessionSettings(idleTimeout: server.timeout)
        io = IOWatcher(fd: fd, handler: EventHandler())
        timer = TimerWatcher(handler: EventHandler())
        super.init()
        io.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        timer.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        timer.arm(after: settings.idleTimeout, on: loop)
        advance()
    }

    private var loop: EventLoop { server.engine.loop }
    private var unsent: Int { output.count - sent }

    override func ioEvent(_ watcher: UnsafeMutablePointer<ev_io>, _ revents: Int32) {
        // shut() drops the server's reference: stay alive to the end of this call.
        withExtendedLifetime(self) {
            if revents & EV_READ_MASK != 0 { readInput() }
            advance()
        }
    }

    /// `stats timeout` without progress either way: nothing read (strata reads nothing from a
    /// client that does not take its answers) and nothing written. A reload being answered is
    /// not idleness.
    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        if busy { timer.arm(after: settings.idleTimeout, on: loop) } else { shut() }
    }

    private func readInput() {
        let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 {
            timer.arm(after: settings.idleTimeout, on: loop)
            scratch.withUnsafeBytes { input.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        } else if n == 0 {
            inputClosed = true
        } else if errno != EAGAIN && errno != EINTR {
            shut()
        }
    }

    /// Runs the commands that can run now, writes, then waits for what unblocks the rest.
    private func advance() {
        advancing = true
        while !closed && !busy && !ending {
            if lineEnded && !interactive {
                ending = true
                break
            }
            guard unsent < server.outputLimit else { break }
            guard let item = input.next() else {
                if inputClosed { ending = true }  // a partial last line is dropped, as HAProxy does
                break
            }
            run(item)
        }
        advancing = false
        flush()
    }

    private func run(_ item: AdminInput.Item) {
        let words: [String]
        var payload: String?
        switch item {
        case .command(let w, let endsLine):
            words = w
            lineEnded = endsLine
        case .commandWithPayload(let w, let p):
            words = w
            payload = p
            lineEnded = true
        case .tooLong:
            ending = true  // no end of command within the bound: HAProxy closes too
            return
        }
        switch words {
        case ["prompt"]:
            interactive.toggle()
            if interactive { write("\n> ") }
        case ["quit"]:
            ending = true
        case []:
            if interactive { write("> ") }
        case ["_getsocks"] where server.exposedListeners != nil && server.level == .admin:
            handOverListeners()
        default:
            busy = true
            server.commands.run(words, level: server.level, engine: server.engine, session: settings, payload: payload) { [weak self] answer in
                self?.answered(answer)
            }
        }
    }

    /// `_getsocks` (HAProxy's, on a socket with `expose-fd listeners`): every listening socket,
    /// one message each: a line `LOOP ADDRESS PORT V6ONLY INTERFACE BACKLOG REUSEPORT` with the
    /// fd as SCM_RIGHTS; then an empty line, and the connection closes. The sends block (with a
    /// bound) so that a thousand sockets need no state here: a new process is reading them.
    private func handOverListeners() {
        flush()
        let sockets = server.exposedListeners?() ?? [:]
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = CLibEV_fcntl_setfl_blocking(fd)
        var ok = true
        for (key, listener) in sockets.sorted(by: { ($0.key.bind.description, $0.key.loop) < ($1.key.bind.description, $1.key.loop) }) where ok {
            let line = ListenerHandover.line(key) + "\n"
            ok = Array(line.utf8).withUnsafeBytes { CLibEV_send_with_fd(fd, $0.baseAddress!, $0.count, listener) == $0.count }
        }
        if ok { _ = CLibEV_send_with_fd(fd, "\n", 1, -1) }
        _ = CLibEV_fcntl_setfl_nonblock(fd)
        ending = true
        server.engine.report("handed \(sockets.count) listening sockets over (_getsocks)\(ok ? "" : ", interrupted: the receiver stopped reading")")
    }

    private func answered(_ answer: String) {
        guard !closed, busy else { return }
        busy = false
        timer.arm(after: settings.idleTimeout, on: loop)
        var text = answer
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        write(text + "\n" + (interactive ? "> " : ""))
        if !advancing { advance() }
    }

    private func write(_ text: String) {
        if sent == output.count {
            // Keep a buffer of the usual size, not the one a huge answer needed.
            output.removeAll(keepingCapacity: output.capacity <= server.outputLimit * 2)
            sent = 0
        }
        output += text.utf8
    }

    private func flush() {
        guard !closed else { return }
        while sent < output.count {
            let n = output[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n > 0 {
                sent += n
                timer.arm(after: settings.idleTimeout, on: loop)
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && errno == EAGAIN {
                break
            } else {
                shut()
                return
            }
        }
        if ending && !busy && unsent == 0 {
            shut()
            return
        }
        // Reading only when a command could run: never while a reload answers, while the client
        // leaves its answers untaken, or after the last line of a connection without prompt.
        let wantsInput = !busy && !ending && !inputClosed && unsent < server.outputLimit && !(lineEnded && !interactive)
        io.watch((wantsInput ? EV_READ_MASK : 0) | (unsent > 0 ? EV_WRITE_MASK : 0), on: loop)
    }

    private func shut() {
        guard !closed else { return }
        closed = true
        io.release(on: loop)
        timer.release(on: loop)
        close(fd)
        server.closed(self)
    }
}

extension Substring {
    var trimmingSpaces: String {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}

/// The text that names a listening socket in `_getsocks`: the bind's key and the loop.
public enum ListenerHandover {
    public static func line(_ key: ListenerSocketKey) -> String {
        let b = key.bind
        return "\(key.loop) \(b.endpoint.address) \(b.endpoint.port) \(b.v6only ? 1 : 0) \(b.interface ?? "-") \(b.backlog) \(b.reusePort ? 1 : 0)"
    }

    public static func key(_ line: Substring) -> ListenerSocketKey? {
        let w = line.split(separator: " ")
        guard w.count == 7, let loop = Int(w[0]), loop >= 0, loop < 4096, let address = IPAddress(w[1]), let port = UInt16(w[2]),
              let backlog = Int(w[5]), backlog >= 0 else { return nil }
        let bind = ListenerKey(endpoint: SocketEndpoint(address: address, port: port), v6only: w[3] == "1",
                               interface: w[4] == "-" ? nil : String(w[4]), backlog: backlog, reusePort: w[6] == "1")
        return ListenerSocketKey(bind: bind, loop: loop)
    }

    /// Connects to `path` (an admin socket with `expose-fd listeners`), asks `_getsocks`, and
    /// returns every socket it hands over, or why not.
    public static func receive(from path: String) -> Result<[ListenerSocketKey: Int32], HandoverError> {
        guard let fd = connectUnix(path) else { return .failure(HandoverError("cannot connect to \(path): \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let ask = Array("_getsocks\n".utf8)
        guard ask.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == ask.count else {
            return .failure(HandoverError("cannot ask \(path) for its sockets: \(String(cString: strerror(errno)))"))
        }
        var text: [UInt8] = []
        var fds: [Int32] = []
        var sockets: [ListenerSocketKey: Int32] = [:]
        func fail(_ why: String) -> Result<[ListenerSocketKey: Int32], HandoverError> {
            for f in fds { close(f) }
            for f in sockets.values { close(f) }
            return .failure(HandoverError(why))
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var passed: Int32 = -1
            let n = buffer.withUnsafeMutableBytes { CLibEV_recv_with_fd(fd, $0.baseAddress!, $0.count, &passed) }
            if passed >= 0 { fds.append(passed) }
            if n < 0 { return fail("reading the sockets from \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { return fail("\(path) closed before the end of the sockets (is it a socket with 'expose-fd listeners' and level admin?)") }
            text += buffer[..<n]
            // Lines and fds arrive in order: each complete line takes the next fd.
            while let newline = text.firstIndex(of: 0x0A) {
                let line = String(decoding: text[..<newline], as: UTF8.self)
                text.removeSubrange(...newline)
                if line.isEmpty { return fds.isEmpty ? .success(sockets) : fail("more sockets than lines from \(path)") }
                guard let key = ListenerHandover.key(Substring(line)) else {
                    return fail("\(path) did not hand its sockets over (it answered '\(line)'): the old process's stats socket needs 'expose-fd listeners' and level admin")
                }
                guard !fds.isEmpty else { return fail("no socket came with '\(line)' from \(path)") }
                sockets[key] = fds.removeFirst()
            }
        }
    }

    private static func connectUnix(_ path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | CLibEV_SOCK_CLOEXEC, 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { close(fd); errno = ENAMETOOLONG; return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard r == 0 else { let e = errno; close(fd); errno = e; return nil }
        return fd
    }
}

public struct HandoverError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
