import ConfigModel
import Engine
import Foundation

/// The runtime API's commands (HAProxy's names and answers where they exist).
final class AdminCommands: @unchecked Sendable {
    let engine: Engine
    let reloads: ReloadCoordinator
    let startedAt = Date()

    init(engine: Engine, reloads: ReloadCoordinator) {
        self.engine = engine
        self.reloads = reloads
        // The stats page's version, event list and sessions chart (one sample a second).
        let metrics = engine.metrics
        metrics.productVersion = strataVersion
        let notice = engine.notice
        engine.notice = { message, level, logged in
            notice(message, level, logged)
            metrics.recordEvent(message)
        }
        metrics.startSampling()
    }

    static let help = """
        The following commands are valid at this level:
          help                                    : this message
          prompt                                  : toggle interactive mode with prompt
          quit                                    : disconnect
          show info [typed|json]                  : report information about the running process
          show stat [{<iid>|<proxy>} <type> <sid>] [typed|json] [up|no-maint] : report counters for each proxy and server
          show sess                               : report the list of current sessions (and their generation)
          show generations                        : one row per live generation (id state age_s sessions listeners hash)
          show ssl cert [<certfile>]              : display the SSL certificates used in memory, or the details of a file's
          clear counters [all]                    : clear max statistics counters (or all counters)
          show servers state [<backend>]          : dump volatile server information (all or for a single backend)
          show backend                            : list backends in the current running config
          get weight <bk>/<srv>                   : report a server's current weight
          disable server <bk>/<srv>               : disable a server for maintenance (use 'set server' instead)
          enable server <bk>/<srv>                : enable a disabled server (use 'set server' instead)
          disable health <bk>/<srv>               : disable health checks
          enable health <bk>/<srv>                : enable health checks
          set server <bk>/<srv> [opts]            : change a server's state (ready|drain|maint), health (up|stopping|down), weight or addr
          set weight <bk>/<srv> <weight>[%]       : change a server's weight (use 'set server' instead)
          reload                                  : reload the configuration in place (admin level)
        """

    /// Runs the command `words` (escapes already resolved) at `level`: HAProxy's level of each
    /// command (AdminAccess) is checked before its arguments, as HAProxy does.
    func handle(_ words: [String], level: AccessLevel, reply: @escaping (String) -> Void) {
        if let needed = AdminAccess.requiredLevel(for: words), level < needed { return reply(AdminAccess.denied) }
        switch words {
        case ["help"]:
            reply(AdminCommands.help)
        case ["show", "info"]:
            reply(showInfo())
        case ["show", "info", "typed"]:
            reply(showInfoTyped())
        case ["show", "info", "json"]:
            reply(showInfoJSON())
        case ["show", "sess"]:
            reply(engine.showSessions())
        case ["clear", "counters"]:
            engine.clearCounters(all: false)
            reply("")
        case ["clear", "counters", "all"]:
            engine.clearCounters(all: true)
            reply("")
        case ["show", "generations"]:
            reply(showGenerations())
        case ["reload"]:
            reloads.request { outcome in
                reply((outcome.success ? "Success=1" : "Success=0") + "\n--\n" + outcome.messages.joined(separator: "\n"))
            }
        case ["show", "ssl", "cert"], _ where words.count == 4 && words[0...2] == ["show", "ssl", "cert"]:
            reply(engine.showSSLCertificates(words.count == 4 ? words[3] : nil))
        default:
            if words.count >= 2, words[0] == "show", words[1] == "stat" {
                return reply(engine.showStat(Array(words.dropFirst(2)), legends: level >= .operator_))
            }
            if let answer = engine.serverAdminCommand(words, level: level) { return reply(answer) }
            reply("Unknown command: '\(words.joined(separator: " "))'\n" + AdminCommands.help)
        }
    }

    func showGenerations() -> String {
        var lines = ["# id state age_s sessions listeners hash"]
        for g in engine.generations {
            lines.append("\(g.id) \(g.state.rawValue) \(Int(g.ageSeconds)) \(g.sessions) \(g.listeners) \(g.hash)")
        }
        return lines.joined(separator: "\n")
    }

    /// `show info`'s fields: HAProxy's names where they mean the same, then strata's own.
    /// (name, value, HAProxy's typed tags and type).
    func infoFields() -> [(name: String, value: String, tags: String, type: String)] {
        let uptime = Int(Date().timeIntervalSince(startedAt))
        let gens = engine.generations
        let current = engine.current
        let process = engine.statsProcessInfo
        let metrics = engine.metrics
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let node = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var fields: [(String, String, String, String)] = [
            ("Name", "strata", "POS", "str"),
            ("Version", strataVersion, "POS", "str"),
            ("Nbthread", "1", "CGS", "u32"),
            ("Nbproc", "1", "CGS", "u32"),
            ("Process_num", "1", "KGP", "u32"),
            ("Pid", "\(getpid())", "SGP", "u32"),
            ("Uptime", "\(uptime / 86400)d \(uptime / 3600 % 24)h\(uptime / 60 % 60)m\(uptime % 60)s", "MDP", "str"),
            ("Uptime_sec", "\(uptime)", "MDP", "u32"),
            ("Ulimit-n", "\(process.fdLimit)", "CLP", "u32"),
            ("Maxsock", "\(process.fdLimit)", "CLP", "u32"),
            ("Maxconn", "\(process.maxconn)", "CLP", "u32"),
            ("Hard_maxconn", "\(process.maxconn)", "CLP", "u32"),
            ("CurrConns", "\(process.currentConnections)", "MGP", "u32"),
            ("CumConns", "\(process.cumulativeConnections)", "MCP", "u32"),
            ("CumReq", "\(process.cumulativeRequests)", "MCP", "u32"),
            ("node", node, "COS", "str"),
        ]
        if let description = current?.config.config.global.description { fields.append(("description", description, "COS", "str")) }
        fields += [
            ("Stopping", process.stopping ? "1" : "0", "MGP", "u32"),
            ("Jobs", "\(process.currentConnections + process.listeners)", "MGP", "u32"),
            ("Listeners", "\(process.listeners)", "MGP", "u32"),
            ("TotalBytesOut", "\(process.bytesOut)", "MGP", "u64"),
            ("Start_time_sec", "\(Int(metrics.startedAt))", "MDP", "u32"),
            // strata's own.
            ("CurrSessions", "\(process.sessions)", "MGP", "u32"),
            ("Generation", "\(current?.id ?? 0)", "SGP", "u32"),
            ("GenerationHash", current?.config.hash ?? "", "SGP", "str"),
            ("Generations", "\(gens.count)", "MGP", "u32"),
            ("DrainingGenerations", "\(gens.filter { $0.state == .draining }.count)", "MGP", "u32"),
            ("Reloads", "\(reloads.succeeded)", "MCP", "u32"),
            ("FailedReloads", "\(reloads.failed)", "MCP", "u32"),
            ("LastReloadMs", reloads.lastReloadSeconds.map { "\(Int(($0 * 1000).rounded()))" } ?? "", "MDP", "u32"),
        ]
        return fields.map { (name: $0.0, value: $0.1, tags: $0.2, type: $0.3) }
    }

    func showInfo() -> String {
        infoFields().map { "\($0.name): \($0.value)" }.joined(separator: "\n")
    }

    /// HAProxy 2.6's positions of the `show info` fields strata has; strata's own follow from 200.
    static let infoPositions: [String: Int] = [
        "Name": 0, "Version": 1, "Nbthread": 3, "Nbproc": 4, "Process_num": 5, "Pid": 6, "Uptime": 7, "Uptime_sec": 8,
        "Ulimit-n": 13, "Maxsock": 14, "Maxconn": 15, "Hard_maxconn": 16, "CurrConns": 17, "CumConns": 18, "CumReq": 19,
        "node": 50, "description": 51, "Stopping": 52, "Jobs": 53, "Listeners": 55, "TotalBytesOut": 61, "Start_time_sec": 70,
    ]

    /// Each field's position: HAProxy's, else 200 and up in order.
    func infoPositions(_ fields: [(name: String, value: String, tags: String, type: String)]) -> [Int] {
        var next = 200
        return fields.map { f in
            if let p = AdminCommands.infoPositions[f.name] { return p }
            defer { next += 1 }
            return next
        }
    }

    /// `show info typed`: `POS.NAME.1:TAGS:TYPE:VALUE`, HAProxy's.
    func showInfoTyped() -> String {
        let fields = infoFields()
        return zip(infoPositions(fields), fields).map { p, f in "\(p).\(f.name).1:\(f.tags):\(f.type):\(f.value)" }.joined(separator: "\n")
    }

    /// `show info json`: HAProxy's array of fields.
    func showInfoJSON() -> String {
        func escaped(_ s: String) -> String {
            s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        }
        let origins: [Character: String] = ["K": "Key", "C": "Config", "P": "Product", "M": "Metric", "S": "Status"]
        let natures: [Character: String] = ["A": "Age", "a": "Avg", "C": "Counter", "D": "Duration", "G": "Gauge", "L": "Limit",
                                            "M": "Max", "N": "Name", "O": "Output", "R": "Rate", "T": "Time"]
        let scopes: [Character: String] = ["P": "Process", "S": "Service", "s": "System", "C": "Cluster"]
        let fields = infoFields()
        let items = zip(infoPositions(fields), fields).map { i, f -> String in
            let t = Array(f.tags)
            let value = f.type == "str" || (Int(f.value) == nil) ? "\"\(escaped(f.value))\"" : f.value
            let type = f.type == "str" || Int(f.value) == nil ? "str" : f.type
            return "{\"field\":{\"pos\":\(i),\"name\":\"\(f.name)\"},\"processNum\":1,\"tags\":{\"origin\":\"\(origins[t[0]] ?? "Product")\",\"nature\":\"\(natures[t[1]] ?? "Output")\",\"scope\":\"\(scopes[t[2]] ?? "Service")\"},\"value\":{\"type\":\"\(type)\",\"value\":\(value)}}"
        }
        return "[" + items.joined(separator: ",") + "]"
    }
}
