import ConfigModel
import Dispatch
import Foundation
import Glibc
import Loader
import Synchronization
import Testing

@testable import Engine

/// A small HTTP/1.1 origin for in-process tests: answers each request with `200` and a body naming
/// the request, keeps connections alive, and records the heads it received.
final class TinyOrigin: @unchecked Sendable {
    let fd: Int32
    let port: UInt16
    private let heads = Mutex<[String]>([])
    private let accepted = Mutex<Int>(0)

    init() {
        let l = GenerationLifetimeTests.listeningSocket()
        fd = l.fd
        port = l.port
        Thread { [self] in
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return }
                accepted.withLock { $0 += 1 }
                Thread { [self] in self.serve(c) }.start()
            }
        }.start()
    }

    var receivedHeads: [String] { heads.withLock { $0 } }
    var connections: Int { accepted.withLock { $0 } }

    func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }

    private func serve(_ c: Int32) {
        defer { close(c) }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            // One head, then Content-Length body bytes.
            while !buffer.containsSubsequence([13, 10, 13, 10]) {
                let n = recv(c, &chunk, chunk.count, 0)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            let end = buffer.indexOfSubsequence([13, 10, 13, 10])! + 4
            let head = String(decoding: buffer[0..<end], as: UTF8.self)
            buffer.removeFirst(end)
            heads.withLock { $0.append(head) }
            var length = 0
            for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
            while buffer.count < length {
                let n = recv(c, &chunk, chunk.count, 0)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            buffer.removeFirst(length)
            let requestLine = head.split(separator: "\r\n").first.map(String.init) ?? ""
            let body = "saw \(requestLine) body \(length)\n"
            let response = "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nX-Origin: tiny\r\n\r\n\(body)"
            _ = Array(response.utf8).withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }
}

extension Array where Element == UInt8 {
    func indexOfSubsequence(_ s: [UInt8]) -> Int? {
        guard count >= s.count else { return nil }
        for i in 0...(count - s.count) where self[i..<i + s.count].elementsEqual(s) { return i }
        return nil
    }
    func containsSubsequence(_ s: [UInt8]) -> Bool { indexOfSubsequence(s) != nil }
}

/// An engine on its own thread serving one HTTP listen section built as values.
final class HTTPTestProxy: @unchecked Sendable {
    let engine = Engine(defaultLoop: false)
    let cache = ListenerCache()
    let port: UInt16
    let keys: [ListenerKey]
    private var thread: Thread?

    private var nextID = 1

    init(origin: UInt16, configure: (inout Proxy) -> Void = { _ in }) throws {
        let probe = GenerationLifetimeTests.listeningSocket()
        close(probe.fd)
        port = probe.port
        keys = [ListenerKey(endpoint: SocketEndpoint(address: .v4(0x7f00_0001), port: port), v6only: false,
                            interface: nil, backlog: ListenerKey.defaultBacklog, reusePort: true)]
        let generation = try makeGeneration(origin: origin, port: port, configure: configure)
        engine.activate(generation, listenerFDs: try cache.acquire(keys).get())
        let engine = self.engine
        thread = Thread { engine.run() }
        thread?.start()
    }

    /// A generation serving `port` with one server.
    func makeGeneration(origin: UInt16, port: UInt16, configure: (inout Proxy) -> Void = { _ in }) throws -> Generation {
        let here = SourceLocation(file: "test", line: 1)
        var proxy = Proxy(name: "web", kind: .listen, location: here, id: 1)
        proxy.mode = .http
        proxy.binds = [Bind(location: here, endpoint: SocketEndpoint(address: .v4(0x7f00_0001), port: port))]
        proxy.servers = [ConfigModel.Server(name: "origin", location: here, id: 1, host: "127.0.0.1",
                                            address: .v4(0x7f00_0001), port: origin, options: ServerOptions())]
        proxy.timeouts.connect = 2000
        proxy.timeouts.client = 5000
        proxy.timeouts.server = 5000
        configure(&proxy)
        let config = Config(global: GlobalSettings(), proxies: [proxy])
        defer { nextID += 1 }
        return try Engine.makeGeneration(ConfigGeneration(id: nextID, hash: "test\(nextID)", config: config, files: []))
    }

    /// Activates a new generation on the loop (as a reload does); returns the listener keys dropped.
    @discardableResult
    func reload(origin: UInt16, port: UInt16? = nil, configure: (inout Proxy) -> Void = { _ in }) throws -> [ListenerKey] {
        let port = port ?? self.port
        let generation = UncheckedBox(try makeGeneration(origin: origin, port: port, configure: configure))
        let newKeys = [ListenerKey(endpoint: SocketEndpoint(address: .v4(0x7f00_0001), port: port), v6only: false,
                                   interface: nil, backlog: ListenerKey.defaultBacklog, reusePort: true)]
        let fds = try cache.acquire(newKeys).get()
        let engine = self.engine
        let dropped = GenerationLifetimeTests.onLoop(engine) { engine.activate(generation.value, listenerFDs: fds) }
        cache.release(dropped)
        return dropped
    }

    func generations() -> [String] {
        let engine = self.engine
        return GenerationLifetimeTests.onLoop(engine) { engine.generations.map { "\($0.id) \($0.state.rawValue) \($0.sessions)" } }
    }

    func stop() {
        _ = GenerationLifetimeTests.onLoop(engine) { self.engine.stop() }
        cache.release(keys)
    }
}

/// Reads one HTTP response (head and Content-Length body) from a blocking socket.
func readResponse(_ fd: Int32, pending: inout [UInt8]) -> (head: String, body: String)? {
    var chunk = [UInt8](repeating: 0, count: 65536)
    while !pending.containsSubsequence([13, 10, 13, 10]) {
        let n = recv(fd, &chunk, chunk.count, 0)
        if n <= 0 { return nil }
        pending += chunk[0..<n]
    }
    let end = pending.indexOfSubsequence([13, 10, 13, 10])! + 4
    let head = String(decoding: pending[0..<end], as: UTF8.self)
    pending.removeFirst(end)
    var length = 0
    for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
        length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
    }
    while pending.count < length {
        let n = recv(fd, &chunk, chunk.count, 0)
        if n <= 0 { return nil }
        pending += chunk[0..<n]
    }
    let body = String(decoding: pending[0..<length], as: UTF8.self)
    pending.removeFirst(length)
    return (head, body)
}

@Suite(.serialized) struct HTTPSessionTests {
    static func send(_ fd: Int32, _ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    static func connect(_ port: UInt16) -> Int32 {
        let fd = GenerationLifetimeTests.connect(port)
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    @Test func keepAliveRequestsShareOneServerConnection() throws {
        let origin = TinyOrigin()
        defer { origin.stop() }
        let proxy = try HTTPTestProxy(origin: origin.port) { $0.http.forwardFor = ForwardedHeader(header: "X-Forwarded-For") }
        defer { proxy.stop() }
        let fd = Self.connect(proxy.port)
        defer { close(fd) }
        var pending: [UInt8] = []
        for i in 0..<3 {
            Self.send(fd, "GET /item/\(i) HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive\r\n\r\n")
            let response = try #require(readResponse(fd, pending: &pending))
            #expect(response.head.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(response.body == "saw GET /item/\(i) HTTP/1.1 body 0\n")
            #expect(!response.head.lowercased().contains("connection: close"))
        }
        #expect(origin.connections == 1)
        let heads = origin.receivedHeads
        #expect(heads.count == 3)
        #expect(heads.allSatisfy { $0.contains("X-Forwarded-For: 127.0.0.1\r\n") })
        // Hop-by-hop fields do not reach the server.
        #expect(heads.allSatisfy { !$0.lowercased().contains("connection: keep-alive") })
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let origin = TinyOrigin()
        defer { origin.stop() }
        let proxy = try HTTPTestProxy(origin: origin.port)
        defer { proxy.stop() }
        let fd = Self.connect(proxy.port)
        defer { close(fd) }
        Self.send(fd, (0..<5).map { "GET /p\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
        var pending: [UInt8] = []
        for i in 0..<5 {
            let response = try #require(readResponse(fd, pending: &pending))
            #expect(response.body == "saw GET /p\(i) HTTP/1.1 body 0\n")
        }
    }

    @Test func requestBodyIsForwarded() throws {
        let origin = TinyOrigin()
        defer { origin.stop() }
        let proxy = try HTTPTestProxy(origin: origin.port)
        defer { proxy.stop() }
        let fd = Self.connect(proxy.port)
        defer { close(fd) }
        let body = String(repeating: "x", count: 100_000)
        Self.send(fd, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        var pending: [UInt8] = []
        let response = try #require(readResponse(fd, pending: &pending))
        #expect(response.body == "saw POST /upload HTTP/1.1 body 100000\n")
    }

    @Test func keepAliveConnectionFollowsTheNewGenerationAndStaysOpen() throws {
        let a = TinyOrigin(), b = TinyOrigin()
        defer { a.stop(); b.stop() }
        let proxy = try HTTPTestProxy(origin: a.port)
        defer { proxy.stop() }
        let fd = Self.connect(proxy.port)
        defer { close(fd) }
        var pending: [UInt8] = []
        Self.send(fd, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try #require(readResponse(fd, pending: &pending)).body.hasPrefix("saw GET /one"))
        #expect(a.receivedHeads.count == 1)
        try proxy.reload(origin: b.port)
        // Idle between requests: the connection held no generation, so 1 retired at once.
        #expect(proxy.generations() == ["2 active 0"])
        Self.send(fd, "GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        let second = try #require(readResponse(fd, pending: &pending))
        #expect(second.body.hasPrefix("saw GET /two"))
        #expect(!second.head.lowercased().contains("connection: close"))
        #expect(a.receivedHeads.count == 1)
        #expect(b.receivedHeads.count == 1)
    }

    @Test func droppedListenerLetsIdleConnectionsLingerAndAnswersEveryRequestWithClose() throws {
        let a = TinyOrigin()
        defer { a.stop() }
        let proxy = try HTTPTestProxy(origin: a.port) { $0.timeouts.httpKeepAlive = 300 }
        defer { proxy.stop() }
        var pending: [UInt8] = []
        // Two idle keep-alive connections: one will send a request after the listener is gone,
        // the other nothing.
        let idle = Self.connect(proxy.port)
        defer { close(idle) }
        Self.send(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(readResponse(idle, pending: &pending) != nil)
        let silent = Self.connect(proxy.port)
        defer { close(silent) }
        var silentPending: [UInt8] = []
        Self.send(silent, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(readResponse(silent, pending: &silentPending) != nil)
        // A third connection is mid-request (head incomplete) when the listener goes away.
        let busy = Self.connect(proxy.port)
        defer { close(busy) }
        Self.send(busy, "GET /late HTTP/1.1\r\nHost: x\r\n")
        usleep(100_000)
        let other = GenerationLifetimeTests.listeningSocket()
        close(other.fd)
        let dropped = try proxy.reload(origin: a.port, port: other.port)
        #expect(dropped.count == 1)
        // The busy one is answered, with Connection: close, then closed.
        Self.send(busy, "\r\n")
        var busyPending: [UInt8] = []
        let answer = try #require(readResponse(busy, pending: &busyPending))
        #expect(answer.body.hasPrefix("saw GET /late"))
        #expect(answer.head.lowercased().contains("connection: close"))
        var byte: UInt8 = 0
        #expect(recv(busy, &byte, 1, 0) == 0)
        // A request on an idle connection (it may have been on its way) is still answered, with
        // Connection: close, by the generation that served the connection.
        Self.send(idle, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        let late = try #require(readResponse(idle, pending: &pending))
        #expect(late.body.hasPrefix("saw GET /after"))
        #expect(late.head.lowercased().contains("connection: close"))
        #expect(recv(idle, &byte, 1, 0) == 0)
        // A connection that stays idle is closed past its keep-alive timeout.
        #expect(recv(silent, &byte, 1, 0) == 0)
    }

    @Test func badRequestGets400AndClose() throws {
        let origin = TinyOrigin()
        defer { origin.stop() }
        let proxy = try HTTPTestProxy(origin: origin.port)
        defer { proxy.stop() }
        let fd = Self.connect(proxy.port)
        defer { close(fd) }
        Self.send(fd, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
        var pending: [UInt8] = []
        let response = try #require(readResponse(fd, pending: &pending))
        #expect(response.head.hasPrefix("HTTP/1.1 400 Bad request\r\n"))
        #expect(origin.connections == 0)
    }

    @Test func noServerGives503() throws {
        let closed = GenerationLifetimeTests.listeningSocket()
        close(closed.fd)
        let proxy = try HTTPTestProxy(origin: closed.port) { $0.retries = 1; $0.timeouts.connect = 100 }
        defer { proxy.stop() }
        let fd = Self.connect(proxy.port)
        defer { close(fd) }
        Self.send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        var pending: [UInt8] = []
        let response = try #require(readResponse(fd, pending: &pending))
        #expect(response.head.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
    }
}
