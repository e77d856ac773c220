import StrataTestSupport
import Foundation
import Glibc
import Synchronization

/// Blocking loopback and unix sockets with timeouts, for tests: nothing here can hang a test run.
public enum TestSocket {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// The test process's soft fd limit raised to its hard limit, once. Every test runs in one
    /// process and at once on a machine with many cores: a default soft limit of 1024 runs out,
    /// and a backend's accept or a read of /proc then fails with EMFILE.
    public static let fileLimitRaised: Bool = {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return false }
        limit.rlim_cur = limit.rlim_max
        return setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0
    }()

    /// A listening socket on 127.0.0.1 for a server the test process runs (`port` nil: one the
    /// kernel picks), and its port. `what` names the server in the error.
    public static func listen(port: UInt16? = nil, backlog: Int32 = 512, address: String = "127.0.0.1",
                              what: String) throws -> (fd: Int32, port: UInt16) {
        _ = fileLimitRaised
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr(address)
        addr.sin_port = (port ?? 0).bigEndian
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0, Glibc.listen(fd, backlog) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "\(what) bind: \(reason)")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, UInt16(bigEndian: addr.sin_port))
    }

    /// Accepts on `fd` on a thread of its own until `fd` is closed, giving each client (with
    /// send and receive timeouts of `seconds`) to `client`, which returns false to stop. Out of fds
    /// for a moment (the whole suite shares one process), it waits rather than quits.
    public static func acceptLoop(_ fd: Int32, timeout seconds: Double, _ client: @escaping @Sendable (Int32) -> Bool) {
        Thread {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    if errno == EMFILE || errno == ENFILE { usleep(10_000); continue }
                    return
                }
                setTimeout(c, seconds: seconds)
                if !client(c) { return }
            }
        }.start()
    }

    /// A port free on 127.0.0.1 now, for a server a test starts later (strata, haproxy). Taken
    /// below the kernel's ephemeral range (32768 up), so no client connection of the suite can be
    /// given it meanwhile, and from a counter shared by every test of the process, so two tests
    /// never get the same one (strata binds with SO_REUSEPORT: two processes on one port would
    /// both bind and share its connections). The start is random, for suites run side by side.
    public static func freePort() -> UInt16 {
        _ = fileLimitRaised
        while true {
            let port = nextPort.withLock { next -> UInt16 in
                let p = next
                next = next >= 32000 ? 20000 : next + 1
                return p
            }
            if isFree(port) { return port }
        }
    }

    /// `count` consecutive ports free now (for `bind ADDR:LOW-HIGH`), from the same counter.
    public static func freePorts(count: Int) -> ClosedRange<UInt16> {
        while true {
            let first = nextPort.withLock { next -> UInt16 in
                if Int(next) + count > 32000 { next = 20000 }
                let p = next
                next += UInt16(count)
                return p
            }
            let range = first...(first + UInt16(count - 1))
            if range.allSatisfy(isFree) { return range }
        }
    }

    private static func isFree(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }

    private static let nextPort = Guarded<UInt16>(UInt16(20000 + Int.random(in: 0..<12000)))

    public static func setTimeout(_ fd: Int32, seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Connects to 127.0.0.1:port; nil when refused.
    public static func connect(_ port: UInt16, host: String = "127.0.0.1", timeout: Double = 10) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr(host)
        addr.sin_port = port.bigEndian
        setTimeout(fd, seconds: timeout)
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if r != 0 { close(fd); return nil }
        return fd
    }

    /// Connects to 127.0.0.1:port from `source` (another loopback address: 127.0.0.2, …, which
    /// Linux routes without configuration); nil when refused.
    public static func connect(_ port: UInt16, from source: String, timeout: Double = 10) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if bound != 0 { close(fd); return nil }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        setTimeout(fd, seconds: timeout)
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if r != 0 { close(fd); return nil }
        return fd
    }

    /// Waits until something accepts on the port.
    public static func waitForListener(_ port: UInt16, seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let fd = connect(port, timeout: 1) { close(fd); return true }
            usleep(20_000)
        }
        return false
    }

    @discardableResult
    public static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    @discardableResult
    public static func sendAll(_ fd: Int32, _ text: String) -> Bool { sendAll(fd, Array(text.utf8)) }

    /// Reads until EOF (or timeout/error); returns what arrived.
    public static func readToEnd(_ fd: Int32, limit: Int = 1 << 30) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    /// Reads exactly `count` bytes unless EOF or timeout comes first.
    public static func read(_ fd: Int32, count: Int) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while out.count < count {
            let want = min(chunk.count, count - out.count)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, want, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    /// Sends back every byte read until the peer closes (or a read times out).
    public static func echo(_ fd: Int32) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            guard sendAll(fd, Array(chunk[0..<n])) else { return }
        }
    }

    /// Reads one line (without its newline).
    public static func readLine(_ fd: Int32) -> String? {
        var out: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let n = recv(fd, &byte, 1, 0)
            if n <= 0 { return out.isEmpty ? nil : String(decoding: out, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: out, as: UTF8.self) }
            out.append(byte)
        }
    }

    /// A unix socket of `type` bound at `path` (not listening), or nil.
    public static func bindUnix(_ path: String, type: Int32 = Int32(SOCK_STREAM.rawValue)) -> Int32? {
        let fd = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = unixAddress(path)
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        if r != 0 { close(fd); return nil }
        return fd
    }

    /// A connected unix stream socket (30 s timeouts), or nil.
    public static func connectUnix(_ path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = unixAddress(path)
        setTimeout(fd, seconds: 30)
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        if r != 0 { close(fd); return nil }
        return fd
    }

    /// One command line on a HAProxy-style admin socket at `path`: everything answered until the
    /// socket closes, or nil when it cannot connect.
    public static func command(_ line: String, unixSocket path: String) -> String? {
        guard let fd = connectUnix(path) else { return nil }
        defer { close(fd) }
        sendAll(fd, line + "\n")
        return String(decoding: readToEnd(fd), as: UTF8.self)
    }

    private static func unixAddress(_ path: String) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { dst in for (i, b) in path.utf8.prefix(dst.count - 1).enumerated() { dst[i] = b } }
        return addr
    }
}
