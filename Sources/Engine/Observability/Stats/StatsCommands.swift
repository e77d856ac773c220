import ConfigModel
import Glibc

/// What the runtime API's `show sess` prints of a session. The sessions provide it (their
/// timing is private to them); a session that does not is shown with what is visible.
protocol StatsSessionDescribing: AnyObject {
    /// Loop seconds when the session (TCP) or the request in flight (HTTP) started.
    var statsStartedAt: Double { get }
    var statsFrontend: Frontend? { get }
    var statsBackend: Backend? { get }
}

/// HAProxy's stats.c commands of the runtime API (`show info`, `show stat`, `clear counters`)
/// and stream.c's `show sess`, with HAProxy's levels. Each runs on the engine's loop thread.
enum StatsCommands {
    static let adminCommands = [
        AdminCommand(["show", "info"], usage: ("show info [typed|json]", "report information about the running process"),
                     level: .user) { c in
            switch Array(c.arguments) {
            case []: .text(showInfo(c.engine))
            case ["typed"]: .text(showInfoTyped(c.engine))
            case ["json"]: .text(showInfoJSON(c.engine))
            default: .unknown
            }
        },
        // Every level reads it; the addresses, cookies and algorithms from operator on.
        AdminCommand(["show", "stat"],
                     usage: ("show stat [domain <dns|proxy>] [{<iid>|<proxy>} <type> <sid>] [typed|json] [up|no-maint]",
                             "report counters for each proxy and server"),
                     level: .user) { c in
            .text(showStat(c.engine, c.arguments, legends: c.level >= .operator_))
        },
        // Sessions show client addresses.
        AdminCommand(["show", "sess"], usage: ("show sess [<id>|all]", "report the list of current sessions (and their generation)"),
                     level: .operator_) { c in
            let args = Array(c.arguments)
            if args.isEmpty { return .text(showSessions(c.engine)) }
            if args == ["all"] { return .text(showSessions(c.engine, detailed: true)) }
            if args.count == 1, args[0].hasPrefix("0x") { return .text(showSessions(c.engine, detailed: true, only: args[0])) }
            return .unknown
        },
        // Captures show client addresses and request bytes.
        AdminCommand(["show", "errors"],
                     usage: ("show errors [<px>] [request|response]", "report last request and/or response errors for each proxy"),
                     level: .operator_) { c in
            let args = Array(c.arguments)
            let proxies = c.engine.statsProxies().map { ($0.name, $0.proxy.id) }
            let proxy = args.first.flatMap { $0 == "-1" ? nil : $0 }
            guard let report = c.engine.metrics.errors.report(proxy: proxy, only: args.count > 1 ? args[1] : nil,
                                                              proxies: proxies, now: wallClock()) else {
                return .text("No such proxy.")
            }
            return .text(report)
        },
        AdminCommand(["show", "threads"], usage: ("show threads", "show each event loop's thread, sessions and CPU time"),
                     level: .operator_) { c in
            c.arguments.isEmpty ? .text(showThreads(c.engine)) : .unknown
        },
        AdminCommand(["clear", "counters"], usage: ("clear counters [all]", "clear max statistics counters (or all counters)"),
                     level: .operator_) { c in
            guard c.arguments.isEmpty else { return .unknown }
            clearCounters(c.engine, all: false)
            c.engine.metrics.rates.clearMaxima()
            return .text("")
        },
        AdminCommand(["clear", "counters", "all"], usage: nil, level: .admin) { c in
            guard c.arguments.isEmpty else { return .unknown }
            clearCounters(c.engine, all: true)
            return .text("")
        },
    ]

    // MARK: show info

    /// One line of `show info`: its position (HAProxy 2.6's `INF_*` number; strata's own from
    /// 200 on), HAProxy's name, tags (origin, nature, scope) and type.
    struct InfoField {
        var position: Int
        var name: String
        var value: String
        var tags: String
        var type: String

        init(_ position: Int, _ name: String, _ value: String, _ tags: String, _ type: String) {
            self.position = position
            self.name = name
            self.value = value
            self.tags = tags
            self.type = type
        }
    }

    /// `show info`'s fields: every field HAProxy 2.6 prints, in its order, with its tags and
    /// types (stats.c `info_fields`, `stats_fill_info`), then strata's own. A field that has no
    /// meaning in strata carries HAProxy's neutral value and says why here. Tools parse these
    /// lines by name (hatop needs Release_date, Maxpipes, PipesUsed, Tasks, Run_queue and node).
    static func infoFields(_ engine: Engine) -> [InfoField] {
        let metrics = engine.metrics
        let uptime = max(0, Int(wallClock() - metrics.startedAt))
        let gens = engine.generations
        let current = engine.current
        let process = engine.statsProcessInfo
        let rates = metrics.rates
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let node = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // The loops' buffer pools stand for HAProxy's memory pools; their pipe pools for its pipes.
        let loops = engine.workers.map(\.loop)
        let bufferSize = loops.first?.buffers.size ?? 0
        let poolAllocated = loops.reduce(0) { $0 + $1.buffers.allocated } * bufferSize
        let poolUsed = loops.reduce(0) { $0 + $1.buffers.allocated - $1.buffers.pooled } * bufferSize
        let pipesOpen = loops.reduce(0) { $0 + $1.pipes.open }
        let pipesFree = loops.reduce(0) { $0 + $1.pipes.pooled }
        let spliced = loops.reduce(0) { $0 + $1.pipes.splicedBytesOut }
        let jobs = process.currentConnections + process.listeners
        let version = metrics.productVersion
        var fields = [
            InfoField(0, "Name", "strata", "POS", "str"),
            InfoField(1, "Version", version, "POS", "str"),
            InfoField(2, "Release_date", metrics.productReleaseDate, "POS", "str"),
            InfoField(3, "Nbthread", "\(engine.workers.count)", "CGS", "u32"),
            // One process, as HAProxy since 2.5 (nbproc is gone).
            InfoField(4, "Nbproc", "1", "CGS", "u32"),
            InfoField(5, "Process_num", "1", "KGP", "u32"),
            InfoField(6, "Pid", "\(getpid())", "SGP", "u32"),
            InfoField(7, "Uptime", "\(uptime / 86400)d \(uptime / 3600 % 24)h\(twoDigits(uptime / 60 % 60))m\(twoDigits(uptime % 60))s",
                      "MDP", "str"),
            InfoField(8, "Uptime_sec", "\(uptime)", "MDP", "u32"),
            // No memory limit (HAProxy's -m): 0, HAProxy's "none".
            InfoField(9, "Memmax_MB", "0", "CLP", "u32"),
            InfoField(10, "PoolAlloc_MB", "\(poolAllocated / 1_048_576)", "MGP", "u32"),
            InfoField(11, "PoolUsed_MB", "\(poolUsed / 1_048_576)", "MGP", "u32"),
            // A failed allocation stops strata (Swift traps): none is ever counted.
            InfoField(12, "PoolFailed", "0", "MCP", "u32"),
            InfoField(13, "Ulimit-n", "\(process.fdLimit)", "CLP", "u32"),
            InfoField(14, "Maxsock", "\(process.fdLimit)", "CLP", "u32"),
            InfoField(15, "Maxconn", "\(process.maxconn)", "CLP", "u32"),
            InfoField(16, "Hard_maxconn", "\(process.maxconn)", "CLP", "u32"),
            InfoField(17, "CurrConns", "\(process.currentConnections)", "MGP", "u32"),
            InfoField(18, "CumConns", "\(process.cumulativeConnections)", "MCP", "u32"),
            InfoField(19, "CumReq", "\(process.cumulativeRequests)", "MCP", "u32"),
            // No maxsslconn: 0, unlimited. TLS endpoints front and back, as HAProxy counts them.
            InfoField(20, "MaxSslConns", "0", "MMP", "u32"),
            InfoField(21, "CurrSslConns", "\(TLSConnection.figure(.current))", "MGP", "u32"),
            InfoField(22, "CumSslConns", "\(TLSConnection.figure(.cumulative))", "MCP", "u32"),
            // No maxpipes: 0, unlimited (each loop keeps at most 256 idle pipes).
            InfoField(23, "Maxpipes", "0", "CLP", "u32"),
            InfoField(24, "PipesUsed", "\(pipesOpen - pipesFree)", "MGP", "u32"),
            InfoField(25, "PipesFree", "\(pipesFree)", "MGP", "u32"),
            InfoField(26, "ConnRate", "\(rates.connections.rate)", "MRP", "u32"),
            // No maxconnrate, maxsessrate, maxsslrate: 0, no limit.
            InfoField(27, "ConnRateLimit", "0", "CLP", "u32"),
            InfoField(28, "MaxConnRate", "\(rates.connections.max)", "MMP", "u32"),
            // A session is a connection in strata (no tcp-request connection rules drop one before).
            InfoField(29, "SessRate", "\(rates.connections.rate)", "MRP", "u32"),
            InfoField(30, "SessRateLimit", "0", "CLP", "u32"),
            InfoField(31, "MaxSessRate", "\(rates.connections.max)", "MRP", "u32"),
            InfoField(32, "SslRate", "\(rates.tlsConnections.rate)", "MRP", "u32"),
            InfoField(33, "SslRateLimit", "0", "CLP", "u32"),
            InfoField(34, "MaxSslRate", "\(rates.tlsConnections.max)", "MMP", "u32"),
            // A key is made by each full (not resumed) handshake.
            InfoField(35, "SslFrontendKeyRate", "\(rates.frontendKeys.rate)", "MGP", "u32"),
            InfoField(36, "SslFrontendMaxKeyRate", "\(rates.frontendKeys.max)", "MMP", "u32"),
            InfoField(37, "SslFrontendSessionReuse_pct", "\(rates.frontendReusePercent)", "MGP", "u32"),
            InfoField(38, "SslBackendKeyRate", "\(rates.backendKeys.rate)", "MRP", "u32"),
            InfoField(39, "SslBackendMaxKeyRate", "\(rates.backendKeys.max)", "MMP", "u32"),
            // The session cache's lookups and misses are not counted yet: 0.
            InfoField(40, "SslCacheLookups", "0", "MCP", "u32"),
            InfoField(41, "SslCacheMisses", "0", "MCP", "u32"),
            // HTTP compression's bytes per second over the last second. ZlibMemUsage and
            // MaxZlibMemUsage (45, 46) are left out (HAProxy's build with libslz has none; strata
            // has no zlib memory limit), as CompressBpsRateLim is 0 (no maxcomprate).
            InfoField(42, "CompressBpsIn", "\(rates.compressionIn.rate)", "MRP", "u32"),
            InfoField(43, "CompressBpsOut", "\(rates.compressionOut.rate)", "MRP", "u32"),
            InfoField(44, "CompressBpsRateLim", "0", "CLP", "u32"),
            // strata has no task scheduler: what it runs are the sessions, listeners and health
            // checks (each a set of libev watchers); libev runs a ready event at once, so there is
            // no run queue.
            InfoField(47, "Tasks", "\(process.sessions + process.listeners + engine.healthMonitor.checkerCount)", "MGP", "u32"),
            InfoField(48, "Run_queue", "0", "MGP", "u32"),
            InfoField(49, "Idle_pct", "\(rates.idlePercent)", "MaP", "u32"),
            InfoField(50, "node", node, "COS", "str"),
        ]
        if let description = current?.config.config.global.description {
            fields.append(InfoField(51, "description", description, "COS", "str"))
        }
        fields += [
            InfoField(52, "Stopping", process.stopping ? "1" : "0", "MGP", "u32"),
            InfoField(53, "Jobs", "\(jobs)", "MGP", "u32"),
            // HAProxy's unstoppable jobs are the master's connections: strata has no master.
            InfoField(54, "Unstoppable Jobs", "0", "MGP", "u32"),
            InfoField(55, "Listeners", "\(process.listeners)", "MGP", "u32"),
            // No peers section: 0.
            InfoField(56, "ActivePeers", "0", "MGP", "u32"),
            InfoField(57, "ConnectedPeers", "0", "MGP", "u32"),
            // A log line is written at once or not formed: none is dropped in a ring.
            InfoField(58, "DroppedLogs", "0", "MGP", "u32"),
            InfoField(59, "BusyPolling", "0", "MGP", "u32"),
            // Names are resolved when a configuration is loaded (a failure fails the load), never at run time.
            InfoField(60, "FailedResolutions", "0", "MGP", "u32"),
            InfoField(61, "TotalBytesOut", "\(process.bytesOut)", "MGP", "u64"),
            // HAProxy's own spelling.
            InfoField(62, "TotalSplicdedBytesOut", "\(spliced)", "MGP", "u64"),
            InfoField(63, "BytesOutRate", "\(rates.bytesOut.rate)", "MRP", "u64"),
            // No `expert-mode`/debug commands.
            InfoField(64, "DebugCommandsIssued", "0", "MGP", "u32"),
            // No log-forward sections.
            InfoField(65, "CumRecvLogs", "0", "MCP", "u32"),
            InfoField(66, "Build info", version, "POS", "str"),
            InfoField(67, "Memmax_bytes", "0", "CLP", "u32"),
            InfoField(68, "PoolAlloc_bytes", "\(poolAllocated)", "MGP", "u64"),
            InfoField(69, "PoolUsed_bytes", "\(poolUsed)", "MGP", "u64"),
            InfoField(70, "Start_time_sec", "\(Int(metrics.startedAt))", "MDP", "u32"),
            // No experimental feature.
            InfoField(71, "Tainted", "0", "SGP", "str"),
            // strata's own.
            InfoField(200, "CurrSessions", "\(process.sessions)", "MGP", "u32"),
            InfoField(201, "Generation", "\(current?.id ?? 0)", "SGP", "u32"),
            InfoField(202, "GenerationHash", current?.config.hash ?? "", "SGP", "str"),
            InfoField(203, "Generations", "\(gens.count)", "MGP", "u32"),
            InfoField(204, "DrainingGenerations", "\(gens.filter { $0.state == .draining }.count)", "MGP", "u32"),
            InfoField(205, "Reloads", "\(metrics.reloadsSucceeded)", "MCP", "u32"),
            InfoField(206, "FailedReloads", "\(metrics.reloadsFailed)", "MCP", "u32"),
            InfoField(207, "LastReloadMs", metrics.lastSuccessfulReloadSeconds.map { "\(Int(($0 * 1000).rounded()))" } ?? "",
                      "MDP", "u32"),
        ]
        // HTTP/2 client connections (every loop's counters added up).
        for (i, (name, field)) in [("H2Connections", H2Counters.Field.openConnections), ("H2ConnectionsTotal", .totalConnections),
                                   ("H2Streams", .openStreams), ("H2StreamsTotal", .streamsOpened),
                                   ("H2RapidResets", .rapidResets), ("H2Floods", .floods),
                                   ("H2OversizedHeaders", .oversizedHeaders), ("H2ProtocolErrors", .protocolErrors)].enumerated() {
            let gauge = field == .openConnections || field == .openStreams
            fields.append(InfoField(210 + i, name, "\(engine.h2Total(field))", gauge ? "MGP" : "MCP", "u32"))
        }
        // HTTP/2 connections to servers.
        for (i, (name, field)) in [("H2ServerConnections", H2Counters.Field.serverOpenConnections),
                                   ("H2ServerConnectionsTotal", .serverConnectionsOpened), ("H2ServerStreamsTotal", .serverStreamsOpened),
                                   ("H2ServerGoawaysReceived", .serverGoawaysReceived), ("H2ServerProtocolErrors", .serverProtocolErrors),
                                   ("H2ServerALPNChoseHTTP1", .serverALPNChoseHTTP1)].enumerated() {
            let gauge = field == .serverOpenConnections
            fields.append(InfoField(218 + i, name, "\(engine.h2Total(field))", gauge ? "MGP" : "MCP", "u32"))
        }
        if let broker = engine.brokerStatus {
            fields.append(InfoField(208, "Broker", broker(), "MGP", "str"))
        }
        return fields
    }

    private static func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    static func showInfo(_ engine: Engine) -> String {
        infoFields(engine).map { "\($0.name): \($0.value)" }.joined(separator: "\n")
    }

    /// `show info typed`: `POS.NAME.1:TAGS:TYPE:VALUE`, HAProxy's.
    static func showInfoTyped(_ engine: Engine) -> String {
        infoFields(engine).map { f in "\(f.position).\(f.name).1:\(f.tags):\(f.type):\(f.value)" }.joined(separator: "\n")
    }

    /// `show info json`: HAProxy's array of fields. A number field without a value (LastReloadMs
    /// before any reload) is a string, as JSON has no empty number.
    static func showInfoJSON(_ engine: Engine) -> String {
        let items = infoFields(engine).map { f -> String in
            let p = f.position
            let isString = f.type == "str" || Int(f.value) == nil
            let value = isString ? f.value.jsonQuoted : f.value
            return "{\"field\":{\"pos\":\(p),\"name\":\"\(f.name)\"},\"processNum\":1,\"tags\":\(StatsFormat.tagsJSON(f.tags)),\"value\":{\"type\":\"\(isString ? "str" : f.type)\",\"value\":\(value)}}"
        }
        return "[" + items.joined(separator: ",") + "]"
    }

    // MARK: show stat, show sess, clear counters

    /// `show stat [IID|PROXY TYPE SID] [typed|json] [up|no-maint]`: HAProxy's CSV (header and
    /// column order), typed lines or JSON. Without `legends` (a `level user` socket) the server
    /// addresses, cookies and balancing algorithms are left empty, as HAProxy leaves them below
    /// operator.
    static func showStat(_ engine: Engine, _ arguments: ArraySlice<String>, legends: Bool) -> String {
        var words = arguments
        // `show stat domain proxy …` is `show stat …`; strata has no other statistics domain.
        if words.first == "domain" {
            guard words.count >= 2, words[words.startIndex + 1] == "proxy" else { return "Invalid statistics domain." }
            words = words.dropFirst(2)
        }
        var proxyID = -1, types = -1, serverID = -1
        var format = "csv"
        var onlyUp = false, noMaint = false
        if words.count >= 3, let t = Int(words[words.startIndex + 1]), let s = Int(words[words.startIndex + 2]) {
            let p = words[words.startIndex]
            if let id = Int(p) {
                proxyID = id
            } else if let view = engine.statsProxies().first(where: { $0.name == p }) {
                proxyID = view.proxy.id
            } else {
                return "No such proxy."
            }
            types = t
            serverID = s
            words = words.dropFirst(3)
        }
        for w in words {
            switch w {
            case "typed": format = "typed"
            case "json": format = "json"
            case "up": onlyUp = true
            case "no-maint": noMaint = true
            case "desc": break
            default: return "show stat: unexpected argument '\(w)'"
            }
        }
        var rows = engine.statsRows(proxyID: proxyID, types: types, serverID: serverID)
        if !legends {
            for i in rows.indices {
                rows[i][.addr] = nil
                rows[i][.cookie] = nil
                rows[i][.algo] = nil
            }
        }
        if onlyUp || noMaint {
            rows.removeAll { row in
                guard row.type == .server else { return false }
                let status = row.string(.status)
                if noMaint && status.hasPrefix("MAINT") { return true }
                return onlyUp && !(status.hasPrefix("UP") || status == "no check")
            }
        }
        switch format {
        case "typed": return StatsFormat.typed(rows)
        case "json": return StatsFormat.json(rows)
        default: return StatsFormat.csv(rows)
        }
    }

    /// `show sess`: one line per session of every live generation (HTTP: requests in flight),
    /// HAProxy's first fields, and the generation: `0x…: proto=tcpv4 src=IP:PORT fe=F be=B
    /// srv=S gen=N age=Ts`. Every data loop describes its own sessions.
    /// `show sess all` adds each session's detail lines; `show sess 0xID` shows that session
    /// alone with its details (nothing when there is none, as HAProxy).
    static func showSessions(_ engine: Engine, detailed: Bool = false, only id: String? = nil) -> String {
        var described = engine.onEveryLoop { $0.describeSessions(detailed: detailed) }.joined().map { $0 }
        if let id { described = described.filter { $0.1.hasPrefix(id.lowercased() + ":") } }
        var lines: [String] = []
        for g in engine.liveGenerations.reversed() {
            for (generation, text) in described where generation == g.id {
                lines.append(text.replacingAll("state=?", with: "state=\(g.state.rawValue)"))
            }
        }
        return lines.joined(separator: "\n")
    }

    /// A session's `show sess` line, on its loop (`state=?` is filled by the control loop).
    static func describe(_ s: ListedSession, generation: Int, now: Double, detailed: Bool = false) -> String {
        var client: SocketEndpoint?
        var frontend: Frontend?
        var backend: Backend?
        var server: BackendServer?
        var mode = "tcp"
        if let t = s as? TCPSession {
            client = t.clientAddress
            frontend = t.frontend
            backend = t.backend
            server = t.server
        } else if let h = s as? HTTPSession {
            client = h.clientAddress
            server = h.server
            mode = "http"
        } else if let r = s as? ProxyHeaderReader {
            // Waiting for its PROXY header: the connection's own peer, no backend yet.
            client = r.peer
            frontend = r.frontend
        }
        if let d = s as? StatsSessionDescribing {
            frontend = d.statsFrontend ?? frontend
            backend = d.statsBackend ?? backend
        }
        let id = "0x" + String(UInt(bitPattern: ObjectIdentifier(s)), radix: 16)
        let proto = client.map { $0.address.isV6 ? "tcpv6" : "tcpv4" } ?? "unix_stream"
        let src = client.map(\.description) ?? "unix"
        let age = (s as? StatsSessionDescribing).map { "\(max(0, Int(now - $0.statsStartedAt)))s" } ?? "?"
        let line = "\(id): proto=\(proto) src=\(src) fe=\(frontend?.name ?? "<NONE>") be=\(backend?.name ?? "<NONE>") srv=\(server?.name ?? "<none>") gen=\(generation) state=? mode=\(mode) age=\(age)"
        guard detailed else { return line }
        // HAProxy's detail lines, the part strata has: the objects with their ids and addresses.
        var lines = [line]
        lines.append("  frontend=" + (frontend.map { "\($0.name) (id=\($0.proxy.id) mode=\($0.proxy.mode.rawValue))" } ?? "<NONE>"))
        lines.append("  backend=" + (backend.map { "\($0.name) (id=\($0.proxy.id) mode=\($0.proxy.mode.rawValue))" } ?? "<NONE>"))
        if let server {
            let a = server.address
            lines.append("  server=\(server.name) (id=\(server.config.id)) addr=\(SocketEndpoint(address: a.address, port: a.port ?? 0))")
        } else {
            lines.append("  server=<NONE>")
        }
        lines.append("  generation=\(generation) age=\(age)")
        return lines.joined(separator: "\n")
    }

    /// `show threads`: a line per data loop (HAProxy's `Thread N :` lines): its kernel thread id,
    /// the connections it serves now, the sessions of the live generations on it, and the CPU
    /// time its thread used.
    static func showThreads(_ engine: Engine) -> String {
        let sessions = engine.liveGenerations.reduce(into: [Int](repeating: 0, count: engine.workers.count)) { counts, g in
            for (i, shard) in g.shards.enumerated() where i < counts.count { counts[i] += shard.sessions }
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return engine.workers.map { w in
            let tid = w.threadID
            var cpu = "?"
            if tid > 0, let stat = try? procStat("/proc/self/task/\(tid)/stat") {
                let fields = stat.split(separator: " ")
                if fields.count > 14, let user = Double(fields[13]), let system = Double(fields[14]) {
                    let ms = Int(((user + system) / ticks * 1000).rounded())
                    cpu = "\(ms / 1000).\(String(repeating: "0", count: 3 - String(ms % 1000).count))\(ms % 1000)"
                }
            }
            return "Thread \(w.index + 1) : name=strata-loop-\(w.index + 1) tid=\(tid) conns=\(w.connectionsNow) sessions=\(sessions[w.index]) cpu_s=\(cpu)"
        }.joined(separator: "\n")
    }

    /// A /proc file's text (read in one call: these are a line long).
    private static func procStat(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open", errno: errno) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { throw SystemError("read", errno: errno) }
        // The command name may hold spaces: fields are counted after its closing parenthesis.
        let text = String(decoding: buffer[0..<n], as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return text }
        return "x x" + text[text.index(after: close)...]
    }

    /// `clear counters` (maxima) and `clear counters all` (every counter but the gauges), on every
    /// proxy and server of the live generations.
    static func clearCounters(_ engine: Engine, all: Bool) {
        var proxies = Set<ObjectIdentifier>()
        var servers = Set<ObjectIdentifier>()
        for g in engine.liveGenerations {
            for c in g.frontends.values.map(\.counters) + g.backends.values.map(\.counters)
            where proxies.insert(ObjectIdentifier(c)).inserted {
                if all { c.clearAll() } else { c.clearMaxima() }
            }
            for b in g.backends.values {
                for s in b.servers where servers.insert(ObjectIdentifier(s.state)).inserted {
                    if all { s.state.clearAll() } else { s.state.clearMaxima() }
                }
            }
        }
    }
}
