import Glibc
import ConfigModel

/// The converters after a fetch (`FETCH,CONV(ARGS),…`) and the map lookups among them: their
/// names, arguments and the errors HAProxy gives for them.
extension SampleParser {
    /// The converters strata has, for messages.
    static let converterNames = "lower, upper, length, hex, base64, ub64enc, b64dec, ub64dec, url_dec, word, field, bytes, regsub, json, add, sub, mul, div, mod, and, or, xor, neg, bool, not, odd, even, iif, ipmask, sdbm, djb2, crc32, wt6, xxh3, xxh32, xxh64, concat, debug and map*"

    /// One converter: `NAME` or `NAME(ARG,…)` (HAProxy's syntax: commas separate the arguments,
    /// `\,` is a comma inside one, and an argument may be quoted).
    static func converter(_ word: String) throws(ConfigError) -> SampleConverter {
        var name = word
        var args: [String] = []
        if let open = word.firstIndex(of: "(") {
            guard word.hasSuffix(")") else { throw ConfigError(nil, "converter '\(word)': missing ')'") }
            name = String(word[..<open])
            let inner = word[word.index(after: open)..<word.index(before: word.endIndex)]
            var current = ""
            var escaped = false
            for c in inner {
                if escaped { current.append(c); escaped = false; continue }
                if c == "\\" { escaped = true; current.append(c); continue }
                if c == "," { args.append(current); current = ""; continue }
                current.append(c)
            }
            args.append(current)
            args = args.map { a in
                let t = a.trimmingCharacters(in: .whitespaces)
                if t.count >= 2, (t.hasPrefix("\"") && t.hasSuffix("\"")) || (t.hasPrefix("'") && t.hasSuffix("'")) {
                    return String(t.dropFirst().dropLast())
                }
                return t.replacingOccurrences(of: "\\,", with: ",")
            }
        }
        func none() throws(ConfigError) {
            if !args.isEmpty && !(args.count == 1 && args[0].isEmpty) {
                throw ConfigError(nil, "converter '\(name)' takes no argument")
            }
        }
        func integer(_ i: Int, _ what: String) throws(ConfigError) -> Int {
            guard i < args.count, let n = Int(args[i]) else {
                throw ConfigError(nil, "converter '\(name)' expects \(what)\(i < args.count ? ", got '\(args[i])'" : "")")
            }
            return n
        }
        switch name {
        case "lower": try none(); return .lower
        case "upper": try none(); return .upper
        case "length": try none(); return .length
        case "hex": try none(); return .hex
        case "base64": try none(); return .base64(urlSafe: false)
        case "ub64enc": try none(); return .base64(urlSafe: true)
        case "b64dec": try none(); return .base64Decode(urlSafe: false)
        case "ub64dec": try none(); return .base64Decode(urlSafe: true)
        case "url_dec":
            guard args.count <= 1 else { throw ConfigError(nil, "converter 'url_dec' takes at most one argument") }
            return .urlDecode(form: args.first.map { !$0.isEmpty && $0 != "0" } ?? false)
        case "word":
            guard args.count == 2 || args.count == 3 else { throw ConfigError(nil, "converter 'word' expects an index and delimiters: word(N,DELIMS)") }
            if args.count == 3 { throw ConfigError(nil, "converter 'word': a count of words is not supported yet") }
            let n = try integer(0, "a word index (not 0)")
            guard n != 0, !args[1].isEmpty else { throw ConfigError(nil, "converter 'word' expects an index other than 0 and delimiters") }
            return .word(index: n, delimiters: args[1])
        case "field":
            guard args.count == 2 || args.count == 3 else { throw ConfigError(nil, "converter 'field' expects an index and delimiters: field(N,DELIMS[,COUNT])") }
            let n = try integer(0, "a field index (not 0)")
            guard n != 0, !args[1].isEmpty else { throw ConfigError(nil, "converter 'field' expects an index other than 0 and delimiters") }
            let count = args.count == 3 ? try integer(2, "a count of fields") : 1
            guard count >= 0 else { throw ConfigError(nil, "converter 'field' expects a count of 0 or more") }
            return .field(index: n, delimiters: args[1], count: count)
        case "bytes":
            guard args.count == 1 || args.count == 2 else { throw ConfigError(nil, "converter 'bytes' expects an offset and a length: bytes(OFFSET[,LENGTH])") }
            let offset = try integer(0, "an offset")
            let length = args.count == 2 ? try integer(1, "a length") : nil
            guard offset >= 0, (length ?? 0) >= 0 else { throw ConfigError(nil, "converter 'bytes' expects an offset and a length of 0 or more") }
            return .bytes(offset: offset, length: length)
        case "regsub":
            guard args.count == 2 || args.count == 3 else { throw ConfigError(nil, "converter 'regsub' expects a regex and a replacement: regsub(REGEX,SUBST[,FLAGS])") }
            let flags = args.count == 3 ? args[2] : ""
            guard flags.allSatisfy({ $0 == "g" || $0 == "i" }) else { throw ConfigError(nil, "converter 'regsub': unknown flags '\(flags)' (expected g and i)") }
            if let problem = regexProblem(args[0]) { throw ConfigError(nil, "converter 'regsub': invalid regex '\(args[0])': \(problem)") }
            return .regsub(regex: args[0], replacement: args[1], global: flags.contains("g"), ignoreCase: flags.contains("i"))
        case "json":
            guard args.count <= 1, let code = args.first.map({ $0.isEmpty ? .ascii : JSONInputCode(rawValue: $0) }) ?? .ascii else {
                throw ConfigError(nil, "converter 'json': unknown input code '\(args.joined(separator: ","))' (expected \(KeywordLine.list(JSONInputCode.allCases.map(\.rawValue))))")
            }
            return .json(code)
        case _ where SampleConverter.ArithmeticOperator(rawValue: name) != nil:
            guard args.count == 1 else { throw ConfigError(nil, "converter '\(name)' expects an integer: \(name)(N)") }
            guard let n = Int(args[0]) else {
                throw ConfigError(nil, "converter '\(name)': '\(args[0])' is not an integer (a variable as argument is not supported yet)")
            }
            return .arithmetic(SampleConverter.ArithmeticOperator(rawValue: name)!, n)
        case _ where name.hasPrefix("table_"):
            return try tableConverter(name, arguments: args)!
        case "neg": try none(); return .negate
        case "bool": try none(); return .bool
        case "not": try none(); return .not
        case "odd": try none(); return .odd
        case "even": try none(); return .even
        case "iif":
            guard args.count == 2 else { throw ConfigError(nil, "converter 'iif' expects two strings: iif(TRUE,FALSE)") }
            return .iif(whenTrue: args[0], whenFalse: args[1])
        case "ipmask":
            guard args.count == 1 || args.count == 2 else { throw ConfigError(nil, "converter 'ipmask' expects a prefix length: ipmask(MASK4[,MASK6])") }
            guard let v4 = Int(args[0]), (0...32).contains(v4) else {
                throw ConfigError(nil, "converter 'ipmask' expects an IPv4 prefix length from 0 to 32, got '\(args[0])' (a dotted mask is not supported yet)")
            }
            var v6: Int?
            if args.count == 2 {
                guard let m = Int(args[1]), (0...128).contains(m) else { throw ConfigError(nil, "converter 'ipmask' expects an IPv6 prefix length from 0 to 128, got '\(args[1])'") }
                v6 = m
            }
            return .ipmask(v4: v4, v6: v6)
        case _ where SampleConverter.HashFunction(rawValue: name) != nil:
            guard args.isEmpty || args == [""] || args == ["0"] else {
                throw ConfigError(nil, "converter '\(name)': the avalanche argument is not supported yet")
            }
            return .hash(SampleConverter.HashFunction(rawValue: name)!)
        case "concat":
            guard args.count <= 3 else { throw ConfigError(nil, "converter 'concat' takes at most three arguments: concat([START][,VAR][,END])") }
            var variable: String?
            if args.count >= 2, !args[1].isEmpty {
                switch variableName(args[1]) {
                case .success(let v): variable = v
                case .failure(let problem): throw ConfigError(nil, "converter 'concat': \(problem.text)")
                }
            }
            return .concat(start: args.first ?? "", variable: variable, end: args.count == 3 ? args[2] : "")
        case _ where SampleConverter.XXHashFunction(rawValue: name) != nil:
            var seed: UInt64 = 0
            if let first = args.first, !first.isEmpty {
                guard let n = UInt64(first), args.count == 1, name != "xxh32" || n <= UInt64(UInt32.max) else {
                    throw ConfigError(nil, "converter '\(name)' expects an optional unsigned integer seed: \(name)([SEED]), got '\(args.joined(separator: ","))'")
                }
                seed = n
            }
            return .xxHash(SampleConverter.XXHashFunction(rawValue: name)!, seed: seed)
        case "debug":
            guard args.count <= 1 else {
                throw ConfigError(nil, "converter 'debug': an event sink ('\(args[1])') is not supported (strata has no ring buffers: debug writes to standard error)")
            }
            return .debug(prefix: args.first ?? "")
        case _ where name == "map" || name.hasPrefix("map_"):
            return .map(try mapLookup(name, args))
        default:
            throw ConfigError(nil, "converter '\(name)' is not supported yet (strata has \(converterNames))")
        }
    }

    /// `map`, `map_MATCH` and `map_MATCH_OUTPUT` (`map_beg_int`): the match method and output
    /// type the name says, nil for a name HAProxy does not have.
    static func mapKind(_ name: String) -> (MapMatch, MapOutput)? {
        if name == "map" { return (.str, .str) }
        let parts = name.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3, parts[0] == "map", let match = MapMatch(rawValue: String(parts[1])) else { return nil }
        guard parts.count == 3 else { return (match, .str) }
        guard let output = MapOutput(rawValue: String(parts[2])), output != .str else { return nil }
        return (match, output)
    }

    /// `map*(FILE[,DEFAULT])`: the file is read now, through the load's paths.
    static func mapLookup(_ name: String, _ args: [String]) throws(ConfigError) -> MapLookup {
        if name == "map_regm" || name.hasPrefix("map_regm_") {
            throw ConfigError(nil, "converter '\(name)' is not supported yet (map_reg is; regsub can rewrite with groups)")
        }
        guard let (match, output) = mapKind(name) else {
            throw ConfigError(nil, "converter '\(name)' is not supported (maps are map, map_MATCH and map_MATCH_int|ip, MATCH one of \(MapMatch.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard args.count == 1 || args.count == 2, !args[0].isEmpty else {
            throw ConfigError(nil, "converter '\(name)' expects a map file and an optional default value: \(name)(FILE[,DEFAULT])")
        }
        let defaultValue = args.count == 2 ? args[1] : nil
        if let defaultValue, let problem = MapFileParser.valueProblem(defaultValue, output) {
            throw ConfigError(nil, "converter '\(name)': default \(problem)")
        }
        guard let paths = LoadPaths.current else {
            throw ConfigError(nil, "converter '\(name)' is not supported here (no configuration file is being loaded)")
        }
        let path = try paths.map(args[0], match: match, output: output)
        return MapLookup(path: path, match: match, output: output, defaultValue: defaultValue)
    }
}
