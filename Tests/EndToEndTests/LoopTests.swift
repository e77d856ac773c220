import Foundation
import Glibc
import StrataTestSupport
import Synchronization
import Testing

/// Several data loops (`nbthread`) on this 2-core machine: every loop accepts, reloads reach every
/// loop without failing a request, global limits and counters hold across loops, a failed bind
/// rolls back every loop's socket, and pause/resume and -sf act on all of them.
@Suite(.serialized) struct LoopTests {
    static func tcpConfig(port: UInt16, server: UInt16, threads: Int, serverOptions: String = "", extraBind: String = "") -> String {
        """
        global
            stats socket @ADMIN@ level admin
            nbthread \(threads)
        defaults
            mode tcp
            timeout connect 2s
            timeout client 30s
            timeout server 30s
            timeout queue 20s
        listen app
            bind 127.0.0.1:\(port)
        \(extraBind)
            server s1 127.0.0.1:\(server) \(serverOptions)
        """
    }

    static func fdCount(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    @Test(arguments: [2, 4])
    func everyLoopAcceptsAndIsNamed(threads: Int) throws {
        let echo = try TestBackend(.nameThenEcho("e"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.tcpConfig(port: port, server: echo.port, threads: threads))
        #expect(strata.waitForAdmin())
        func names() -> [String] {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(strata.pid)/task")) ?? []
            return tasks.compactMap {
                try? String(contentsOfFile: "/proc/\(strata.pid)/task/\($0)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        // Each loop names its thread as it starts.
        #expect(try eventually { Set((1...threads).map { "strata-loop-\($0)" }).isSubset(of: names()) }, "\(names())")
        #expect(try strata.admin("show info").contains("Nbthread: \(threads)\n"))
        // Forty connections held open: the kernel spreads them over the loops' sockets.
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        for _ in 0..<40 {
            let fd = try #require(TestSocket.connect(port))
            #expect(TestSocket.readLine(fd) == "e")
            held.append(fd)
        }
        let threadsAnswer = try strata.admin("show threads")
        let lines = threadsAnswer.split(separator: "\n")
        #expect(lines.count == threads)
        let conns = lines.compactMap { line in line.split(separator: " ").first { $0.hasPrefix("conns=") }.flatMap { Int($0.dropFirst(6)) } }
        #expect(conns.count == threads && conns.reduce(0, +) == 40, "\(threadsAnswer)")
        #expect(conns.allSatisfy { $0 > 0 }, "a loop accepted nothing: \(threadsAnswer)")
    }

    @Test func reloadsUnderKeepAliveLoadFailNoRequestOnEveryLoop() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort(), other = TestSocket.freePort()
        let config = HTTPDrainAndTimeoutTests.drainConfig(port: port, other: other, origin: origin.port)
            .replacingOccurrences(of: "global\n", with: "global\n    nbthread 2\n")
        let strata = try StrataProcess(config: config)
        #expect(strata.waitForAdmin())
        let clients = HTTPDrainAndTimeoutTests.KeepAliveClients(port: port, count: 20)
        while clients.answered < 100 { usleep(10_000) }
        for _ in 0..<20 {
            #expect(try strata.admin("reload").hasPrefix("Success=1"))
            usleep(20_000)
        }
        let before = clients.answered
        while clients.answered < before + 100 { usleep(10_000) }
        let result = clients.finish(seconds: 0)
        #expect(result.failed == 0, "\(result)")
        #expect(result.closedByAnswer == 0, "a connection was closed by a reload: \(result)")
        // Every replaced generation drained and retired on both loops.
        #expect(try eventually(seconds: 10) { try strata.generations().count == 1 })
    }

    /// A server whose connections last a moment, counting how many it holds at once.
    final class CountingServer: @unchecked Sendable {
        let port: UInt16
        private let fd: Int32
        private let counts = Guarded<(now: Int, most: Int, served: Int)>((0, 0, 0))

        init(hold seconds: Double) throws {
            (fd, port) = try TestSocket.listen(what: "counting server")
            TestSocket.acceptLoop(fd, timeout: 30) { [self] c in
                counts.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
                Thread { [self] in
                    usleep(UInt32(seconds * 1_000_000))
                    _ = TestSocket.sendAll(c, "done\n")
                    counts.withLock { $0.now -= 1; $0.served += 1 }
                    close(c)
                }.start()
                return true
            }
        }

        deinit { close(fd) }
        var most: Int { counts.withLock { $0.most } }
        var served: Int { counts.withLock { $0.served } }
    }

    @Test func serverMaxconnHoldsAcrossLoops() throws {
        let server = try CountingServer(hold: 0.3)
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.tcpConfig(port: port, server: server.port, threads: 4, serverOptions: "maxconn 5"))
        #expect(strata.waitForAdmin())
        let done = Guarded(0)
        for _ in 0..<20 {
            Thread {
                if let fd = TestSocket.connect(port, timeout: 20) {
                    if TestSocket.readLine(fd) == "done" { done.withLock { $0 += 1 } }
                    close(fd)
                }
            }.start()
        }
        #expect(try eventually(seconds: 20) { done.withLock { $0 } == 20 })
        // Every loop queued what it could not send: never more than 5 at the server at once.
        #expect(server.most <= 5, "\(server.most) connections at once")
        #expect(server.most == 5)
        #expect(server.served == 20)
    }

    @Test func countersAddUpOverEveryLoop() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
                nbthread 4
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            listen web
                bind 127.0.0.1:\(port)
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin())
        for i in 0..<200 {
            let client = try #require(TestHTTPClient(port: port))
            #expect(client.get("/c\(i)")?.status == 200)
        }
        func field(_ name: String) throws -> Int? {
            let lines = try strata.admin("show stat").split(separator: "\n")
            let header = lines[0].dropFirst(2).split(separator: ",", omittingEmptySubsequences: false)
            guard let i = header.firstIndex(of: Substring(name)),
                  let row = lines.first(where: { $0.hasPrefix("web,FRONTEND,") }) else { return nil }
            return Int(row.split(separator: ",", omittingEmptySubsequences: false)[i])
        }
        #expect(try eventually { try field("req_tot") == 200 })
        #expect(try field("stot") == 200)
        #expect(try field("hrsp_2xx") == 200)
        #expect(origin.heads.count == 200)
    }

    @Test func aFailedBindRollsBackEveryLoopsSockets() throws {
        let echo = try TestBackend(.nameThenEcho("e"))
        let port = TestSocket.freePort(), fresh = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.tcpConfig(port: port, server: echo.port, threads: 4))
        #expect(strata.waitForAdmin())
        let taken = try TestSocket.listen(what: "the taken port")
        defer { close(taken.fd) }
        let before = Self.fdCount(strata.pid)
        // A new bind that would work and one whose port another process holds: nothing stays.
        try strata.write(Self.tcpConfig(port: port, server: echo.port, threads: 4,
                                        extraBind: "    bind 127.0.0.1:\(fresh)\n    bind 127.0.0.1:\(taken.port)"))
        let answer = try strata.admin("reload")
        #expect(answer.hasPrefix("Success=0"), "\(answer)")
        #expect(Self.fdCount(strata.pid) == before)
        #expect(TestSocket.connect(fresh, timeout: 1) == nil)
        #expect(Self.name(port) == "e")
    }

    static func name(_ port: UInt16) -> String? {
        guard let fd = TestSocket.connect(port) else { return nil }
        defer { close(fd) }
        return TestSocket.readLine(fd)
    }

    @Test func pauseResumeAndSoftRestartActOnEveryLoop() throws {
        let echo = try TestBackend(.nameThenEcho("e"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.tcpConfig(port: port, server: echo.port, threads: 4))
        #expect(strata.waitForAdmin())
        strata.signal(SIGTTOU)
        #expect(strata.waitForOutput("listeners paused"))
        // Queued in a backlog, answered by no loop.
        var queued: [Int32] = []
        for _ in 0..<8 {
            let fd = try #require(TestSocket.connect(port))
            TestSocket.setTimeout(fd, seconds: 0.3)
            #expect(TestSocket.readLine(fd) == nil)
            queued.append(fd)
        }
        strata.signal(SIGTTIN)
        for fd in queued {
            TestSocket.setTimeout(fd, seconds: 10)
            #expect(TestSocket.readLine(fd) == "e")
            close(fd)
        }
        let new = try StrataProcess(config: Self.tcpConfig(port: port, server: echo.port, threads: 2), arguments: ["-sf", "\(strata.pid)"])
        #expect(new.waitForAdmin())
        #expect(strata.waitForExit(seconds: 10) == 0)
        #expect(Self.name(port) == "e")
    }
}
