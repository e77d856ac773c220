import HTTP1
import ConfigModel

/// Which series a scrape asks for: HAProxy's `scope` parameters (`/metrics?scope=server`), plus
/// strata's `generation` (generations and reloads). No parameter: everything.
struct PrometheusScope: OptionSet, Sendable {
    let rawValue: Int
    init(rawValue: Int) { self.rawValue = rawValue }
    static let process = PrometheusScope(rawValue: 1)
    static let frontend = PrometheusScope(rawValue: 2)
    static let backend = PrometheusScope(rawValue: 4)
    static let server = PrometheusScope(rawValue: 8)
    static let generation = PrometheusScope(rawValue: 16)
    static let all: PrometheusScope = [.process, .frontend, .backend, .server, .generation]

    /// The scope a request's query asks for (`scope=frontend&scope=server`, `scope=*`,
    /// `scope=global` for the process, `no-maint`), HAProxy's parameters.
    static func parse(query: Substring) -> (scope: PrometheusScope, noMaint: Bool) {
        var scope: PrometheusScope = []
        var any = false
        var noMaint = false
        for item in query.split(separator: "&") {
            if item == "no-maint" { noMaint = true; continue }
            guard item.hasPrefix("scope=") else { continue }
            any = true
            switch item.dropFirst(6) {
            case "*": scope = .all
            case "global", "process": scope.insert(.process)
            case "frontend": scope.insert(.frontend)
            case "backend": scope.insert(.backend)
            case "server": scope.insert(.server)
            case "generation", "strata": scope.insert(.generation)
            default: break
            }
        }
        return (any ? scope : .all, noMaint)
    }
}

/// `http-request use-service prometheus-exporter`: the series of the live generations, collected
/// when scraped (on the loop's thread, reading the plain counters the sessions update), named
/// after HAProxy's exporter with the prefix `strata_`, plus strata's per-generation and reload
/// series. A generation's series disappear when it retires; carried counters never go back on a
/// reload (the same objects count across generations).
extension Engine {
    private typealias ProxyGetter = (StatsProxyView, CounterSet) -> Int?
    private typealias ServerGetter = (BackendServer, ServerState) -> Int?

    private static let serverStates: [StaticString] = ["DOWN", "UP", "MAINT", "DRAIN", "NOLB"]
    private static let checkStates: [(StaticString, HealthCheckStatus?)] = [
        ("HANA", .healthAnalyze), ("SOCKERR", .socketError), ("L4OK", .layer4OK), ("L4TOUT", .layer4Timeout),
        ("L4CON", .layer4Connection), ("L6OK", .layer6OK), ("L6TOUT", .layer6Timeout), ("L6RSP", .layer6Response),
        ("L7TOUT", .layer7Timeout), ("L7RSP", .layer7Response), ("L7OK", .layer7OK), ("L7OKC", .layer7ConditionalOK),
        ("L7STS", .layer7Status), ("PROCERR", nil), ("PROCTOUT", nil), ("PROCOK", nil),
    ]
    private static let codeClasses: [StaticString] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"]

    /// HAProxy's exporter's server state (promex_srv_status).
    static func prometheusState(_ h: ServerHealth) -> Int {
        var state = 0  // DOWN
        if h.operational == .running || h.operational == .starting {
            state = h.inDrain ? 3 : 1
        } else if h.operational == .stopping {
            state = 4
        }
        if h.inMaintenance { state = 2 }
        return state
    }

    /// The exposition text of a scrape. Loop thread.
    func prometheusMetrics(scope: PrometheusScope = .all, noMaint: Bool = false) -> [UInt8] {
        var w = prometheusWriter(scope: scope, noMaint: noMaint)
        return w.finish()
    }

    /// The same, in a writer whose buffer the caller takes over (`takeBuffer`).
    func prometheusWriter(scope: PrometheusScope, noMaint: Bool) -> PrometheusWriter {
        let views = statsProxies()
        let serverCount = views.reduce(0) { $0 + ($1.backend?.servers.count ?? 0) }
        var w = PrometheusWriter(capacity: 16384 + serverCount * (scope.contains(.server) ? 4096 : 0) + views.count * 4096)
        if scope.contains(.process) { writeProcess(&w) }
        if scope.contains(.generation) { writeGenerations(&w) }
        if scope.contains(.frontend) { writeFrontends(&w, views) }
        if scope.contains(.backend) { writeBackends(&w, views) }
        if scope.contains(.server) { writeServers(&w, views, noMaint: noMaint) }
        return w
    }

    // MARK: process

    private func writeProcess(_ w: inout PrometheusWriter) {
        let info = statsProcessInfo
        let registry = metrics
        func gauge(_ name: StaticString, _ help: StaticString, _ value: Int) {
            w.family(name, .gauge, help)
            w.append(name); w.append(" "); w.int(value); w.end()
        }
        w.family("strata_process_start_time_seconds", .gauge, "Start time in seconds")
        w.append("strata_process_start_time_seconds "); w.int(Int(registry.startedAt)); w.end()
        w.family("strata_process_uptime_seconds", .gauge, "How long ago this process was started, in seconds")
        w.append("strata_process_uptime_seconds "); w.double(max(0, wallClock() - registry.startedAt)); w.end()
        gauge("strata_process_max_connections", "Maximum number of concurrent connections", info.maxconn)
        gauge("strata_process_max_fds", "Maximum number of open file descriptors", info.fdLimit)
        gauge("strata_process_current_connections", "Number of active sessions", info.currentConnections)
        w.family("strata_process_connections_total", .counter, "Total number of created sessions")
        w.append("strata_process_connections_total "); w.int(info.cumulativeConnections); w.end()
        w.family("strata_process_requests_total", .counter, "Total number of requests (TCP or HTTP)")
        w.append("strata_process_requests_total "); w.int(info.cumulativeRequests); w.end()
        gauge("strata_process_listeners", "Number of listeners", info.listeners)
        gauge("strata_process_stopping", "Non zero means stopping in progress", info.stopping ? 1 : 0)
        w.family("strata_process_bytes_out_total", .counter, "Total number of bytes emitted to clients")
        w.append("strata_process_bytes_out_total "); w.unsigned(info.bytesOut); w.end()
    }

    // MARK: generations and reloads

    private func writeGenerations(_ w: inout PrometheusWriter) {
        let now = MonotonicClock.now()
        let gens = liveGenerations
        let registry = metrics
        func perGeneration(_ name: StaticString, _ kind: PrometheusWriter.Kind, _ help: StaticString,
                           where include: (Generation) -> Bool = { _ in true }, _ value: (Generation, inout PrometheusWriter) -> Void) {
            w.family(name, kind, help)
            for g in gens where include(g) {
                w.append(name); w.append("{generation=\""); w.int(g.id); w.append("\"} ")
                value(g, &w)
                w.end()
            }
        }
        w.family("strata_generations", .gauge, "Live generations, per state")
        for state in [GenerationState.active, .canary, .draining] {
            w.append("strata_generations{state=\""); w.append(state.rawValue); w.append("\"} ")
            w.int(gens.filter { $0.state == state }.count); w.end()
        }
        w.family("strata_generation_info", .gauge, "A live generation: its state and configuration hash (value 1)")
        for g in gens {
            w.append("strata_generation_info{generation=\""); w.int(g.id)
            w.append("\",state=\""); w.append(g.state.rawValue)
            w.append("\",hash=\""); w.labelValue(g.config.hash); w.append("\"} 1"); w.end()
        }
        perGeneration("strata_generation_sessions", .gauge, "Sessions the generation holds now (TCP connections, HTTP requests)") { g, w in w.int(g.sessions) }
        perGeneration("strata_generation_sessions_total", .counter, "Sessions started under the generation") { g, w in w.int(g.sessionsAccepted) }
        perGeneration("strata_generation_sessions_killed_total", .counter, "Sessions closed at the generation's drain deadline or by max-generations") { g, w in w.int(g.sessionsKilled) }
        perGeneration("strata_generation_errors_total", .counter, "Sessions of the generation that ended in an error of its making (5xx answers, servers unreachable or resetting): what a canary is compared by") { g, w in w.int(g.errors) }
        perGeneration("strata_generation_listeners", .gauge, "Listeners serving the generation") { g, w in w.int(g.listenerRefs) }
        perGeneration("strata_generation_age_seconds", .gauge, "Seconds since the generation was built") { g, w in w.double(max(0, now - g.builtAt)) }
        perGeneration("strata_generation_draining_seconds", .gauge, "Seconds since the generation started draining",
                      where: { $0.state == .draining && $0.drainingSince != nil }) { g, w in
            w.double(max(0, now - (g.drainingSince ?? now)))
        }
        w.family("strata_canary_share", .gauge, "The canary generation's share of new work in percent (0 without a canary)")
        w.append("strata_canary_share "); w.int(canary == nil ? 0 : canaryShare); w.end()
        w.family("strata_canary_aborts_total", .counter, "Canaries aborted, by the error watch (--abort-on-errors) or the admin socket")
        w.append("strata_canary_aborts_total{reason=\"errors\"} "); w.int(registry.canaryAbortsAutomatic); w.end()
        w.append("strata_canary_aborts_total{reason=\"admin\"} "); w.int(registry.canaryAbortsAdmin); w.end()
        w.family("strata_reloads_total", .counter, "Reloads, per result (a failed reload changed nothing)")
        w.append("strata_reloads_total{result=\"success\"} "); w.int(registry.reloadsSucceeded); w.end()
        w.append("strata_reloads_total{result=\"failure\"} "); w.int(registry.reloadsFailed); w.end()
        w.family("strata_reload_duration_seconds", .histogram, "Time to load, check, bind and build a generation")
        var cumulative = 0
        for (i, bound) in MetricsRegistry.reloadBuckets.enumerated() {
            cumulative += registry.reloadBucketCounts[i]
            w.append("strata_reload_duration_seconds_bucket{le=\""); w.bound(bound); w.append("\"} "); w.int(cumulative); w.end()
        }
        cumulative += registry.reloadBucketCounts[MetricsRegistry.reloadBuckets.count]
        w.append("strata_reload_duration_seconds_bucket{le=\"+Inf\"} "); w.int(cumulative); w.end()
        w.append("strata_reload_duration_seconds_sum "); w.double(registry.reloadSecondsSum); w.end()
        w.append("strata_reload_duration_seconds_count "); w.int(cumulative); w.end()
    }

    // MARK: frontends and backends

    private func proxyFamily(_ w: inout PrometheusWriter, _ views: [StatsProxyView], backend: Bool,
                             _ name: StaticString, _ kind: PrometheusWriter.Kind, _ help: StaticString,
                             httpOnly: Bool = false, _ value: ProxyGetter) {
        var wroteHeader = false
        for view in views {
            guard let counters = backend ? view.backend?.counters : view.frontend?.counters else { continue }
            if httpOnly && view.proxy.mode != .http { continue }
            guard let v = value(view, counters) else { continue }
            if !wroteHeader { w.family(name, kind, help); wroteHeader = true }
            w.append(name); w.append("{proxy=\""); w.labelValue(view.name); w.append("\"} "); w.int(v); w.end()
        }
    }

    private func proxyStatus(_ w: inout PrometheusWriter, _ views: [StatsProxyView], backend: Bool) {
        let name: StaticString = backend ? "strata_backend_status" : "strata_frontend_status"
        var wroteHeader = false
        for view in views {
            let up: Bool
            if backend {
                guard let b = view.backend else { continue }
                up = b.servers.isEmpty || b.servers.contains { $0.isUsable }
            } else {
                guard view.frontend != nil else { continue }
                up = view.current
            }
            if !wroteHeader { w.family(name, .gauge, "Current status of the service, per state label value."); wroteHeader = true }
            for (state, on) in [("DOWN" as StaticString, !up), ("UP", up)] {
                w.append(name); w.append("{proxy=\""); w.labelValue(view.name); w.append("\",state=\""); w.append(state)
                w.append("\"} "); w.int(on ? 1 : 0); w.end()
            }
        }
    }

    private func proxyResponses(_ w: inout PrometheusWriter, _ views: [StatsProxyView], backend: Bool) {
        let name: StaticString = backend ? "strata_backend_http_responses_total" : "strata_frontend_http_responses_total"
        var wroteHeader = false
        for view in views where view.proxy.mode == .http {
            guard let c = backend ? view.backend?.counters : view.frontend?.counters else { continue }
            if !wroteHeader { w.family(name, .counter, "Total number of HTTP responses, per status class"); wroteHeader = true }
            for (i, code) in Engine.codeClasses.enumerated() {
                w.append(name); w.append("{proxy=\""); w.labelValue(view.name); w.append("\",code=\""); w.append(code)
                w.append("\"} "); w.int(c.responsesByClass[i]); w.end()
            }
        }
    }

    private func writeFrontends(_ w: inout PrometheusWriter, _ views: [StatsProxyView]) {
        let maxconn = statsProcessInfo.maxconn
        func family(_ name: StaticString, _ kind: PrometheusWriter.Kind, _ help: StaticString, httpOnly: Bool = false, _ value: ProxyGetter) {
            proxyFamily(&w, views, backend: false, name, kind, help, httpOnly: httpOnly, value)
        }
        family("strata_frontend_current_sessions", .gauge, "Number of current sessions on the frontend, backend or server") { $1.currentSessions }
        family("strata_frontend_max_sessions", .gauge, "Highest value of current sessions encountered since process started") { $1.maxSessions }
        family("strata_frontend_limit_sessions", .gauge, "Frontend/listener/server's maxconn, backend's fullconn") { v, _ in v.proxy.maxconn ?? maxconn }
        family("strata_frontend_sessions_total", .counter, "Total number of sessions since process started") { $1.totalSessions }
        family("strata_frontend_bytes_in_total", .counter, "Total number of request bytes since process started") { Int(truncatingIfNeeded: $1.bytesIn) }
        family("strata_frontend_bytes_out_total", .counter, "Total number of response bytes since process started") { Int(truncatingIfNeeded: $1.bytesOut) }
        family("strata_frontend_requests_denied_total", .counter, "Total number of denied requests since process started") { $1.deniedRequests }
        family("strata_frontend_request_errors_total", .counter, "Total number of invalid requests since process started") { $1.requestErrors }
        proxyStatus(&w, views, backend: false)
        family("strata_frontend_http_requests_total", .counter, "Total number of HTTP requests processed by this object since the worker process started", httpOnly: true) { $1.requests }
        proxyResponses(&w, views, backend: false)
        family("strata_frontend_connections_total", .counter, "Total number of new connections accepted on this frontend since the worker process started") { $1.totalSessions }
        family("strata_frontend_intercepted_requests_total", .counter, "Total number of HTTP requests intercepted on the frontend (redirects/stats/services) since the worker process started", httpOnly: true) { $1.intercepted }
        family("strata_frontend_denied_connections_total", .counter, "Total number of incoming connections blocked on a listener/frontend since the worker process started") { $1.deniedConnections }
    }

    private func writeBackends(_ w: inout PrometheusWriter, _ views: [StatsProxyView]) {
        let now = loop.now
        let monotonic = MonotonicClock.now()
        func family(_ name: StaticString, _ kind: PrometheusWriter.Kind, _ help: StaticString, httpOnly: Bool = false, _ value: ProxyGetter) {
            proxyFamily(&w, views, backend: true, name, kind, help, httpOnly: httpOnly, value)
        }
        func time(_ name: StaticString, _ help: StaticString, _ value: (StatsTimes) -> Int) {
            var wroteHeader = false
            for view in views {
                guard let c = view.backend?.counters else { continue }
                if !wroteHeader { w.family(name, .gauge, help); wroteHeader = true }
                w.append(name); w.append("{proxy=\""); w.labelValue(view.name); w.append("\"} "); w.milliseconds(value(c.times)); w.end()
            }
        }
        family("strata_backend_current_queue", .gauge, "Number of current queued connections") { v, _ in v.queued }
        family("strata_backend_max_queue", .gauge, "Highest value of queued connections encountered since process started") { $1.queueMax }
        family("strata_backend_current_sessions", .gauge, "Number of current sessions on the frontend, backend or server") { $1.currentSessions }
        family("strata_backend_max_sessions", .gauge, "Highest value of current sessions encountered since process started") { $1.maxSessions }
        family("strata_backend_limit_sessions", .gauge, "Frontend/listener/server's maxconn, backend's fullconn") { v, _ in v.proxy.fullconn }
        family("strata_backend_sessions_total", .counter, "Total number of sessions since process started") { $1.totalSessions }
        family("strata_backend_bytes_in_total", .counter, "Total number of request bytes since process started") { Int(truncatingIfNeeded: $1.bytesIn) }
        family("strata_backend_bytes_out_total", .counter, "Total number of response bytes since process started") { Int(truncatingIfNeeded: $1.bytesOut) }
        family("strata_backend_requests_denied_total", .counter, "Total number of denied requests since process started") { $1.deniedRequests }
        family("strata_backend_connection_errors_total", .counter, "Total number of failed connections to server since the worker process started") { $1.connectionErrors }
        family("strata_backend_response_errors_total", .counter, "Total number of invalid responses since the worker process started") { $1.responseErrors }
        family("strata_backend_retry_warnings_total", .counter, "Total number of server connection retries since the worker process started") { $1.retries }
        family("strata_backend_redispatch_warnings_total", .counter, "Total number of server redispatches due to connection failures since the worker process started") { $1.redispatches }
        proxyStatus(&w, views, backend: true)
        family("strata_backend_weight", .gauge, "Server's effective weight, or sum of active servers' effective weights for a backend") { v, _ in
            guard let b = v.backend else { return nil }
            let anyActive = b.servers.contains { $0.isUsable && !$0.config.options.backup }
            return b.servers.reduce(0) { $0 + ($1.isUsable && $1.config.options.backup != anyActive ? $1.weight : 0) }
        }
        family("strata_backend_active_servers", .gauge, "Total number of active UP servers with a non-zero weight") { v, _ in
            v.backend.map { $0.servers.filter { $0.isUsable && !$0.config.options.backup }.count }
        }
        family("strata_backend_backup_servers", .gauge, "Total number of backup UP servers with a non-zero weight") { v, _ in
            v.backend.map { $0.servers.filter { $0.isUsable && $0.config.options.backup }.count }
        }
        family("strata_backend_check_last_change_seconds", .gauge, "How long ago the last server state changed, in seconds") { v, _ in
            guard let last = v.backend?.servers.map(\.state.health.lastChange).max() else { return nil }
            return max(0, Int(monotonic - last))
        }
        family("strata_backend_loadbalanced_total", .counter, "Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)") { v, _ in
            v.backend?.servers.reduce(0) { $0 + $1.state.selected }
        }
        family("strata_backend_http_requests_total", .counter, "Total number of HTTP requests processed by this object since the worker process started", httpOnly: true) { $1.requests }
        proxyResponses(&w, views, backend: true)
        family("strata_backend_client_aborts_total", .counter, "Total number of requests or connections aborted by the client since the worker process started") { $1.clientAborts }
        family("strata_backend_server_aborts_total", .counter, "Total number of requests or connections aborted by the server since the worker process started") { $1.serverAborts }
        family("strata_backend_last_session_seconds", .gauge, "How long ago some traffic was seen on this object on this worker process, in seconds") { _, c in
            c.lastSession > 0 ? Int(now - c.lastSession) : -1
        }
        time("strata_backend_queue_time_average_seconds", "Avg. queue time for last 1024 successful connections.") { $0.queueAverage }
        time("strata_backend_connect_time_average_seconds", "Avg. connect time for last 1024 successful connections.") { $0.connectAverage }
        time("strata_backend_response_time_average_seconds", "Avg. response time for last 1024 successful connections.") { $0.responseAverage }
        time("strata_backend_total_time_average_seconds", "Avg. total time for last 1024 successful connections.") { $0.totalAverage }
        time("strata_backend_max_queue_time_seconds", "Maximum observed time spent in the queue") { $0.queueMax }
        time("strata_backend_max_connect_time_seconds", "Maximum observed time spent waiting for a connection to complete") { $0.connectMax }
        time("strata_backend_max_response_time_seconds", "Maximum observed time spent waiting for a server response") { $0.responseMax }
        time("strata_backend_max_total_time_seconds", "Maximum observed total request+response time (request+queue+connect+response+processing)") { $0.totalMax }
    }

    // MARK: servers

    private func writeServers(_ w: inout PrometheusWriter, _ views: [StatsProxyView], noMaint: Bool) {
        let now = loop.now
        let monotonic = MonotonicClock.now()
        // Each server's `{proxy="…",server="…"`, escaped once per scrape into one buffer.
        struct Entry {
            unowned(unsafe) let server: BackendServer
            unowned(unsafe) let state: ServerState
            let start: Int
            let count: Int
            let http: Bool
        }
        var labelWriter = PrometheusWriter(capacity: 64 * 1024)
        var servers: [Entry] = []
        for view in views {
            guard let b = view.backend else { continue }
            for s in b.servers {
                if noMaint && s.state.health.inMaintenance { continue }
                let start = labelWriter.count
                labelWriter.append("{proxy=\""); labelWriter.labelValue(view.name)
                labelWriter.append("\",server=\""); labelWriter.labelValue(s.name); labelWriter.byte(0x22)
                servers.append(Entry(server: s, state: s.state, start: start, count: labelWriter.count - start, http: view.proxy.mode == .http))
            }
        }
        let labelBytes = labelWriter.finish()
        guard !servers.isEmpty else { return }
        labelBytes.withUnsafeBytes { lb in
            writeServerFamilies(&w, servers.map {
                ServerEntry(server: $0.server, state: $0.state, labels: UnsafeRawBufferPointer(rebasing: lb[$0.start..<($0.start + $0.count)]), http: $0.http)
            },
                                now: now, monotonic: monotonic)
        }
    }

    /// A server's objects without reference counting (the scrape holds the generations), and its
    /// label text.
    private struct ServerEntry {
        unowned(unsafe) let server: BackendServer
        unowned(unsafe) let state: ServerState
        let labels: UnsafeRawBufferPointer
        let http: Bool
    }

    private func writeServerFamilies(_ w: inout PrometheusWriter, _ servers: [ServerEntry], now: Double, monotonic: Double) {
        func family(_ name: StaticString, _ kind: PrometheusWriter.Kind, _ help: StaticString, _ value: ServerGetter) {
            w.family(name, kind, help)
            for entry in servers {
                guard let v = value(entry.server, entry.state) else { continue }
                w.append(name); w.append(entry.labels); w.append("} "); w.int(v); w.end()
            }
        }
        func time(_ name: StaticString, _ help: StaticString, _ value: (StatsTimes) -> Int) {
            w.family(name, .gauge, help)
            for entry in servers {
                w.append(name); w.append(entry.labels); w.append("} "); w.milliseconds(value(entry.state.times)); w.end()
            }
        }
        family("strata_server_current_queue", .gauge, "Number of current queued connections") { _, _ in 0 }
        family("strata_server_max_queue", .gauge, "Highest value of queued connections encountered since process started") { $1.queueMax }
        family("strata_server_current_sessions", .gauge, "Number of current sessions on the frontend, backend or server") { $1.currentSessions }
        family("strata_server_max_sessions", .gauge, "Highest value of current sessions encountered since process started") { $1.maxSessions }
        family("strata_server_limit_sessions", .gauge, "Frontend/listener/server's maxconn, backend's fullconn") { s, _ in s.config.options.maxconn }
        family("strata_server_sessions_total", .counter, "Total number of sessions since process started") { $1.totalSessions }
        family("strata_server_bytes_in_total", .counter, "Total number of request bytes since process started") { Int(truncatingIfNeeded: $1.bytesIn) }
        family("strata_server_bytes_out_total", .counter, "Total number of response bytes since process started") { Int(truncatingIfNeeded: $1.bytesOut) }
        family("strata_server_connection_errors_total", .counter, "Total number of failed connections to server since the worker process started") { $1.connectionErrors }
        family("strata_server_response_errors_total", .counter, "Total number of invalid responses since the worker process started") { $1.responseErrors }
        family("strata_server_retry_warnings_total", .counter, "Total number of server connection retries since the worker process started") { $1.retries }
        family("strata_server_redispatch_warnings_total", .counter, "Total number of server redispatches due to connection failures since the worker process started") { $1.redispatches }
        w.family("strata_server_status", .gauge, "Current status of the service, per state label value.")
        for entry in servers {
            let state = Engine.prometheusState(entry.state.health)
            for (i, name) in Engine.serverStates.enumerated() {
                w.append("strata_server_status"); w.append(entry.labels); w.append(",state=\""); w.append(name)
                w.append("\"} "); w.int(i == state ? 1 : 0); w.end()
            }
        }
        family("strata_server_weight", .gauge, "Server's effective weight, or sum of active servers' effective weights for a backend") { s, _ in s.weight }
        family("strata_server_check_failures_total", .counter, "Total number of failed individual health checks per server/backend, since the worker process started") { _, st in
            st.health.checkConfigured ? st.health.failedChecks : nil
        }
        family("strata_server_check_up_down_total", .counter, "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started") { _, st in
            st.health.checkConfigured ? st.health.downTransitions : nil
        }
        family("strata_server_check_last_change_seconds", .gauge, "How long ago the last server state changed, in seconds") { _, st in
            max(0, Int(monotonic - st.health.lastChange))
        }
        family("strata_server_loadbalanced_total", .counter, "Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)") { $1.selected }
        // Check status: servers whose checks run (configured, enabled, not paused by maintenance).
        let checked = servers.filter { $0.server.state.health.checksRun }
        if !checked.isEmpty {
            w.family("strata_server_check_status", .gauge, "Status of last health check, per state label value.")
            for entry in checked {
                let status = entry.state.health.lastCheck.status
                for (name, s) in Engine.checkStates {
                    w.append("strata_server_check_status"); w.append(entry.labels); w.append(",state=\""); w.append(name)
                    w.append("\"} "); w.int(s == status ? 1 : 0); w.end()
                }
            }
            w.family("strata_server_check_code", .gauge, "layer5-7 code, if available of the last health check.")
            for entry in checked where entry.state.health.lastCheck.status.rawValue > 14 {
                w.append("strata_server_check_code"); w.append(entry.labels); w.append("} ")
                w.int(entry.state.health.lastCheck.code); w.end()
            }
            w.family("strata_server_check_duration_seconds", .gauge, "Total duration of the latest server health check, in seconds.")
            for entry in checked where entry.state.health.lastCheck.duration >= 0 {
                w.append("strata_server_check_duration_seconds"); w.append(entry.labels); w.append("} ")
                w.milliseconds(entry.state.health.lastCheck.duration); w.end()
            }
        }
        let http = servers.filter { $0.http }
        if !http.isEmpty {
            w.family("strata_server_http_responses_total", .counter, "Total number of HTTP responses, per status class")
            for entry in http {
                for (i, code) in Engine.codeClasses.enumerated() {
                    w.append("strata_server_http_responses_total"); w.append(entry.labels); w.append(",code=\""); w.append(code)
                    w.append("\"} "); w.int(entry.state.responsesByClass[i]); w.end()
                }
            }
        }
        family("strata_server_client_aborts_total", .counter, "Total number of requests or connections aborted by the client since the worker process started") { $1.clientAborts }
        family("strata_server_server_aborts_total", .counter, "Total number of requests or connections aborted by the server since the worker process started") { $1.serverAborts }
        family("strata_server_last_session_seconds", .gauge, "How long ago some traffic was seen on this object on this worker process, in seconds") { _, st in
            st.lastSession > 0 ? Int(now - st.lastSession) : -1
        }
        time("strata_server_queue_time_average_seconds", "Avg. queue time for last 1024 successful connections.") { $0.queueAverage }
        time("strata_server_connect_time_average_seconds", "Avg. connect time for last 1024 successful connections.") { $0.connectAverage }
        time("strata_server_response_time_average_seconds", "Avg. response time for last 1024 successful connections.") { $0.responseAverage }
        time("strata_server_total_time_average_seconds", "Avg. total time for last 1024 successful connections.") { $0.totalAverage }
        family("strata_server_idle_connections_current", .gauge, "Current number of idle connections available for reuse on this server") { $1.idleConnections }
        time("strata_server_max_queue_time_seconds", "Maximum observed time spent in the queue") { $0.queueMax }
        time("strata_server_max_connect_time_seconds", "Maximum observed time spent waiting for a connection to complete") { $0.connectMax }
        time("strata_server_max_response_time_seconds", "Maximum observed time spent waiting for a server response") { $0.responseMax }
        time("strata_server_max_total_time_seconds", "Maximum observed total request+response time (request+queue+connect+response+processing)") { $0.totalMax }
        family("strata_server_uweight", .gauge, "Server's user weight, or sum of active servers' user weights for a backend") { s, _ in s.state.health.weight }
    }
}
