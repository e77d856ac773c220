import ConfigModel

/// Stick tables (issue 13) as HAProxy reads them (configuration.txt §4.2 "stick-table",
/// "http-request track-sc0", §7.3.3 "sc_*"/"src_*", §7.3.1 "table_*"): the `stick-table` line,
/// the stick-counter actions of `http-request` and `tcp-request`, the fetches and converters.
extension KeywordReader {
    static let stickCounterActions = ["track-sc0", "track-sc1", "track-sc2", "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt0"]

    /// `stick-table type T [len N] size N [expire T] [nopurge] [peers NAME] [store LIST]…`.
    func stickTable(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        if let earlier = draft.proxy.stickTable {
            throw line.error("stick-table: only one table per proxy is allowed (one was declared at \(earlier.location))")
        }
        var type: StickKeyType?
        var keyLength: Int?
        var size: Int?
        var expire: Int?
        var noPurge = false
        var store: [StickDataItem] = []
        var i = 0
        func value(_ what: String) throws(ConfigError) -> String {
            guard let v = line.optionalArgument(i + 1) else { throw line.error("stick-table: missing argument after '\(what)'") }
            i += 1
            return v
        }
        while let word = line.optionalArgument(i) {
            switch word {
            case "type":
                let name = try value("type")
                guard let t = StickKeyType(rawValue: name) else {
                    throw line.error("stick-table: unknown type '\(name)' (expected \(KeywordLine.list(StickKeyType.allCases.map(\.rawValue))))")
                }
                type = t
                if (t == .string || t == .binary), line.optionalArgument(i + 1) == "len" {
                    i += 1
                    let text = try value("len")
                    guard let n = KeywordLine.decimal(text), n >= 1, n <= 65535 else {
                        throw line.error("stick-table: 'len' expects a key length from 1 to 65535, got '\(text)'")
                    }
                    keyLength = n
                }
            case "size":
                let text = try value("size")
                guard case .success(let n) = ConfigUnits.parseSize(text), n >= 1 else {
                    throw line.error("stick-table: 'size' expects a number of entries (k, m, g allowed), got '\(text)'")
                }
                size = n
            case "expire":
                let text = try value("expire")
                switch ConfigUnits.parseTime(text) {
                case .success(let ms) where ms <= Int(Int32.max): expire = ms
                case .success: throw line.error("stick-table: 'expire' is too large: '\(text)' (at most 24 days)")
                case .failure(let failure): throw line.error("stick-table: 'expire' expects a time, got '\(text)' (\(failure))")
                }
            case "nopurge":
                noPurge = true
            case "peers":
                let name = try value("peers")
                draft.stickTablePeers = (name, line.location)
            case "store":
                let list = try value("store")
                for item in try KeywordReader.storeItems(list, line: line) {
                    if store.contains(where: { $0.type == item.type }) {
                        throw line.error("stick-table: store option '\(item.type.rawValue)' appears twice")
                    }
                    store.append(item)
                }
            case "srvkey", "write-to", "recv-only":
                throw line.error("stick-table: '\(word)' is not supported yet")
            default:
                throw line.error("stick-table: unknown argument '\(word)' (expected type, size, expire, nopurge, peers or store)")
            }
            i += 1
        }
        guard let type else { throw line.error("stick-table: missing type (type ip|ipv6|integer|string [len N]|binary [len N])") }
        guard let size else { throw line.error("stick-table: missing size") }
        let length: Int
        switch type {
        case .ip: length = 4
        case .ipv6: length = 16
        case .integer: length = 8
        case .string, .binary: length = keyLength ?? 32
        }
        var table = StickTableConfig(name: draft.proxy.name, location: line.location, type: type, keyLength: length, size: size)
        table.expire = expire
        table.noPurge = noPurge
        table.store = store.sorted { $0.type < $1.type }
        draft.proxy.stickTable = table
    }

    /// `stick on|match|store-request|store-response KEY [table T] [if|unless COND]`.
    func stickRule(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        let word = try line.argument(0, expecting: "on, match, store-request or store-response")
        guard let kind = StickRule.Kind(rawValue: word) else {
            throw line.error("'stick' expects on, match, store-request or store-response, got '\(word)'")
        }
        let what = "'stick \(word)'"
        guard let keyText = line.optionalArgument(1) else { throw line.error("\(what) expects a key (a sample expression: src)") }
        // store-response reads the server's answer (and the connection), the others the request.
        let context = kind == .storeResponse ? RuleContext(phase: .response, rule: "a 'stick store-response' rule") : .httpRequest
        let key: SampleExpression
        do throws(ConfigError) {
            let fetch: ParsedFetch
            (key, fetch) = try SampleParser.expression(keyText, acl: false)
            if kind == .storeResponse { try SampleParser.check(fetch, in: context) }
        } catch {
            throw line.error("\(what): \(error.message)")
        }
        var next = 2
        var table = draft.proxy.name
        if line.optionalArgument(next) == "table" {
            guard let name = line.optionalArgument(next + 1) else { throw line.error("\(what): 'table' expects a table name") }
            table = name
            next += 2
        }
        let condition = try finishRule(line, at: next, draft: &draft, context: context, rule: "stick \(word)")
        // Mode tcp would read the response's payload: not yet (judged by the mode at the end).
        if kind == .storeResponse { draft.noteHTTPOnly("stick store-response", line.location) }
        draft.proxy.stickRules.append(StickRule(location: line.location, kind: kind, key: key, table: table, condition: condition))
    }

    /// `conn_cnt,conn_rate(10s),…`.
    static func storeItems(_ list: String, line: KeywordLine) throws(ConfigError) -> [StickDataItem] {
        var items: [StickDataItem] = []
        var depth = 0
        var current = ""
        var words: [String] = []
        for c in list {
            if c == "(" { depth += 1 }
            if c == ")" { depth -= 1 }
            if c == "," && depth == 0 {
                words.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        words.append(current)
        for word in words {
            var name = word
            var argument: String?
            if let open = word.firstIndex(of: "(") {
                guard word.hasSuffix(")") else { throw line.error("stick-table: missing ')' in store option '\(word)'") }
                name = String(word[..<open])
                argument = String(word[word.index(after: open)..<word.index(before: word.endIndex)])
            }
            if ["gpc", "gpc_rate", "gpt", "http_fail_cnt", "http_fail_rate", "server_key", "server_name"].contains(name) {
                throw line.error("stick-table: store option '\(name)' is not supported yet")
            }
            guard let type = StickDataType(rawValue: name) else {
                throw line.error("stick-table: unknown store option '\(name)'"
                    + KeywordSuggestion.clause(for: name, among: StickDataType.allCases.map(\.rawValue)))
            }
            if type.isRate {
                guard let argument, !argument.isEmpty else {
                    throw line.error("stick-table: missing argument to store option '\(name)' (a period: \(name)(10s))")
                }
                guard case .success(let ms) = ConfigUnits.parseTime(argument), ms >= 1, ms <= Int(Int32.max) else {
                    throw line.error("stick-table: store option '\(name)' expects a period, got '\(argument)'")
                }
                items.append(StickDataItem(type, period: ms))
            } else {
                if let argument, !argument.isEmpty {
                    throw line.error("stick-table: store option '\(name)' takes no argument, got '\(argument)'")
                }
                items.append(StickDataItem(type))
            }
        }
        return items
    }

    /// `track-sc0/1/2 KEY [table T]`, `sc-inc-gpc0(N)`, `sc-inc-gpc1(N)`, `sc-set-gpt0(N) VALUE`
    /// at `line`'s argument `first` (the action). Nil when the action is none of them; `next` is
    /// the index after the action's words.
    func stickCounterAction(_ line: KeywordLine, at first: Int, context: RuleContext, draft: ProxyDraft,
                            next: inout Int) throws(ConfigError) -> StickCounterAction? {
        guard let action = line.optionalArgument(first) else { return nil }
        let what = "'\(line.keyword) \(action)'"
        func counter(_ text: Substring) throws(ConfigError) -> Int {
            guard let n = Int(text), (0...2).contains(n) else {
                throw line.error("\(what): invalid stick table track ID '\(text)'. The max allowed ID is 2.")
            }
            return n
        }
        if action.hasPrefix("track-sc") {
            let n = try counter(action.dropFirst("track-sc".count))
            guard let keyText = line.optionalArgument(first + 1) else { throw line.error("\(what) expects a key (a sample expression: src)") }
            let key: SampleExpression
            let parsed: ParsedFetch
            do throws(ConfigError) {
                (key, parsed) = try SampleParser.expression(keyText, acl: false)
                try SampleParser.check(parsed, in: context)
            } catch {
                throw line.error("\(what): \(error.message)")
            }
            next = first + 2
            var table = draft.proxy.name
            if line.optionalArgument(next) == "table" {
                guard let name = line.optionalArgument(next + 1) else { throw line.error("\(what): 'table' expects a table name") }
                table = name
                next += 2
            }
            return .track(StickTrack(counter: n, key: key, table: table))
        }
        for (prefix, gpc) in [("sc-inc-gpc0", 0), ("sc-inc-gpc1", 1)] where action.hasPrefix(prefix) {
            let n = try counter(try KeywordReader.parenthesized(action.dropFirst(prefix.count), what: what, line: line))
            next = first + 1
            return .incrementGPC(gpc: gpc, counter: n)
        }
        if action.hasPrefix("sc-set-gpt0") {
            let n = try counter(try KeywordReader.parenthesized(action.dropFirst("sc-set-gpt0".count), what: what, line: line))
            guard let text = line.optionalArgument(first + 1) else { throw line.error("\(what) expects a value (an integer or a sample expression)") }
            next = first + 2
            if let v = KeywordLine.decimal(text) ?? (text.hasPrefix("-") ? KeywordLine.decimal(String(text.dropFirst())).map { -$0 } : nil) {
                return .setGPT0(counter: n, value: .integer(v))
            }
            do throws(ConfigError) {
                let (sample, parsed) = try SampleParser.expression(text, acl: false)
                try SampleParser.check(parsed, in: context)
                return .setGPT0(counter: n, value: .sample(sample))
            } catch {
                throw line.error("\(what): \(error.message)")
            }
        }
        if action.hasPrefix("sc-inc-gpc(") || action == "sc-inc-gpc" || action.hasPrefix("sc-set-gpt(") {
            throw line.error("\(what) is not supported yet (strata has sc-inc-gpc0, sc-inc-gpc1 and sc-set-gpt0)")
        }
        return nil
    }

    /// `(N)` after an action's name.
    private static func parenthesized(_ rest: Substring, what: String, line: KeywordLine) throws(ConfigError) -> Substring {
        guard rest.hasPrefix("("), rest.hasSuffix(")"), rest.count > 2 else {
            throw line.error("\(what) expects a stick counter number in parentheses: (0), (1) or (2)")
        }
        return rest.dropFirst().dropLast()
    }

    /// Whether `action` is a stick-counter action's name (with or without its `(N)`).
    static func isStickCounterAction(_ action: String) -> Bool {
        action.hasPrefix("track-sc") || action.hasPrefix("sc-inc-gpc") || action.hasPrefix("sc-set-gpt")
    }
}

extension SampleParser {
    /// The data names of the `sc*_`, `src_` fetches and `table_` converters, and what each reads.
    static let stickDataNames: [String: StickFetchKind] = {
        var names: [String: StickFetchKind] = [:]
        for type in StickDataType.allCases where type != .serverID && type != .gpt0 {
            names[type.rawValue] = .value(type, kilobytes: false)
        }
        names["get_gpc0"] = .value(.gpc0, kilobytes: false)
        names["get_gpc1"] = .value(.gpc1, kilobytes: false)
        names["get_gpt0"] = .value(.gpt0, kilobytes: false)
        names["kbytes_in"] = .value(.bytesInCount, kilobytes: true)
        names["kbytes_out"] = .value(.bytesOutCount, kilobytes: true)
        names["inc_gpc0"] = .increment(gpc: 0)
        names["inc_gpc1"] = .increment(gpc: 1)
        names["clr_gpc0"] = .clear(gpc: 0)
        names["clr_gpc1"] = .clear(gpc: 1)
        names["trackers"] = .trackers
        names["tracked"] = .tracked
        // HAProxy has no sc_bytes_in_cnt: its names are kbytes_in / bytes_in_rate.
        names["bytes_in_cnt"] = nil
        names["bytes_out_cnt"] = nil
        return names
    }()

    /// `sc0_X`, `sc1_X`, `sc2_X`, `sc_X(N[,TABLE])`, `src_X[(TABLE)]`; nil for any other name.
    /// A `src_` fetch without a table reads the proxy's own: its table is "" here.
    static func stickFetch(_ name: String, arguments: [String]?) throws(ConfigError) -> ParsedFetch? {
        let source: StickCounterSource
        let data: Substring
        var args = arguments ?? []
        if args.count == 1 && args[0].isEmpty { args = [] }
        if name.hasPrefix("src_") {
            data = name.dropFirst(4)
            guard args.count <= 1 else { throw ConfigError(nil, "fetch '\(name)' takes at most one argument (a table)") }
            source = .source(table: args.first ?? "")
        } else if name.hasPrefix("sc_") {
            data = name.dropFirst(3)
            guard let first = args.first, let n = Int(first), (0...2).contains(n), args.count <= 2 else {
                throw ConfigError(nil, "fetch '\(name)' expects a stick counter number from 0 to 2 and an optional table: \(name)(0[,TABLE])")
            }
            source = .tracked(counter: n, table: args.count == 2 ? args[1] : nil)
        } else if name.count > 4, name.hasPrefix("sc"), let digit = name.dropFirst(2).first, digit.isNumber,
                  name.dropFirst(3).first == "_" {
            guard let n = Int(String(digit)), (0...2).contains(n) else {
                throw ConfigError(nil, "fetch '\(name)': invalid stick counter number \(digit) (0 to 2)")
            }
            data = name.dropFirst(4)
            guard args.count <= 1 else { throw ConfigError(nil, "fetch '\(name)' takes at most one argument (a table)") }
            source = .tracked(counter: n, table: args.first)
        } else {
            return nil
        }
        guard let kind = stickDataNames[String(data)] else {
            if ["get_gpc", "inc_gpc", "clr_gpc", "gpc", "gpc_rate", "get_gpt", "http_fail_cnt", "http_fail_rate"].contains(String(data)) {
                throw ConfigError(nil, "fetch '\(name)' is not supported yet")
            }
            return nil
        }
        if case .source = source, kind == .tracked {
            return nil
        }
        let output: SampleOutput = kind == .tracked ? .boolean : .integer
        return ParsedFetch(fetch: .stickCounter(StickFetch(source: source, kind: kind)), output: output, phase: .connection,
                           name: name)
    }

    /// A stick-counter fetch's name as written in HAProxy's usual form (`sc0_conn_cur`, `src_gpc0`).
    static func stickFetchName(_ f: StickFetch) -> String {
        // The shortest name for it (`gpc0` rather than `get_gpc0`), the same every time.
        let data = stickDataNames.filter { $0.value == f.kind }.map(\.key).min { ($0.count, $0) < ($1.count, $1) } ?? "?"
        switch f.source {
        case .tracked(let n, _): return "sc\(n)_" + data
        case .source: return "src_" + data
        }
    }

    /// `table_X(TABLE)`; nil for any other name.
    static func tableConverter(_ name: String, arguments: [String]) throws(ConfigError) -> SampleConverter? {
        guard name.hasPrefix("table_") else { return nil }
        let data = String(name.dropFirst(6))
        let kind: StickTableConverterKind
        switch stickDataNames[data] {
        case .value(let type, let kb)?: kind = .value(type, kilobytes: kb)
        case .trackers?: kind = .trackers
        default:
            if data == "server_id" { kind = .value(.serverID, kilobytes: false); break }
            if data == "gpt0" { kind = .value(.gpt0, kilobytes: false); break }
            throw ConfigError(nil, "converter '\(name)' is not supported")
        }
        guard arguments.count == 1, !arguments[0].isEmpty else {
            throw ConfigError(nil, "converter '\(name)' expects a table: \(name)(TABLE)")
        }
        return .table(kind, table: arguments[0])
    }

    /// The tables a sample expression reads (fetch and converters), for the validator.
    static func tables(in sample: SampleExpression) -> [String] {
        var names: [String] = []
        if case .stickCounter(let f) = sample.fetch {
            switch f.source {
            case .source(let t): names.append(t)
            case .tracked(_, let t?): names.append(t)
            case .tracked: break
            }
        }
        for c in sample.converters {
            if case .table(_, let t) = c { names.append(t) }
        }
        return names
    }
}
