import ConfigModel
import Glibc

/// A proxy as the statistics show it across live generations: the newest generation's objects
/// for a name (counters and server state are carried by name and identity, so every generation's
/// object for the name counts into the same ones), and every live generation's backend of that
/// name for what is per generation (queues). A proxy that only a draining generation still has is
/// shown until that generation retires.
struct StatsProxyView {
    let proxy: Proxy
    /// The frontend side (nil for a `backend`).
    let frontend: Frontend?
    /// The backend side, newest generation first (empty for a `frontend`).
    let backends: [Backend]
    /// The generation the objects come from is the current one.
    let current: Bool

    var name: String { proxy.name }
    var backend: Backend? { backends.first }
    /// Sessions waiting in this backend's queues, every generation.
    var queued: Int { backends.reduce(0) { $0 + $1.queued } }
}

/// Process-wide figures for `show info` and the exporter.
struct StatsProcessInfo: Sendable {
    /// Client connections open now (HAProxy's CurrConns), and since start (CumConns: the
    /// frontends' carried totals).
    var currentConnections: Int
    var cumulativeConnections: Int
    /// HTTP requests since start (CumReq).
    var cumulativeRequests: Int
    /// Sessions in flight in every live generation (TCP connections; HTTP requests).
    var sessions: Int
    var maxconn: Int
    var listeners: Int
    var bytesIn: UInt64
    var bytesOut: UInt64
    var fdLimit: Int
    var stopping: Bool
}

extension Engine {
    /// Process-wide figures (loop thread).
    var statsProcessInfo: StatsProcessInfo {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let fdLimit = Int(min(limit.rlim_cur, 1 << 20))
        var connections = 0, requests = 0
        var bytesIn: UInt64 = 0, bytesOut: UInt64 = 0
        for view in statsProxies() {
            guard let f = view.frontend else { continue }
            connections += f.counters.totalSessions
            requests += f.counters.requests
            bytesIn += f.counters.bytesIn
            bytesOut += f.counters.bytesOut
        }
        // The engine's: a default derived from the limit when the process started, which a
        // limit raised since (by a reload's maxconn) does not change.
        let maxconn = globalMaxconn
        return StatsProcessInfo(currentConnections: currentSessions, cumulativeConnections: connections,
                                cumulativeRequests: requests,
                                sessions: liveGenerations.reduce(0) { $0 + $1.sessions },
                                maxconn: maxconn, listeners: current?.listenerRefs ?? 0, bytesIn: bytesIn,
                                bytesOut: bytesOut, fdLimit: fdLimit, stopping: current == nil && !liveGenerations.isEmpty)
    }

    /// Every proxy of the live generations: the current generation's in configuration order,
    /// then those only older generations still have (newest first). Loop thread.
    func statsProxies() -> [StatsProxyView] {
        var views: [StatsProxyView] = []
        // A frontend and a backend may share a name (HAProxy allows it): seen per side.
        var seenFrontends = Set<String>(), seenBackends = Set<String>()
        let generations = liveGenerations.reversed()
        for g in generations {
            for proxy in g.config.config.proxies {
                var frontend: Frontend?
                if proxy.isFrontend, !seenFrontends.contains(proxy.name), let f = g.frontends[proxy.name] {
                    frontend = f
                    seenFrontends.insert(proxy.name)
                }
                var backends: [Backend] = []
                if proxy.isBackend, !seenBackends.contains(proxy.name) {
                    seenBackends.insert(proxy.name)
                    for other in generations {
                        if let b = other.backends[proxy.name] { backends.append(b) }
                    }
                }
                guard frontend != nil || !backends.isEmpty else { continue }
                views.append(StatsProxyView(proxy: proxy, frontend: frontend, backends: backends, current: g === current))
            }
        }
        return views
    }

    /// HAProxy's rows for `show stat` and the stats page: per proxy its FRONTEND row, its servers,
    /// its BACKEND row. `proxyID` (iid), `types` (1 frontends, 2 backends, 4 servers) and
    /// `serverID` filter as `show stat IID TYPE SID` does (-1: all). Loop thread.
    func statsRows(proxyID: Int = -1, types: Int = -1, serverID: Int = -1) -> [StatsRow] {
        let now = loop.now
        let monotonic = MonotonicClock.now()
        // A frontend's limit: its maxconn, else the process's (HAProxy's default).
        let maxconn = statsProcessInfo.maxconn
        var rows: [StatsRow] = []
        for view in statsProxies() where proxyID == -1 || view.proxy.id == proxyID {
            if let f = view.frontend, types & 1 != 0 {
                rows.append(frontendRow(view, f, maxconn: maxconn))
            }
            if let b = view.backend {
                if types & 4 != 0 {
                    for s in b.servers where serverID == -1 || s.config.id == serverID {
                        rows.append(serverRow(view, s, now: now, monotonic: monotonic))
                    }
                }
                if types & 2 != 0 { rows.append(backendRow(view, b, now: now, monotonic: monotonic)) }
            }
        }
        return rows
    }

    private func common(_ row: inout StatsRow, _ view: StatsProxyView, _ svname: String) {
        row[.pxname] = .string(view.name)
        row[.svname] = .string(svname)
        row[.pid] = .int(1)
        row[.iid] = .int(view.proxy.id)
        row[.sid] = .int(row.serverID)
        row[.type] = .int(row.type.rawValue)
        row[.mode] = .string(view.proxy.mode.rawValue)
    }

    private static func responses(_ row: inout StatsRow, _ classes: [Int]) {
        row[.hrsp_1xx] = .int(classes[0])
        row[.hrsp_2xx] = .int(classes[1])
        row[.hrsp_3xx] = .int(classes[2])
        row[.hrsp_4xx] = .int(classes[3])
        row[.hrsp_5xx] = .int(classes[4])
        row[.hrsp_other] = .int(classes[5])
    }

    private static func times(_ row: inout StatsRow, _ t: StatsTimes) {
        row[.qtime] = .int(t.queueAverage)
        row[.ctime] = .int(t.connectAverage)
        row[.rtime] = .int(t.responseAverage)
        row[.ttime] = .int(t.totalAverage)
        row[.qtime_max] = .int(t.queueMax)
        row[.ctime_max] = .int(t.connectMax)
        row[.rtime_max] = .int(t.responseMax)
        row[.ttime_max] = .int(t.totalMax)
    }

    /// comp_in, comp_out, comp_byp, comp_rsp: HAProxy fills them on frontend and backend rows in
    /// any mode.
    static func compression(_ row: inout StatsRow, _ c: CounterSet) {
        row[.comp_in] = .int(c.compressionIn)
        row[.comp_out] = .int(c.compressionOut)
        row[.comp_byp] = .int(c.compressionBypassed)
        row[.comp_rsp] = .int(c.compressedResponses)
    }

    /// HAProxy's h2 module counters. A frontend's count its clients' connections and frames; a
    /// backend's its connections and streams to HTTP/2 servers (strata does not count the frames
    /// servers send: those columns stay empty there).
    static func http2(_ row: inout StatsRow, _ c: CounterSet, backend: Bool) {
        guard c.h2 != nil else { return }
        if backend {
            row[.h2_goaway_rcvd] = .int(c.h2Total(.serverGoawaysReceived))
            row[.h2_detected_conn_protocol_errors] = .int(c.h2Total(.serverProtocolErrors))
            row[.h2_open_connections] = .int(c.h2Total(.serverOpenConnections))
            row[.h2_total_connections] = .int(c.h2Total(.serverConnectionsOpened))
            row[.h2_backend_total_streams] = .int(c.h2Total(.serverStreamsOpened))
            return
        }
        let fields: [(StatsField, H2Counters.Field)] = [
            (.h2_headers_rcvd, .headersReceived), (.h2_data_rcvd, .dataReceived), (.h2_settings_rcvd, .settingsReceived),
            (.h2_rst_stream_rcvd, .resetsReceived), (.h2_goaway_rcvd, .goawaysReceived),
            (.h2_detected_conn_protocol_errors, .protocolErrors), (.h2_detected_strm_protocol_errors, .streamErrors),
            (.h2_rst_stream_resp, .resetsSent), (.h2_goaway_resp, .goawaysSent), (.h2_open_connections, .openConnections),
            (.h2_backend_open_streams, .openStreams), (.h2_total_connections, .totalConnections),
            (.h2_backend_total_streams, .streamsOpened),
        ]
        for (stat, field) in fields { row[stat] = .int(c.h2Total(field)) }
    }

    private func frontendRow(_ view: StatsProxyView, _ f: Frontend, maxconn: Int) -> StatsRow {
        var row = StatsRow(type: .frontend, proxyID: view.proxy.id, serverID: 0)
        common(&row, view, "FRONTEND")
        let c = f.counters
        row[.scur] = .int(c.currentSessions)
        row[.smax] = .int(c.maxSessions)
        row[.slim] = .int(view.proxy.maxconn ?? maxconn)
        row[.stot] = .int(c.totalSessions)
        row[.bin] = .uint(c.bytesIn)
        row[.bout] = .uint(c.bytesOut)
        row[.dreq] = .int(c.deniedRequests)
        row[.dresp] = .int(c.deniedResponses)
        row[.ereq] = .int(c.requestErrors)
        let full = view.proxy.maxconn.map { $0 > 0 && c.currentSessions >= $0 } ?? false
        row[.status] = .string(!view.current ? "STOP" : full ? "FULL" : "OPEN")
        if view.proxy.mode == .http {
            Engine.responses(&row, c.responsesByClass)
            row[.req_tot] = .int(c.requests)
            row[.intercepted] = .int(c.intercepted)
            row[.cache_lookups] = .int(c.cacheLookups)
            row[.cache_hits] = .int(c.cacheHits)
        }
        Engine.compression(&row, c)
        Engine.http2(&row, c, backend: false)
        row[.conn_tot] = .int(c.totalSessions)
        row[.dcon] = .int(c.deniedConnections)
        // No tcp-request session rules: no session is denied after its connection.
        row[.dses] = .int(c.deniedSessions)
        // Measured once a second by the registry's sampler; a connection is a session in strata.
        let m = metrics.rates.meters(c)
        row[.rate] = .int(m?.sessions.rate ?? 0)
        row[.rate_max] = .int(m?.sessions.max ?? 0)
        row[.conn_rate] = .int(m?.sessions.rate ?? 0)
        row[.conn_rate_max] = .int(m?.sessions.max ?? 0)
        if view.proxy.mode == .http {
            row[.req_rate] = .int(m?.requests.rate ?? 0)
            row[.req_rate_max] = .int(m?.requests.max ?? 0)
        }
        return row
    }

    private func backendRow(_ view: StatsProxyView, _ b: Backend, now: Double, monotonic: Double) -> StatsRow {
        var row = StatsRow(type: .backend, proxyID: view.proxy.id, serverID: 0)
        common(&row, view, "BACKEND")
        let c = b.counters
        row[.qcur] = .int(view.queued)
        row[.qmax] = .int(c.queueMax)
        row[.scur] = .int(c.currentSessions)
        row[.smax] = .int(c.maxSessions)
        if let fullconn = view.proxy.fullconn { row[.slim] = .int(fullconn) }
        row[.stot] = .int(c.totalSessions)
        row[.bin] = .uint(c.bytesIn)
        row[.bout] = .uint(c.bytesOut)
        row[.dreq] = .int(c.deniedRequests)
        row[.dresp] = .int(c.deniedResponses)
        row[.econ] = .int(c.connectionErrors)
        row[.eresp] = .int(c.responseErrors)
        row[.wretr] = .int(c.retries)
        row[.wredis] = .int(c.redispatches)
        var active = 0, backup = 0, weight = 0, userWeight = 0, lbtot = 0
        var lastChange = -Double.infinity
        for s in b.servers {
            lbtot += s.state.selected
            lastChange = max(lastChange, s.state.health.lastChange)
            guard s.isUsable else { continue }
            if s.config.options.backup { backup += 1 } else { active += 1 }
        }
        // HAProxy's backend weight: the usable active servers', or the backups' when none is.
        for s in b.servers where s.isUsable && s.config.options.backup == (active == 0) {
            weight += s.weight
            userWeight += s.state.health.weight
        }
        // As HAProxy: a backend without servers (a `listen stats`) is UP, not DOWN.
        row[.status] = .string(active + backup > 0 || b.servers.isEmpty ? "UP" : "DOWN")
        row[.weight] = .int(weight)
        row[.uweight] = .int(userWeight)
        row[.act] = .int(active)
        row[.bck] = .int(backup)
        if lastChange > -Double.infinity { row[.lastchg] = .int(max(0, Int(monotonic - lastChange))) }
        if let down = metrics.rates.backendDown(c) {
            row[.chkdown] = .int(down.transitions)
            row[.downtime] = .int(Int(down.seconds(now: monotonic)))
        }
        row[.lbtot] = .int(lbtot)
        row[.cli_abrt] = .int(c.clientAborts)
        row[.srv_abrt] = .int(c.serverAborts)
        Engine.compression(&row, c)
        Engine.http2(&row, c, backend: true)
        row[.lastsess] = .int(c.lastSession > 0 ? Int(now - c.lastSession) : -1)
        Engine.times(&row, c.times)
        if view.proxy.mode == .http {
            Engine.responses(&row, c.responsesByClass)
            row[.req_tot] = .int(c.requests)
            row[.cache_lookups] = .int(c.cacheLookups)
            row[.cache_hits] = .int(c.cacheHits)
        }
        row[.algo] = .string(view.proxy.balance.description)
        let m = metrics.rates.meters(c)
        row[.rate] = .int(m?.sessions.rate ?? 0)
        row[.rate_max] = .int(m?.sessions.max ?? 0)
        row[.connect] = .int(c.connectAttempts)
        row[.reuse] = .int(c.reuses)
        return row
    }

    private func serverRow(_ view: StatsProxyView, _ s: BackendServer, now: Double, monotonic: Double) -> StatsRow {
        var row = StatsRow(type: .server, proxyID: view.proxy.id, serverID: s.config.id)
        common(&row, view, s.name)
        let st = s.state
        let h = st.health
        row[.qcur] = .int(0)
        row[.qmax] = .int(st.queueMax)
        row[.scur] = .int(st.currentSessions)
        row[.smax] = .int(st.maxSessions)
        if let maxconn = s.maxconn { row[.slim] = .int(maxconn) }
        if let maxqueue = s.config.options.maxqueue, maxqueue > 0 { row[.qlimit] = .int(maxqueue) }
        row[.stot] = .int(st.totalSessions)
        row[.bin] = .uint(st.bytesIn)
        row[.bout] = .uint(st.bytesOut)
        row[.dresp] = .int(st.counters.deniedResponses)
        row[.econ] = .int(st.connectionErrors)
        row[.eresp] = .int(st.responseErrors)
        row[.wretr] = .int(st.retries)
        row[.wredis] = .int(st.redispatches)
        row[.status] = .string(h.statusText)
        row[.weight] = .int(h.weight)
        row[.uweight] = .int(h.weight)
        row[.act] = .int(s.config.options.backup ? 0 : 1)
        row[.bck] = .int(s.config.options.backup ? 1 : 0)
        if h.checkConfigured {
            row[.chkfail] = .int(h.failedChecks)
            row[.chkdown] = .int(h.downTransitions)
            let running = st.checker.map { $0.phase == .connecting || $0.phase == .exchanging } ?? false
            row[.check_status] = .string((running ? "* " : "") + h.lastCheck.status.name)
            if h.lastCheck.status.rawValue > 14 { row[.check_code] = .int(h.lastCheck.code) }
            if h.lastCheck.duration >= 0 { row[.check_duration] = .int(h.lastCheck.duration) }
            row[.last_chk] = .string(h.lastCheck.info)
            row[.check_desc] = .string(h.lastCheck.status.description)
            row[.check_rise] = .int(h.rise)
            row[.check_fall] = .int(h.fall)
            row[.check_health] = .int(h.health)
            row[.downtime] = .int(Int(h.downtime(now: monotonic)))
        }
        if h.agentRuns {
            let agent = h.lastAgentCheck
            let running = st.agent.map { $0.phase == .connecting || $0.phase == .exchanging } ?? false
            row[.agent_status] = .string((running ? "* " : "") + agent.status.name)
            if agent.status.carriesCode { row[.agent_code] = .int(agent.code) }
            if agent.duration >= 0 { row[.agent_duration] = .int(agent.duration) }
            row[.agent_desc] = .string(agent.status.description)
            row[.last_agt] = .string(agent.info)
            // HAProxy's agent rise and fall are 1.
            row[.agent_rise] = .int(1)
            row[.agent_fall] = .int(1)
            row[.agent_health] = .int(h.agentHealth)
        }
        row[.lastchg] = .int(max(0, Int(monotonic - h.lastChange)))
        row[.lbtot] = .int(st.selected)
        if view.proxy.mode == .http { Engine.responses(&row, st.responsesByClass) }
        row[.cli_abrt] = .int(st.clientAborts)
        row[.srv_abrt] = .int(st.serverAborts)
        row[.lastsess] = .int(st.lastSession > 0 ? Int(now - st.lastSession) : -1)
        Engine.times(&row, st.times)
        let moved = s.address
        let address = SocketEndpoint(address: moved.address, port: moved.port ?? 0)
        // A server without an address (resolution maintenance) has none to show.
        if st.hasAddress {
            row[.addr] = .string(moved.port == nil ? (address.address.isV6 ? "[\(address.address)]" : "\(address.address)") : address.description)
        }
        if let cookie = s.config.options.cookie { row[.cookie] = .string(cookie) }
        row[.srv_icur] = .int(st.idleConnections)
        let m = metrics.rates.meters(st.counters)
        row[.rate] = .int(m?.sessions.rate ?? 0)
        row[.rate_max] = .int(m?.sessions.max ?? 0)
        row[.connect] = .int(st.counters.connectAttempts)
        row[.reuse] = .int(st.counters.reuses)
        row[.idle_conn_cur] = .int(st.idleConnections)
        row[.safe_conn_cur] = .int(st.idleConnections)
        row[.used_conn_cur] = .int(st.currentSessions)
        return row
    }
}
