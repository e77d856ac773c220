import Foundation
import Glibc
import StrataTestSupport
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
    private let state = Guarded<(connections: Int, stopped: Bool)>((0, false))

    init(_ behavior: Behavior, port: UInt16? = nil) throws {
        self.behavior = behavior
        (fd, self.port) = try TestSocket.listen(port: port, what: "backend")
        TestSocket.acceptLoop(fd, timeout: 30) { [self] client in
            if state.withLock({ $0.stopped }) { close(client); return false }
            state.withLock { $0.connections += 1 }
            let behavior = self.behavior
            Thread { TestBackend.serve(client, behavior) }.start()
            return true
        }
    }

    /// Connections accepted so far.
    var connections: Int { state.withLock { $0.connections } }

    /// Closes the listening socket, once: `deinit` calls it again, and a second close would
    /// close whatever descriptor took the number since (another test's socket: the whole suite
    /// shares one process).
    func stop() {
        let first = state.withLock { s -> Bool in
            defer { s.stopped = true }
            return !s.stopped
        }
        guard first else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    deinit { stop() }

    static func pattern(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: i &* 31 &+ i >> 8) }

    private static func serve(_ fd: Int32, _ behavior: Behavior) {
        defer { close(fd) }
        switch behavior {
        case .echo:
            TestSocket.echo(fd)
        case .name(let name):
            _ = TestSocket.sendAll(fd, name + "\n")
        case .nameThenEcho(let name):
            _ = TestSocket.sendAll(fd, name + "\n")
            TestSocket.echo(fd)
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
}
