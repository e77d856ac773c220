import ConfigModel
import Glibc

/// A frontend (or the front half of a `listen`) in one generation.
final class Frontend: @unchecked Sendable {
    let proxy: Proxy
    unowned(unsafe) var generation: Generation!
    let defaultBackend: Backend?
    /// Per-loop counters, shared with the same-named frontend of every generation (set when the
    /// generation activates).
    var counters: CounterSet
    let log: LogSinks
    /// The log line's format and options (`log-format`, `option httplog|tcplog`, …), compiled once.
    let logPlan: LogFormatPlan
    /// HTTP mode: the compiled rules (shared with the backend half of a `listen`).
    let rules: HTTPRuleSet?
    /// `tcp-request` rules and, in mode tcp, `use_backend` (nil: none).
    let tcpRules: TCPRuleSet?
    /// The listener keys of this frontend's `bind … accept-proxy` lines.
    let acceptProxyKeys: Set<ListenerKey>
    /// The listener keys of this frontend's `bind … proto h2` lines (HTTP/2 from the first byte).
    let h2Keys: Set<ListenerKey>
    /// `bind … tfo`: the listeners that accept TCP Fast Open.
    let fastOpenKeys: Set<ListenerKey>
    /// `maxconnrate`, `maxsessrate` or `rate-limit sessions` applies: accepting takes the rate locks.
    private(set) var limitsRates = false

    init(proxy: Proxy, defaultBackend: Backend?, rules: HTTPRuleSet? = nil, tcpRules: TCPRuleSet? = nil,
         log: LogSinks? = nil, loops: Int = 1) {
        self.proxy = proxy
        self.tcpRules = tcpRules
        acceptProxyKeys = Set(proxy.binds.filter(\.acceptProxy).map { ListenerKey($0) })
        h2Keys = proxy.mode == .http ? Set(proxy.binds.filter(\.forcesH2).map { ListenerKey($0) }) : []
        fastOpenKeys = Set(proxy.binds.filter(\.fastOpen).map { ListenerKey($0) })
        limitsRates = proxy.sessionRateLimit != nil
        counters = CounterSet(loops: loops, h2: true)
        self.defaultBackend = defaultBackend
        self.rules = rules
        self.log = log ?? LogSinks(proxy.log.targets, tag: proxy.log.tag)
        logPlan = LogFormatPlan(proxy)
    }

    var name: String { proxy.name }

    /// The global `maxconnrate` / `maxsessrate` apply to this frontend's listeners too.
    func limitProcessRates() { limitsRates = true }
}

extension Frontend {
    /// `tcp-request session` on a connection not yet handed to a session (no TLS to wait for):
    /// true when the rules rejected it. Then it is closed here (reset for `silent-drop`), counted
    /// in `dses`, its stick counters let go, and not logged (HAProxy's). `variables`: those the
    /// rules set, for the session.
    func rejectsSession(_ info: HTTPConnectionInfo, fd: Int32, on worker: Worker, variables: inout HTTPVariables) -> Bool {
        guard let rules = tcpRules, !rules.session.isEmpty else { return false }
        let decision = rules.evaluateSession(info, scratch: worker.ruleScratch)
        variables = decision.variables
        guard decision.reject else { return false }
        counters[worker.loop].deniedSessions += 1
        info.tracker?.end()
        if decision.silentDrop { resetOnClose(fd) }
        close(fd)
        return true
    }
}
