import CLibEV
import ConfigModel
import HTTP1

/// A canary generation (`strata reload --canary PERCENT`): built and bound exactly as a reload
/// builds and binds, then started beside the current generation instead of replacing it. Each
/// data loop gives it PERCENT of its new work — HTTP: requests, each choosing when its head is
/// complete (a keep-alive connection's next request may go either way; a request holds the
/// generation it chose until its answer is sent, as across a reload); TCP: connections, at
/// accept — with a counter of its own (`Worker.takesCanary`: no lock, no atomic). The control
/// loop posts every change (start, share, promote, abort) to every loop the way it posts a swap.
///
/// `canary promote` makes it the only active generation (the previous one drains: a reload's
/// swap); `canary abort` ends it: no new work goes to it, its sessions drain on it, listeners only
/// it had close after their queue. `--abort-on-errors P` aborts it by itself when its error share
/// over the window is P points above the active generation's (`CanaryWatch`).
extension Engine {
    /// Starts `generation` (built for this engine, its listeners acquired: `listenerFDs`) as a
    /// canary at `share` percent. Counters and server states carry over as in a reload (the same
    /// identities share one state with the current generation, whose settings they keep until a
    /// promotion); servers only it has are checked for it. `abortOnErrors`: the points of error share above the current generation's that
    /// abort it, measured over `window` seconds.
    public func startCanary(_ generation: Generation, share: Int, listenerFDs: [ListenerSocketKey: Int32],
                            abortOnErrors: Double?, window: Double) {
        adoptCounters(generation, beside: true)
        adoptTLSStores(generation)
        generation.state = .canary
        live.append(generation)
        canary = generation
        canaryShare = share
        let fds = UncheckedSendable(listenerFDs)
        let target = UncheckedSendable(generation)
        // Persistence cookies naming a server only one side has pin their requests to it.
        let pins = UncheckedSendable(current.flatMap { CanaryPins(canary: generation, active: $0) })
        _ = onEveryLoop { worker in
            var sockets: [ListenerKey: Int32] = [:]
            for (key, fd) in fds.value where key.loop == (key.bind.reusePort ? worker.index : 0) { sockets[key.bind] = fd }
            worker.startCanary(target.value, share: share, sockets: sockets, pins: pins.value)
        }
        healthMonitor.include(generation)
        if let abortOnErrors, let base = current {
            canaryWatch = CanaryWatch(engine: self, canary: generation, base: base, points: abortOnErrors, window: window)
        }
        report("generation \(generation.id) canary at \(share)% beside generation \(current?.id ?? 0)"
               + (abortOnErrors.map { ", aborted if its error share is \(CanaryWatch.format($0)) points above generation \(current?.id ?? 0)'s over \(CanaryWatch.format(window)) s" } ?? ""))
        statusChanged(canaryStatus)
    }

    /// `5`, `2.5`: how the canary's percentages and seconds are written.
    public static func formatNumber(_ value: Double) -> String { CanaryWatch.format(value) }

    /// What systemd's `STATUS=` says now (a canary running or not).
    public var canaryStatusLine: String { canaryStatus }

    var canaryStatus: String {
        guard let canary else { return "generation \(current?.id ?? 0) active" }
        return "generation \(current?.id ?? 0) active, generation \(canary.id) canary at \(canaryShare)%"
    }

    /// `canary set PERCENT`.
    func setCanaryShare(_ share: Int) {
        guard canary != nil else { return }
        canaryShare = share
        _ = onEveryLoop { $0.setCanaryShare(share) }
        report("generation \(canary!.id) canary share set to \(share)%")
        statusChanged(canaryStatus)
    }

    /// `canary promote`: the canary becomes the only active generation (a reload's swap: the
    /// previous one drains, its listeners the canary does not have close after their queue).
    func promoteCanary() -> Generation? {
        guard let generation = canary else { return nil }
        let previous = current
        let closed = activate(generation, listenerFDs: [:]) { _ in
            report("generation \(generation.id) promoted: the only active generation, generation \(previous?.id ?? 0) drains")
        }
        listenersClosed(closed)
        statusChanged(canaryStatus)
        return generation
    }

    /// `canary abort`, or the error watch: no new work goes to the canary, its sessions drain on
    /// it, listeners only it had close once their queue is served.
    @discardableResult
    func abortCanary(reason: String, automatic: Bool) -> Generation? {
        guard let generation = canary else { return nil }
        canaryWatch?.stop()
        canaryWatch = nil
        let closed = Array(Set(onEveryLoop { $0.abortCanary() }.joined()))
        canary = nil
        canaryShare = 0
        metrics.recordCanaryAbort(automatic: automatic)
        // Checkers only the canary had stop; the current generation keeps its own.
        if let current { healthMonitor.activate(current) }
        report("generation \(generation.id) canary aborted: \(reason)", level: automatic ? .alert : .notice)
        generation.state = .active
        startDraining(generation)
        listenersClosed(closed)
        statusChanged(automatic ? "generation \(current?.id ?? 0) active; canary generation \(generation.id) aborted: \(reason)" : canaryStatus)
        return generation
    }

    /// strata's runtime API commands of a canary (level admin): promote, abort, set its share.
    static let canaryCommands = [
        AdminCommand(["canary", "promote"], usage: ("canary promote", "make the canary the only active generation (admin level)"),
                     level: .admin) { c in
            guard c.arguments.isEmpty else { return .unknown }
            let previous = c.engine.current?.id ?? 0
            guard let g = c.engine.promoteCanary() else { return .text("Success=0\n--\nno canary is running") }
            return .text("Success=1\n--\ngeneration \(g.id) promoted: the only active generation; generation \(previous) draining")
        },
        AdminCommand(["canary", "abort"], usage: ("canary abort", "end the canary: no new work for it, its sessions drain (admin level)"),
                     level: .admin) { c in
            guard c.arguments.isEmpty else { return .unknown }
            guard let g = c.engine.abortCanary(reason: "canary abort (admin socket)", automatic: false) else {
                return .text("Success=0\n--\nno canary is running")
            }
            return .text("Success=1\n--\ngeneration \(g.id) aborted: draining with \(g.sessions) sessions; generation \(c.engine.current?.id ?? 0) takes all new work")
        },
        AdminCommand(["canary", "set"], usage: ("canary set <percent>", "the canary's share of new work, 0 to 100 (admin level)"),
                     level: .admin) { c in
            guard c.arguments.count == 1 else { return .unknown }
            guard let share = Int(c.arguments.first!), (0...100).contains(share) else {
                return .text("Success=0\n--\n'canary set' expects a percentage from 0 to 100")
            }
            guard let g = c.engine.canary else { return .text("Success=0\n--\nno canary is running") }
            c.engine.setCanaryShare(share)
            return .text("Success=1\n--\ngeneration \(g.id) canary at \(share)%")
        },
    ]
}

/// `--abort-on-errors P [--window S]`: every 100 ms the control loop reads both generations'
/// finished sessions and errors (`Generation.errors`: 5xx answers, servers unreachable or
/// resetting), keeps what the last `window` seconds added, and aborts the canary when its error
/// share is `points` percentage points above the active generation's, once it finished at least
/// `minimumSessions` sessions in the window (one unlucky request does not decide).
final class CanaryWatch: EventHandler {
    static let interval = 0.1
    static let minimumSessions = 10

    struct Sample {
        var time: Double
        var canaryDone: Int, canaryErrors: Int
        var baseDone: Int, baseErrors: Int
    }

    unowned(unsafe) let engine: Engine
    private let canary: Generation
    private let base: Generation
    let points: Double
    let window: Double
    private var samples: [Sample] = []
    private let timer = TimerWatcher(handler: EventHandler())

    init(engine: Engine, canary: Generation, base: Generation, points: Double, window: Double) {
        self.engine = engine
        self.canary = canary
        self.base = base
        self.points = points
        self.window = window
        super.init()
        timer.setHandler(self)
        samples.append(sample())
        timer.arm(every: CanaryWatch.interval, on: engine.loop)
    }

    private var stopped = false

    func stop() {
        guard !stopped else { return }
        stopped = true
        timer.release(on: engine.loop)
    }

    private func sample() -> Sample {
        Sample(time: MonotonicClock.now(),
               canaryDone: canary.sessionsAccepted - canary.sessions, canaryErrors: canary.errors,
               baseDone: base.sessionsAccepted - base.sessions, baseErrors: base.errors)
    }

    /// `5`, `2.5`: a whole number without its `.0`, else one decimal.
    static func format(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        return tenths.truncatingRemainder(dividingBy: 10) == 0 ? String(Int(tenths / 10)) : String(tenths / 10)
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        guard engine.canary === canary else { return stop() }
        let now = sample()
        samples.append(now)
        // The oldest sample kept is the last one at or before the window's start.
        while samples.count > 2 && samples[1].time <= now.time - window { samples.removeFirst() }
        let first = samples[0]
        let done = now.canaryDone - first.canaryDone
        guard done >= CanaryWatch.minimumSessions else { return }
        let share = 100 * Double(now.canaryErrors - first.canaryErrors) / Double(done)
        let baseDone = now.baseDone - first.baseDone
        let baseShare = baseDone > 0 ? 100 * Double(now.baseErrors - first.baseErrors) / Double(baseDone) : 0
        guard share - baseShare >= points else { return }
        let span = CanaryWatch.format(min(window, now.time - first.time))
        let reason = "error share \(CanaryWatch.format(share))% of \(done) sessions against \(CanaryWatch.format(baseShare))% of \(baseDone) on generation \(base.id) over the last \(span) s (abort at \(CanaryWatch.format(points)) points)"
        // Aborting releases this watch: it lives until the call returns.
        withExtendedLifetime(self) { _ = engine.abortCanary(reason: reason, automatic: true) }
    }
}

/// A persistence cookie's server as a configuration gives it: `cookie NAME …` on a backend, `server
/// … cookie VALUE` on one of its servers.
struct PersistenceCookie: Hashable, Sendable {
    let name: String
    let value: String
}

/// Which generation a request's persistence cookie pins it to while a canary runs: a cookie
/// (`cookie NAME insert|rewrite|prefix` on a backend) whose value names a server that only one of
/// the two generations has — by the server's `cookie` value under that cookie name — sends its
/// request to that generation, whatever the share; one that both have (the same server on both
/// sides, or two servers given the same value) or that neither has leaves the request to the
/// share. So a client a canary's new server answered (and gave its cookie) stays on the canary,
/// and one an old server answered stays on the active generation, as long as the canary runs.
/// Built on the control loop when the canary starts, then only read by the data loops.
final class CanaryPins: @unchecked Sendable {
    private struct Entry {
        let value: [UInt8]
        let canary: Bool
    }
    /// Per cookie name (lowercase is not applied: cookie names are case-sensitive), its values
    /// by a hash of their bytes.
    private let names: [(name: [UInt8], values: [Int: [Entry]])]

    /// nil when no value names a server of one generation alone (nothing to pin).
    init?(canary: Generation, active: Generation) {
        let ours = canary.persistenceCookies, theirs = active.persistenceCookies
        var byName: [String: [Int: [Entry]]] = [:]
        for (cookies, other, toCanary) in [(ours, theirs, true), (theirs, ours, false)] {
            for c in cookies where !other.contains(c) {
                let bytes = Array(c.value.utf8)
                let hash = bytes.withUnsafeBytes { CanaryPins.hash($0) }
                byName[c.name, default: [:]][hash, default: []].append(Entry(value: bytes, canary: toCanary))
            }
        }
        guard !byName.isEmpty else { return nil }
        names = byName.map { (Array($0.key.utf8), $0.value) }
    }

    /// FNV-1a over the bytes (no allocation: a request's cookie value is read in place).
    @inline(__always)
    private static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h)
    }

    /// The side a value pins to: the whole value (rewrite mode, or insert without dates), else its
    /// part before `|` (insert mode's dates) or `~` (prefix mode's separator).
    private func side(_ value: UnsafeRawBufferPointer, among values: [Int: [Entry]]) -> Bool? {
        func lookup(_ v: UnsafeRawBufferPointer) -> Bool? {
            guard !v.isEmpty, let entries = values[CanaryPins.hash(v)] else { return nil }
            for e in entries where e.value.withUnsafeBytes({ HTTPRuleBytes.equals($0, v) }) { return e.canary }
            return nil
        }
        if let s = lookup(value) { return s }
        guard let cut = value.firstIndex(where: { $0 == 0x7C || $0 == 0x7E }) else { return nil }
        return lookup(HTTPRuleBytes.slice(value, 0..<cut))
    }

    /// True: the request goes to the canary; false: to the active generation; nil: its cookies
    /// pin nothing (the share decides). The first cookie that pins decides.
    func side(of fields: [HTTPField], input: UnsafeRawBufferPointer) -> Bool? {
        let cookieName = HTTPRuleBytes.literal("cookie")
        var result: Bool?
        fields.withUnsafeBufferPointer { fields in
            for field in fields where result == nil && field.name.count == 6 {
                guard HTTPRuleBytes.equalsIgnoringCase(HTTPRuleBytes.slice(input, field.name), lowercase: cookieName) else { continue }
                let value = HTTPRuleBytes.slice(input, field.value)
                HTTPCookieItem.forEach(in: value) { item in
                    guard result == nil else { return }
                    let name = HTTPRuleBytes.slice(value, item.name)
                    for entry in names where entry.name.withUnsafeBytes({ HTTPRuleBytes.equals($0, name) }) {
                        result = side(HTTPRuleBytes.slice(value, item.value), among: entry.values)
                        break
                    }
                }
            }
        }
        return result
    }
}
