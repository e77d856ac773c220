import CLibEV
import ConfigModel

/// The engine's side of stick tables: the tables kept across reloads, their expiry timer, the
/// admin socket's `show table`, `clear table`, `set table` (HAProxy's formats), and the
/// exporter's `haproxy_sticktable_*` families.
extension Engine {
    /// Activation: the generation's tables become the live ones; the reload says what it did to
    /// the tables the previous configuration had. Control loop.
    func adoptStickTables(_ generation: Generation) {
        stickTables.adopt(generation.stickTables)
        for line in generation.stickTableChanges { report(line, about: generation) }
        stickTableExpiry.run(!generation.stickTables.isEmpty, on: loop)
    }

    /// The current generation's tables in file order (what the admin socket and the exporter show).
    var currentStickTables: [StickTable] {
        guard let current else { return [] }
        return current.config.config.proxies.compactMap { p in p.stickTable.flatMap { current.stickTables[$0.name]?.0 } }
    }

    // MARK: the admin socket

    static let stickTableCommands = [
        AdminCommand(["show", "table"], usage: ("show table [<table>]", "report table usage stats or dump this table's contents"),
                     level: .user) { c in
            .text(c.engine.showTable(Array(c.arguments), contents: c.level >= .operator_))
        },
        AdminCommand(["clear", "table"], usage: ("clear table <table> [<filter>]*", "remove an entry from a table (filter: data/key)"),
                     level: .operator_) { c in
            .text(c.engine.clearTable(Array(c.arguments)))
        },
        AdminCommand(["set", "table"], usage: ("set table <table> key <k> [data.* <v>]*", "update or create a table entry's data"),
                     level: .operator_) { c in
            .text(c.engine.setTable(Array(c.arguments)))
        },
    ]

    private func table(named name: String) -> StickTable? {
        currentStickTables.first { $0.name == name }
    }

    private static func header(_ t: StickTable) -> String {
        "# table: \(t.name), type: \(t.type.rawValue), size:\(t.size), used:\(t.used)"
    }

    /// A `data.FIELD OP VALUE` filter.
    private struct Filter {
        var type: StickDataType
        var op: String
        var value: Int

        func holds(_ row: StickTable.Row) -> Bool {
            guard let v = row.values.first(where: { $0.0.type == type })?.1 else { return false }
            switch op {
            case "eq": return v == value
            case "ne": return v != value
            case "le": return v <= value
            case "ge": return v >= value
            case "lt": return v < value
            default: return v > value
            }
        }
    }

    /// Reads `key K` and `data.F OP V` filters (HAProxy's messages for what is wrong).
    private func filters(_ words: ArraySlice<String>, table t: StickTable) -> Result<(key: StickKey?, filters: [Filter]), AdminText> {
        var key: StickKey?
        var filters: [Filter] = []
        var i = words.startIndex
        while i < words.endIndex {
            let word = words[i]
            if word == "key" {
                guard i + 1 < words.endIndex, let k = t.key(parsing: words[i + 1]) else {
                    return .failure(AdminText(i + 1 < words.endIndex ? "" : "Key value expected"))
                }
                key = k
                i += 2
                continue
            }
            guard word.hasPrefix("data.") else {
                return .failure(AdminText("Optional argument only supports \"data.<store_data_type>\" <operator> <value> and key <key>"))
            }
            let n = filters.count + 1
            guard let type = StickDataType(rawValue: String(word.dropFirst(5))) else {
                return .failure(AdminText("Filter entry #\(n): Unknown data type"))
            }
            guard t.stores(type) else { return .failure(AdminText("Filter entry #\(n): Data type not stored in this table")) }
            guard i + 1 < words.endIndex, ["eq", "ne", "le", "ge", "lt", "gt"].contains(words[i + 1]) else {
                return .failure(AdminText("Filter entry #\(n): Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\""))
            }
            guard i + 2 < words.endIndex, let v = Int(words[i + 2]) else {
                return .failure(AdminText("Filter entry #\(n): Require a valid integer value to compare against"))
            }
            filters.append(Filter(type: type, op: words[i + 1], value: v))
            i += 3
        }
        return .success((key, filters))
    }

    struct AdminText: Error {
        var text: String
        init(_ text: String) { self.text = text }
    }

    /// `show table`: a header per table; `show table NAME [filters]`: the header and the entries
    /// (from operator level on: below it, HAProxy's line saying they are not shown).
    func showTable(_ args: [String], contents: Bool = true) -> String {
        guard let name = args.first, !name.isEmpty else {
            return currentStickTables.map(Engine.header).joined(separator: "\n")
        }
        guard let t = table(named: name) else { return "No such table" }
        let selection: (key: StickKey?, filters: [Filter])
        switch filters(args.dropFirst(), table: t) {
        case .failure(let e): return e.text
        case .success(let s): selection = s
        }
        var lines = [Engine.header(t)]
        guard contents else { return (lines + ["# contents not dumped due to insufficient privileges"]).joined(separator: "\n") }
        // A key that matches nothing shows the header alone.
        let rows = selection.key.map { t.rows(key: $0) } ?? t.rows()
        for row in rows where selection.filters.allSatisfy({ $0.holds(row) }) {
            var line = "0x" + String(row.id, radix: 16) + ": key=" + t.describe(row.key) + " use=\(row.trackers) exp=\(row.expiresIn)"
            for (item, value) in row.values {
                line += " " + item.type.rawValue + (item.type.isRate ? "(\(item.period))" : "") + "=\(value)"
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// `clear table NAME [key K | data.F OP V…]`: entries in use stay (HAProxy's rule).
    func clearTable(_ args: [String]) -> String {
        guard let name = args.first, !name.isEmpty else { return "Optional table name expected" }
        guard let t = table(named: name) else { return "No such table" }
        switch filters(args.dropFirst(), table: t) {
        case .failure(let e): return e.text
        case .success(let s):
            if s.filters.isEmpty {
                t.clear(key: s.key)
            } else {
                for row in (s.key.map { t.rows(key: $0) } ?? t.rows()) where s.filters.allSatisfy({ $0.holds(row) }) {
                    t.clear(key: row.key)
                }
            }
            return ""
        }
    }

    /// `set table NAME key K [data.F V]…`.
    func setTable(_ args: [String]) -> String {
        guard let name = args.first, !name.isEmpty else { return "Optional table name expected" }
        guard let t = table(named: name) else { return "No such table" }
        guard args.count >= 3, args[1] == "key" else { return "\"key\" expected" }
        guard let key = t.key(parsing: args[2]) else { return "Invalid key" }
        var values: [(StickDataType, Int)] = []
        var i = 3
        while i < args.count {
            let word = args[i]
            guard word.hasPrefix("data.") else { return "\"data.<type>\" followed by a value expected" }
            guard let type = StickDataType(rawValue: String(word.dropFirst(5))) else { return "Unknown data type" }
            guard t.stores(type) else { return "Data type not stored in this table" }
            guard i + 1 < args.count, let v = Int(args[i + 1]) else { return "Require a valid integer value to store" }
            values.append((type, v))
            i += 2
        }
        return t.set(key: key, values) ? "" : "Unable to allocate a new key"
    }

    // MARK: the exporter

    /// HAProxy's `sticktable` module: each table's size and entries.
    func writeStickTables(_ w: inout PrometheusWriter) {
        let tables = currentStickTables
        guard !tables.isEmpty else { return }
        w.family("haproxy_sticktable_size", .gauge, "Stick table size.")
        for t in tables {
            w.append("haproxy_sticktable_size{name=\""); w.labelValue(t.name); w.append("\"} "); w.int(t.size); w.end()
        }
        w.family("haproxy_sticktable_used", .gauge, "Number of entries used in this stick table.")
        for t in tables {
            w.append("haproxy_sticktable_used{name=\""); w.labelValue(t.name); w.append("\"} "); w.int(t.used); w.end()
        }
    }
}

/// The control loop's timer that removes expired entries every second from tables nobody
/// looks at (a lookup or a dump removes them anyway): memory comes back without traffic.
final class StickTableExpiry: EventHandler {
    private let registry: StickTableRegistry
    private var timer: TimerWatcher!
    private var running = false

    init(registry: StickTableRegistry) {
        self.registry = registry
        super.init()
        timer = TimerWatcher(handler: self)
    }

    func run(_ on: Bool, on loop: EventLoop) {
        if on && !running { timer.arm(every: 1, on: loop) }
        if !on && running { timer.stop(on: loop) }
        running = on
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        for t in registry.all { t.expireNow() }
    }
}
