import ConfigModel
import Dispatch
import Foundation
import Glibc
import Loader
import StrataTestSupport
import Synchronization
import Testing

@testable import Engine

/// A small HTTP/1.1 origin for in-process tests: answers each request with `200` and a body naming
/// the request, keeps connections alive, and records the heads it received.
final class TinyOrigin: @unchecked Sendable {
    let fd: Int32
    let port: UInt16
    private let heads = Guarded<[String]>([])
    private let accepted = Guarded<Int>(0)
    private let stopped = Guarded(false)

    init() throws {
        (fd, port) = try TestSocket.listen(what: "origin")
        TestSocket.acceptLoop(fd, timeout: 30) { [self] c in
            accepted.withLock { $0 += 1 }
            Thread { [self] in self.serve(c) }.start()
            return true
        }
    }

    var receivedHeads: [String] { heads.withLock { $0 } }
    var connections: Int { accepted.withLock { $0 } }

    /// Closes the listening socket, once (a second close could take another test's descriptor).
    func stop() {
        guard stopped.withLock({ s -> Bool in defer { s = true }; return !s }) else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    private func serve(_ c: Int32) {
        defer { close(c) }
        let reader = HTTPTestReader(fd: c)
        // One head, then Content-Length body bytes.
        while let head = reader.readHead() {
            heads.withLock { $0.append(head) }
            let lines = head.split(separator: "\r\n").map(String.init)
            let length = HTTPTestReader.fields(lines)["content-length"].flatMap { Int($0) } ?? 0
            guard reader.read(count: length) != nil else { return }
            let body = "saw \(lines.first ?? "") body \(length)\n"
            let response = "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nX-Origin: tiny\r\n\r\n\(body)"
            guard TestSocket.sendAll(c, response) else { return }
        }
    }
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
        port = TestSocket.freePort()
        keys = [ListenerKey(endpoint: SocketEndpoint(address: .v4(0x7f00_0001), port: port), v6only: false,
                            interface: nil, backlog: ListenerKey.defaultBacklog, reusePort: true)]
        let generation = try makeGeneration(origin: origin, port: port, configure: configure)
        engine.activate(generation, listenerFDs: try cache.acquire(keys).get())
        let engine = self.engine
        let stopped = self.stopped
        thread = Thread {
            engine.run()
            stopped.signal()
        }
        thread?.start()
    }

    /// Signalled once `run` returned: every data loop has stopped and been joined.
    private let stopped = DispatchSemaphore(value: 0)

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
        return try engine.makeGeneration(ConfigGeneration(id: nextID, hash: "test\(nextID)", config: config, files: []))
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
        // The listening sockets close only once no data loop watches them: a loop still running
        // would hand libev a closed fd (epoll_ctl EBADF, an assertion), or another test's socket
        // that took the same number.
        _ = stopped.wait(timeout: .now() + 10)
        cache.release(keys)
    }
}

@Suite(.serialized) struct HTTPSessionTests {
    @Test func keepAliveRequestsShareOneServerConnection() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let proxy = try HTTPTestProxy(origin: origin.port) { $0.http.forwardFor = ForwardedHeader(header: "X-Forwarded-For") }
        defer { proxy.stop() }
        let fd = try #require(TestSocket.connect(proxy.port))
        defer { close(fd) }
        let reader = HTTPTestReader(fd: fd)
        for i in 0..<3 {
            TestSocket.sendAll(fd, "GET /item/\(i) HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive\r\n\r\n")
            let response = try #require(reader.readResponse())
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
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let proxy = try HTTPTestProxy(origin: origin.port)
        defer { proxy.stop() }
        let fd = try #require(TestSocket.connect(proxy.port))
        defer { close(fd) }
        TestSocket.sendAll(fd, (0..<5).map { "GET /p\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
        let reader = HTTPTestReader(fd: fd)
        for i in 0..<5 {
            let response = try #require(reader.readResponse())
            #expect(response.body == "saw GET /p\(i) HTTP/1.1 body 0\n")
        }
    }

    @Test func requestBodyIsForwarded() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let proxy = try HTTPTestProxy(origin: origin.port)
        defer { proxy.stop() }
        let fd = try #require(TestSocket.connect(proxy.port))
        defer { close(fd) }
        let body = String(repeating: "x", count: 100_000)
        TestSocket.sendAll(fd, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let reader = HTTPTestReader(fd: fd)
        let response = try #require(reader.readResponse())
        #expect(response.body == "saw POST /upload HTTP/1.1 body 100000\n")
    }

    @Test func keepAliveConnectionFollowsTheNewGenerationAndStaysOpen() throws {
        let a = try TinyOrigin(), b = try TinyOrigin()
        defer { a.stop(); b.stop() }
        let proxy = try HTTPTestProxy(origin: a.port)
        defer { proxy.stop() }
        let fd = try #require(TestSocket.connect(proxy.port))
        defer { close(fd) }
        let reader = HTTPTestReader(fd: fd)
        TestSocket.sendAll(fd, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try #require(reader.readResponse()).body.hasPrefix("saw GET /one"))
        #expect(a.receivedHeads.count == 1)
        try proxy.reload(origin: b.port)
        // Idle between requests: the connection held no generation, so 1 retired at once.
        #expect(proxy.generations() == ["2 active 0"])
        TestSocket.sendAll(fd, "GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        let second = try #require(reader.readResponse())
        #expect(second.body.hasPrefix("saw GET /two"))
        #expect(!second.head.lowercased().contains("connection: close"))
        #expect(a.receivedHeads.count == 1)
        #expect(b.receivedHeads.count == 1)
    }

    @Test func droppedListenerLetsIdleConnectionsLingerAndAnswersEveryRequestWithClose() throws {
        let a = try TinyOrigin()
        defer { a.stop() }
        let proxy = try HTTPTestProxy(origin: a.port) { $0.timeouts.httpKeepAlive = 300 }
        defer { proxy.stop() }
        // Two idle keep-alive connections: one will send a request after the listener is gone,
        // the other nothing.
        let idle = try #require(TestSocket.connect(proxy.port))
        defer { close(idle) }
        let idleReader = HTTPTestReader(fd: idle)
        TestSocket.sendAll(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(idleReader.readResponse() != nil)
        let silent = try #require(TestSocket.connect(proxy.port))
        defer { close(silent) }
        let silentReader = HTTPTestReader(fd: silent)
        TestSocket.sendAll(silent, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(silentReader.readResponse() != nil)
        // A third connection is mid-request (head incomplete) when the listener goes away.
        let busy = try #require(TestSocket.connect(proxy.port))
        defer { close(busy) }
        TestSocket.sendAll(busy, "GET /late HTTP/1.1\r\nHost: x\r\n")
        usleep(100_000)
        let dropped = try proxy.reload(origin: a.port, port: TestSocket.freePort())
        #expect(dropped.count == 1)
        // The busy one is answered, with Connection: close, then closed.
        TestSocket.sendAll(busy, "\r\n")
        let busyReader = HTTPTestReader(fd: busy)
        let answer = try #require(busyReader.readResponse())
        #expect(answer.body.hasPrefix("saw GET /late"))
        #expect(answer.head.lowercased().contains("connection: close"))
        var byte: UInt8 = 0
        #expect(recv(busy, &byte, 1, 0) == 0)
        // A request on an idle connection (it may have been on its way) is still answered, with
        // Connection: close, by the generation that served the connection.
        TestSocket.sendAll(idle, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        let late = try #require(idleReader.readResponse())
        #expect(late.body.hasPrefix("saw GET /after"))
        #expect(late.head.lowercased().contains("connection: close"))
        #expect(recv(idle, &byte, 1, 0) == 0)
        // A connection that stays idle is closed past its keep-alive timeout.
        #expect(recv(silent, &byte, 1, 0) == 0)
    }

    @Test func badRequestGets400AndClose() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let proxy = try HTTPTestProxy(origin: origin.port)
        defer { proxy.stop() }
        let fd = try #require(TestSocket.connect(proxy.port))
        defer { close(fd) }
        TestSocket.sendAll(fd, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
        let reader = HTTPTestReader(fd: fd)
        let response = try #require(reader.readResponse())
        #expect(response.head.hasPrefix("HTTP/1.1 400 Bad request\r\n"))
        #expect(origin.connections == 0)
    }

    @Test func noServerGives503() throws {
        let proxy = try HTTPTestProxy(origin: TestSocket.freePort()) { $0.retries = 1; $0.timeouts.connect = 100 }
        defer { proxy.stop() }
        let fd = try #require(TestSocket.connect(proxy.port))
        defer { close(fd) }
        TestSocket.sendAll(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let reader = HTTPTestReader(fd: fd)
        let response = try #require(reader.readResponse())
        #expect(response.head.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
    }
}
