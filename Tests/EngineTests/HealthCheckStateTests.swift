import ConfigModel
import Testing

@testable import Engine

/// The health state machine as a plain value: HAProxy's rise/fall counter, admin flags, reloads.
@Suite struct HealthCheckStateTests {
    static func options(rise: Int = 2, fall: Int = 3, check: Bool = true, weight: Int = 1, disabled: Bool = false) -> ServerOptions {
        var o = ServerOptions()
        o.check.enabled = check
        o.check.rise = rise
        o.check.fall = fall
        o.weight = weight
        o.disabled = disabled
        return o
    }

    static let pass = HealthCheckOutcome(.layer4OK, duration: 0)
    static let fail = HealthCheckOutcome(.layer4Connection, info: "Connection refused", duration: 0)

    @Test func newCheckedServerIsUpOneFailureAwayFromDown() {
        var h = ServerHealth(options: Self.options())
        #expect(h.operational == .running && h.isUsable && h.health == 2)
        #expect(h.record(Self.fail, now: 1) == .down(.check(Self.fail)))
        #expect(h.health == 0 && !h.isUsable && h.downTransitions == 1)
    }

    @Test func fullyUpServerGoesDownAfterFallFailuresAndUpAfterRise() {
        var h = ServerHealth(options: Self.options(rise: 2, fall: 3))
        #expect(h.record(Self.pass, now: 1) == nil)
        #expect(h.health == 4)
        #expect(h.record(Self.fail, now: 2) == nil)
        #expect(h.record(Self.fail, now: 3) == nil)
        #expect(h.statusText == "UP 1/3")
        #expect(h.record(Self.fail, now: 4) == .down(.check(Self.fail)))
        #expect(h.failedChecks == 3 && h.statusText == "DOWN")
        #expect(h.record(Self.fail, now: 5) == nil)
        #expect(h.record(Self.pass, now: 6) == nil)
        #expect(h.statusText == "DOWN 1/2")
        // A failure while going up starts again from 0.
        #expect(h.record(Self.fail, now: 7) == nil)
        #expect(h.record(Self.pass, now: 8) == nil)
        #expect(h.record(Self.pass, now: 9) == .up(.check(Self.pass)))
        #expect(h.health == 4 && h.isUsable && h.lastChange == 9)
    }

    /// `http-check disable-on-404`: a 404 (HAProxy's L7OKC) takes an UP server out of balancing
    /// (NOLB, persistent traffic still welcome), a 2xx brings it back; a DOWN server stays DOWN.
    @Test func aConditionalPassMakesAnUpServerNOLBAndADownOneStaysDown() {
        let conditional = HealthCheckOutcome(.layer7ConditionalOK, code: 404, duration: 0)
        let ok = HealthCheckOutcome(.layer7OK, code: 200, duration: 0)
        var h = ServerHealth(options: Self.options(rise: 2, fall: 3))
        #expect(h.record(conditional, now: 1) == .stopping(.check(conditional)))
        #expect(h.statusText == "NOLB" && !h.isUsable && h.acceptsPersistentTraffic)
        #expect(h.record(conditional, now: 2) == nil)
        #expect(h.record(ok, now: 3) == .up(.check(ok)))
        #expect(h.isUsable && h.statusText == "UP")
        for t in 4...6 { _ = h.record(Self.fail, now: Double(t)) }
        #expect(h.statusText == "DOWN")
        #expect(h.record(conditional, now: 7) == nil)
        #expect(h.statusText == "DOWN" && !h.isUsable)
    }

    /// `slowstart`: back UP from DOWN or maintenance, the weight in effect grows from 1 to the
    /// weight over the slow start; not at start.
    @Test func slowstartWarmsTheWeightUpAfterDown() {
        var options = Self.options(rise: 1, fall: 1, weight: 100)
        options.slowstart = 10_000
        var h = ServerHealth(options: options, now: 0)
        #expect(!h.isWarming && h.effectiveWeight == 100)
        _ = h.record(Self.fail, now: 1)
        _ = h.record(Self.pass, now: 2)
        #expect(h.isWarming && h.effectiveWeight == 1 && h.isUsable)
        h.warmup(now: 4.5)
        #expect(h.effectiveWeight == 25)
        h.warmup(now: 7)
        #expect(h.effectiveWeight == 50)
        h.warmup(now: 12)
        #expect(!h.isWarming && h.effectiveWeight == 100)
        _ = h.enterMaintenance(now: 13)
        _ = h.leaveMaintenance(now: 14)
        #expect(h.isWarming && h.effectiveWeight == 1)
    }

    @Test func maintenanceAndDrain() {
        var h = ServerHealth(options: Self.options())
        #expect(h.enterMaintenance(now: 1) == .enteringMaintenance(wasDown: false))
        #expect(h.admin == [.forcedMaintenance] && h.operational == .stopped && !h.isUsable)
        #expect(h.checkStateFlags == 14 && !h.checksRun)
        // Checks are paused; a stray result changes nothing.
        #expect(h.record(Self.pass, now: 2) == nil && h.operational == .stopped)
        #expect(h.enterMaintenance(now: 2) == nil)
        #expect(h.leaveMaintenance(now: 3) == .leavingMaintenance(drain: false))
        #expect(h.operational == .running && h.health == 2 && h.isUsable)
        #expect(h.enterDrain(now: 4) == .enteringDrain)
        #expect(!h.isUsable && h.acceptsPersistentTraffic && h.statusText == "DRAIN")
        #expect(h.leaveDrain(now: 5) == .leavingDrain(down: false))
        #expect(h.isUsable)
        _ = h.record(Self.fail, now: 6)
        #expect(h.enterMaintenance(now: 7) == .enteringMaintenance(wasDown: true))
    }

    @Test func disabledInConfigurationIsForcedAndConfiguredMaintenance() {
        let h = ServerHealth(options: Self.options(disabled: true))
        #expect(h.admin.rawValue == 5 && h.operational == .stopped && h.health == 0 && !h.isUsable)
    }

    @Test func healthForcedFromTheSocket() {
        var h = ServerHealth(options: Self.options(check: false))
        #expect(h.force(.stopped, now: 1) == .down(.adminSocket))
        #expect(h.force(.stopped, now: 1) == nil)
        #expect(h.force(.running, now: 2) == .up(.adminSocket))
        #expect(h.force(.stopping, now: 3) == .stopping(.adminSocket))
        #expect(!h.isUsable && h.acceptsPersistentTraffic)
    }

    @Test func weightZeroIsNotUsable() {
        var h = ServerHealth(options: Self.options(weight: 5))
        h.setWeight(0)
        #expect(!h.isUsable && h.initialWeight == 5)
        h.setWeight(3)
        #expect(h.isUsable)
    }

    @Test func reloadKeepsRuntimeChangesUnlessTheConfigurationChangedThem() {
        var h = ServerHealth(options: Self.options(weight: 4))
        h.setWeight(9)
        _ = h.enterMaintenance(now: 1)
        // Same configuration: MAINT and the runtime weight stay.
        #expect(h.reconcile(with: Self.options(weight: 4), now: 2) == nil)
        #expect(h.inMaintenance && h.weight == 9)
        // The configuration's weight changed: it wins.
        _ = h.reconcile(with: Self.options(weight: 6), now: 3)
        #expect(h.weight == 6 && h.initialWeight == 6 && h.inMaintenance)
        // `disabled` removed from the configuration: out of maintenance.
        var d = ServerHealth(options: Self.options(disabled: true))
        #expect(d.reconcile(with: Self.options(), now: 4) == .leavingMaintenance(drain: false))
        #expect(d.isUsable && d.admin.isEmpty)
    }

    @Test func reloadKeepsDownAndTheCountersWithNewRiseAndFall() {
        var h = ServerHealth(options: Self.options(rise: 2, fall: 3))
        _ = h.record(Self.fail, now: 1)
        _ = h.record(Self.pass, now: 2)
        #expect(h.health == 1 && h.operational == .stopped)
        _ = h.reconcile(with: Self.options(rise: 3, fall: 2), now: 3)
        #expect(h.health == 1 && h.operational == .stopped && h.rise == 3)
        var up = ServerHealth(options: Self.options(rise: 2, fall: 3))
        _ = up.record(Self.pass, now: 1)
        _ = up.reconcile(with: Self.options(rise: 1, fall: 1), now: 2)
        #expect(up.health == 1 && up.operational == .running)
        // Checks removed from a DOWN server: it starts as an unchecked one.
        _ = h.reconcile(with: Self.options(check: false), now: 4)
        #expect(h.operational == .running && h.isUsable && h.checkStateFlags == 0)
    }

    @Test func transitionLogTextIsHAProxys() {
        let outcome = HealthCheckOutcome(.layer7Status, code: 404, info: "Not \"Found\"", duration: 3)
        #expect(outcome.logText == ", reason: Layer7 wrong status, code: 404, info: \"Not \\\"Found\\\"\", check duration: 3ms")
        #expect(HealthCheckOutcome(.layer4Connection, info: "Connection refused", duration: 0).logText
            == ", reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms")
        #expect(HealthCheckOutcome(.healthAnalyze, info: "Detected 2 consecutive errors").logText
            == ", reason: Health analyze, info: \"Detected 2 consecutive errors\"")
    }
}
