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
                     usage: ("show stat [{<iid>|<proxy>} <type> <sid>] [typed|json] [up|no-maint]",
                             "report counters for each proxy and server"),
                     level: .user) { c in
            .text(showStat(c.engine, c.arguments, legends: c.level >= .operator_))
        },
        // Sessions show client addresses.
        AdminCommand(["show", "sess"], usage: ("show sess", "report the list of current sessions (and their generation)"),
                     level: .operator_) { c in
            c.arguments.isEmpty ? .text(showSessions(c.engine)) : .unknown
        },
        AdminCommand(["show", "threads"], usage: ("show threads", "show each event loop's thread, sessions and CPU time"),
                     level: .operator_) { c in
            c.arguments.isEmpty ? .text(showThreads(c.engine)) : .unknown
        },
        AdminCommand(["clear", "counters"], usage: ("clear counters [all]", "clear max statistics counters (or all counters)"),
                     level: .operator_) { c in
            guard c.arguments.isEmpty else { return .unknown }
            clearCounters(c.engine, all: false)
            return .text("")
        },
        AdminCommand(["clear", "counters", "all"], usage: nil, level: .admin) { c in
            guard c.arguments.isEmpty else { return .unknown }
            clearCounters(c.engine, all: true)
            return .text("")
        },
    ]

    // MARK: show info

    /// One line of `show info`: HAProxy's name, tags (origin, nature, scope) and type.
    struct InfoField {
        var name: String
        var value: String
        var tags: String
        var type: String
    }

    /// `show info`'s fields: HAProxy's names where they mean the same, then strata's own. The
    /// product's version is the daemon's (`metrics.productVersion`); the reload figures are the
    /// ones the exporter reports.
    static func infoFields(_ engine: Engine) -> [InfoField] {
        let metrics = engine.metrics
        let uptime = max(0, Int(wallClock() - metrics.startedAt))
        let gens = engine.generations
        let current = engine.current
        let process = engine.statsProcessInfo
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let node = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var fields = [
            InfoField(name: "Name", value: "strata", tags: "POS", type: "str"),
            InfoField(name: "Version", value: metrics.productVersion, tags: "POS", type: "str"),
            InfoField(name: "Nbthread", value: "\(engine.workers.count)", tags: "CGS", type: "u32"),
            InfoField(name: "Nbproc", value: "1", tags: "CGS", type: "u32"),
            InfoField(name: "Process_num", value: "1", tags: "KGP", type: "u32"),
            InfoField(name: "Pid", value: "\(getpid())", tags: "SGP", type: "u32"),
            InfoField(name: "Uptime", value: "\(uptime / 86400)d \(uptime / 3600 % 24)h\(uptime / 60 % 60)m\(uptime % 60)s",
                      tags: "MDP", type: "str"),
            InfoField(name: "Uptime_sec", value: "\(uptime)", tags: "MDP", type: "u32"),
            InfoField(name: "Ulimit-n", value: "\(process.fdLimit)", tags: "CLP", type: "u32"),
            InfoField(name: "Maxsock", value: "\(process.fdLimit)", tags: "CLP", type: "u32"),
            InfoField(name: "Maxconn", value: "\(process.maxconn)", tags: "CLP", type: "u32"),
            InfoField(name: "Hard_maxconn", value: "\(process.maxconn)", tags: "CLP", type: "u32"),
            InfoField(name: "CurrConns", value: "\(process.currentConnections)", tags: "MGP", type: "u32"),
            InfoField(name: "CumConns", value: "\(process.cumulativeConnections)", tags: "MCP", type: "u32"),
            InfoField(name: "CumReq", value: "\(process.cumulativeRequests)", tags: "MCP", type: "u32"),
            InfoField(name: "node", value: node, tags: "COS", type: "str"),
        ]
        if let description = current?.config.config.global.description {
            fields.append(InfoField(name: "description", value: description, tags: "COS", type: "str"))
        }
        fields += [
            InfoField(name: "Stopping", value: process.stopping ? "1" : "0", tags: "MGP", type: "u32"),
            InfoField(name: "Jobs", value: "\(process.currentConnections + process.listeners)", tags: "MGP", type: "u32"),
            InfoField(name: "Listeners", value: "\(process.listeners)", tags: "MGP", type: "u32"),
            InfoField(name: "TotalBytesOut", value: "\(process.bytesOut)", tags: "MGP", type: "u64"),
            InfoField(name: "Start_time_sec", value: "\(Int(metrics.startedAt))", tags: "MDP", type: "u32"),
            // strata's own.
            InfoField(name: "CurrSessions", value: "\(process.sessions)", tags: "MGP", type: "u32"),
            InfoField(name: "Generation", value: "\(current?.id ?? 0)", tags: "SGP", type: "u32"),
            InfoField(name: "GenerationHash", value: current?.config.hash ?? "", tags: "SGP", type: "str"),
            InfoField(name: "Generations", value: "\(gens.count)", tags: "MGP", type: "u32"),
            InfoField(name: "DrainingGenerations", value: "\(gens.filter { $0.state == .draining }.count)", tags: "MGP", type: "u32"),
            InfoField(name: "Reloads", value: "\(metrics.reloadsSucceeded)", tags: "MCP", type: "u32"),
            InfoField(name: "FailedReloads", value: "\(metrics.reloadsFailed)", tags: "MCP", type: "u32"),
            InfoField(name: "LastReloadMs", value: metrics.lastSuccessfulReloadSeconds.map { "\(Int(($0 * 1000).rounded()))" } ?? "",
                      tags: "MDP", type: "u32"),
        ]
        if let broker = engine.brokerStatus {
            fields.append(InfoField(name: "Broker", value: broker(), tags: "MGP", type: "str"))
        }
        return fields
    }

    static func showInfo(_ engine: Engine) -> String {
        infoFields(engine).map { "\($0.name): \($0.value)" }.joined(separator: "\n")
    }

    /// HAProxy 2.6's positions of the `show info` fields strata has; strata's own follow from 200.
    static let infoPositions: [String: Int] = [
        "Name": 0, "Version": 1, "Nbthread": 3, "Nbproc": 4, "Process_num": 5, "Pid": 6, "Uptime": 7, "Uptime_sec": 8,
        "Ulimit-n": 13, "Maxsock": 14, "Maxconn": 15, "Hard_maxconn": 16, "CurrConns": 17, "CumConns": 18, "CumReq": 19,
        "node": 50, "description": 51, "Stopping": 52, "Jobs": 53, "Listeners": 55, "TotalBytesOut": 61, "Start_time_sec": 70,
    ]

    /// Each field with its position: HAProxy's, else 200 and up in order.
    static func positioned(_ fields: [InfoField]) -> [(position: Int, field: InfoField)] {
        var next = 200
        return fields.map { f in
            if let p = infoPositions[f.name] { return (p, f) }
            defer { next += 1 }
            return (next, f)
        }
    }

    /// `show info typed`: `POS.NAME.1:TAGS:TYPE:VALUE`, HAProxy's.
    static func showInfoTyped(_ engine: Engine) -> String {
        positioned(infoFields(engine)).map { p, f in "\(p).\(f.name).1:\(f.tags):\(f.type):\(f.value)" }.joined(separator: "\n")
    }

    /// `show info json`: HAProxy's array of fields. A number field without a value (LastReloadMs
    /// before any reload) is a string, as JSON has no empty number.
    static func showInfoJSON(_ engine: Engine) -> String {
        let items = positioned(infoFields(engine)).map { p, f -> String in
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
    static func showSessions(_ engine: Engine) -> String {
        let described = engine.onEveryLoop { $0.describeSessions() }.joined()
        var lines: [String] = []
        for g in engine.liveGenerations.reversed() {
            for (generation, text) in described where generation == g.id {
                lines.append(text.replacingAll("state=?", with: "state=\(g.state.rawValue)"))
            }
        }
        return lines.joined(separator: "\n")
    }

    /// A session's `show sess` line, on its loop (`state=?` is filled by the control loop).
    static func describe(_ s: ListedSession, generation: Int, now: Double) -> String {
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
        }
        if let d = s as? StatsSessionDescribing {
            frontend = d.statsFrontend ?? frontend
            backend = d.statsBackend ?? backend
        }
        let id = "0x" + String(UInt(bitPattern: ObjectIdentifier(s)), radix: 16)
        let proto = client.map { $0.address.isV6 ? "tcpv6" : "tcpv4" } ?? "unix_stream"
        let src = client.map(\.description) ?? "unix"
        let age = (s as? StatsSessionDescribing).map { "\(max(0, Int(now - $0.statsStartedAt)))s" } ?? "?"
        return "\(id): proto=\(proto) src=\(src) fe=\(frontend?.name ?? "<NONE>") be=\(backend?.name ?? "<NONE>") srv=\(server?.name ?? "<none>") gen=\(generation) state=? mode=\(mode) age=\(age)"
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
