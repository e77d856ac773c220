import Foundation
import Glibc
import StrataTestSupport
import Testing

/// The built binary proxying TCP over real loopback sockets.
@Suite(.serialized) struct TCPProxyTests {
    static func config(listen port: UInt16, servers: [String], extra: String = "", global: String = "") -> String {
        """
        global
            stats socket @ADMIN@ level admin
            log stdout format raw local0
        \(global)
        defaults
            mode tcp
            timeout connect 2s
            timeout client 30s
            timeout server 30s
            log global
            option tcplog

        listen app
            bind 127.0.0.1:\(port)
        \(extra)
        \(servers.map { "    " + $0 }.joined(separator: "\n"))
        """
    }

    @Test func dataIntegrityBothWaysSeveralMiB() throws {
        let echo = try TestBackend(.echo)
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(listen: port, servers: ["server s1 127.0.0.1:\(echo.port)"]))
        #expect(strata.waitForAdmin())

        // Client to server and back: 8 MiB written while the echo is read concurrently.
        let size = 8 << 20
        let payload = (0..<size).map { TestBackend.pattern($0 * 7) }
        let fd = try #require(TestSocket.connect(port))
        defer { close(fd) }
        let writer = Thread {
            _ = TestSocket.sendAll(fd, payload)
            shutdown(fd, Int32(SHUT_WR))
        }
        writer.start()
        let echoed = TestSocket.readToEnd(fd)
        #expect(echoed.count == size)
        #expect(echoed == payload)

        // Server to client: a 16 MiB stream arrives intact (the splice path).
        let stream = try TestBackend(.stream(bytes: 16 << 20))
        let port2 = TestSocket.freePort()
        try strata.write(Self.config(listen: port2, servers: ["server s1 127.0.0.1:\(stream.port)"]))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        let fd2 = try #require(TestSocket.connect(port2))
        defer { close(fd2) }
        let received = TestSocket.readToEnd(fd2)
        #expect(received.count == 16 << 20)
        #expect(received.enumerated().allSatisfy { $0.element == TestBackend.pattern($0.offset) })
    }

    @Test func halfCloseIsPropagatedBothWays() throws {
        let counter = try TestBackend(.countUntilEOF)
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(listen: port, servers: ["server s1 127.0.0.1:\(counter.port)"]))
        #expect(strata.waitForAdmin())
        let fd = try #require(TestSocket.connect(port))
        defer { close(fd) }
        #expect(TestSocket.sendAll(fd, [UInt8](repeating: 65, count: 300_000)))
        // Our FIN must reach the server as a FIN: only then does it answer with the count.
        shutdown(fd, Int32(SHUT_WR))
        #expect(TestSocket.readLine(fd) == "300000")
        // And the server's FIN reaches us.
        #expect(TestSocket.readToEnd(fd).isEmpty)
        _ = strata
    }

    /// Opens `count` connections one after another, each reading the server's name.
    static func names(_ port: UInt16, count: Int) -> [String] {
        (0..<count).compactMap { _ in
            guard let fd = TestSocket.connect(port) else { return nil }
            defer { close(fd) }
            return TestSocket.readLine(fd)
        }
    }

    @Test(arguments: ["roundrobin", "static-rr"])
    func weightedRoundRobinFollowsWeights(algorithm: String) throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(listen: port, servers: [
            "server a 127.0.0.1:\(a.port) weight 1", "server b 127.0.0.1:\(b.port) weight 3",
        ], extra: "    balance \(algorithm)", global: "    nbthread 1"))
        // One loop: its exact sequence is the algorithm's (each loop balances on its own, so with
        // several the sequences interleave; their sum keeps the weights, see the loop tests).
        #expect(strata.waitForAdmin())
        let names = Self.names(port, count: 40)
        #expect(names.filter { $0 == "a" }.count == 10)
        #expect(names.filter { $0 == "b" }.count == 30)
        // Spread, not bursts: never more than three b in a row.
        #expect(!names.joined().contains("bbbb"))
        _ = strata
    }

    @Test func leastconnPrefersTheLeastLoadedServer() throws {
        let a = try TestBackend(.nameThenEcho("a")), b = try TestBackend(.nameThenEcho("b"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(listen: port, servers: [
            "server a 127.0.0.1:\(a.port)", "server b 127.0.0.1:\(b.port)",
        ], extra: "    balance leastconn"))
        #expect(strata.waitForAdmin())
        // Hold three connections on a: opened while b is loaded by nothing, leastconn alternates.
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        var seen: [String] = []
        for _ in 0..<4 {
            let fd = try #require(TestSocket.connect(port))
            held.append(fd)
            seen.append(TestSocket.readLine(fd) ?? "?")
        }
        #expect(seen.filter { $0 == "a" }.count == 2)
        #expect(seen.filter { $0 == "b" }.count == 2)
        // Close both b connections: the next two go to b, the least loaded.
        for (i, name) in seen.enumerated() where name == "b" { close(held[i]); held[i] = -1 }
        held.removeAll { $0 == -1 }
        usleep(200_000)
        for _ in 0..<2 {
            let fd = try #require(TestSocket.connect(port))
            held.append(fd)
            #expect(TestSocket.readLine(fd) == "b")
        }
        _ = strata
    }

    @Test func firstFillsServersInOrder() throws {
        let a = try TestBackend(.nameThenEcho("a")), b = try TestBackend(.nameThenEcho("b"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(listen: port, servers: [
            "server a 127.0.0.1:\(a.port) maxconn 2", "server b 127.0.0.1:\(b.port) maxconn 2",
        ], extra: "    balance first"))
        #expect(strata.waitForAdmin())
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        var seen: [String] = []
        for _ in 0..<3 {
            let fd = try #require(TestSocket.connect(port))
            held.append(fd)
            seen.append(TestSocket.readLine(fd) ?? "?")
        }
        #expect(seen == ["a", "a", "b"])
        _ = strata
    }

    @Test func sourceHashKeepsAClientOnOneServer() throws {
        let backends = try (0..<4).map { try TestBackend(.name("s\($0)")) }
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(listen: port, servers: backends.enumerated().map {
            "server s\($0.offset) 127.0.0.1:\($0.element.port)"
        }, extra: "    balance source"))
        #expect(strata.waitForAdmin())
        let names = Self.names(port, count: 12)
        #expect(names.count == 12)
        #expect(Set(names).count == 1)
        _ = strata
    }

    @Test func backupServesOnlyWhenNoActiveServerIsUsable() throws {
        let a = try TestBackend(.name("a")), backup = try TestBackend(.name("backup"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(listen: port, servers: [
            "server a 127.0.0.1:\(a.port)", "server bk 127.0.0.1:\(backup.port) backup",
        ]))
        #expect(strata.waitForAdmin())
        #expect(Set(Self.names(port, count: 5)) == ["a"])
        try strata.write(Self.config(listen: port, servers: [
            "server a 127.0.0.1:\(a.port) disabled", "server bk 127.0.0.1:\(backup.port) backup",
        ]))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(Set(Self.names(port, count: 5)) == ["backup"])
    }

    @Test func connectRetriesAgainstAClosedPortThenGivesUp() throws {
        let closed = TestSocket.freePort()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(listen: port, servers: ["server dead 127.0.0.1:\(closed)"],
                                                           extra: "    retries 2\n    timeout connect 100ms"))
        #expect(strata.waitForAdmin())
        let fd = try #require(TestSocket.connect(port))
        defer { close(fd) }
        // strata closes the client after the first attempt and two retries.
        #expect(TestSocket.readToEnd(fd).isEmpty)
        #expect(strata.waitForOutput(" SC "))
        let line = try #require(strata.output.first { $0.contains(" SC ") })
        // %ac/%fc/%bc/%sc/%rc: two retries, no redispatch.
        #expect(line.contains("app/dead"))
        #expect(line.split(separator: " ").contains { $0.hasSuffix("/2") && $0.split(separator: "/").count == 5 })
    }

    @Test func redispatchMovesTheSessionToAnotherServer() throws {
        let closed = TestSocket.freePort()
        let alive = try TestBackend(.name("alive"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(listen: port, servers: [
            "server dead 127.0.0.1:\(closed)", "server alive 127.0.0.1:\(alive.port)",
        ], extra: "    retries 1\n    option redispatch\n    timeout connect 200ms"))
        #expect(strata.waitForAdmin())
        // Round robin sends the first session to "dead"; its retry is redispatched to "alive".
        let fd = try #require(TestSocket.connect(port))
        #expect(TestSocket.readLine(fd) == "alive")
        close(fd)
        // The tcplog line is written when the session ends.
        #expect(strata.waitForOutput("app/alive"))
        let line = try #require(strata.output.first { $0.contains("app/alive") })
        #expect(line.contains("/+1 "))
    }

    @Test func serverMaxconnQueuesThenServesInOrder() throws {
        let a = try TestBackend(.nameThenEcho("a"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(listen: port, servers: ["server a 127.0.0.1:\(a.port) maxconn 1"],
                                                           extra: "    timeout queue 5s"))
        #expect(strata.waitForAdmin())
        let first = try #require(TestSocket.connect(port))
        #expect(TestSocket.readLine(first) == "a")
        let second = try #require(TestSocket.connect(port, timeout: 0.5))
        defer { close(second) }
        // Queued: nothing arrives while the first session holds the only slot.
        var byte: UInt8 = 0
        #expect(recv(second, &byte, 1, 0) < 0)
        close(first)
        TestSocket.setTimeout(second, seconds: 10)
        #expect(TestSocket.readLine(second) == "a")
        #expect(a.connections == 2)
        _ = strata
    }

    @Test func queueTimeoutClosesTheWaitingSession() throws {
        let a = try TestBackend(.nameThenEcho("a"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(listen: port, servers: ["server a 127.0.0.1:\(a.port) maxconn 1"],
                                                           extra: "    timeout queue 300ms"))
        #expect(strata.waitForAdmin())
        let first = try #require(TestSocket.connect(port))
        defer { close(first) }
        #expect(TestSocket.readLine(first) == "a")
        let second = try #require(TestSocket.connect(port))
        defer { close(second) }
        #expect(TestSocket.readToEnd(second).isEmpty)
        #expect(strata.waitForOutput(" sQ "))
    }

    @Test func fdExhaustionPausesAcceptWithoutSpinningAndRecovers() throws {
        let a = try TestBackend(.nameThenEcho("a"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(listen: port, servers: ["server a 127.0.0.1:\(a.port)"]),
                                       ulimitFiles: 40)
        #expect(strata.waitForAdmin())
        // Each session needs two fds: 40 connections exhaust a limit of 40.
        var held: [Int32] = []
        for _ in 0..<40 {
            if let fd = TestSocket.connect(port, timeout: 0.3) { held.append(fd) }
        }
        usleep(300_000)
        let cpuBefore = try cpuSeconds(strata.pid)
        sleep(1)
        let cpuAfter = try cpuSeconds(strata.pid)
        // Paused, not polling: well under half a core while connections wait in the backlog.
        #expect(cpuAfter - cpuBefore < 0.5)
        #expect(strata.process.isRunning)
        for fd in held { close(fd) }
        // Freed fds resume accepting.
        let fd = try #require(TestSocket.connect(port))
        defer { close(fd) }
        #expect(TestSocket.readLine(fd) == "a")
    }

    func cpuSeconds(_ pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat.split(separator: ")").last!.split(separator: " ")
        // utime and stime are fields 14 and 15; after "pid (comm)" they are at 11 and 12.
        let ticks = Double(fields[11])! + Double(fields[12])!
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// A server line without a port is reached on the port the client connected to, by the one
    /// connector both modes use (HAProxy's port mapping): strata listens on 127.0.0.2 and the
    /// server, on 127.0.0.1, on the same port.
    @Test(arguments: ["tcp", "http"]) func aServerWithoutAPortIsReachedOnTheClientsDestinationPort(mode: String) throws {
        let port = TestSocket.freePort()
        let answer = mode == "tcp" ? "mapped" : "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nmapped"
        let server = try TestBackend(.name(answer), port: port)
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode \(mode)
                timeout connect 2s
                timeout client 30s
                timeout server 30s
            listen app
                bind 127.0.0.2:\(port)
                server s1 127.0.0.1
            """)
        #expect(strata.waitForAdmin())
        let fd = try #require(Self.connect(to: "127.0.0.2", port))
        defer { close(fd) }
        if mode == "http" { #expect(TestSocket.sendAll(fd, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) }
        let received = String(decoding: TestSocket.readToEnd(fd), as: UTF8.self)
        #expect(received.hasSuffix("mapped\n"))
        #expect(server.connections == 1)
    }

    /// Connects to `address:port` (another loopback address than TestSocket's).
    static func connect(to address: String, _ port: UInt16) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr(address)
        addr.sin_port = port.bigEndian
        TestSocket.setTimeout(fd, seconds: 10)
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if r != 0 { close(fd); return nil }
        return fd
    }
}
