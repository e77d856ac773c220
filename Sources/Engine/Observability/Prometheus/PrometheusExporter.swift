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
    /// Each `resolvers` section's nameservers (HAProxy's `resolver` module).
    static let resolver = PrometheusScope(rawValue: 32)
    /// Each stick table's size and entries (HAProxy's `sticktable` module).
    static let sticktable = PrometheusScope(rawValue: 64)
    static let all: PrometheusScope = [.process, .frontend, .backend, .server, .generation, .resolver, .sticktable]

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
            case "resolver": scope.insert(.resolver)
            case "sticktable": scope.insert(.sticktable)
            default: break
            }
        }
        return (any ? scope : .all, noMaint)
    }
}

/// `http-request use-service prometheus-exporter`: the series of the live generations, collected
/// when scraped (on the loop's thread, reading the plain counters the sessions update): HAProxy
/// 2.6's families under HAProxy's names, types, help texts and labels (its dashboards and alert
/// rules work unchanged), plus strata's per-generation and reload series under `strata_`. A generation's series disappear when it retires; carried counters never go back on a
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
        // strata's own process-wide series go with its generations (`scope=strata`).
        if scope.contains(.generation) { writeHTTP2(&w) }
        if scope.contains(.generation) { writeGenerations(&w) }
        if scope.contains(.frontend) { writeFrontends(&w, views) }
        if scope.contains(.backend) { writeBackends(&w, views) }
        if scope.contains(.server) { writeServers(&w, views, noMaint: noMaint) }
        if scope.contains(.resolver) { writeResolvers(&w) }
        if scope.contains(.sticktable) { writeStickTables(&w) }
        return w
    }

    // MARK: process

    /// One of HAProxy 2.6's process families (promex's global metrics) and the `show info` field
    /// it reads: the exporter and `show info` say the same thing from one source.
    private struct ProcessFamily {
        let name: StaticString
        let kind: PrometheusWriter.Kind
        let help: StaticString
        let field: String
        init(_ name: StaticString, _ kind: PrometheusWriter.Kind, _ help: StaticString, _ field: String) {
            self.name = name
            self.kind = kind
            self.help = help
            self.field = field
        }
    }

    /// In HAProxy's order, with its help texts and types; `failed_resolutions` is HAProxy's
    /// counter without `_total`, kept under its name and declared untyped.
    private static let processFamilies = [
        ProcessFamily("haproxy_process_nbthread", .gauge, "Number of started threads (global.nbthread)", "Nbthread"),
        ProcessFamily("haproxy_process_nbproc", .gauge, "Number of started worker processes (historical, always 1)", "Nbproc"),
        ProcessFamily("haproxy_process_relative_process_id", .gauge, "Relative worker process number (1)", "Process_num"),
        ProcessFamily("haproxy_process_uptime_seconds", .gauge, "How long ago this worker process was started (seconds)", "Uptime_sec"),
        ProcessFamily("haproxy_process_pool_failures_total", .counter, "Number of failed pool allocations since this worker was started", "PoolFailed"),
        ProcessFamily("haproxy_process_max_fds", .gauge, "Hard limit on the number of per-process file descriptors", "Ulimit-n"),
        ProcessFamily("haproxy_process_max_sockets", .gauge, "Hard limit on the number of per-process sockets", "Maxsock"),
        ProcessFamily("haproxy_process_max_connections", .gauge, "Hard limit on the number of per-process connections (configured or imposed by Ulimit-n)", "Maxconn"),
        ProcessFamily("haproxy_process_hard_max_connections", .gauge, "Hard limit on the number of per-process connections (imposed by Memmax_MB or Ulimit-n)", "Hard_maxconn"),
        ProcessFamily("haproxy_process_current_connections", .gauge, "Current number of connections on this worker process", "CurrConns"),
        ProcessFamily("haproxy_process_connections_total", .counter, "Total number of connections on this worker process since started", "CumConns"),
        ProcessFamily("haproxy_process_requests_total", .counter, "Total number of requests on this worker process since started", "CumReq"),
        ProcessFamily("haproxy_process_max_ssl_connections", .gauge, "Hard limit on the number of per-process SSL endpoints (front+back), 0=unlimited", "MaxSslConns"),
        ProcessFamily("haproxy_process_current_ssl_connections", .gauge, "Current number of SSL endpoints on this worker process (front+back)", "CurrSslConns"),
        ProcessFamily("haproxy_process_ssl_connections_total", .counter, "Total number of SSL endpoints on this worker process since started (front+back)", "CumSslConns"),
        ProcessFamily("haproxy_process_max_pipes", .gauge, "Hard limit on the number of pipes for splicing, 0=unlimited", "Maxpipes"),
        ProcessFamily("haproxy_process_pipes_used_total", .counter, "Current number of pipes in use in this worker process", "PipesUsed"),
        ProcessFamily("haproxy_process_pipes_free_total", .counter, "Current number of allocated and available pipes in this worker process", "PipesFree"),
        ProcessFamily("haproxy_process_current_connection_rate", .gauge, "Number of front connections created on this worker process over the last second", "ConnRate"),
        ProcessFamily("haproxy_process_limit_connection_rate", .gauge, "Hard limit for ConnRate (global.maxconnrate)", "ConnRateLimit"),
        ProcessFamily("haproxy_process_max_connection_rate", .gauge, "Highest ConnRate reached on this worker process since started (in connections per second)", "MaxConnRate"),
        ProcessFamily("haproxy_process_current_session_rate", .gauge, "Number of sessions created on this worker process over the last second", "SessRate"),
        ProcessFamily("haproxy_process_limit_session_rate", .gauge, "Hard limit for SessRate (global.maxsessrate)", "SessRateLimit"),
        ProcessFamily("haproxy_process_max_session_rate", .gauge, "Highest SessRate reached on this worker process since started (in sessions per second)", "MaxSessRate"),
        ProcessFamily("haproxy_process_current_ssl_rate", .gauge, "Number of SSL connections created on this worker process over the last second", "SslRate"),
        ProcessFamily("haproxy_process_limit_ssl_rate", .gauge, "Hard limit for SslRate (global.maxsslrate)", "SslRateLimit"),
        ProcessFamily("haproxy_process_max_ssl_rate", .gauge, "Highest SslRate reached on this worker process since started (in connections per second)", "MaxSslRate"),
        ProcessFamily("haproxy_process_current_frontend_ssl_key_rate", .gauge, "Number of SSL keys created on frontends in this worker process over the last second", "SslFrontendKeyRate"),
        ProcessFamily("haproxy_process_max_frontend_ssl_key_rate", .gauge, "Highest SslFrontendKeyRate reached on this worker process since started (in SSL keys per second)", "SslFrontendMaxKeyRate"),
        ProcessFamily("haproxy_process_frontend_ssl_reuse", .gauge, "Percent of frontend SSL connections which did not require a new key", "SslFrontendSessionReuse_pct"),
        ProcessFamily("haproxy_process_current_backend_ssl_key_rate", .gauge, "Number of SSL keys created on backends in this worker process over the last second", "SslBackendKeyRate"),
        ProcessFamily("haproxy_process_max_backend_ssl_key_rate", .gauge, "Highest SslBackendKeyRate reached on this worker process since started (in SSL keys per second)", "SslBackendMaxKeyRate"),
        ProcessFamily("haproxy_process_ssl_cache_lookups_total", .counter, "Total number of SSL session ID lookups in the SSL session cache on this worker since started", "SslCacheLookups"),
        ProcessFamily("haproxy_process_ssl_cache_misses_total", .counter, "Total number of SSL session ID lookups that didn't find a session in the SSL session cache on this worker since started", "SslCacheMisses"),
        ProcessFamily("haproxy_process_http_comp_bytes_in_total", .counter, "Number of bytes submitted to the HTTP compressor in this worker process over the last second", "CompressBpsIn"),
        ProcessFamily("haproxy_process_http_comp_bytes_out_total", .counter, "Number of bytes emitted by the HTTP compressor in this worker process over the last second", "CompressBpsOut"),
        ProcessFamily("haproxy_process_limit_http_comp", .gauge, "Limit of CompressBpsOut beyond which HTTP compression is automatically disabled", "CompressBpsRateLim"),
        ProcessFamily("haproxy_process_current_zlib_memory", .gauge, "Amount of memory currently used by HTTP compression on the current worker process (in bytes)", "ZlibMemUsage"),
        ProcessFamily("haproxy_process_max_zlib_memory", .gauge, "Limit on the amount of memory used by HTTP compression above which it is automatically disabled (in bytes, see global.maxzlibmem)", "MaxZlibMemUsage"),
        ProcessFamily("haproxy_process_current_tasks", .gauge, "Total number of tasks in the current worker process (active + sleeping)", "Tasks"),
        ProcessFamily("haproxy_process_current_run_queue", .gauge, "Total number of active tasks+tasklets in the current worker process", "Run_queue"),
        ProcessFamily("haproxy_process_idle_time_percent", .gauge, "Percentage of last second spent waiting in the current worker thread", "Idle_pct"),
        ProcessFamily("haproxy_process_stopping", .gauge, "1 if the worker process is currently stopping, otherwise zero", "Stopping"),
        ProcessFamily("haproxy_process_jobs", .gauge, "Current number of active jobs on the current worker process (frontend connections, master connections, listeners)", "Jobs"),
        ProcessFamily("haproxy_process_unstoppable_jobs", .gauge, "Current number of unstoppable jobs on the current worker process (master connections)", "Unstoppable Jobs"),
        ProcessFamily("haproxy_process_listeners", .gauge, "Current number of active listeners on the current worker process", "Listeners"),
        ProcessFamily("haproxy_process_active_peers", .gauge, "Current number of verified active peers connections on the current worker process", "ActivePeers"),
        ProcessFamily("haproxy_process_connected_peers", .gauge, "Current number of peers having passed the connection step on the current worker process", "ConnectedPeers"),
        ProcessFamily("haproxy_process_dropped_logs_total", .counter, "Total number of dropped logs for current worker process since started", "DroppedLogs"),
        ProcessFamily("haproxy_process_busy_polling_enabled", .gauge, "1 if busy-polling is currently in use on the worker process, otherwise zero (config.busy-polling)", "BusyPolling"),
        ProcessFamily("haproxy_process_failed_resolutions", .untyped, "Total number of failed DNS resolutions in current worker process since started", "FailedResolutions"),
        ProcessFamily("haproxy_process_bytes_out_total", .counter, "Total number of bytes emitted by current worker process since started", "TotalBytesOut"),
        ProcessFamily("haproxy_process_spliced_bytes_out_total", .counter, "Total number of bytes emitted by current worker process through a kernel pipe since started", "TotalSplicdedBytesOut"),
        ProcessFamily("haproxy_process_bytes_out_rate", .gauge, "Number of bytes emitted by current worker process over the last second", "BytesOutRate"),
        ProcessFamily("haproxy_process_recv_logs_total", .counter, "Total number of log messages received by log-forwarding listeners on this worker process since started", "CumRecvLogs"),
        ProcessFamily("haproxy_process_build_info", .gauge, "Build info", "Build info"),
        ProcessFamily("haproxy_process_max_memory_bytes", .gauge, "Worker process's hard limit on memory usage in byes (-m on command line)", "Memmax_bytes"),
        ProcessFamily("haproxy_process_pool_allocated_bytes", .gauge, "Amount of memory allocated in pools (in bytes)", "PoolAlloc_bytes"),
        ProcessFamily("haproxy_process_pool_used_bytes", .gauge, "Amount of pool memory currently used (in bytes)", "PoolUsed_bytes"),
        ProcessFamily("haproxy_process_start_time_seconds", .gauge, "Start time in seconds", "Start_time_sec"),
    ]

    private func writeProcess(_ w: inout PrometheusWriter) {
        var values: [String: String] = [:]
        for f in StatsCommands.infoFields(self) { values[f.name] = f.value }
        for family in Engine.processFamilies {
            w.family(family.name, family.kind, family.help)
            w.append(family.name)
            if family.field == "Build info" {
                w.append("{version=\""); w.labelValue(values[family.field] ?? ""); w.append("\"} 1")
            } else {
                // ZlibMemUsage and MaxZlibMemUsage are not in `show info` (no compression): 0.
                w.append(" "); w.append(values[family.field].flatMap { Int($0) }.map(String.init) ?? "0")
            }
            w.end()
        }
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
        let name: StaticString = backend ? "haproxy_backend_status" : "haproxy_frontend_status"
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
        let name: StaticString = backend ? "haproxy_backend_http_responses_total" : "haproxy_frontend_http_responses_total"
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
        let rates = metrics.rates
        func family(_ name: StaticString, _ kind: PrometheusWriter.Kind, _ help: StaticString, httpOnly: Bool = false, _ value: ProxyGetter) {
            proxyFamily(&w, views, backend: false, name, kind, help, httpOnly: httpOnly, value)
        }
        family("haproxy_frontend_current_sessions", .gauge, "Number of current sessions on the frontend, backend or server") { $1.currentSessions }
        family("haproxy_frontend_max_sessions", .gauge, "Highest value of current sessions encountered since process started") { $1.maxSessions }
        family("haproxy_frontend_limit_sessions", .gauge, "Frontend/listener/server's maxconn, backend's fullconn") { v, _ in v.proxy.maxconn ?? maxconn }
        family("haproxy_frontend_sessions_total", .counter, "Total number of sessions since process started") { $1.totalSessions }
        family("haproxy_frontend_bytes_in_total", .counter, "Total number of request bytes since process started") { Int(truncatingIfNeeded: $1.bytesIn) }
        family("haproxy_frontend_bytes_out_total", .counter, "Total number of response bytes since process started") { Int(truncatingIfNeeded: $1.bytesOut) }
        family("haproxy_frontend_requests_denied_total", .counter, "Total number of denied requests since process started") { $1.deniedRequests }
        family("haproxy_frontend_responses_denied_total", .counter, "Total number of denied responses since process started") { $1.deniedResponses }
        family("haproxy_frontend_request_errors_total", .counter, "Total number of invalid requests since process started") { $1.requestErrors }
        proxyStatus(&w, views, backend: false)
        // No `rate-limit sessions`: 0, HAProxy's value without one.
        family("haproxy_frontend_limit_session_rate", .gauge, "Limit on the number of sessions accepted in a second (frontend only, 'rate-limit sessions' setting)") { _, _ in 0 }
        family("haproxy_frontend_max_session_rate", .gauge, "Highest value of sessions per second observed since the worker process started") { _, c in rates.meters(c)?.sessions.max ?? 0 }
        family("haproxy_frontend_http_requests_total", .counter, "Total number of HTTP requests processed by this object since the worker process started", httpOnly: true) { $1.requests }
        proxyResponses(&w, views, backend: false)
        family("haproxy_frontend_http_requests_rate_max", .gauge, "Highest value of http requests observed since the worker process started", httpOnly: true) { _, c in rates.meters(c)?.requests.max ?? 0 }
        // A connection is a session in strata: the same rate.
        family("haproxy_frontend_connections_rate_max", .gauge, "Highest value of connections per second observed since the worker process started") { _, c in rates.meters(c)?.sessions.max ?? 0 }
        family("haproxy_frontend_connections_total", .counter, "Total number of new connections accepted on this frontend since the worker process started") { $1.totalSessions }
        family("haproxy_frontend_http_comp_bytes_in_total", .counter, "Total number of bytes submitted to the HTTP compressor for this object since the worker process started", httpOnly: true) { $1.compressionIn }
        family("haproxy_frontend_http_comp_bytes_out_total", .counter, "Total number of bytes emitted by the HTTP compressor for this object since the worker process started", httpOnly: true) { $1.compressionOut }
        family("haproxy_frontend_http_comp_bytes_bypassed_total", .counter, "Total number of bytes that bypassed HTTP compression for this object since the worker process started (CPU/memory/bandwidth limitation)", httpOnly: true) { $1.compressionBypassed }
        family("haproxy_frontend_http_comp_responses_total", .counter, "Total number of HTTP responses that were compressed for this object since the worker process started", httpOnly: true) { $1.compressedResponses }
        family("haproxy_frontend_http_cache_lookups_total", .counter, "Total number of HTTP requests looked up in the cache on this frontend/backend since the worker process started", httpOnly: true) { $1.cacheLookups }
        family("haproxy_frontend_http_cache_hits_total", .counter, "Total number of HTTP requests not found in the cache on this frontend/backend since the worker process started", httpOnly: true) { $1.cacheHits }
        family("haproxy_frontend_intercepted_requests_total", .counter, "Total number of HTTP requests intercepted on the frontend (redirects/stats/services) since the worker process started", httpOnly: true) { $1.intercepted }
        family("haproxy_frontend_denied_connections_total", .counter, "Total number of incoming connections blocked on a listener/frontend since the worker process started") { $1.deniedConnections }
        family("haproxy_frontend_denied_sessions_total", .counter, "Total number of incoming sessions blocked on a listener/frontend by a tcp-request connection rule since the worker process started") { $1.deniedSessions }
        // HAProxy's h2 module counters of the frontend (HAProxy 2.6's exporter has none: strata's names).
        family("strata_h2_frontend_headers_rcvd_total", .counter, "Total number of received HEADERS frames", httpOnly: true) { $1.h2Total(.headersReceived) }
        family("strata_h2_frontend_data_rcvd_total", .counter, "Total number of received DATA frames", httpOnly: true) { $1.h2Total(.dataReceived) }
        family("strata_h2_frontend_settings_rcvd_total", .counter, "Total number of received SETTINGS frames", httpOnly: true) { $1.h2Total(.settingsReceived) }
        family("strata_h2_frontend_rst_stream_rcvd_total", .counter, "Total number of received RST_STREAM frames", httpOnly: true) { $1.h2Total(.resetsReceived) }
        family("strata_h2_frontend_goaway_rcvd_total", .counter, "Total number of received GOAWAY frames", httpOnly: true) { $1.h2Total(.goawaysReceived) }
        family("strata_h2_frontend_detected_conn_protocol_errors_total", .counter, "Total number of connection protocol errors", httpOnly: true) { $1.h2Total(.protocolErrors) }
        family("strata_h2_frontend_detected_strm_protocol_errors_total", .counter, "Total number of stream protocol errors", httpOnly: true) { $1.h2Total(.streamErrors) }
        family("strata_h2_frontend_rst_stream_resp_total", .counter, "Total number of RST_STREAM sent on detected error", httpOnly: true) { $1.h2Total(.resetsSent) }
        family("strata_h2_frontend_goaway_resp_total", .counter, "Total number of GOAWAY sent on detected error", httpOnly: true) { $1.h2Total(.goawaysSent) }
        family("strata_h2_frontend_open_connections", .gauge, "Count of currently open connections", httpOnly: true) { $1.h2Total(.openConnections) }
        family("strata_h2_frontend_backend_open_streams", .gauge, "Count of currently open streams", httpOnly: true) { $1.h2Total(.openStreams) }
        family("strata_h2_frontend_total_connections_total", .counter, "Total number of connections", httpOnly: true) { $1.h2Total(.totalConnections) }
        family("strata_h2_frontend_backend_total_streams_total", .counter, "Total number of streams", httpOnly: true) { $1.h2Total(.streamsOpened) }
    }

    private func writeBackends(_ w: inout PrometheusWriter, _ views: [StatsProxyView]) {
        let now = loop.now
        let monotonic = MonotonicClock.now()
        let rates = metrics.rates
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
        family("haproxy_backend_current_queue", .gauge, "Number of current queued connections") { v, _ in v.queued }
        family("haproxy_backend_max_queue", .gauge, "Highest value of queued connections encountered since process started") { $1.queueMax }
        family("haproxy_backend_current_sessions", .gauge, "Number of current sessions on the frontend, backend or server") { $1.currentSessions }
        family("haproxy_backend_max_sessions", .gauge, "Highest value of current sessions encountered since process started") { $1.maxSessions }
        // Without `fullconn` (strata computes no default): NaN, HAProxy's empty field.
        w.family("haproxy_backend_limit_sessions", .gauge, "Frontend/listener/server's maxconn, backend's fullconn")
        for view in views where view.backend != nil {
            w.append("haproxy_backend_limit_sessions{proxy=\""); w.labelValue(view.name); w.append("\"} ")
            if let fullconn = view.proxy.fullconn { w.int(fullconn) } else { w.append("NaN") }
            w.end()
        }
        family("haproxy_backend_sessions_total", .counter, "Total number of sessions since process started") { $1.totalSessions }
        family("haproxy_backend_bytes_in_total", .counter, "Total number of request bytes since process started") { Int(truncatingIfNeeded: $1.bytesIn) }
        family("haproxy_backend_bytes_out_total", .counter, "Total number of response bytes since process started") { Int(truncatingIfNeeded: $1.bytesOut) }
        family("haproxy_backend_requests_denied_total", .counter, "Total number of denied requests since process started") { $1.deniedRequests }
        family("haproxy_backend_responses_denied_total", .counter, "Total number of denied responses since process started") { $1.deniedResponses }
        family("haproxy_backend_connection_errors_total", .counter, "Total number of failed connections to server since the worker process started") { $1.connectionErrors }
        family("haproxy_backend_response_errors_total", .counter, "Total number of invalid responses since the worker process started") { $1.responseErrors }
        family("haproxy_backend_retry_warnings_total", .counter, "Total number of server connection retries since the worker process started") { $1.retries }
        family("haproxy_backend_redispatch_warnings_total", .counter, "Total number of server redispatches due to connection failures since the worker process started") { $1.redispatches }
        proxyStatus(&w, views, backend: true)
        family("haproxy_backend_weight", .gauge, "Server's effective weight, or sum of active servers' effective weights for a backend") { v, _ in
            guard let b = v.backend else { return nil }
            let anyActive = b.servers.contains { $0.isUsable && !$0.config.options.backup }
            return b.servers.reduce(0) { $0 + ($1.isUsable && $1.config.options.backup != anyActive ? $1.weight : 0) }
        }
        family("haproxy_backend_active_servers", .gauge, "Total number of active UP servers with a non-zero weight") { v, _ in
            v.backend.map { $0.servers.filter { $0.isUsable && !$0.config.options.backup }.count }
        }
        family("haproxy_backend_backup_servers", .gauge, "Total number of backup UP servers with a non-zero weight") { v, _ in
            v.backend.map { $0.servers.filter { $0.isUsable && $0.config.options.backup }.count }
        }
        family("haproxy_backend_check_last_change_seconds", .gauge, "How long ago the last server state changed, in seconds") { v, _ in
            guard let last = v.backend?.servers.map(\.state.health.lastChange).max() else { return nil }
            return max(0, Int(monotonic - last))
        }
        family("haproxy_backend_check_up_down_total", .counter, "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started") { _, c in
            rates.backendDown(c)?.transitions ?? 0
        }
        family("haproxy_backend_downtime_seconds_total", .counter, "Total time spent in DOWN state, for server or backend") { _, c in
            Int(rates.backendDown(c)?.seconds(now: monotonic) ?? 0)
        }
        family("haproxy_backend_loadbalanced_total", .counter, "Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)") { v, _ in
            v.backend?.servers.reduce(0) { $0 + $1.state.selected }
        }
        family("haproxy_backend_max_session_rate", .gauge, "Highest value of sessions per second observed since the worker process started") { _, c in rates.meters(c)?.sessions.max ?? 0 }
        family("haproxy_backend_http_requests_total", .counter, "Total number of HTTP requests processed by this object since the worker process started", httpOnly: true) { $1.requests }
        proxyResponses(&w, views, backend: true)
        family("haproxy_backend_http_comp_bytes_in_total", .counter, "Total number of bytes submitted to the HTTP compressor for this object since the worker process started", httpOnly: true) { $1.compressionIn }
        family("haproxy_backend_http_comp_bytes_out_total", .counter, "Total number of bytes emitted by the HTTP compressor for this object since the worker process started", httpOnly: true) { $1.compressionOut }
        family("haproxy_backend_http_comp_bytes_bypassed_total", .counter, "Total number of bytes that bypassed HTTP compression for this object since the worker process started (CPU/memory/bandwidth limitation)", httpOnly: true) { $1.compressionBypassed }
        family("haproxy_backend_http_comp_responses_total", .counter, "Total number of HTTP responses that were compressed for this object since the worker process started", httpOnly: true) { $1.compressedResponses }
        // The h2 module counters of the backend (its connections to HTTP/2 servers).
        family("strata_h2_backend_goaway_rcvd_total", .counter, "Total number of received GOAWAY frames", httpOnly: true) { $1.h2Total(.serverGoawaysReceived) }
        family("strata_h2_backend_detected_conn_protocol_errors_total", .counter, "Total number of connection protocol errors", httpOnly: true) { $1.h2Total(.serverProtocolErrors) }
        family("strata_h2_backend_open_connections", .gauge, "Count of currently open connections", httpOnly: true) { $1.h2Total(.serverOpenConnections) }
        family("strata_h2_backend_total_connections_total", .counter, "Total number of connections", httpOnly: true) { $1.h2Total(.serverConnectionsOpened) }
        family("strata_h2_backend_backend_total_streams_total", .counter, "Total number of streams", httpOnly: true) { $1.h2Total(.serverStreamsOpened) }
        family("haproxy_backend_http_cache_lookups_total", .counter, "Total number of HTTP requests looked up in the cache on this frontend/backend since the worker process started", httpOnly: true) { $1.cacheLookups }
        family("haproxy_backend_http_cache_hits_total", .counter, "Total number of HTTP requests not found in the cache on this frontend/backend since the worker process started", httpOnly: true) { $1.cacheHits }
        family("haproxy_backend_client_aborts_total", .counter, "Total number of requests or connections aborted by the client since the worker process started") { $1.clientAborts }
        family("haproxy_backend_server_aborts_total", .counter, "Total number of requests or connections aborted by the server since the worker process started") { $1.serverAborts }
        family("haproxy_backend_last_session_seconds", .gauge, "How long ago some traffic was seen on this object on this worker process, in seconds") { _, c in
            c.lastSession > 0 ? Int(now - c.lastSession) : -1
        }
        time("haproxy_backend_queue_time_average_seconds", "Avg. queue time for last 1024 successful connections.") { $0.queueAverage }
        time("haproxy_backend_connect_time_average_seconds", "Avg. connect time for last 1024 successful connections.") { $0.connectAverage }
        time("haproxy_backend_response_time_average_seconds", "Avg. response time for last 1024 successful connections.") { $0.responseAverage }
        time("haproxy_backend_total_time_average_seconds", "Avg. total time for last 1024 successful connections.") { $0.totalAverage }
        family("haproxy_backend_connection_attempts_total", .counter, "Total number of outgoing connection attempts on this backend/server since the worker process started") { $1.connectAttempts }
        family("haproxy_backend_connection_reuses_total", .counter, "Total number of reused connection on this backend/server since the worker process started") { $1.reuses }
        time("haproxy_backend_max_queue_time_seconds", "Maximum observed time spent in the queue") { $0.queueMax }
        time("haproxy_backend_max_connect_time_seconds", "Maximum observed time spent waiting for a connection to complete") { $0.connectMax }
        time("haproxy_backend_max_response_time_seconds", "Maximum observed time spent waiting for a server response") { $0.responseMax }
        time("haproxy_backend_max_total_time_seconds", "Maximum observed total request+response time (request+queue+connect+response+processing)") { $0.totalMax }
        family("haproxy_backend_uweight", .gauge, "Server's user weight, or sum of active servers' user weights for a backend") { v, _ in
            guard let b = v.backend else { return nil }
            let anyActive = b.servers.contains { $0.isUsable && !$0.config.options.backup }
            return b.servers.reduce(0) { $0 + ($1.isUsable && $1.config.options.backup != anyActive ? $1.state.health.weight : 0) }
        }
        backendAggregates(&w, views)
    }

    /// HAProxy's aggregated server states of a backend (`agg_server_status`, its deprecated twin
    /// `agg_server_check_status`) and last check statuses (`agg_check_status`): how many servers
    /// are in each.
    private func backendAggregates(_ w: inout PrometheusWriter, _ views: [StatsProxyView]) {
        let backends = views.compactMap { v in v.backend.map { (v.name, $0) } }
        guard !backends.isEmpty else { return }
        for (name, help) in [("haproxy_backend_agg_server_status" as StaticString, "Backend's aggregated gauge of servers' status" as StaticString),
                             ("haproxy_backend_agg_server_check_status", "Backend's aggregated gauge of servers' state check status")] {
            w.family(name, .gauge, help)
            for (proxy, b) in backends {
                var counts = [Int](repeating: 0, count: Engine.serverStates.count)
                for s in b.servers { counts[Engine.prometheusState(s.state.health)] += 1 }
                for (i, state) in Engine.serverStates.enumerated() {
                    w.append(name); w.append("{proxy=\""); w.labelValue(proxy); w.append("\",state=\""); w.append(state)
                    w.append("\"} "); w.int(counts[i]); w.end()
                }
            }
        }
        w.family("haproxy_backend_agg_check_status", .gauge, "Backend's aggregated gauge of servers' state check status")
        for (proxy, b) in backends {
            let checked = b.servers.filter { $0.state.health.checksRun }
            for (state, status) in Engine.checkStates {
                let n = status.map { st in checked.filter { $0.state.health.lastCheck.status == st }.count } ?? 0
                w.append("haproxy_backend_agg_check_status{proxy=\""); w.labelValue(proxy); w.append("\",state=\""); w.append(state)
                w.append("\"} "); w.int(n); w.end()
            }
        }
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
        let rates = metrics.rates
        /// A family with a value for every server, NaN (HAProxy's empty field) where there is none.
        func optional(_ name: StaticString, _ kind: PrometheusWriter.Kind, _ help: StaticString, _ value: ServerGetter) {
            w.family(name, kind, help)
            for entry in servers {
                w.append(name); w.append(entry.labels); w.append("} ")
                if let v = value(entry.server, entry.state) { w.int(v) } else { w.append("NaN") }
                w.end()
            }
        }
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
        family("haproxy_server_current_queue", .gauge, "Number of current queued connections") { _, _ in 0 }
        family("haproxy_server_max_queue", .gauge, "Highest value of queued connections encountered since process started") { $1.queueMax }
        family("haproxy_server_current_sessions", .gauge, "Number of current sessions on the frontend, backend or server") { $1.currentSessions }
        family("haproxy_server_max_sessions", .gauge, "Highest value of current sessions encountered since process started") { $1.maxSessions }
        family("haproxy_server_limit_sessions", .gauge, "Frontend/listener/server's maxconn, backend's fullconn") { s, _ in s.maxconn }
        family("haproxy_server_sessions_total", .counter, "Total number of sessions since process started") { $1.totalSessions }
        family("haproxy_server_bytes_in_total", .counter, "Total number of request bytes since process started") { Int(truncatingIfNeeded: $1.bytesIn) }
        family("haproxy_server_bytes_out_total", .counter, "Total number of response bytes since process started") { Int(truncatingIfNeeded: $1.bytesOut) }
        family("haproxy_server_responses_denied_total", .counter, "Total number of denied responses since process started") { $1.counters.deniedResponses }
        family("haproxy_server_connection_errors_total", .counter, "Total number of failed connections to server since the worker process started") { $1.connectionErrors }
        family("haproxy_server_response_errors_total", .counter, "Total number of invalid responses since the worker process started") { $1.responseErrors }
        family("haproxy_server_retry_warnings_total", .counter, "Total number of server connection retries since the worker process started") { $1.retries }
        family("haproxy_server_redispatch_warnings_total", .counter, "Total number of server redispatches due to connection failures since the worker process started") { $1.redispatches }
        w.family("haproxy_server_status", .gauge, "Current status of the service, per state label value.")
        for entry in servers {
            let state = Engine.prometheusState(entry.state.health)
            for (i, name) in Engine.serverStates.enumerated() {
                w.append("haproxy_server_status"); w.append(entry.labels); w.append(",state=\""); w.append(name)
                w.append("\"} "); w.int(i == state ? 1 : 0); w.end()
            }
        }
        family("haproxy_server_weight", .gauge, "Server's effective weight, or sum of active servers' effective weights for a backend") { s, _ in s.weight }
        family("haproxy_server_check_failures_total", .counter, "Total number of failed individual health checks per server/backend, since the worker process started") { _, st in
            st.health.checkConfigured ? st.health.failedChecks : nil
        }
        family("haproxy_server_check_up_down_total", .counter, "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started") { _, st in
            st.health.checkConfigured ? st.health.downTransitions : nil
        }
        family("haproxy_server_check_last_change_seconds", .gauge, "How long ago the last server state changed, in seconds") { _, st in
            max(0, Int(monotonic - st.health.lastChange))
        }
        // As HAProxy: for servers with checks only.
        optional("haproxy_server_downtime_seconds_total", .counter, "Total time spent in DOWN state, for server or backend") { _, st in
            st.health.checkConfigured ? Int(st.health.downtime(now: monotonic)) : nil
        }
        // No `maxqueue`, no `slowstart`: NaN, HAProxy's empty field (no limit, no throttling).
        optional("haproxy_server_queue_limit", .gauge, "Limit on the number of connections in queue, for servers only (maxqueue argument)") { _, _ in nil }
        optional("haproxy_server_current_throttle", .gauge, "Throttling ratio applied to a server's maxconn and weight during the slowstart period (0 to 100%)") { _, _ in nil }
        family("haproxy_server_loadbalanced_total", .counter, "Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)") { $1.selected }
        family("haproxy_server_max_session_rate", .gauge, "Highest value of sessions per second observed since the worker process started") { _, st in rates.meters(st.counters)?.sessions.max ?? 0 }
        // Check status: servers whose checks run (configured, enabled, not paused by maintenance).
        let checked = servers.filter { $0.server.state.health.checksRun }
        if !checked.isEmpty {
            w.family("haproxy_server_check_status", .gauge, "Status of last health check, per state label value.")
            for entry in checked {
                let status = entry.state.health.lastCheck.status
                for (name, s) in Engine.checkStates {
                    w.append("haproxy_server_check_status"); w.append(entry.labels); w.append(",state=\""); w.append(name)
                    w.append("\"} "); w.int(s == status ? 1 : 0); w.end()
                }
            }
            w.family("haproxy_server_check_code", .gauge, "layer5-7 code, if available of the last health check.")
            for entry in checked where entry.state.health.lastCheck.status.rawValue > 14 {
                w.append("haproxy_server_check_code"); w.append(entry.labels); w.append("} ")
                w.int(entry.state.health.lastCheck.code); w.end()
            }
            w.family("haproxy_server_check_duration_seconds", .gauge, "Total duration of the latest server health check, in seconds.")
            for entry in checked where entry.state.health.lastCheck.duration >= 0 {
                w.append("haproxy_server_check_duration_seconds"); w.append(entry.labels); w.append("} ")
                w.milliseconds(entry.state.health.lastCheck.duration); w.end()
            }
        }
        let http = servers.filter { $0.http }
        if !http.isEmpty {
            w.family("haproxy_server_http_responses_total", .counter, "Total number of HTTP responses, per status class")
            for entry in http {
                for (i, code) in Engine.codeClasses.enumerated() {
                    w.append("haproxy_server_http_responses_total"); w.append(entry.labels); w.append(",code=\""); w.append(code)
                    w.append("\"} "); w.int(entry.state.responsesByClass[i]); w.end()
                }
            }
        }
        family("haproxy_server_client_aborts_total", .counter, "Total number of requests or connections aborted by the client since the worker process started") { $1.clientAborts }
        family("haproxy_server_server_aborts_total", .counter, "Total number of requests or connections aborted by the server since the worker process started") { $1.serverAborts }
        family("haproxy_server_last_session_seconds", .gauge, "How long ago some traffic was seen on this object on this worker process, in seconds") { _, st in
            st.lastSession > 0 ? Int(now - st.lastSession) : -1
        }
        time("haproxy_server_queue_time_average_seconds", "Avg. queue time for last 1024 successful connections.") { $0.queueAverage }
        time("haproxy_server_connect_time_average_seconds", "Avg. connect time for last 1024 successful connections.") { $0.connectAverage }
        time("haproxy_server_response_time_average_seconds", "Avg. response time for last 1024 successful connections.") { $0.responseAverage }
        time("haproxy_server_total_time_average_seconds", "Avg. total time for last 1024 successful connections.") { $0.totalAverage }
        family("haproxy_server_connection_attempts_total", .counter, "Total number of outgoing connection attempts on this backend/server since the worker process started") { $1.counters.connectAttempts }
        family("haproxy_server_connection_reuses_total", .counter, "Total number of reused connection on this backend/server since the worker process started") { $1.counters.reuses }
        family("haproxy_server_idle_connections_current", .gauge, "Current number of idle connections available for reuse on this server") { $1.idleConnections }
        // No `pool-max-conn`: NaN, no limit.
        optional("haproxy_server_idle_connections_limit", .gauge, "Limit on the number of available idle connections on this server (server 'pool_max_conn' directive)") { _, _ in nil }
        time("haproxy_server_max_queue_time_seconds", "Maximum observed time spent in the queue") { $0.queueMax }
        time("haproxy_server_max_connect_time_seconds", "Maximum observed time spent waiting for a connection to complete") { $0.connectMax }
        time("haproxy_server_max_response_time_seconds", "Maximum observed time spent waiting for a server response") { $0.responseMax }
        time("haproxy_server_max_total_time_seconds", "Maximum observed total request+response time (request+queue+connect+response+processing)") { $0.totalMax }
        // Every pooled connection has served a whole exchange (HAProxy's "safe"); none is pooled before.
        family("haproxy_server_unsafe_idle_connections_current", .gauge, "Current number of unsafe idle connections") { _, _ in 0 }
        family("haproxy_server_safe_idle_connections_current", .gauge, "Current number of safe idle connections") { $1.idleConnections }
        // A session at a server holds one connection to it.
        family("haproxy_server_used_connections_current", .gauge, "Current number of connections in use") { $1.currentSessions }
        family("haproxy_server_uweight", .gauge, "Server's user weight, or sum of active servers' user weights for a backend") { s, _ in s.state.health.weight }
    }
}
