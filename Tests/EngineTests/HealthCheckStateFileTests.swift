import ConfigModel
import Testing

@testable import Engine

/// `load-server-state-from-file` at start: a saved state meets a fresh server by HAProxy's rules
/// (its srv_state_srv_update), as a plain value.
@Suite struct HealthCheckStateFileTests {
    static func options(rise: Int = 2, fall: Int = 3, check: Bool = true, weight: Int = 1, disabled: Bool = false) -> ServerOptions {
        HealthCheckStateTests.options(rise: rise, fall: fall, check: check, weight: weight, disabled: disabled)
    }

    static func saved(op: Int = 2, admin: Int = 0, uweight: Int = 1, iweight: Int = 1, since: Int = 0,
                      status: Int = 6, health: Int = 4, checkState: Int = 6) -> SavedServerState {
        SavedServerState(backend: "be", server: "s1", operationalState: op, adminState: admin, userWeight: uweight,
                         initialWeight: iweight, secondsSinceLastChange: since, checkStatus: status, checkResult: 3,
                         checkHealth: health, checkState: checkState)
    }

    @Test func savedDownServerStartsDownAndNeedsRiseChecks() {
        var h = ServerHealth(options: Self.options(), now: 100)
        #expect(h.restore(Self.saved(op: 0, status: 8, health: 0), now: 100) == [.down(.stateFile)])
        #expect(!h.isUsable && h.health == 0 && h.statusText == "DOWN")
        #expect(h.lastCheck.status == .layer4Connection && h.lastChange == 100)
        #expect(h.record(HealthCheckStateTests.pass, now: 101) == nil)
        #expect(h.record(HealthCheckStateTests.pass, now: 102) == .up(.check(HealthCheckStateTests.pass)))
    }

    @Test func savedUpServerStartsAtFullHealth() {
        var h = ServerHealth(options: Self.options(rise: 2, fall: 3))
        #expect(h.restore(Self.saved(op: 2, since: 30, health: 4), now: 100).isEmpty)
        #expect(h.isUsable && h.health == 4 && h.statusText == "UP" && h.lastChange == 70)
        // One failure no longer takes it down (a fresh checked server is one failure away).
        #expect(h.record(HealthCheckStateTests.fail, now: 101) == nil)
    }

    @Test func stoppingAndStartingClampTheHealthAsHAProxy() {
        var stopping = ServerHealth(options: Self.options(rise: 2, fall: 3))
        #expect(stopping.restore(Self.saved(op: 3, health: 0), now: 1) == [.stopping(.stateFile)])
        #expect(stopping.health == 2 && stopping.operational == .stopping && !stopping.isUsable)
        var fallOne = ServerHealth(options: Self.options(rise: 2, fall: 1))
        #expect(fallOne.restore(Self.saved(op: 3, health: 2), now: 1) == [.down(.stateFile)])
        var starting = ServerHealth(options: Self.options(rise: 3, fall: 3))
        #expect(starting.restore(Self.saved(op: 1, health: 9), now: 1).isEmpty)
        #expect(starting.health == 2 && starting.operational == .starting && starting.isUsable)
        var riseOne = ServerHealth(options: Self.options(rise: 1, fall: 3))
        _ = riseOne.restore(Self.saved(op: 1, health: 0), now: 1)
        #expect(riseOne.operational == .running && riseOne.health == 3)
    }

    @Test func maintenanceFromTheSocketIsKeptAConfigurationChangeWins() {
        // Forced maintenance (0x01) on a server the configuration leaves enabled.
        var forced = ServerHealth(options: Self.options())
        #expect(forced.restore(Self.saved(op: 0, admin: 1, health: 0), now: 1) == [.down(.stateFile), .enteringMaintenance(wasDown: true)])
        #expect(forced.inMaintenance && forced.statusText == "MAINT")
        // `disabled` then, still `disabled`, enabled from the socket (0x04): enabled.
        var enabled = ServerHealth(options: Self.options(disabled: true))
        #expect(enabled.restore(Self.saved(op: 2, admin: 4), now: 1) == [.leavingMaintenance(drain: false)])
        #expect(enabled.isUsable)
        // `disabled` then and now (0x05): stays in maintenance.
        var still = ServerHealth(options: Self.options(disabled: true))
        #expect(still.restore(Self.saved(op: 0, admin: 5, health: 0), now: 1).isEmpty)
        #expect(still.inMaintenance)
        // `disabled` then, no longer (0x05 saved, plain server now): the configuration wins.
        var changed = ServerHealth(options: Self.options())
        _ = changed.restore(Self.saved(op: 2, admin: 5), now: 1)
        #expect(!changed.inMaintenance && changed.isUsable)
        // Not `disabled` then, `disabled` now (0x01 saved): the configuration wins.
        var nowDisabled = ServerHealth(options: Self.options(disabled: true))
        _ = nowDisabled.restore(Self.saved(op: 0, admin: 1, health: 0), now: 1)
        #expect(nowDisabled.inMaintenance)
    }

    @Test func drainAndWeightFollowTheConfiguredWeight() {
        var drain = ServerHealth(options: Self.options(weight: 10))
        #expect(drain.restore(Self.saved(admin: 8, uweight: 10, iweight: 10), now: 1) == [.enteringDrain])
        #expect(drain.inDrain && !drain.isUsable)
        // A drain that came from a configured weight of 0, now raised: dropped.
        var raised = ServerHealth(options: Self.options(weight: 10))
        _ = raised.restore(Self.saved(admin: 8, uweight: 0, iweight: 0), now: 1)
        #expect(!raised.inDrain && raised.weight == 10)
        // The runtime weight is kept while the configured one is the same.
        var same = ServerHealth(options: Self.options(weight: 20))
        _ = same.restore(Self.saved(uweight: 10, iweight: 20), now: 1)
        #expect(same.weight == 10 && same.initialWeight == 20)
        var changed = ServerHealth(options: Self.options(weight: 30))
        _ = changed.restore(Self.saved(uweight: 10, iweight: 20), now: 1)
        #expect(changed.weight == 30)
    }

    @Test func disabledHealthIsKept() {
        var h = ServerHealth(options: Self.options())
        _ = h.restore(Self.saved(checkState: 0x02), now: 1)
        #expect(!h.checkEnabled && h.checkStateFlags == 0x02)
        var unchecked = ServerHealth(options: Self.options(check: false))
        _ = unchecked.restore(Self.saved(checkState: 0x02), now: 1)
        #expect(unchecked.checkEnabled)
    }
}
