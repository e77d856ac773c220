import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `strata reload --canary` against the real binary: the new generation takes its share of new
/// work (HTTP requests on keep-alive connections, TCP connections), on every loop; it is promoted,
/// aborted, and aborted by itself when its errors say so.
@Suite(.serialized) struct CanaryTests {
    static func httpConfig(port: UInt16, origin: UInt16, extra: String = "", loops: Int = 2) -> String {
        """
        global
            stats socket @ADMIN@ level admin
            nbthread \(loops)
        defaults
            mode http
            retries 0
            timeout connect 2s
            timeout client 30s
            timeout server 30s
        frontend web
            bind 127.0.0.1:\(port)
            http-request use-service prometheus-exporter if { path /metrics }
            default_backend app
        backend app
            server s1 127.0.0.1:\(origin)
        \(extra)
        """
    }

    static func reload(_ strata: StrataProcess, _ arguments: [String]) -> (status: Int32, output: String) {
        let run = runTool(StrataProcess.binary, ["reload", "-S", strata.adminSocket] + arguments)
        return (run.status, run.stdout + run.stderr)
    }

    static func cli(_ strata: StrataProcess, _ words: [String]) -> (status: Int32, output: String) {
        let run = runTool(StrataProcess.binary, ["cli", "-S", strata.adminSocket] + words)
        return (run.status, run.stdout + run.stderr)
    }

    /// Keep-alive clients that take turns: each request goes out on the next connection (a
    /// connection that closed is opened again). The origin's name of each answer, or its status.
    final class Clients {
        let port: UInt16
        var connections: [TestHTTPClient?]
        var next = 0
        private(set) var reopened = 0

        init(port: UInt16, count: Int) {
            self.port = port
            connections = (0..<count).map { _ in TestHTTPClient(port: port) }
        }

        /// `origin=NAME` of a 200, else `status=N` (0: no answer).
        func request(_ path: String = "/") -> String {
            let i = next
            next = (next + 1) % connections.count
            if connections[i] == nil {
                connections[i] = TestHTTPClient(port: port)
                reopened += 1
            }
            guard let answer = connections[i]?.get(path) else {
                connections[i] = nil
                return "status=0"
            }
            if answer.head.lowercased().contains("connection: close") { connections[i] = nil }
            guard answer.status == 200 else { return "status=\(answer.status)" }
            return answer.body.split(separator: "\n").first.map(String.init) ?? "?"
        }

        func count(_ n: Int, _ path: String = "/") -> [String: Int] {
            var seen: [String: Int] = [:]
            for _ in 0..<n { seen[request(path), default: 0] += 1 }
            return seen
        }
    }

    @Test func canaryAtTwentyPercentOfRequestsThenShareChangedThenPromoted() throws {
        let a = try TestHTTPOrigin("a"), b = try TestHTTPOrigin("b")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.httpConfig(port: port, origin: a.port, extra: "backend other\n    server o 127.0.0.1:\(a.port) weight 3"))
        #expect(strata.waitForAdmin())
        let clients = Clients(port: port, count: 8)
        #expect(clients.count(20) == ["origin=a": 20])

        // The canary also sets a weight on a server the active generation has: it applies when
        // the canary is promoted, not before (the active generation's traffic is not its).
        try strata.write(Self.httpConfig(port: port, origin: b.port, extra: "backend other\n    server o 127.0.0.1:\(a.port) weight 7"))
        #expect(Self.reload(strata, ["--abort-on-errors", "5"]).output.contains("--abort-on-errors goes with --canary"))
        #expect(Self.reload(strata, ["--canary", "20", "--plan"]).status == 1)
        let started = Self.reload(strata, ["--canary", "20"])
        #expect(started.status == 0, "\(started.output)")
        #expect(started.output.hasPrefix("Success=1\n--\ngeneration 2 canary (hash "))
        #expect(started.output.contains("at 20% of new work beside generation 1: 1 listeners, 0 new"))
        let rows = try strata.generations()
        #expect(rows.map { "\($0.id) \($0.state)" } == ["1 active", "2 canary"])
        #expect(try strata.admin("show generations").split(separator: "\n").last?.hasSuffix(" share=20%") == true)
        #expect(try strata.admin("get weight other/o") == "3 (initial 3)")
        // Both generations have their series, so a dashboard compares them.
        let scrape = try #require(TestHTTPClient(port: port)?.get("/metrics")).body
        #expect(scrape.contains("strata_generation_info{generation=\"1\",state=\"active\""))
        #expect(scrape.contains("strata_generation_info{generation=\"2\",state=\"canary\""))
        #expect(scrape.contains("strata_generation_errors_total{generation=\"2\"} 0"))
        #expect(scrape.contains("strata_canary_share 20"))
        #expect(scrape.contains("strata_generations{state=\"canary\"} 1"))

        // 400 requests on 8 keep-alive connections spread over 2 loops: each request chooses.
        let seen = clients.count(400)
        let canary = seen["origin=b", default: 0]
        #expect(seen["origin=a", default: 0] + canary == 400, "\(seen)")
        #expect((40...120).contains(canary), "\(seen)")
        #expect(clients.reopened == 0)
        // A reload or a rollback now would have to say which generation it replaces.
        let refused = try strata.admin("reload")
        #expect(refused.hasPrefix("Success=0\n--\nreload refused: generation 2 is a canary beside generation 1"))
        #expect(try strata.admin("rollback").hasPrefix("Success=0\n--\nrollback refused"))

        #expect(Self.cli(strata, ["canary", "set", "50"]).output.hasPrefix("Success=1\n--\ngeneration 2 canary at 50%"))
        let half = clients.count(200)["origin=b", default: 0]
        #expect((70...130).contains(half), "\(half)")
        #expect(Self.cli(strata, ["canary", "set", "101"]).status == 1)

        let promoted = Self.cli(strata, ["canary", "promote"])
        #expect(promoted.status == 0)
        #expect(promoted.output.hasPrefix("Success=1\n--\ngeneration 2 promoted: the only active generation; generation 1 draining"))
        #expect(clients.count(40) == ["origin=b": 40])
        #expect(try strata.admin("get weight other/o") == "7 (initial 7)")
        #expect(clients.reopened == 0)
        #expect(try eventually { try strata.generations().map { "\($0.id) \($0.state)" } == ["2 active"] })
        // The generation before the canary is what a rollback restores.
        #expect(try strata.admin("show generations").contains("# rollback restores generation 1 "))
        #expect(Self.cli(strata, ["canary", "promote"]).output.hasPrefix("Success=0\n--\nno canary is running"))
    }

    static func tcpConfig(port: UInt16, server: UInt16, extraListen: String = "") -> String {
        GenerationTests.config(port: port, server: server, extraListen: extraListen)
    }

    /// A persistence cookie pins its request to the generation whose server it names: the
    /// canary's own server's cookie goes to the canary at a share of 0, the active generation's
    /// own server's cookie stays on it at a share of 100, and a cookie the canary inserted brings
    /// its client back to the canary. A request without one follows the share.
    @Test func aPersistenceCookiePinsItsRequestToTheGenerationOfItsServer() throws {
        let a = try TestHTTPOrigin("a"), b = try TestHTTPOrigin("b")
        let port = TestSocket.freePort()
        func config(server: String, origin: UInt16) -> String {
            Self.httpConfig(port: port, origin: origin)
                .replacingOccurrences(of: "    server s1 127.0.0.1:\(origin)",
                                      with: "    cookie SRV insert\n    server \(server) 127.0.0.1:\(origin) cookie \(server)")
        }
        let strata = try StrataProcess(config: config(server: "old", origin: a.port))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        func origin(_ cookie: String?) -> String {
            guard let answer = client.get("/", headers: cookie.map { ["Cookie: \($0)"] } ?? []), answer.status == 200 else { return "none" }
            return answer.body.split(separator: "\n").first.map(String.init) ?? "?"
        }
        let first = try #require(client.get("/"))
        #expect(first.head.contains("SRV=old"), "\(first.head)")

        try strata.write(config(server: "new", origin: b.port))
        #expect(Self.reload(strata, ["--canary", "0"]).status == 0)
        // Share 0: only a cookie naming the canary's server reaches it.
        #expect(origin(nil) == "origin=a")
        #expect(origin("SRV=new") == "origin=b")
        #expect(origin("other=1; SRV=new") == "origin=b")
        #expect(origin("SRV=old") == "origin=a")
        #expect(origin("SRV=unknown") == "origin=a")

        #expect(Self.cli(strata, ["canary", "set", "100"]).status == 0)
        // Share 100: a cookie naming the active generation's server stays on it.
        #expect(origin("SRV=old") == "origin=a")
        #expect(origin(nil) == "origin=b")
        let inserted = try #require(client.get("/"))
        #expect(inserted.head.contains("SRV=new"), "\(inserted.head)")

        // Back to 0: the client the canary answered (its cookie) stays on the canary.
        #expect(Self.cli(strata, ["canary", "set", "0"]).status == 0)
        #expect((0..<10).map { _ in origin("SRV=new") } == Array(repeating: "origin=b", count: 10))
        #expect((0..<10).map { _ in origin(nil) } == Array(repeating: "origin=a", count: 10))

        // Once the canary ends, the cookie pins nothing: its server is gone with it.
        #expect(Self.cli(strata, ["canary", "abort"]).status == 0)
        #expect(origin("SRV=new") == "origin=a")
    }

    @Test func tcpCanaryTakesItsShareOfConnectionsThenIsAbortedAndDrains() throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.nameThenEcho("b"))
        let port = TestSocket.freePort(), added = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.tcpConfig(port: port, server: a.port))
        #expect(strata.waitForAdmin())
        try strata.write(Self.tcpConfig(port: port, server: b.port, extraListen: """
            listen extra
                bind 127.0.0.1:\(added)
                server x 127.0.0.1:\(b.port)
            """))
        let started = Self.reload(strata, ["--canary", "25"])
        #expect(started.status == 0, "\(started.output)")
        #expect(started.output.contains("2 listeners, 1 new"))
        var names: [String: Int] = [:]
        for _ in 0..<100 { names[GenerationTests.name(port) ?? "-", default: 0] += 1 }
        #expect(names["b", default: 0] + names["a", default: 0] == 100, "\(names)")
        #expect((15...35).contains(names["b", default: 0]), "\(names)")
        // A listener only the canary has serves it alone.
        #expect(GenerationTests.name(added) == "b")
        // A connection on the canary, open across the abort: it drains on it.
        var held: Int32 = -1
        for _ in 0..<40 where held < 0 {
            guard let fd = TestSocket.connect(port) else { continue }
            if TestSocket.readLine(fd) == "b" { held = fd } else { close(fd) }
        }
        #expect(held >= 0)

        let aborted = try strata.admin("canary abort")
        #expect(aborted.hasPrefix("Success=1\n--\ngeneration 2 aborted: draining with "))
        #expect(aborted.hasSuffix("generation 1 takes all new work"))
        #expect(try eventually { try strata.generations().map { "\($0.id) \($0.state) \($0.sessions)" } == ["1 active 0", "2 draining 1"] })
        for _ in 0..<20 { #expect(GenerationTests.name(port) == "a") }
        #expect(try eventually { RollbackTests.refused(added) })
        #expect(TestSocket.sendAll(held, "still here\n"))
        #expect(TestSocket.readLine(held) == "still here")
        close(held)
        #expect(try eventually { try strata.generations().map(\.id) == [1] })
        #expect(strata.waitForOutput("generation 2 canary aborted: canary abort (admin socket)"))
        // An abort is not a promotion: nothing to roll back to.
        #expect(!(try strata.admin("show generations")).contains("# rollback"))
    }

    @Test func canaryWhoseOnlyServerIsDownIsAbortedByItself() throws {
        let a = try TestHTTPOrigin("a")
        let down = TestSocket.freePort()  // nothing listens there
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.httpConfig(port: port, origin: a.port, loops: 2))
        #expect(strata.waitForAdmin())
        let clients = Clients(port: port, count: 4)
        #expect(clients.count(10) == ["origin=a": 10])

        try strata.write(Self.httpConfig(port: port, origin: down))
        let started = Self.reload(strata, ["--canary", "20", "--abort-on-errors", "10", "--window", "10"])
        #expect(started.status == 0, "\(started.output)")
        #expect(started.output.contains("aborted by itself if its error share is 10 points above generation 1's over 10 s"))

        // Requests until the canary is gone (at most 10 s), then 200 more.
        var before: [String] = []
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            before.append(clients.request())
            if before.count % 20 == 0, try strata.generations().allSatisfy({ $0.state != "canary" }) { break }
        }
        let failed = before.filter { $0 != "origin=a" }.count
        #expect(failed > 0, "the canary took no request")
        #expect(strata.waitForOutput("generation 2 canary aborted: error share "), "\(strata.output.suffix(20).joined(separator: "\n"))")
        // None after the abort; fewer than the canary's share of the window's requests before it.
        let after = clients.count(200)
        #expect(after == ["origin=a": 200], "\(after)")
        #expect(failed * 100 < (before.count + 200) * 20, "\(failed) failed of \(before.count) + 200")
        #expect(try eventually { try strata.generations().map { "\($0.id) \($0.state)" } == ["1 active"] })

        let metrics = try #require(TestHTTPClient(port: port)?.get("/metrics"))
        #expect(metrics.body.contains("strata_canary_aborts_total{reason=\"errors\"} 1"))
        #expect(metrics.body.contains("strata_canary_share 0"))
    }

    @Test func softStopDuringACanaryDrainsBothAndExits() throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.tcpConfig(port: port, server: a.port))
        #expect(strata.waitForAdmin())
        try strata.write(Self.tcpConfig(port: port, server: b.port))
        #expect(try strata.admin("reload canary 50 abort-on-errors 20").hasPrefix("Success=1"))
        #expect(try strata.admin("reload canary 150").hasPrefix("Success=0\n--\nusage: reload canary PERCENT"))
        strata.signal(SIGUSR1)
        #expect(strata.waitForExit(seconds: 10) == 0)
    }

    @Test func systemdHearsTheCanaryAndItsAutomaticAbort() throws {
        let a = try TestHTTPOrigin("a")
        let port = TestSocket.freePort(), down = TestSocket.freePort()
        let dir = StrataProcess.makeDirectory()
        let notifyPath = dir.appendingPathComponent("notify").path
        let notify = try #require(TestSocket.bindUnix(notifyPath, type: Int32(SOCK_DGRAM.rawValue)))
        defer { close(notify) }
        TestSocket.setTimeout(notify, seconds: 10)
        let strata = try StrataProcess(config: Self.httpConfig(port: port, origin: a.port), environment: ["NOTIFY_SOCKET": notifyPath])
        #expect(strata.waitForAdmin())
        func next() -> String {
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { recv(notify, $0.baseAddress, $0.count, 0) }
            return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : ""
        }
        #expect(next().contains("STATUS=generation 1 active"))
        try strata.write(Self.httpConfig(port: port, origin: down))
        #expect(try strata.admin("reload canary 50 abort-on-errors 20").hasPrefix("Success=1"))
        // RELOADING=1, the canary's start, then READY=1 with its status.
        var seen: [String] = []
        while seen.count < 4, !(seen.last ?? "").contains("READY=1") { seen.append(next()) }
        #expect(seen.last?.contains("STATUS=generation 1 active, generation 2 canary at 50%") == true, "\(seen)")
        let clients = Clients(port: port, count: 2)
        _ = clients.count(60)
        var aborted = false
        for _ in 0..<4 where !aborted {
            let message = next()
            aborted = message.contains("STATUS=generation 1 active; canary generation 2 aborted: error share 100%")
        }
        #expect(aborted)
    }
}
