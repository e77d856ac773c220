import Foundation
import Glibc
import StrataTestSupport
import Testing

/// A fake agent run by the test process: each connection reads what the check sends (`expect`
/// bytes, `agent-send`), answers the current `reply` and closes; what each check sent is kept.
final class AgentOrigin: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    private struct State {
        var reply: String
        var received: [String] = []
        var stopped = false
    }
    private let state: Guarded<State>

    init(reply: String, expect: Int = 0) throws {
        state = Guarded(State(reply: reply))
        (fd, port) = try TestSocket.listen(what: "agent")
        TestSocket.acceptLoop(fd, timeout: 5) { [self] c in
            if state.withLock({ $0.stopped }) { close(c); return false }
            Thread { [self] in
                let read = expect > 0 ? TestSocket.read(c, count: expect) : []
                let reply = state.withLock { s in
                    s.received.append(String(decoding: read, as: UTF8.self))
                    return s.reply
                }
                _ = TestSocket.sendAll(c, reply)
                usleep(10_000)
                close(c)
            }.start()
            return true
        }
    }

    /// Stops listening: the next agent checks are refused.
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

    var reply: String {
        get { state.withLock { $0.reply } }
        set { state.withLock { $0.reply = newValue } }
    }
    var received: [String] { state.withLock { $0.received } }
    var checks: Int { received.count }
}

/// `agent-check` with the real binary: an agent's weight, drain, down/up and maxconn answers
/// applied to a server as HAProxy applies them, shown by `show stat` and `show servers state`,
/// seen in where traffic goes, and carried across a reload; an agent that cannot be reached
/// changes nothing.
@Suite(.serialized) struct AgentCheckTests {
    static func config(port: UInt16, a: TestBackend, b: TestBackend, agentPort: UInt16, extra: String = "",
                       weight: Int = 10, comment: String = "", proxy: String = "") -> String {
        """
        global
            stats socket @ADMIN@ level admin
        defaults
            mode tcp
            timeout connect 1s
            timeout client 10s
            timeout server 10s
        listen be
            # \(comment)
            bind 127.0.0.1:\(port)
            balance roundrobin
        \(proxy)
            server a 127.0.0.1:\(a.port) weight \(weight) agent-check agent-port \(agentPort) agent-inter 100ms \(extra)
            server b 127.0.0.1:\(b.port) weight 10
        """
    }

    /// Which server (`a` or `b`) answered each of `count` connections.
    static func spread(_ port: UInt16, _ count: Int) -> [String: Int] {
        var seen: [String: Int] = [:]
        for _ in 0..<count {
            guard let c = TestSocket.connect(port) else { continue }
            if let name = TestSocket.readLine(c) { seen[name, default: 0] += 1 }
            close(c)
        }
        return seen
    }

    static func stat(_ strata: StrataProcess, _ field: String) throws -> String? {
        try ProtocolCheckTests.stat(strata, "a", field)
    }

    @Test func agentAnswersSetWeightDrainDownUpAndMaxconn() throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b"))
        let agent = try AgentOrigin(reply: "50%\n", expect: 6)
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, a: a, b: b, agentPort: agent.port, extra: "agent-send \"hello\\n\""))
        #expect(strata.waitForAdmin())

        // 50% of the configured 10: the weight in effect, and a third of the traffic.
        #expect(try eventually { try strata.serversState("be")["a"]?.weight == 5 })
        #expect(agent.received.first == "hello\n")
        #expect(try Self.stat(strata, "weight") == "5")
        #expect(try strata.serversState("be")["a"]?.fields[8] == "10")
        #expect(try Self.stat(strata, "agent_status") == "CHECKED")
        #expect(try Self.stat(strata, "agent_health") == "1")
        let half = Self.spread(port, 30)
        #expect((9...11).contains(half["a"] ?? 0) && half["a", default: 0] + half["b", default: 0] == 30, "\(half)")

        // drain: no new traffic, the weight untouched.
        agent.reply = "drain\n"
        #expect(try eventually { try Self.stat(strata, "status") == "DRAIN (agent)" })
        #expect(try strata.serversState("be")["a"]?.weight == 5)
        #expect(Self.spread(port, 10) == ["b": 10])

        // ready ends the drain; down with a reason takes the server DOWN.
        agent.reply = "ready down #broken\n"
        #expect(try eventually { try strata.serversState("be")["a"]?.operational == 0 })
        #expect(try Self.stat(strata, "status") == "DOWN (agent)")
        #expect(try Self.stat(strata, "agent_status") == "L7STS")
        #expect(try Self.stat(strata, "last_agt") == "via agent : down (broken)")
        #expect(try Self.stat(strata, "agent_health") == "0")
        #expect(strata.waitForOutput("Server be/a is DOWN, reason: Layer7 wrong status, code: 0, info: \"via agent : down (broken)\""),
                "\(strata.output.joined(separator: "\n"))")
        #expect(try strata.serversState("be")["a"]?.admin == 0)
        #expect(Self.spread(port, 10) == ["b": 10])

        // up brings it back, at the weight the agent left.
        agent.reply = "up\n"
        #expect(try eventually { try strata.serversState("be")["a"]?.operational == 2 })
        #expect(try Self.stat(strata, "agent_status") == "L7OK")
        #expect((4...6).contains(Self.spread(port, 15)["a"] ?? 0))

        // maxconn:5 is the server's limit from now on.
        #expect(try Self.stat(strata, "slim") == "")
        agent.reply = "maxconn:5 weight:10\n"
        #expect(try eventually { try Self.stat(strata, "slim") == "5" })
        #expect(try strata.serversState("be")["a"]?.weight == 10)
        // An unknown word is the agent's error, in its text.
        agent.reply = "sleepy\n"
        #expect(try eventually { try Self.stat(strata, "last_agt") == "agent reports an error : sleepy" })
        #expect(try strata.serversState("be")["a"]?.operational == 2)
        // show servers state: the agent's state flags (configured, enabled, agent) and port.
        let row = try #require(try strata.serversState("be")["a"])
        #expect(row.fields[14] == "22" && row.fields[24] == "\(agent.port)")
        #expect(try strata.serversState("be")["b"]?.fields[14] == "0")

        // The runtime API forces the agent's word, and turns the agent off and on.
        #expect(try strata.admin("set server be/a agent down") == "")
        #expect(try strata.serversState("be")["a"]?.operational == 0)
        #expect(try strata.admin("disable agent be/a") == "")
        #expect(try strata.serversState("be")["a"]?.fields[14] == "18")
        #expect(try Self.stat(strata, "agent_status") == "")
        usleep(300_000)  // a check already in flight ends
        let checks = agent.checks
        usleep(500_000)
        #expect(agent.checks == checks, "a disabled agent is not asked")
        #expect(try strata.admin("enable agent be/b") == "Agent was not configured on this server, cannot enable.")
        #expect(try strata.admin("set server be/b agent up") == "agent checks are not enabled on this server.")
        #expect(try strata.admin("enable agent be/a") == "")
        agent.reply = "up\n"
        #expect(try eventually { try strata.serversState("be")["a"]?.operational == 2 })
    }

    @Test func logHealthChecksLogsTheAgentsResults() throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b"))
        let agent = try AgentOrigin(reply: "up\n")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, a: a, b: b, agentPort: agent.port,
                                                           proxy: "    option log-health-checks"))
        #expect(strata.waitForAdmin())
        func line(_ start: String, _ end: String) -> Int? {
            HealthCheckTests.messages(strata.output).firstIndex { $0.hasPrefix("Agent check for server be/a \(start)") && $0.hasSuffix(end) }
        }
        // The first result changes the status (from INI): logged though the health stays 1.
        let up = "succeeded, reason: Layer7 check passed, code: 0, info: \"via agent : up\", check duration: "
        #expect(try eventually { line(up, "status: 1/1 UP.") != nil }, "\(strata.output)")
        agent.reply = "down #broken\n"
        #expect(try eventually { try strata.serversState("be")["a"]?.operational == 0 })
        let down = try #require(line("failed, reason: Layer7 wrong status, code: 0, info: \"via agent : down (broken)\", check duration: ",
                                     "status: 0/1 DOWN."), "\(strata.output)")
        #expect(HealthCheckTests.messages(strata.output)[down + 1] == "Server be/a is DOWN. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.")
        agent.reply = "up\n"
        #expect(try eventually { try strata.serversState("be")["a"]?.operational == 2 })
        #expect(strata.waitForOutput("Server be/a is UP. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue."))
        // A line without a health word is neutral: never logged, whatever it changed.
        agent.reply = "50%\n"
        #expect(try eventually { try strata.serversState("be")["a"]?.weight == 5 })
        // An agent that cannot be reached: once, when the status changes; the server stays UP.
        agent.stop()
        let refused = "failed, reason: Layer4 connection problem, info: \"Connection refused\", check duration: "
        #expect(try eventually { line(refused, "status: 1/1 UP.") != nil }, "\(strata.output)")
        usleep(600_000)
        let lines = HealthCheckTests.messages(strata.output).filter { $0.hasPrefix("Agent check for server be/a ") }
        #expect(lines.count == 4, "\(lines)")
        #expect(lines.last?.hasPrefix("Agent check for server be/a \(refused)") == true)
        #expect(try strata.serversState("be")["a"]?.operational == 2)
    }

    @Test func agentMaintenanceEndsWithReady() throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b"))
        let agent = try AgentOrigin(reply: "maint\n")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, a: a, b: b, agentPort: agent.port))
        #expect(strata.waitForAdmin())
        #expect(try eventually { try Self.stat(strata, "status") == "MAINT" })
        #expect(try strata.serversState("be")["a"]?.admin == 1)
        // Maintenance pauses health checks, not the agent: its `ready` ends it.
        agent.reply = "ready\n"
        #expect(try eventually { try Self.stat(strata, "status") == "no check" })
        #expect(try strata.serversState("be")["a"]?.operational == 2)
    }

    @Test func unreachableAgentDoesNotMarkTheServerDown() throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b"))
        let port = TestSocket.freePort()
        // Nothing listens on the agent port; the server's health check passes.
        let strata = try StrataProcess(config: Self.config(port: port, a: a, b: b, agentPort: TestSocket.freePort(),
                                                           extra: "check inter 100ms"))
        #expect(strata.waitForAdmin())
        #expect(try eventually { try Self.stat(strata, "agent_status") == "L4CON" })
        #expect(try eventually { try Self.stat(strata, "check_status") == "L4OK" })
        #expect(try Self.stat(strata, "status") == "UP")
        #expect(try strata.serversState("be")["a"]?.operational == 2)
        #expect((4...6).contains(Self.spread(port, 10)["a"] ?? 0))
    }

    @Test func agentWeightSurvivesAReloadThatKeepsTheServer() throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b"))
        let agent = try AgentOrigin(reply: "50% drain\n")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, a: a, b: b, agentPort: agent.port))
        #expect(strata.waitForAdmin())
        #expect(try eventually { try Self.stat(strata, "status") == "DRAIN (agent)" })
        #expect(try strata.serversState("be")["a"]?.weight == 5)
        // The agent goes away: what it set stays, as a reload that keeps the server keeps it.
        agent.stop()
        try strata.write(Self.config(port: port, a: a, b: b, agentPort: agent.port, comment: "reloaded"))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(try eventually { try Self.stat(strata, "agent_status") == "L4CON" })
        #expect(try strata.serversState("be")["a"]?.weight == 5)
        #expect(try Self.stat(strata, "status") == "DRAIN (agent)")
        // A configured weight that changed wins over the agent's.
        try strata.write(Self.config(port: port, a: a, b: b, agentPort: agent.port, weight: 20))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(try strata.serversState("be")["a"]?.weight == 20)
    }

    @Test func aServerAddedAtRuntimeGetsItsAgentOnceEnabled() throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b")), dyn = try TestBackend(.name("dyn"))
        let agent = try AgentOrigin(reply: "25%\n")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, a: a, b: b, agentPort: agent.port))
        #expect(strata.waitForAdmin())
        #expect(try strata.admin("add server be/dyn 127.0.0.1:\(dyn.port) weight 8 agent-check agent-port \(agent.port) agent-inter 100ms")
                == "New server registered.")
        // As HAProxy: a dynamic server's agent is off until `enable agent`.
        #expect(try strata.serversState("be")["dyn"]?.fields[14] == "18")
        #expect(try strata.admin("enable agent be/dyn") == "")
        #expect(try strata.admin("enable server be/dyn") == "")
        #expect(try eventually { try strata.serversState("be")["dyn"]?.weight == 2 })
        #expect(try strata.serversState("be")["dyn"]?.fields[14] == "22")
    }
}
