import Foundation
import Glibc
import StrataTestSupport
import Synchronization

/// An HTTP/1.1 origin server run by the test process, one thread per connection. It answers each
/// request with a body describing what it received (`name`, request line, headers), keeps
/// connections alive, and has a few special paths:
///   /chunked          answers with a chunked body
///   /slow             answers after 3 s
///   /ws               with `Upgrade: websocket`: 101, then echoes bytes both ways
///   /close            answers with `Connection: close` and closes
///   /big              answers with 1 MiB of `x` after the description
///   /trailers         answers chunked, with a trailer section (`grpc-status: 0`)
/// A request with `Expect: 100-continue` gets `100 Continue` before its body is read.
final class TestHTTPOrigin: @unchecked Sendable {
    let name: String
    let port: UInt16
    private let fd: Int32
    private let log = Guarded<(connections: Int, heads: [String])>((0, []))

    init(_ name: String) throws {
        self.name = name
        (fd, port) = try TestSocket.listen(what: "origin")
        TestSocket.acceptLoop(fd, timeout: 30) { [self] c in
            log.withLock { $0.connections += 1 }
            Thread { [self] in self.serve(c) }.start()
            return true
        }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    var connections: Int { log.withLock { $0.connections } }
    var heads: [String] { log.withLock { $0.heads } }

    private func serve(_ c: Int32) {
        defer { close(c) }
        let reader = HTTPTestReader(fd: c)
        while let head = reader.readHead() {
            log.withLock { $0.heads.append(head) }
            let lines = head.split(separator: "\r\n").map(String.init)
            let requestLine = lines.first ?? ""
            let path = requestLine.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
            let fields = HTTPTestReader.fields(lines)
            if fields["expect"]?.lowercased() == "100-continue" {
                _ = TestSocket.sendAll(c, "HTTP/1.1 100 Continue\r\n\r\n")
            }
            var body: [UInt8] = []
            if fields["transfer-encoding"]?.lowercased().contains("chunked") == true {
                guard let b = reader.readChunked() else { return }
                body = b
            } else if let length = fields["content-length"].flatMap({ Int($0) }) {
                guard let b = reader.read(count: length) else { return }
                body = b
            }
            if path.hasPrefix("/ws"), fields["upgrade"]?.lowercased() == "websocket" {
                _ = TestSocket.sendAll(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                guard reader.pending.isEmpty || TestSocket.sendAll(c, reader.pending) else { return }
                TestSocket.echo(c)
                return
            }
            if path.contains("/slow") { sleep(3) }
            let text = "origin=\(name)\nline=\(requestLine)\nbody=\(body.count)\n" + lines.dropFirst().map { "h=\($0)\n" }.joined()
            if path.hasPrefix("/trailers") {
                let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/grpc\r\nTrailer: grpc-status\r\n\r\n"
                    + String(text.utf8.count, radix: 16) + "\r\n" + text + "\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n"
                guard TestSocket.sendAll(c, response) else { return }
            } else if path.hasPrefix("/big") {
                let body = text + String(repeating: "x", count: 1 << 20)
                guard TestSocket.sendAll(c, "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body) else { return }
            } else if path.hasPrefix("/chunked") {
                let half = text.utf8.count / 2
                let a = String(text.utf8.prefix(half))!, b = String(text.utf8.dropFirst(half))!
                let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Origin: \(name)\r\n\r\n"
                    + String(a.utf8.count, radix: 16) + "\r\n" + a + "\r\n" + String(b.utf8.count, radix: 16) + "\r\n" + b + "\r\n0\r\n\r\n"
                guard TestSocket.sendAll(c, response) else { return }
            } else {
                let close = path.hasPrefix("/close")
                let response = "HTTP/1.1 200 OK\r\nContent-Length: \(text.utf8.count)\r\nX-Origin: \(name)\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n" + text
                guard TestSocket.sendAll(c, response) else { return }
                if close { return }
            }
        }
    }
}
