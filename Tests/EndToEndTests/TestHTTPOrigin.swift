import Foundation
import Glibc
import Synchronization

/// An HTTP/1.1 origin server run by the test process, one thread per connection. It answers each
/// request with a body describing what it received (`name`, request line, headers), keeps
/// connections alive, and has a few special paths:
///   /chunked          answers with a chunked body
///   /slow             answers after 3 s
///   /ws               with `Upgrade: websocket`: 101, then echoes bytes both ways
///   /close            answers with `Connection: close` and closes
/// A request with `Expect: 100-continue` gets `100 Continue` before its body is read.
final class TestHTTPOrigin: @unchecked Sendable {
    let name: String
    let port: UInt16
    private let fd: Int32
    private let log = Mutex<(connections: Int, heads: [String])>((0, []))

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
        var reader = HTTPTestReader(fd: c)
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
                reader.echoForever()
                return
            }
            if path.contains("/slow") { sleep(3) }
            let text = "origin=\(name)\nline=\(requestLine)\nbody=\(body.count)\n" + lines.dropFirst().map { "h=\($0)\n" }.joined()
            if path.hasPrefix("/chunked") {
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

/// Reads HTTP/1.1 messages from a blocking socket.
struct HTTPTestReader {
    let fd: Int32
    var pending: [UInt8] = []

    init(fd: Int32) { self.fd = fd }

    private mutating func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { return false }
        pending += chunk[0..<n]
        return true
    }

    private func find(_ s: [UInt8]) -> Int? {
        guard pending.count >= s.count else { return nil }
        for i in 0...(pending.count - s.count) where pending[i] == s[0] && Array(pending[i..<i + s.count]) == s { return i }
        return nil
    }

    /// The next head (request or response line and fields, with the final CRLF CRLF), or nil at EOF.
    mutating func readHead() -> String? {
        while true {
            if let end = find([13, 10, 13, 10]) {
                let head = String(decoding: pending[0..<end + 4], as: UTF8.self)
                pending.removeFirst(end + 4)
                return head
            }
            if !fill() { return nil }
        }
    }

    mutating func read(count: Int) -> [UInt8]? {
        while pending.count < count { if !fill() { return nil } }
        let out = Array(pending[0..<count])
        pending.removeFirst(count)
        return out
    }

    mutating func readLine() -> String? {
        while true {
            if let end = find([13, 10]) {
                let line = String(decoding: pending[0..<end], as: UTF8.self)
                pending.removeFirst(end + 2)
                return line
            }
            if !fill() { return nil }
        }
    }

    mutating func readChunked() -> [UInt8]? {
        var body: [UInt8] = []
        while true {
            guard let line = readLine(), let size = Int(line.split(separator: ";")[0], radix: 16) else { return nil }
            if size == 0 {
                while let trailer = readLine(), !trailer.isEmpty {}
                return body
            }
            guard let data = read(count: size), readLine() != nil else { return nil }
            body += data
        }
    }

    /// Reads everything until EOF.
    mutating func readToEnd() -> [UInt8] {
        while fill() {}
        defer { pending = [] }
        return pending
    }

    mutating func echoForever() {
        if !pending.isEmpty { _ = TestSocket.sendAll(fd, pending); pending = [] }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            guard TestSocket.sendAll(fd, Array(chunk[0..<n])) else { return }
        }
    }

    /// A response: status code, head text, body (Content-Length, chunked, or up to EOF).
    mutating func readResponse(head requestMethod: String = "GET") -> (status: Int, head: String, body: String)? {
        guard let head = readHead() else { return nil }
        let lines = head.split(separator: "\r\n").map(String.init)
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        let fields = HTTPTestReader.fields(lines)
        var body: [UInt8] = []
        if requestMethod == "HEAD" || status == 204 || status == 304 || (100..<200).contains(status) {
        } else if fields["transfer-encoding"]?.lowercased().contains("chunked") == true {
            body = readChunked() ?? []
        } else if let length = fields["content-length"].flatMap({ Int($0) }) {
            body = read(count: length) ?? []
        } else {
            body = readToEnd()
        }
        return (status, head, String(decoding: body, as: UTF8.self))
    }

    static func fields(_ lines: [String]) -> [String: String] {
        var out: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            out[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return out
    }
}

/// A keep-alive HTTP client connection for tests.
final class TestHTTPClient {
    let fd: Int32
    var reader: HTTPTestReader

    init?(port: UInt16, timeout: Double = 10) {
        guard let fd = TestSocket.connect(port, timeout: timeout) else { return nil }
        self.fd = fd
        reader = HTTPTestReader(fd: fd)
    }

    deinit { close(fd) }

    func send(_ text: String) { _ = TestSocket.sendAll(fd, text) }

    func readResponse() -> (status: Int, head: String, body: String)? { reader.readResponse() }
    func readHead() -> String? { reader.readHead() }
    func read(count: Int) -> [UInt8]? { reader.read(count: count) }

    /// Sends `GET path` with Host and extra header lines, reads the response.
    func get(_ path: String, host: String = "test.local", headers: [String] = []) -> (status: Int, head: String, body: String)? {
        send("GET \(path) HTTP/1.1\r\nHost: \(host)\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
        return reader.readResponse()
    }

    /// Whether the server closed the connection (reads EOF within the timeout).
    func isClosedByPeer() -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }
}
