import ConfigModel
import Testing

@testable import Engine

/// The agent check as plain values: the line an agent answers read word by word as HAProxy reads
/// it, its probe on the wire, and what its results do to a server's state.
@Suite struct AgentCheckTests {
    @Test func wordsInAnyOrderTheLastOfEachKindWinning() {
        let r = AgentReply("drain, 75%\tmaxconn:30 up weight:20 ready # ignored")
        #expect(r.admin == .ready)
        #expect(r.weight == "20")
        #expect(r.maxconn == "30")
        #expect(r.health == .up("up"))
        #expect(r.firstUnknown == nil)
        #expect(r.description == "ignored")
    }

    @Test func downWordsKeepTheirTextAndDescription() {
        #expect(AgentReply("down #broken") == { var r = AgentReply(""); r.health = .down("down"); r.description = "broken"; return r }())
        // HAProxy ends a word at a blank or a comma only: `down#broken` is one word it does not know.
        #expect(AgentReply("down#broken").health == nil && AgentReply("down#broken").firstUnknown == "down#broken")
        #expect(AgentReply("STOPPED #  on purpose").health == .down("STOPPED"))
        #expect(AgentReply("STOPPED #  on purpose").description == "on purpose")
        #expect(AgentReply("fail").health == .down("fail"))
        let odd = AgentReply("hello 50% world")
        #expect(odd.firstUnknown == "hello" && odd.weight == "50%" && odd.health == nil)
        #expect(AgentReply("maint").admin == .maint)
        #expect(AgentReply("").health == nil && AgentReply("").admin == nil)
    }

    @Test func maxconnValuesAsHAProxyParsesThem() {
        #expect(AgentReply.maxconn("5") == .success(5))
        #expect(AgentReply.maxconn("") == .failure(ServerAdminError("maxconn string empty or preceded by garbage")))
        #expect(AgentReply.maxconn("5x") == .failure(ServerAdminError("Trailing garbage in maxconn string")))
    }

    static func feed(_ probe: inout HealthCheckProbe, _ text: String) -> HealthCheckProbe.Action {
        Array(text.utf8).withUnsafeBytes { probe.received($0) }
    }

    @Test func probeSendsAgentSendThenReadsOneLine() {
        var p = HealthCheckProbe(agentSend: Array("hello\n".utf8))
        #expect(p.start() == .connect(port: nil))
        #expect(p.connected() == .send(Array("hello\n".utf8)))
        #expect(p.sent() == .receive)
        #expect(Self.feed(&p, "50% dr") == .receive)
        #expect(p.agentLine == nil)
        #expect(Self.feed(&p, "ain\r\nmore") == .done(HealthCheckOutcome(.checked)))
        #expect(p.agentLine == "50% drain")
    }

    @Test func probeWithoutSendWaitsAndCallsACutLineIncomplete() {
        var p = HealthCheckProbe(agentSend: [])
        _ = p.start()
        #expect(p.connected() == .receive)
        #expect(Self.feed(&p, "up") == .receive)
        #expect(p.inputEnded() == .done(HealthCheckOutcome(.checked, info: "Ignoring incomplete line from agent")))
        #expect(p.agentLine == nil)
    }

    static func options(check: Bool) -> ServerOptions {
        var o = ServerOptions()
        o.check.enabled = check
        o.check.agent.enabled = true
        o.check.agent.port = 1
        return o
    }

    static let down = HealthCheckOutcome(.layer7Status, info: "via agent : down (broken)", duration: 0)
    static let up = HealthCheckOutcome(.layer7OK, info: "via agent : up", duration: 0)

    @Test func agentDownHoldsTheServerDownWhateverItsHealthCheckSays() {
        var h = ServerHealth(options: Self.options(check: true))
        #expect(h.recordAgent(Self.down, now: 1) == .down(.check(Self.down)))
        #expect(!h.isUsable && h.statusText == "DOWN (agent)" && h.agentHealth == 0)
        // Passing health checks do not bring it back while the agent says down.
        #expect(h.record(HealthCheckOutcome(.layer4OK), now: 2) == nil)
        #expect(h.record(HealthCheckOutcome(.layer4OK), now: 3) == nil)
        #expect(!h.isUsable)
        #expect(h.recordAgent(Self.up, now: 4) == .up(.check(Self.up)))
        #expect(h.isUsable && h.agentHealth == 1)
    }

    @Test func agentUpWaitsForAFailingHealthCheck() {
        var h = ServerHealth(options: Self.options(check: true))
        _ = h.record(HealthCheckOutcome(.layer4Connection), now: 1)
        #expect(h.operational == .stopped)
        #expect(h.recordAgent(Self.up, now: 2) == nil)
        #expect(h.operational == .stopped)
    }

    @Test func unreachableAgentChangesNothing() {
        var h = ServerHealth(options: Self.options(check: false))
        let refused = HealthCheckOutcome(.layer4Connection, info: "Connection refused", duration: 0)
        #expect(h.recordAgent(refused, now: 1) == nil)
        #expect(h.recordAgent(HealthCheckOutcome(.layer7Timeout), now: 2) == nil)
        #expect(h.isUsable && h.agentHealth == 1 && h.lastAgentCheck.status == .layer7Timeout)
    }

    @Test func aSavedDisableAgentIsRestoredAsHAProxyDoes() {
        var h = ServerHealth(options: Self.options(check: false))
        _ = h.restore(SavedServerState(backend: "be", server: "s", agentState: 0x12), now: 1)
        #expect(!h.agentEnabled && !h.agentRuns && h.agentStateFlags == 0x12)
        var enabled = ServerHealth(options: Self.options(check: false))
        _ = enabled.restore(SavedServerState(backend: "be", server: "s", agentState: 0x16), now: 1)
        #expect(enabled.agentRuns)
    }

    @Test func reloadKeepsAgentStateAndMaxconnUnlessTheLineChangesThem() {
        let options = Self.options(check: false)
        var h = ServerHealth(options: options)
        _ = h.recordAgent(Self.down, now: 1)
        h.setWeight(0)
        h.setMaxconn(5)
        _ = h.reconcile(with: options, now: 2)
        #expect(h.operational == .stopped && h.weight == 0 && h.runtimeMaxconn == 5)
        var changed = options
        changed.maxconn = 100
        changed.check.agent.enabled = false
        _ = h.reconcile(with: changed, now: 3)
        // The agent is gone: nothing holds this unchecked server DOWN; the new maxconn wins.
        #expect(h.operational == .running && h.runtimeMaxconn == nil && h.agentStateFlags == 0)
    }
}
