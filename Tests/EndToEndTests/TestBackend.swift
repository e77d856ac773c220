import Foundation
import Glibc
import Synchronization

/// A server on 127.0.0.1 run by the test process, one thread per connection.
final class TestBackend: @unchecked Sendable {
    enum Behavior: Sendable {
        /// Sends back every byte; on the client's FIN, finishes sending and closes.
        case echo
        /// Writes its name and a newline, then closes.
        case name(String)
        /// Writes its name and a newline, then echoes until the client closes.
        case nameThenEcho(String)
        /// Reads until EOF, then writes the byte count as a line and closes (half-close test).
        case countUntilEOF
        /// Writes `bytes` of a deterministic pattern, then closes.
        case stream(bytes: Int)
    }

    let port: UInt16
    let behavior: Behavior
    private let fd: Int32
    private let state = Mutex<(connections: Int, stopped: Bool)>((0, false))

    init(_ behavior: Behavior, port: UInt16? = nil) throws {
        _ = TestSocket.fileLimitRaised
        self.behavior = behavior
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = (port ?? 0).bigEndian
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0, listen(fd, 512) == 0 else { throw TestSocket.Failure(description: "backend bind: \(String(cString: strerror(errno)))") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.port = UInt16(bigEndian: addr.sin_port)
        let thread = Thread { [self] in self.acceptLoop() }
        thread.start()
    }

    /// Connections accepted so far.
    var connections: Int { state.withLock { $0.connections } }

    func stop() {
        state.withLock { $0.stopped = true }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    deinit { stop() }

    private func acceptLoop() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                // Out of fds for a moment (the whole suite shares one process): wait, never quit.
                if (errno == EMFILE || errno == ENFILE) && !state.withLock({ $0.stopped }) { usleep(10_000); continue }
                return
            }
            if state.withLock({ $0.stopped }) { close(client); return }
            state.withLock { $0.connections += 1 }
            TestSocket.setTimeout(client, seconds: 30)
            let behavior = self.behavior
            Thread { TestBackend.serve(client, behavior) }.start()
        }
    }

    static func pattern(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: i &* 31 &+ i >> 8) }

    private static func serve(_ fd: Int32, _ behavior: Behavior) {
        defer { close(fd) }
        switch behavior {
        case .echo:
            echo(fd)
        case .name(let name):
            _ = TestSocket.sendAll(fd, name + "\n")
        case .nameThenEcho(let name):
            _ = TestSocket.sendAll(fd, name + "\n")
            echo(fd)
        case .countUntilEOF:
            let data = TestSocket.readToEnd(fd)
            _ = TestSocket.sendAll(fd, "\(data.count)\n")
        case .stream(let bytes):
            var sent = 0
            var chunk = [UInt8](repeating: 0, count: 65536)
            while sent < bytes {
                let n = min(chunk.count, bytes - sent)
                for i in 0..<n { chunk[i] = pattern(sent + i) }
                guard TestSocket.sendAll(fd, Array(chunk[0..<n])) else { return }
                sent += n
            }
        }
    }

    private static func echo(_ fd: Int32) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            guard TestSocket.sendAll(fd, Array(chunk[0..<n])) else { return }
        }
    }
}
