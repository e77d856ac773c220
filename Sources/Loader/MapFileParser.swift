import ConfigModel

/// Map files (`map*` converters): HAProxy's format, read from bytes the configuration does not
/// control (any file a converter names). A line is `KEY VALUE`: leading blanks skipped, the key
/// up to the next blank, blanks, then the value up to the end of the line (`\r` ends it too);
/// blank lines and lines starting with `#` are skipped. A key alone has an empty value.
enum MapFileParser {
    static func entries(_ bytes: [UInt8]) -> [MapEntry] {
        var entries: [MapEntry] = []
        var number = 0
        var i = 0
        let n = bytes.count
        while i < n || (i == n && number == 0 && n > 0) {
            number += 1
            var end = i
            while end < n && bytes[end] != 0x0A { end += 1 }
            var p = i
            while p < end && (bytes[p] == 0x20 || bytes[p] == 0x09) { p += 1 }
            if p < end && bytes[p] != UInt8(ascii: "#") && bytes[p] != 0x0D {
                let keyStart = p
                while p < end && bytes[p] != 0x20 && bytes[p] != 0x09 && bytes[p] != 0x0D { p += 1 }
                let key = String(decoding: bytes[keyStart..<p], as: UTF8.self)
                while p < end && (bytes[p] == 0x20 || bytes[p] == 0x09) { p += 1 }
                let valueStart = p
                while p < end && bytes[p] != 0x0D { p += 1 }
                entries.append(MapEntry(key: key, value: String(decoding: bytes[valueStart..<p], as: UTF8.self), line: number))
            }
            i = end + 1
        }
        return entries
    }

    /// FNV-1a, 64 bits: whether a map file changed between two loads.
    static func digest(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// Why `key` is not a key for `match`, or nil.
    static func keyProblem(_ key: String, _ match: MapMatch) -> String? {
        switch match {
        case .str, .beg, .sub, .dir, .dom, .end: return nil
        case .reg:
            return SampleParser.regexProblem(key).map { "invalid regex '\(key)': \($0)" }
        case .int:
            return integerKey(key) == nil ? "'\(key)' is not an integer or a range (A:B)" : nil
        case .ip:
            if case .failure(let problem) = SampleParser.network(key, noDNS: true, resolver: .system) { return problem.description }
            return nil
        }
    }

    /// `N`, `A:B`, `:B` or `A:` as bounds.
    static func integerKey(_ key: String) -> (low: Int?, high: Int?)? {
        if let colon = key.firstIndex(of: ":") {
            let low = key[..<colon], high = key[key.index(after: colon)...]
            guard !(low.isEmpty && high.isEmpty) else { return nil }
            let l = low.isEmpty ? nil : KeywordLine.decimal(String(low))
            let h = high.isEmpty ? nil : KeywordLine.decimal(String(high))
            if !low.isEmpty && l == nil || !high.isEmpty && h == nil { return nil }
            return (l, h)
        }
        guard let v = KeywordLine.decimal(key) else { return nil }
        return (v, v)
    }

    /// Why `value` is not a value for `output`, or nil.
    static func valueProblem(_ value: String, _ output: MapOutput) -> String? {
        switch output {
        case .str: return nil
        case .int: return KeywordLine.decimal(value) == nil ? "value '\(value)' is not an integer" : nil
        case .ip: return IPAddress(value) == nil ? "value '\(value)' is not an IPv4 or IPv6 address" : nil
        }
    }
}

extension LoadPaths {
    /// The map `written` (resolved by `default-path`) read, parsed and checked for `match` and
    /// `output`: the path to look it up by. Each file is read once a load; a second converter on it
    /// checks its lines for its own match and output.
    func map(_ written: String, match: MapMatch, output: MapOutput) throws(ConfigError) -> String {
        let location = self.location ?? SourceLocation(file: "")
        let resolved = resolve(written, from: location)
        var file: MapFile
        if let known = maps[resolved] {
            file = known
        } else {
            let bytes: [UInt8]
            switch read(resolved, .patterns) {
            case .success(let b): bytes = b
            case .failure(let problem): throw ConfigError(nil, "cannot read map file '\(written)': \(problem)")
            }
            file = MapFile(name: written, path: resolved, location: location, entries: MapFileParser.entries(bytes), match: match,
                           matches: [], outputs: [], digest: MapFileParser.digest(bytes))
        }
        if !file.matches.contains(match) {
            for entry in file.entries {
                if let problem = MapFileParser.keyProblem(entry.key, match) {
                    throw ConfigError(nil, "map file '\(written)' line \(entry.line): \(problem) (for map_\(match.rawValue))")
                }
            }
            file.matches.insert(match)
        }
        if !file.outputs.contains(output) {
            for entry in file.entries {
                if let problem = MapFileParser.valueProblem(entry.value, output) {
                    throw ConfigError(nil, "map file '\(written)' line \(entry.line): \(problem) (for an output of type \(output.rawValue))")
                }
            }
            file.outputs.insert(output)
        }
        maps[resolved] = file
        return resolved
    }

    /// The load whose lines are being read on this thread: what the `map*` converters read their
    /// files through (sample expressions are parsed deep inside keyword readers that are not given
    /// the load's paths).
    @TaskLocal static var current: LoadPaths?
}
