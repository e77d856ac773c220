import CLibEV
import ConfigModel
import Glibc

/// Answers one admin command. `reply` may be called later (a reload answers when it is done),
/// exactly once, on the loop's thread, with the whole answer (without the closing empty line).
public typealias AdminCommandHandler = (_ command: String, _ level: AccessLevel, _ reply: @escaping (String) -> Void) -> Void

/// The runtime API socket (`stats socket`): HAProxy's text protocol. One command a line (or
/// several separated by `;`); every answer ends with an empty line. Without `prompt` the
/// connection closes after the first line's answers; with it, a `> ` prompt follows each answer
/// until `quit`. Idle connections close after `stats timeout`.
public final class AdminServer: EventHandler {
    let engine: Engine
    let fd: Int32
    let level: AccessLevel
    let timeout: Double
    let handler: AdminCommandHandler
    private var io: IOWatcher
    private var connections: [ObjectIdentifier: AdminConnection] = [:]

    public init(engine: Engine, fd: Int32, level: AccessLevel, timeoutMilliseconds: Int, handler: @escaping AdminCommandHandler) {
        self.engine = engine
        self.fd = fd
        self.level = level
        self.timeout = Double(timeoutMilliseconds) / 1000
        self.handler = handler
        io = IOWatcher(fd: fd, handler: EventHandler())
        super.init()
        io.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        io.watch(EV_READ_MASK, on: engine.loop)
    }

    override func ioEvent(_ watcher: UnsafeMutablePointer<ev_io>, _ revents: Int32) {
        while true {
            let client = CLibEV_accept4(fd, nil, nil, CLibEV_SOCK_NONBLOCK | CLibEV_SOCK_CLOEXEC)
            if client < 0 { return }
            let c = AdminConnection(server: self, fd: client)
            connections[ObjectIdentifier(c)] = c
        }
    }

    func closed(_ c: AdminConnection) { connections[ObjectIdentifier(c)] = nil }

    /// Stops accepting and closes the socket (its path is removed by the caller).
    public func close() {
        io.release(on: engine.loop)
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

final class AdminConnection: EventHandler {
    unowned let server: AdminServer
    let fd: Int32
    private var io: IOWatcher
    private var timer: TimerWatcher
    private var input: [UInt8] = []
    private var output: [UInt8] = []
    private var commands: [String] = []
    private var busy = false
    private var interactive = false
    private var closeWhenFlushed = false
    private var closed = false

    init(server: AdminServer, fd: Int32) {
        self.server = server
        self.fd = fd
        io = IOWatcher(fd: fd, handler: EventHandler())
        timer = TimerWatcher(handler: EventHandler())
        super.init()
        io.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        timer.raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        io.watch(EV_READ_MASK, on: server.engine.loop)
        timer.arm(after: server.timeout, on: server.engine.loop)
    }

    private var loop: EventLoop { server.engine.loop }

    override func ioEvent(_ watcher: UnsafeMutablePointer<ev_io>, _ revents: Int32) {
        if revents & EV_READ_MASK != 0 { readInput() }
        if revents & EV_WRITE_MASK != 0 { flush() }
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        if busy {
            timer.arm(after: server.timeout, on: loop)  // a reload in progress is not idleness
        } else {
            shut()
        }
    }

    private func readInput() {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 4096, 0) }
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
            // The client closed its side; answers still owed are written first when possible.
            if busy || !commands.isEmpty { closeWhenFlushed = true; io.watch(0, on: loop) } else { shut() }
            return
        }
        guard n > 0 else { return }
        timer.arm(after: server.timeout, on: loop)
        input += chunk[0..<n]
        while let nl = input.firstIndex(of: UInt8(ascii: "\n")) {
            var line = String(decoding: input[..<nl], as: UTF8.self)
            input.removeSubrange(...nl)
            if line.hasSuffix("\r") { line.removeLast() }
            // Several commands on one line are separated by ';' (HAProxy), a "\;" keeps one.
            for command in line.split(separator: ";", omittingEmptySubsequences: false) {
                commands.append(command.trimmingSpaces)
            }
            if !interactive { commands.append("\u{0}end-of-batch") }
        }
        if input.count > 65536 { shut() }
        runNext()
    }

    private func runNext() {
        while !busy, !commands.isEmpty, !closed {
            let command = commands.removeFirst()
            switch command {
            case "\u{0}end-of-batch":
                if !interactive { closeWhenFlushed = true; commands.removeAll(); flush() }
                return
            case "prompt":
                interactive.toggle()
                if interactive { write("\n> ") }
                // Leaving the batch open: an interactive session continues after this line.
                commands.removeAll { $0 == "\u{0}end-of-batch" }
            case "quit":
                closeWhenFlushed = true
                commands.removeAll()
                flush()
                return
            case "":
                if interactive { write("> ") }
            default:
                busy = true
                server.handler(command, server.level) { [weak self] answer in
                    guard let self, !self.closed else { return }
                    self.busy = false
                    var text = answer
                    if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
                    self.write(text + "\n" + (self.interactive ? "> " : ""))
                    self.runNext()
                }
            }
        }
        if closeWhenFlushed && !busy { flush() }
    }

    private func write(_ text: String) {
        output += Array(text.utf8)
        flush()
    }

    private func flush() {
        while !output.isEmpty {
            let n = output.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n > 0 {
                output.removeFirst(n)
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                io.watch(EV_READ_MASK | EV_WRITE_MASK, on: loop)
                return
            } else {
                shut()
                return
            }
        }
        if closeWhenFlushed && !busy { shut() } else if !closed { io.watch(closeWhenFlushed ? 0 : EV_READ_MASK, on: loop) }
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
