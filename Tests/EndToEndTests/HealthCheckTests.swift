import Foundation
import Glibc
import StrataTestSupport
import Synchronization
import Testing

/// A server for health-check tests, run by the test process (a thread per connection). It tells
/// checks from traffic by what a connection sends first:
///   `GET /health …`   an HTTP check: answered with `checkStatus` and `checkBody`, then closed;
///                     when `gated`, each check waits for `release(status:)` before its answer
///   `PING\r\n`        a tcp-check: `+PONG` when `healthy`, `-ERR` otherwise, then closed
///   nothing (EOF)     a connect-only check
///   any other HTTP    traffic: `200` with the server's name, keep-alive; counted in `requests`
final class HealthOrigin: @unchecked Sendable {
    let name: String
    let port: UInt16
    private let fd: Int32
    private struct State {
        var healthy = true
        var body = "OK"
        var gated = false
        var permits: [Int] = []
        var checks = 0
        var checkAnswers: [Int] = []
        var requests = 0
        var stopped = false
    }
    private let state = Guarded(State())

    init(_ name: String) throws {
        self.name = name
        (fd, port) = try TestSocket.listen(what: "health origin")
        TestSocket.acceptLoop(fd, timeout: 10) { [self] c in
            Thread { [self] in self.serve(c) }.start()
            return true
        }
    }

    deinit {
        state.withLock { $0.stopped = true }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    /// Checks pass (HTTP 200, `+PONG`) or fail (HTTP 503, `-ERR`).
    var healthy: Bool {
        get { state.withLock { $0.healthy } }
        set { state.withLock { $0.healthy = newValue } }
    }
    /// The body of a check's answer.
    var body: String {
        get { state.withLock { $0.body } }
        set { state.withLock { $0.body = newValue } }
    }
    /// Each HTTP check waits for a `release` and answers its status.
    var gated: Bool {
        get { state.withLock { $0.gated } }
        set { state.withLock { $0.gated = newValue } }
    }
    func release(status: Int) { state.withLock { $0.permits.append(status) } }

    /// Check connections (HTTP checks and tcp-checks) and the statuses HTTP checks got.
    var checks: Int { state.withLock { $0.checks } }
    var checkAnswers: [Int] { state.withLock { $0.checkAnswers } }
    /// Requests of traffic (not checks).
    var requests: Int { state.withLock { $0.requests } }

    private func serve(_ c: Int32) {
        defer { close(c) }
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        func fill() -> Bool {
            let n = chunk.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return false }
            pending += chunk[0..<n]
            return true
        }
        while true {
            // A whole head, or a tcp-check line.
            var headEnd: Int?
            while true {
                if pending.starts(with: Array("PING".utf8)), pending.contains(10) { break }
                if let end = pending.indexOfSubsequence([13, 10, 13, 10]) { headEnd = end; break }
                if !fill() { return }
            }
            guard let end = headEnd else {
                let answer = state.withLock { s -> String in
                    s.checks += 1
                    return s.healthy ? "+PONG\r\n" : "-ERR\r\n"
                }
                _ = TestSocket.sendAll(c, answer)
                return
            }
            let head = String(decoding: pending[0..<end], as: UTF8.self)
            pending.removeFirst(end + 4)
            if head.hasPrefix("GET /health ") {
                state.withLock { $0.checks += 1 }
                var status = 0
                while status == 0 {
                    status = state.withLock { s -> Int in
                        if s.stopped { return 503 }
                        if !s.gated { return s.healthy ? 200 : 503 }
                        return s.permits.isEmpty ? 0 : s.permits.removeFirst()
                    }
                    if status == 0 { usleep(2000) }
                }
                let body = self.body
                state.withLock { $0.checkAnswers.append(status) }
                _ = TestSocket.sendAll(c, "HTTP/1.0 \(status) \(status == 200 ? "OK" : "Service Unavailable")\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
                return
            }
            state.withLock { $0.requests += 1 }
            guard TestSocket.sendAll(c, "HTTP/1.1 200 OK\r\nContent-Length: \(name.utf8.count)\r\n\r\n\(name)") else { return }
        }
    }
}

/// One row of `show servers state`.
struct ServerStateRow {
    var fields: [String]
    var name: String { fields[3] }
    var operational: Int { Int(fields[5]) ?? -1 }
    var admin: Int { Int(fields[6]) ?? -1 }
    var weight: Int { Int(fields[7]) ?? -1 }
    var checkHealth: Int { Int(fields[12]) ?? -1 }
}

extension StrataProcess {
    /// `show servers state [BACKEND]` by server name.
    func serversState(_ backend: String? = nil) throws -> [String: ServerStateRow] {
        let text = try admin("show servers state" + (backend.map { " " + $0 } ?? ""))
        var rows: [String: ServerStateRow] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: " ").map(String.init)
            if f.count >= 20 { rows[f[3]] = ServerStateRow(fields: f) }
        }
        return rows
    }
}

/// Health checks with the real binary: DOWN after `fall`, UP after `rise`, HTTP and TCP check
/// expectations, backups, maintenance and DOWN servers across reloads, one check stream per
/// server whatever the reloads.
@Suite(.serialized) struct HealthCheckTests {
    static func config(port: UInt16, servers: [(String, HealthOrigin, String)], backend: String = "", global: String = "",
                       defaults: String = "", check: String = "check inter 100ms rise 2 fall 2") -> String {
        """
        global
            stats socket @ADMIN@ level admin
        \(global)
        defaults
            mode http
            timeout connect 1s
            timeout check 5s
            timeout client 10s
            timeout server 10s
        \(defaults)
        frontend fe
            bind 127.0.0.1:\(port)
            default_backend be

        backend be
            option httpchk GET /health
            http-check expect status 200
            default-server \(check)
        \(backend)
        \(servers.map { "    server \($0.0) 127.0.0.1:\($0.1.port) \($0.2)" }.joined(separator: "\n"))
        """
    }

    /// Sends one request on a connection of its own; the name of the server that answered.
    static func request(_ port: UInt16) -> String? {
        guard let client = TestHTTPClient(port: port), let r = client.get("/traffic"), r.status == 200 else { return nil }
        return r.body
    }

    @Test func failingServerGoesDownAfterFallChecksAndUpAfterRise() throws {
        let s1 = try HealthOrigin("s1")
        s1.gated = true
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, servers: [("s1", s1, "")], backend: "    timeout check 10s"))
        #expect(strata.waitForAdmin())
        // A checked server starts UP with a health of `rise` (2): one passed check makes it full (3).
        s1.release(status: 200)
        #expect(try eventually { try strata.serversState()["s1"]?.checkHealth == 3 })
        // fall 2: the first failure leaves it UP (health 2), the second takes it DOWN.
        s1.release(status: 503)
        #expect(try eventually { try strata.serversState()["s1"]?.checkHealth == 2 })
        #expect(try strata.serversState()["s1"]?.operational == 2)
        #expect(!strata.output.contains { $0.contains("Server be/s1 is DOWN") })
        s1.release(status: 503)
        #expect(try eventually { try strata.serversState()["s1"]?.operational == 0 })
        #expect(strata.waitForOutput("Server be/s1 is DOWN, reason: Layer7 wrong status, code: 503"))
        #expect(strata.waitForOutput("backend be has no server available!"))
        #expect(s1.checkAnswers == [200, 503, 503])
        #expect(Self.request(port) == nil)
        // rise 2: one pass leaves it DOWN, the second brings it UP.
        s1.release(status: 200)
        #expect(try eventually { try strata.serversState()["s1"]?.checkHealth == 1 })
        #expect(try strata.serversState()["s1"]?.operational == 0)
        s1.release(status: 200)
        #expect(try eventually { try strata.serversState()["s1"]?.operational == 2 })
        #expect(strata.waitForOutput("Server be/s1 is UP, reason: Layer7 check passed, code: 200"))
        #expect(s1.checkAnswers == [200, 503, 503, 200, 200])
        s1.gated = false
        #expect(Self.request(port) == "s1")
    }

    /// Takes s1 (rise 2, fall 3) through three failures, DOWN, two passes, UP and one more pass,
    /// a check at a time; the output then.
    static func flap(defaults: String = "", backend: String = "") throws -> [String] {
        let s1 = try HealthOrigin("s1")
        s1.gated = true
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, servers: [("s1", s1, "")], backend: backend + "\n    timeout check 10s",
                                                           defaults: defaults, check: "check inter 100ms rise 2 fall 3"))
        #expect(strata.waitForAdmin())
        // The check's health after each answer: from `rise` (2) to full (4) at once, down by one
        // per failure, to 0 under `rise`, up to full again at `rise`.
        for (i, (status, health)) in [(200, 4), (503, 3), (503, 2), (503, 0), (200, 1), (200, 4), (200, 4)].enumerated() {
            s1.release(status: status)
            #expect(try eventually { try s1.checkAnswers.count == i + 1 && strata.serversState()["s1"]?.checkHealth == health }, "check \(i + 1)")
        }
        #expect(s1.checkAnswers == [200, 503, 503, 503, 200, 200, 200])
        // The seventh result was recorded before the eighth check began.
        s1.release(status: 200)
        #expect(try eventually { s1.checkAnswers.count == 8 })
        #expect(strata.waitForOutput("Server be/s1 is UP"))
        usleep(300_000)
        return Self.messages(strata.output)
    }

    /// The output's messages without their `[LEVEL] (pid) : ` prefix.
    static func messages(_ output: [String]) -> [String] {
        output.map { line in line.range(of: ") : ").map { String(line[$0.upperBound...]) } ?? line }
    }

    @Test func logHealthChecksLogsEveryResultThatMovesTheCheck() throws {
        let output = try Self.flap(defaults: "    option log-health-checks")
        let checks = output.filter { $0.contains("Health check for server be/s1 ") }
        let wanted = [
            ("succeeded, reason: Layer7 check passed, code: 200", "status: 3/3 UP."),
            ("failed, reason: Layer7 wrong status, code: 503", "status: 2/3 UP."),
            ("failed, reason: Layer7 wrong status, code: 503", "status: 1/3 UP."),
            ("failed, reason: Layer7 wrong status, code: 503", "status: 0/2 DOWN."),
            ("succeeded, reason: Layer7 check passed, code: 200", "status: 1/2 DOWN."),
            ("succeeded, reason: Layer7 check passed, code: 200", "status: 3/3 UP."),
        ]
        // The last pass changed neither the status nor the health: no line.
        #expect(checks.count == wanted.count, "\(checks)")
        for (line, (start, end)) in zip(checks, wanted) {
            #expect(line.contains("Health check for server be/s1 \(start)") && line.contains("check duration: ") && line.hasSuffix(end), "\(line)")
        }
        // The transitions follow their check line without a reason (HAProxy's: the check line gave it).
        let down = try #require(output.firstIndex { $0.hasSuffix("status: 0/2 DOWN.") })
        #expect(output[down + 1] == "Server be/s1 is DOWN. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.")
        let up = try #require(output.lastIndex { $0.hasSuffix("status: 3/3 UP.") })
        #expect(output[up + 1] == "Server be/s1 is UP. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.")
    }

    @Test func withoutLogHealthChecksOnlyTransitionsAreLogged() throws {
        // The defaults' option, turned off by the backend.
        let output = try Self.flap(defaults: "    option log-health-checks", backend: "    no option log-health-checks")
        #expect(!output.contains { $0.contains("Health check for") }, "\(output)")
        #expect(output.filter { $0.hasPrefix("Server be/s1 is DOWN, reason: Layer7 wrong status, code: 503") }.count == 1)
        #expect(output.filter { $0.hasPrefix("Server be/s1 is UP, reason: Layer7 check passed, code: 200") }.count == 1)
    }

    @Test func httpCheckExpectsAStringInTheBody() throws {
        let s1 = try HealthOrigin("s1"), s2 = try HealthOrigin("s2")
        s1.body = "state: READY"
        s2.body = "state: starting"
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, servers: [("s1", s1, ""), ("s2", s2, "")],
                                                           backend: "    http-check expect string READY"))
        #expect(strata.waitForAdmin())
        #expect(try eventually { try strata.serversState()["s2"]?.operational == 0 })
        #expect(strata.waitForOutput("Server be/s2 is DOWN, reason: Layer7 invalid response"))
        #expect(try strata.serversState()["s1"]?.operational == 2)
        s2.body = "state: READY"
        #expect(try eventually { try strata.serversState()["s2"]?.operational == 2 })
        // A 200 with the string is needed: a 503 with it fails too (`status 200` comes first).
        s1.healthy = false
        #expect(try eventually { try strata.serversState()["s1"]?.operational == 0 })
    }

    @Test func httpCheckConnectPortSendsTheCheckElsewhere() throws {
        // The server's own port is closed; `http-check connect port` takes the check to the origin.
        let s1 = try HealthOrigin("s1")
        let port = TestSocket.freePort(), closed = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 1s
                timeout check 5s
                timeout client 10s
                timeout server 10s
            frontend fe
                bind 127.0.0.1:\(port)
                default_backend be
            backend be
                option httpchk
                http-check connect port \(s1.port)
                http-check send meth GET uri /health
                http-check expect status 200
                server s1 127.0.0.1:\(closed) check inter 100ms rise 1 fall 1
            """)
        #expect(strata.waitForAdmin())
        #expect(try eventually { s1.checks >= 2 }, "\(strata.output.joined(separator: "\n"))")
        #expect(try eventually { try strata.serversState()["s1"]?.operational == 2 })
        s1.healthy = false
        #expect(try eventually { try strata.serversState()["s1"]?.operational == 0 })
    }

    @Test func tcpCheckSendsAndExpectsAndAConnectCheckSeesARefusal() throws {
        // `timeout check`: on a loaded machine an origin's answer can come later than `inter`.
        let r1 = try HealthOrigin("r1")
        let port = TestSocket.freePort(), closed = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode tcp
                timeout connect 1s
                timeout check 5s
                timeout client 10s
                timeout server 10s
            listen redis
                bind 127.0.0.1:\(port)
                option tcp-check
                tcp-check send PING\\r\\n
                tcp-check expect string +PONG
                server r1 127.0.0.1:\(r1.port) check inter 100ms rise 2 fall 2
            listen plain
                bind 127.0.0.1:\(TestSocket.freePort())
                server gone 127.0.0.1:\(closed) check inter 100ms rise 2 fall 2
            """)
        #expect(strata.waitForAdmin())
        #expect(try eventually { try strata.serversState("plain")["gone"]?.operational == 0 })
        #expect(strata.waitForOutput("Server plain/gone is DOWN, reason: Layer4 connection problem"))
        #expect(try eventually { r1.checks >= 2 }, "\(strata.output.joined(separator: "\n"))")
        #expect(try eventually { try strata.serversState("redis")["r1"]?.operational == 2 })
        r1.healthy = false
        #expect(try eventually { try strata.serversState("redis")["r1"]?.operational == 0 })
        #expect(strata.waitForOutput("Server redis/r1 is DOWN"))
        r1.healthy = true
        #expect(try eventually { try strata.serversState("redis")["r1"]?.operational == 2 })
        #expect(strata.waitForOutput("Server redis/r1 is UP"))
    }

    @Test func backupTakesOverAndHandsBack() throws {
        let s1 = try HealthOrigin("s1"), b1 = try HealthOrigin("b1")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, servers: [("s1", s1, ""), ("b1", b1, "backup")]))
        #expect(strata.waitForAdmin())
        #expect(try eventually { s1.checks >= 1 && b1.checks >= 1 })
        for _ in 0..<4 { #expect(Self.request(port) == "s1") }
        s1.healthy = false
        #expect(try eventually { try strata.serversState()["s1"]?.operational == 0 })
        #expect(strata.waitForOutput("Running on backup."))
        for _ in 0..<4 { #expect(Self.request(port) == "b1") }
        s1.healthy = true
        #expect(try eventually { try strata.serversState()["s1"]?.operational == 2 })
        let before = b1.requests
        for _ in 0..<4 { #expect(Self.request(port) == "s1") }
        #expect(b1.requests == before)
    }

    @Test func maintenanceStopsNewTrafficAndSurvivesFiveReloads() throws {
        let s1 = try HealthOrigin("s1"), s2 = try HealthOrigin("s2")
        let port = TestSocket.freePort()
        let config = Self.config(port: port, servers: [("s1", s1, ""), ("s2", s2, "")])
        let strata = try StrataProcess(config: config)
        #expect(strata.waitForAdmin())
        #expect(try eventually { Set((0..<4).compactMap { _ in Self.request(port) }) == ["s1", "s2"] })
        #expect(try strata.admin("set server be/s1 state maint") == "")
        #expect(strata.waitForOutput("Server be/s1 is going DOWN for maintenance"))
        let before = s1.requests
        for _ in 0..<6 { #expect(Self.request(port) == "s2") }
        for i in 1...5 {
            // A change elsewhere in the file: s1's identity is the same, so its state carries.
            try strata.write(config + "\n# reload \(i)\n")
            #expect(try strata.admin("reload").hasPrefix("Success=1"))
            #expect(try strata.serversState()["s1"]?.admin == 1)
            for _ in 0..<4 { #expect(Self.request(port) == "s2") }
        }
        #expect(s1.requests == before)
        #expect(try strata.admin("set server be/s1 state ready") == "")
        #expect(try eventually { Self.request(port) == "s1" })
    }

    @Test func noRequestReachesADownServerRightAfterEachOfTwentyReloads() throws {
        let s1 = try HealthOrigin("s1"), s2 = try HealthOrigin("s2")
        s2.healthy = false  // fails its checks, yet would answer traffic: every request it gets is counted
        let port = TestSocket.freePort()
        let config = Self.config(port: port, servers: [("s1", s1, ""), ("s2", s2, "")])
        let strata = try StrataProcess(config: config)
        #expect(strata.waitForAdmin())
        #expect(try eventually { try strata.serversState()["s2"]?.operational == 0 })
        // Down before any traffic was sent (a new server starts UP, as in HAProxy).
        for i in 1...20 {
            try strata.write(config + "\n# reload \(i)\n")
            #expect(try strata.admin("reload").hasPrefix("Success=1"))
            for _ in 0..<5 { #expect(Self.request(port) == "s1") }
            #expect(try strata.serversState()["s2"]?.operational == 0)
        }
        #expect(s2.requests == 0)
        #expect(!strata.output.contains { $0.contains("Server be/s2 is UP") })
    }

    @Test func oneCheckStreamPerServerAcrossReloads() throws {
        let s1 = try HealthOrigin("s1"), s2 = try HealthOrigin("s2")
        let port = TestSocket.freePort()
        let config = Self.config(port: port, servers: [("s1", s1, ""), ("s2", s2, "")])
        let strata = try StrataProcess(config: config)
        #expect(strata.waitForAdmin())
        #expect(try eventually { s1.checks >= 1 && s2.checks >= 1 })
        // Reload continuously for two seconds; count the checks each server got meanwhile.
        let start = Date(), c1 = s1.checks, c2 = s2.checks
        var reloads = 0
        while Date().timeIntervalSince(start) < 2 {
            reloads += 1
            try strata.write(config + "\n# reload \(reloads)\n")
            #expect(try strata.admin("reload").hasPrefix("Success=1"))
        }
        let seconds = Date().timeIntervalSince(start)
        let n1 = s1.checks - c1, n2 = s2.checks - c2
        // One checker per server: at most one check per `inter` (100 ms) and the time a check
        // takes; two checkers would double it. A slow machine gives fewer, never more.
        let most = Int(seconds / 0.1 * 1.3) + 2
        #expect(reloads >= 5)
        #expect(n1 <= most && n2 <= most, "\(n1) and \(n2) checks in \(seconds) s over \(reloads) reloads (at most \(most))")
        #expect(n1 >= 3 && n2 >= 3, "checks stopped: \(n1) and \(n2) in \(seconds) s")
    }
}

/// `slowstart`: a server back from maintenance takes a small share first, its whole share once
/// the slow start is over.
@Suite(.serialized) struct SlowstartTests {
    @Test func aServerBackFromMaintenanceWarmsUp() throws {
        let a = try TestHTTPOrigin("a"), b = try TestHTTPOrigin("b")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                nbthread 1
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 1s
                timeout client 5s
                timeout server 5s
            listen web
                bind 127.0.0.1:\(port)
                balance roundrobin
                server a 127.0.0.1:\(a.port) weight 100 slowstart 10s
                server b 127.0.0.1:\(b.port) weight 100
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        func share(_ n: Int) throws -> Int {
            let client = try #require(TestHTTPClient(port: port))
            var toA = 0
            for _ in 0..<n where client.get("/")?.body.contains("origin=a") == true { toA += 1 }
            return toA
        }
        // At start there is no slow start: half each.
        #expect((18...22).contains(try share(40)))
        _ = try strata.admin("disable server web/a")
        _ = try strata.admin("enable server web/a")
        // Just back: a weight of a few against 100.
        // (20 requests in 2.5 s would still see a weight of 25 at most: 4 of 20.)
        let early = try share(20)
        #expect(early <= 4, "a took \(early) of 20 right after coming back")
        #expect(eventually(seconds: 20) { ((try? share(20)) ?? 0) >= 8 }, "a never took its share back")
    }
}
