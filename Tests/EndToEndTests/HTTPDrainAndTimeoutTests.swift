import Foundation
import Glibc
import StrataTestSupport
import Synchronization
import Testing

/// Keep-alive clients through a soft stop and through a reload that drops their frontend (no
/// request lost), and the timeouts: which side's clock runs, reading before declaring one, and
/// redispatch without a turn-around delay.
@Suite(.serialized) struct HTTPDrainAndTimeoutTests {
    /// `count` keep-alive clients, each sending requests back to back on one connection until an
    /// answer says `Connection: close` (then it checks the close) or `stop()`. A request sent that
    /// gets no answer is a failure.
    final class KeepAliveClients: @unchecked Sendable {
        private let counts = Guarded<(answered: Int, failed: Int, closedByAnswer: Int, finished: Int, ready: Int)>((0, 0, 0, 0, 0))
        private let stopping = Atomic<Bool>(false)
        let count: Int

        init(port: UInt16, count: Int) {
            self.count = count
            for _ in 0..<count {
                Thread { [self] in run(port) }.start()
            }
        }

        private func run(_ port: UInt16) {
            defer { counts.withLock { $0.finished += 1 } }
            guard let client = TestHTTPClient(port: port, timeout: 15) else {
                counts.withLock { $0.failed += 1 }
                return
            }
            var answeredOnce = false
            while !stopping.load(ordering: .relaxed) {
                guard let r = client.get("/ka"), r.status == 200 else {
                    counts.withLock { $0.failed += 1 }
                    return
                }
                counts.withLock {
                    if !answeredOnce { $0.ready += 1 }
                    $0.answered += 1
                }
                answeredOnce = true
                if r.head.lowercased().contains("connection: close") {
                    counts.withLock { $0.closedByAnswer += 1 }
                    return
                }
            }
        }

        var answered: Int { counts.withLock { $0.answered } }
        /// Clients connected with one answer at least: on a loaded machine the last threads may
        /// start after the first clients answered hundreds of times.
        var ready: Int { counts.withLock { $0.ready } }

        /// Waits until every client is done (or `seconds`), stops the rest, returns the counts.
        func finish(seconds: Double) -> (answered: Int, failed: Int, closedByAnswer: Int) {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline, counts.withLock({ $0.finished }) < count { usleep(20_000) }
            stopping.store(true, ordering: .relaxed)
            while counts.withLock({ $0.finished }) < count { usleep(20_000) }
            return counts.withLock { ($0.answered, $0.failed, $0.closedByAnswer) }
        }
    }

    static func drainConfig(port: UInt16, other: UInt16, origin: UInt16, withWeb: Bool = true) -> String {
        """
        global
            stats socket @ADMIN@ level admin
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
            timeout http-keep-alive 2s
        \(withWeb ? "frontend web\n    bind 127.0.0.1:\(port)\n    default_backend app" : "")
        frontend other
            bind 127.0.0.1:\(other)
            default_backend app
        backend app
            server o 127.0.0.1:\(origin)
        """
    }

    @Test func aSoftStopAnswersEveryKeepAliveRequest() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort(), other = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.drainConfig(port: port, other: other, origin: origin.port))
        #expect(strata.waitForAdmin())
        let clients = KeepAliveClients(port: port, count: 50)
        let started = Date().addingTimeInterval(20)
        while (clients.answered < 200 || clients.ready < 50) && Date() < started { usleep(10_000) }
        strata.signal(SIGUSR1)
        let result = clients.finish(seconds: 15)
        #expect(result.failed == 0, "\(result)")
        #expect(result.closedByAnswer == 50, "\(result)")
        #expect(strata.waitForExit(seconds: 15) == 0)
    }

    @Test func aReloadThatDropsTheFrontendAnswersEveryKeepAliveRequest() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort(), other = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.drainConfig(port: port, other: other, origin: origin.port))
        #expect(strata.waitForAdmin())
        let clients = KeepAliveClients(port: port, count: 50)
        let started = Date().addingTimeInterval(20)
        while (clients.answered < 200 || clients.ready < 50) && Date() < started { usleep(10_000) }
        try strata.write(Self.drainConfig(port: port, other: other, origin: origin.port, withWeb: false))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        let result = clients.finish(seconds: 15)
        #expect(result.failed == 0, "\(result)")
        #expect(result.closedByAnswer == 50, "\(result)")
        // The frontend's connections are gone once idle past their keep-alive timeout: the
        // generation that served them drains and retires.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, (try? strata.admin("show generations"))?.contains("draining") == true { usleep(50_000) }
        #expect(try !strata.admin("show generations").contains("draining"))
    }

    /// One connection: reads a request head, then writes a large answer until the write fails,
    /// and notes when it failed (strata closed the connection).
    final class BulkAnswerServer: @unchecked Sendable {
        let port: UInt16
        private let fd: Int32
        private let failedAt = Guarded<Date?>(nil)

        init() throws {
            (fd, port) = try TestSocket.listen(what: "bulk server")
            let fd = self.fd
            TestSocket.acceptLoop(fd, timeout: 60) { [self] c in
                Thread { [self] in
                    defer { close(c) }
                    let reader = HTTPTestReader(fd: c)
                    guard reader.readHead() != nil else { return }
                    var ok = TestSocket.sendAll(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
                    let chunk = [UInt8](repeating: 0x61, count: 65536)
                    while ok { ok = TestSocket.sendAll(c, chunk) }
                    failedAt.withLock { $0 = Date() }
                }.start()
                return false
            }
        }

        deinit { close(fd) }

        var cutAt: Date? { failedAt.withLock { $0 } }
    }

    static func timeoutConfig(port: UInt16, server: UInt16, client: String, serverTimeout: String) -> String {
        """
        global
            stats socket @ADMIN@ level admin
        defaults
            mode http
            timeout connect 2s
            timeout client \(client)
            timeout server \(serverTimeout)
        listen web
            bind 127.0.0.1:\(port)
            server s 127.0.0.1:\(server)
        """
    }

    @Test func aClientThatStopsReadingIsCutByTimeoutClient() throws {
        let server = try BulkAnswerServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.timeoutConfig(port: port, server: server.port, client: "1s", serverTimeout: "60s"))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        let start = Date()
        client.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        // The client reads nothing: strata's buffer and the sockets fill, then `timeout client`
        // ends it (not the server's 60 s).
        while Date().timeIntervalSince(start) < 20, server.cutAt == nil { usleep(50_000) }
        let cut = try #require(server.cutAt)
        #expect(cut.timeIntervalSince(start) < 15)
        _ = strata
    }

    @Test func aServerHeldBackByASlowClientIsNotCutByTimeoutServer() throws {
        let server = try BulkAnswerServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.timeoutConfig(port: port, server: server.port, client: "60s", serverTimeout: "1s"))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        client.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(client.readHead() != nil)
        // The server cannot send because the client does not read: it is not late. Three times
        // its timeout later the connection is still whole.
        sleep(3)
        #expect(server.cutAt == nil)
        #expect(client.read(count: 65536)?.count == 65536)
        _ = strata
    }

    @Test func answersAlreadyInTheSocketsAreReadAfterTheProcessWasStopped() throws {
        let server = try RecordingServer { _, _, _ in .delayThenSend(0.3, RecordingServer.ok) }
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.timeoutConfig(port: port, server: server.port, client: "30s", serverTimeout: "1s"))
        #expect(strata.waitForAdmin())
        let clients = (0..<10).compactMap { _ in TestHTTPClient(port: port) }
        #expect(clients.count == 10)
        for c in clients { c.send("GET /s HTTP/1.1\r\nHost: a\r\n\r\n") }
        // The requests reach the server; strata is stopped while the answers arrive and for longer
        // than `timeout server`.
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, server.connectionCount < 10 { usleep(10_000) }
        strata.signal(SIGSTOP)
        usleep(2_500_000)
        strata.signal(SIGCONT)
        for c in clients { #expect(c.readResponse()?.status == 200) }
    }

    @Test func aRefusingServerIsRedispatchedAtOnce() throws {
        let server = try RecordingServer()
        let port = TestSocket.freePort(), refused = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
                retries 3
                option redispatch
            listen web
                bind 127.0.0.1:\(port)
                balance roundrobin
                server dead 127.0.0.1:\(refused)
                server live 127.0.0.1:\(server.port)
            """)
        #expect(strata.waitForAdmin())
        // Half the requests are first sent to the server that refuses: HAProxy redispatches them
        // at once (a balanced choice among several servers), with no turn-around delay.
        var slowest = 0.0
        for i in 0..<10 {
            let client = try #require(TestHTTPClient(port: port))
            let start = Date()
            #expect(client.get("/r\(i)")?.status == 200)
            slowest = max(slowest, Date().timeIntervalSince(start))
        }
        #expect(slowest < 0.9, "a retry waited for the turn-around delay (\(slowest) s)")
        _ = strata
    }
}
