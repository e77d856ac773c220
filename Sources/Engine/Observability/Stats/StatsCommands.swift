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

/// Process-wide figures for `show info` and the exporter.
public struct StatsProcessInfo: Sendable {
    /// Client connections open now (HAProxy's CurrConns), and since start (CumConns: the
    /// frontends' carried totals).
    public var currentConnections: Int
    public var cumulativeConnections: Int
    /// HTTP requests since start (CumReq).
    public var cumulativeRequests: Int
    /// Sessions in flight in every live generation (TCP connections; HTTP requests).
    public var sessions: Int
    public var maxconn: Int
    public var listeners: Int
    public var bytesIn: UInt64
    public var bytesOut: UInt64
    public var fdLimit: Int
    public var stopping: Bool
}

extension Engine {
    // MARK: show stat

    /// `show stat [IID|PROXY TYPE SID] [typed|json] [up|no-maint]`: HAProxy's CSV (header and
    /// column order), typed lines or JSON. Without `legends` (a `level user` socket) the server
    /// addresses, cookies and balancing algorithms are left empty, as HAProxy leaves them below
    /// operator. Loop thread.
    public func showStat(_ arguments: [String], legends: Bool = true) -> String {
        var words = arguments[...]
        var proxyID = -1, types = -1, serverID = -1
        var format = "csv"
        var onlyUp = false, noMaint = false
        if words.count >= 3, let t = Int(words[words.startIndex + 1]), let s = Int(words[words.startIndex + 2]) {
            let p = words[words.startIndex]
            if let id = Int(p) {
                proxyID = id
            } else if let view = statsProxies().first(where: { $0.name == p }) {
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
        var rows = statsRows(proxyID: proxyID, types: types, serverID: serverID)
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
                if noMaint && status == "MAINT" { return true }
                return onlyUp && !(status.hasPrefix("UP") || status == "no check")
            }
        }
        switch format {
        case "typed": return Engine.statsTyped(rows)
        case "json": return Engine.statsJSON(rows)
        default: return Engine.statsCSV(rows)
        }
    }

    /// HAProxy's CSV: the header, a line per row, every line ending with a comma.
    static func statsCSV(_ rows: [StatsRow]) -> String {
        var out = StatsField.csvHeader + "\n"
        for row in rows {
            for value in row.values {
                if let value { out += csvField(value.text) }
                out += ","
            }
            out += "\n"
        }
        return out
    }

    /// A CSV field: quoted when it holds a comma, a quote or a line break (HAProxy's csv_enc).
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingAll("\"", with: "\"\"") + "\""
    }

    /// `show stat typed`: `F.IID.SID.POS.NAME.1:TAGS:TYPE:VALUE`, the fields that have a value.
    static func statsTyped(_ rows: [StatsRow]) -> String {
        var out = ""
        for row in rows {
            for field in StatsField.allCases {
                guard let value = row[field] else { continue }
                let d = StatsField.descriptions[field.rawValue]
                out += "\(row.type.letter).\(row.proxyID).\(row.serverID).\(field.rawValue).\(d.name).1:\(field.tags(for: row.type)):\(d.type):\(value.text)\n"
            }
        }
        return out
    }

    private static func tagWords(_ tags: String) -> (String, String, String) {
        let t = Array(tags)
        let origin: String = switch t[0] {
        case "K": "Key"
        case "C": "Config"
        case "P": "Product"
        case "M": "Metric"
        default: "Status"
        }
        let nature: String = switch t[1] {
        case "A": "Age"
        case "a": "Avg"
        case "C": "Counter"
        case "D": "Duration"
        case "G": "Gauge"
        case "L": "Limit"
        case "M": "Max"
        case "N": "Name"
        case "O": "Output"
        case "R": "Rate"
        default: "Time"
        }
        let scope: String = switch t[2] {
        case "P": "Process"
        case "S": "Service"
        case "s": "System"
        default: "Cluster"
        }
        return (origin, nature, scope)
    }

    /// `show stat json`: HAProxy's array (one array of fields per row).
    static func statsJSON(_ rows: [StatsRow]) -> String {
        var objects: [String] = []
        for row in rows {
            var fields: [String] = []
            for field in StatsField.allCases {
                guard let value = row[field] else { continue }
                let d = StatsField.descriptions[field.rawValue]
                let (origin, nature, scope) = tagWords(field.tags(for: row.type))
                let json: String
                switch value {
                case .string(let s): json = "\"\(jsonEscaped(s))\""
                default: json = value.text
                }
                fields.append("{\"objType\":\"\(row.type.jsonName)\",\"proxyId\":\(row.proxyID),\"id\":\(row.serverID),\"field\":{\"pos\":\(field.rawValue),\"name\":\"\(d.name)\"},\"processNum\":1,\"tags\":{\"origin\":\"\(origin)\",\"nature\":\"\(nature)\",\"scope\":\"\(scope)\"},\"value\":{\"type\":\"\(d.type)\",\"value\":\(json)}}")
            }
            objects.append("[" + fields.joined(separator: ",") + "]")
        }
        return "[" + objects.joined(separator: ",") + "]"
    }

    static func jsonEscaped(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = Array("0123456789abcdef")
                    out += "\\u00" + String(hex[Int(u.value >> 4)]) + String(hex[Int(u.value & 15)])
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out
    }

    // MARK: show info

    /// Process-wide figures (loop thread).
    public var statsProcessInfo: StatsProcessInfo {
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

    // MARK: show sess

    /// `show sess`: one line per session of every live generation (HTTP: requests in flight),
    /// HAProxy's first fields, and the generation: `0x…: proto=tcpv4 src=IP:PORT fe=F be=B
    /// srv=S gen=N age=Ts`. Loop thread.
    public func showSessions() -> String {
        let now = loop.now
        var lines: [String] = []
        for g in liveGenerations.reversed() {
            for s in g.sessionList.members {
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
                lines.append("\(id): proto=\(proto) src=\(src) fe=\(frontend?.name ?? "<NONE>") be=\(backend?.name ?? "<NONE>") srv=\(server?.name ?? "<none>") gen=\(g.id) state=\(g.state.rawValue) mode=\(mode) age=\(age)")
            }
        }
        return lines.joined(separator: "\n")
    }

    // MARK: clear counters

    /// `clear counters` (maxima) and `clear counters all` (every counter but the gauges), on every
    /// proxy and server of the live generations. Loop thread.
    public func clearCounters(all: Bool) {
        var proxies = Set<ObjectIdentifier>()
        var servers = Set<ObjectIdentifier>()
        for g in liveGenerations {
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

extension String {
    /// Every occurrence of `target` replaced (Foundation's replacingOccurrences, without Foundation).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}
