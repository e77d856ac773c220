import ConfigModel

/// The runtime API's map commands (HAProxy's management.txt): `show map [MAP]`, `get map MAP
/// VALUE`, `add map MAP KEY VALUE`, `set map MAP KEY|#REF VALUE`, `del map MAP KEY|#REF`,
/// `clear map MAP`. MAP is the file as the configuration names it, the path it was read at, or
/// `#ID` from `show map`. They act on the current generation's maps, which the generations
/// before it share while the file is unchanged; a change is published to every loop before the
/// answer (SharedMap).
enum MapCommands {
    static let unknownMap = "Unknown map identifier. Please use #<id> or <file>."

    static let adminCommands = [
        AdminCommand(["show", "map"], usage: ("show map [<map>]", "report available maps or dump a map's contents"),
                     level: .user) { c in
            .text(show(c.engine, c.arguments.first))
        },
        AdminCommand(["get", "map"], usage: ("get map <map> <value>", "report the keys and values matching a sample for a map"),
                     level: .user) { c in
            .text(get(c.engine, Array(c.arguments)))
        },
        AdminCommand(["add", "map"], usage: ("add map <map> <key> <val>", "add a map entry (payload supported instead of key/val)"),
                     level: .operator_) { c in
            .text(add(c.engine, Array(c.arguments), payload: c.payload))
        },
        AdminCommand(["set", "map"], usage: ("set map <map> [<key>|#<ref>] <value>", "modify a map entry"),
                     level: .operator_) { c in
            .text(set(c.engine, Array(c.arguments)))
        },
        AdminCommand(["del", "map"], usage: ("del map <map> [<key>|#<ref>]", "remove an entry from a map"),
                     level: .operator_) { c in
            .text(del(c.engine, Array(c.arguments)))
        },
        AdminCommand(["clear", "map"], usage: ("clear map <map>", "clear the contents of a map"),
                     level: .operator_) { c in
            .text(clear(c.engine, Array(c.arguments)))
        },
    ]

    /// The current generation's maps in the order the configuration names them: `#ID` is the
    /// place in this list.
    static func maps(_ engine: Engine) -> [SharedMap] {
        (engine.current?.maps.values.map { $0 } ?? []).sorted {
            ($0.location.file, $0.location.line, $0.path) < ($1.location.file, $1.location.line, $1.path)
        }
    }

    static func find(_ engine: Engine, _ name: String) -> SharedMap? {
        let all = maps(engine)
        if name.hasPrefix("#") {
            guard let id = Int(name.dropFirst()), all.indices.contains(id) else { return nil }
            return all[id]
        }
        return all.first { $0.name == name } ?? all.first { $0.path == name }
    }

    static func reference(_ entry: MapSnapshot.Entry) -> String { "0x" + String(entry.id, radix: 16) }

    static func show(_ engine: Engine, _ name: String?) -> String {
        guard let name else {
            var lines = ["# id (file) description"]
            for (i, m) in maps(engine).enumerated() {
                lines.append("\(i) (\(m.name)) pattern loaded from file '\(m.name)' used by map at file '\(m.location.file)' line \(m.location.line ?? 0). curr_ver=0 next_ver=0 entry_cnt=\(m.snapshot.entries.count)")
            }
            return lines.joined(separator: "\n")
        }
        guard let map = find(engine, name) else { return unknownMap }
        return map.snapshot.entries.map { reference($0) + " " + text($0.key) + " " + text($0.value) }.joined(separator: "\n")
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    static func get(_ engine: Engine, _ args: [String]) -> String {
        guard args.count >= 2 else { return "'get map' expects two parameters: map identifier and key." }
        guard let map = find(engine, args[0]) else { return unknownMap }
        let snapshot = map.snapshot
        let sample = Array(args[1].utf8)
        let (matches, _) = map.uses
        var lines: [String] = []
        for match in MapMatch.allCases.reversed() where matches.contains(match) {
            let index = sample.withUnsafeBytes { snapshot.find($0, match) }
            let idx = match == .str || match == .beg || match == .ip ? "tree" : "list"
            var line = "type=\(match.rawValue), case=sensitive, found=\(index == nil ? "no" : "yes")"
            if let index {
                let e = snapshot.entries[index]
                line += ", idx=\(idx), key=\"\(text(e.key))\", value=\"\(text(e.value))\", type=\"str\""
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// Why `key` cannot be a key of `map` or `value` one of its values, or nil.
    static func problem(_ map: SharedMap, key: [UInt8]?, value: [UInt8]?) -> String? {
        let (matches, outputs) = map.uses
        if let key {
            for match in matches {
                switch match {
                case .reg:
                    if (try? HTTPRegex(text(key), ignoreCase: false)) == nil { return "unable to compile the regex '\(text(key))'" }
                case .ip:
                    if MapSnapshot.network(key) == nil { return "'\(text(key))' is not an IPv4 or IPv6 address or network" }
                case .int:
                    if MapSnapshot.integerKey(key) == nil { return "'\(text(key))' is not an integer or a range" }
                default: break
                }
            }
        }
        if let value {
            for output in outputs where HTTPConverterChain.mapValue(value, output) == nil {
                return "'\(text(value))' is not a value of type \(output.rawValue)"
            }
        }
        return nil
    }

    static func add(_ engine: Engine, _ args: [String], payload: String? = nil) -> String {
        let usage = "'add map' expects three parameters (map identifier, key and value) or one parameter (map identifier) and a payload"
        var pairs: [(key: [UInt8], value: [UInt8])] = []
        if let payload, args.count == 1 {
            // `KEY VALUE` a line, as in a map file: all of them in one change, or none.
            for line in payload.utf8.split(separator: UInt8(ascii: "\n")) {
                var bytes = Array(line)
                if bytes.last == 0x0D { bytes.removeLast() }
                var i = 0
                while i < bytes.count && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 }
                let keyStart = i
                while i < bytes.count && bytes[i] != 0x20 && bytes[i] != 0x09 { i += 1 }
                guard i > keyStart else { continue }
                let key = Array(bytes[keyStart..<i])
                while i < bytes.count && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 }
                pairs.append((key, Array(bytes[i...])))
            }
        } else if args.count == 3, payload == nil {
            pairs = [(Array(args[1].utf8), Array(args[2].utf8))]
        } else {
            return usage
        }
        guard let map = find(engine, args[0]) else { return unknownMap }
        for (n, pair) in pairs.enumerated() {
            if let problem = problem(map, key: pair.key, value: pair.value) {
                return "'add map' failed: \(problem)\(pairs.count > 1 ? " (entry \(n + 1) of the payload; nothing was added)" : "")."
            }
        }
        map.update { entries, nextID in
            for pair in pairs { entries.append(MapSnapshot.Entry(id: nextID(), key: pair.key, value: pair.value, line: 0)) }
        }
        return ""
    }

    /// `#0x…` (an entry as `show map` shows it) or a key: which entries it names.
    static func selects(_ selector: String) -> (MapSnapshot.Entry) -> Bool {
        if selector.hasPrefix("#0x"), let id = UInt64(selector.dropFirst(3), radix: 16) {
            return { $0.id == id }
        }
        let key = Array(selector.utf8)
        return { $0.key == key }
    }

    static func set(_ engine: Engine, _ args: [String]) -> String {
        guard args.count == 3 else { return "'set map' expects three parameters: map identifier, key and value." }
        guard let map = find(engine, args[0]) else { return unknownMap }
        let value = Array(args[2].utf8)
        if let problem = problem(map, key: nil, value: value) { return "'set map' failed: \(problem)." }
        let matches = selects(args[1])
        let found = map.update { entries, _ -> Bool in
            var any = false
            for i in entries.indices where matches(entries[i]) {
                entries[i].value = value
                any = true
            }
            return any
        }
        return found ? "" : "entry not found."
    }

    static func del(_ engine: Engine, _ args: [String]) -> String {
        guard args.count == 2 else { return "This command expects two parameters: map identifier and key." }
        guard let map = find(engine, args[0]) else { return unknownMap }
        let matches = selects(args[1])
        let found = map.update { entries, _ -> Bool in
            let before = entries.count
            entries.removeAll(where: matches)
            return entries.count != before
        }
        return found ? "" : "Key not found."
    }

    static func clear(_ engine: Engine, _ args: [String]) -> String {
        guard args.count == 1 else { return "'clear map' expects a map identifier." }
        guard let map = find(engine, args[0]) else { return unknownMap }
        map.update { entries, _ in entries.removeAll() }
        return ""
    }
}
