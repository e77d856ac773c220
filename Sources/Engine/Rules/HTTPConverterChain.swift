import CLibEV
import ConfigModel
import Glibc
import HTTP1

/// Converters beyond lower and upper (`,word(2,/)`, `,regsub(…)`, `,base64`, arithmetic …),
/// compiled once per rule set and applied in order to each fetched value. A value goes through
/// owned bytes while it is converted; the result is written to the rule's samples buffer (valid
/// until the next rule), as other computed samples are.
final class HTTPConverterChain: @unchecked Sendable {
    private enum Step {
        case plain(SampleConverter)
        case regsub(HTTPRegex, [UInt8], global: Bool)
        case table(StickTableConverterKind, StickTable?)
        /// The map (nil when the generation has none by that path: only the default answers),
        /// the lookup, and the default value already in the output's type.
        case map(SharedMap?, MapLookup, Value?)
        /// `concat`: what comes before the variable, the variable, what comes after.
        case concat([UInt8], HTTPVariableKey?, [UInt8])
    }
    private let steps: [Step]

    init(_ converters: [SampleConverter], constants: HTTPRuleConstants) {
        steps = converters.map { c in
            if case .regsub(let pattern, let replacement, let global, let ignoreCase) = c,
               let regex = try? HTTPRegex(pattern, ignoreCase: ignoreCase) {
                return .regsub(regex, Array(replacement.utf8), global: global)
            }
            if case .table(let kind, let name) = c {
                return .table(kind, constants.stickTable(name)?.takeUnretainedValue())
            }
            if case .concat(let start, let variable, let end) = c {
                return .concat(Array(start.utf8), variable.map(HTTPVariableKey.init), Array(end.utf8))
            }
            if case .map(let lookup) = c {
                let fallback = lookup.defaultValue.flatMap { HTTPConverterChain.mapValue(Array($0.utf8), lookup.output) }
                return .map(constants.maps[lookup.path], lookup, fallback)
            }
            return .plain(c)
        }
    }

    /// A map's value as its output type says (nil: not an integer or an address).
    static func mapValue(_ value: [UInt8], _ output: MapOutput) -> Value? {
        switch output {
        case .str: return .bytes(value)
        case .int: return value.withUnsafeBytes { HTTPRuleBytes.integer($0) }.map { .integer($0) }
        case .ip: return value.withUnsafeBytes { HTTPAddressBits.parse($0) }.map { .address($0) }
        }
    }

    /// The value `v` maps to, looked up in the snapshot loop `slot` reads.
    private static func lookUp(_ v: Value, _ map: SharedMap, _ lookup: MapLookup, slot: Int) -> Value? {
        map.read(slot: slot) { snapshot -> Value? in
            let index: Int?
            switch lookup.match {
            case .int:
                index = integer(v).flatMap { snapshot.find(integer: $0) }
            case .ip:
                if case .address(let a) = v {
                    index = snapshot.find(address: a)
                } else {
                    index = text(v).withUnsafeBytes { snapshot.find($0, .ip) }
                }
            default:
                index = text(v).withUnsafeBytes { snapshot.find($0, lookup.match) }
            }
            return index.flatMap { mapValue(snapshot.entries[$0].value, lookup.output) }
        }
    }

    /// A value while converters run.
    enum Value {
        case bytes([UInt8])
        case integer(Int)
        case boolean(Bool)
        case address(HTTPAddressBits)
    }

    func apply(_ sample: HTTPSample, _ ev: HTTPEvaluation) -> HTTPSample? {
        var value: Value
        switch sample {
        case .bytes(let b): value = .bytes(Array(b))
        case .integer(let n): value = .integer(n)
        case .boolean(let b): value = .boolean(b)
        case .address(let a): value = .address(a)
        }
        for step in steps {
            guard let next = convert(value, step, ev) else { return nil }
            value = next
        }
        switch value {
        case .integer(let n): return .integer(n)
        case .boolean(let b): return .boolean(b)
        case .address(let a): return .address(a)
        case .bytes(let b):
            let out = ev.scratch.samples
            let mark = out.count
            let ok = b.withUnsafeBytes { out.append($0) }
            return ok ? .bytes(out.bytes(from: mark)) : nil
        }
    }

    // MARK: the converters

    private static func text(_ v: Value) -> [UInt8] {
        switch v {
        case .bytes(let b): return b
        case .integer(let n): return Array(String(n).utf8)
        case .boolean(let b): return b ? [0x31] : [0x30]
        case .address(let a):
            if !a.isV6 { return Array("\(a.v4 >> 24).\(a.v4 >> 16 & 0xFF).\(a.v4 >> 8 & 0xFF).\(a.v4 & 0xFF)".utf8) }
            var raw = (a.high.bigEndian, a.low.bigEndian)
            var buffer = [CChar](repeating: 0, count: 46)
            _ = withUnsafeBytes(of: &raw) { inet_ntop(AF_INET6, $0.baseAddress, &buffer, 46) }
            return Array(String(cString: buffer).utf8)
        }
    }

    /// HAProxy casts a string to an integer by its leading decimal number.
    private static func integer(_ v: Value) -> Int? {
        switch v {
        case .integer(let n): return n
        case .boolean(let b): return b ? 1 : 0
        case .address: return nil
        case .bytes(let b):
            var i = 0
            var negative = false
            if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { negative = b[i] == UInt8(ascii: "-"); i += 1 }
            var n = 0
            var digits = 0
            while i < b.count, HTTPByte.isDigit(b[i]) {
                let (m, o1) = n.multipliedReportingOverflow(by: 10)
                let (r, o2) = m.addingReportingOverflow(Int(b[i] - UInt8(ascii: "0")))
                if o1 || o2 { return nil }
                n = r
                digits += 1
                i += 1
            }
            return digits > 0 ? (negative ? -n : n) : nil
        }
    }

    private func convert(_ v: Value, _ step: Step, _ ev: HTTPEvaluation) -> Value? {
        switch step {
        case .map(let map, let lookup, let fallback):
            return map.flatMap { HTTPConverterChain.lookUp(v, $0, lookup, slot: ev.scratch.mapSlot) } ?? fallback
        case .concat(let start, let variable, let end):
            var out = HTTPConverterChain.text(v) + start
            switch variable.flatMap({ ev.scratch.variable($0) }) {
            case .bytes(let b)?: out += b
            case .integer(let n)?: out += HTTPConverterChain.text(.integer(n))
            case .boolean(let b)?: out += HTTPConverterChain.text(.boolean(b))
            case .address(let a)?: out += HTTPConverterChain.text(.address(a))
            case nil: break
            }
            return .bytes(out + end)
        case .regsub(let regex, let replacement, let global):
            return .bytes(HTTPConverterChain.regsub(HTTPConverterChain.text(v), regex, replacement, global: global))
        case .plain(let c):
            return HTTPConverterChain.convert(v, c)
        case .table(let kind, let table):
            guard let table, let key = HTTPConverterChain.stickKey(v, table) else { return nil }
            return StickCounters.tableValue(kind, table: table, key: key).map { .integer($0) }
        }
    }

    /// A value as a key of `table` (HAProxy casts the sample to the table's type).
    static func stickKey(_ v: Value, _ table: StickTable) -> StickKey? {
        switch table.type {
        case .ip, .ipv6:
            switch v {
            case .address(let a): return table.key(address: a)
            case .bytes(let b): return b.withUnsafeBytes { HTTPAddressBits.parse($0) }.flatMap { table.key(address: $0) }
            default: return nil
            }
        case .integer:
            switch v {
            case .integer(let n): return table.key(integer: n)
            case .boolean(let b): return table.key(integer: b ? 1 : 0)
            case .bytes(let b): return b.withUnsafeBytes { HTTPRuleBytes.integer($0) }.flatMap { table.key(integer: $0) }
            case .address: return nil
            }
        case .string, .binary:
            return table.key(bytes: text(v))
        }
    }

    static func convert(_ v: Value, _ c: SampleConverter) -> Value? {
        switch c {
        case .table: return nil  // a step of its own (`Step.table`): it needs the table
        case .lower: return .bytes(text(v).map(HTTPByte.lowercased))
        case .upper: return .bytes(text(v).map(HTTPRuleBytes.upper))
        case .length: return .integer(text(v).count)
        case .hex:
            var out: [UInt8] = []
            for b in text(v) { out.append(HTTPRules.hexDigit(b >> 4)); out.append(HTTPRules.hexDigit(b & 0xF)) }
            return .bytes(out)
        case .base64(let urlSafe): return .bytes(Base64.encode(text(v), urlSafe: urlSafe))
        case .base64Decode(let urlSafe): return Base64.decode(text(v), urlSafe ? .urlSafe : .standard).map { .bytes($0) }
        case .urlDecode(let form): return urlDecode(text(v), form: form).map { .bytes($0) }
        case .word(let index, let delimiters):
            let words = split(text(v), Array(delimiters.utf8)).filter { !$0.isEmpty }
            let i = index > 0 ? index - 1 : words.count + index
            return words.indices.contains(i) ? .bytes(words[i]) : nil
        case .field(let index, let delimiters, let count):
            let delims = Array(delimiters.utf8)
            let fields = split(text(v), delims)
            let first = index > 0 ? index - 1 : fields.count + index
            guard fields.indices.contains(first) else { return nil }
            // COUNT fields from the first one (0: to the end), joined by the first delimiter.
            let last = count == 0 ? fields.count : min(fields.count, first + count)
            var out: [UInt8] = []
            for i in first..<last {
                if i > first { out.append(delims[0]) }
                out += fields[i]
            }
            return .bytes(out)
        case .bytes(let offset, let length):
            let b = text(v)
            guard offset < b.count else { return nil }
            let end = length.map { min(b.count, offset + $0) } ?? b.count
            return .bytes(Array(b[offset..<end]))
        case .regsub, .map, .concat:
            return nil  // compiled into a step of its own
        case .xxHash(let f, let seed):
            let b = text(v)
            return b.withUnsafeBytes { raw -> Value in
                switch f {
                case .xxh3: return .integer(Int(bitPattern: UInt(CLibEV_xxh3_64(raw.baseAddress, raw.count, seed))))
                case .xxh64: return .integer(Int(bitPattern: UInt(CLibEV_xxh64(raw.baseAddress, raw.count, seed))))
                case .xxh32: return .integer(Int(CLibEV_xxh32(raw.baseAddress, raw.count, UInt32(truncatingIfNeeded: seed))))
                }
            }
        case .debug(let prefix):
            debugLine(v, prefix: prefix)
            return v
        case .json(let code): return HTTPJSONEscape.escape(text(v), code).map { .bytes($0) }
        case .arithmetic(let op, let operand):
            guard let n = integer(v) else { return nil }
            switch op {
            case .add: return .integer(n &+ operand)
            case .sub: return .integer(n &- operand)
            case .mul: return .integer(n &* operand)
            // HAProxy answers the largest integer for a division by zero.
            case .div: return .integer(operand == 0 ? Int.max : n / operand)
            case .mod: return .integer(operand == 0 ? 0 : n % operand)
            case .and: return .integer(n & operand)
            case .or: return .integer(n | operand)
            case .xor: return .integer(n ^ operand)
            }
        case .negate: return integer(v).map { .integer(0 &- $0) }
        case .bool: return integer(v).map { .boolean($0 != 0) }
        case .not: return integer(v).map { .boolean($0 == 0) }
        case .odd: return integer(v).map { .boolean($0 & 1 == 1) }
        case .even: return integer(v).map { .boolean($0 & 1 == 0) }
        case .iif(let whenTrue, let whenFalse): return integer(v).map { .bytes(Array(($0 != 0 ? whenTrue : whenFalse).utf8)) }
        case .ipmask(let m4, let m6):
            guard case .address(var a) = v else { return nil }
            if !a.isV6 {
                a.v4 &= m4 == 0 ? 0 : UInt32.max << UInt32(32 - m4)
            } else {
                guard let m6 else { return nil }
                let hi = m6 >= 64 ? UInt64.max : (m6 == 0 ? 0 : UInt64.max << UInt64(64 - m6))
                let lo = m6 <= 64 ? 0 : (m6 == 128 ? UInt64.max : UInt64.max << UInt64(128 - m6))
                a.high &= hi
                a.low &= lo
            }
            return .address(a)
        case .hash(let f):
            let b = text(v)
            switch f {
            case .sdbm:
                var h: UInt32 = 0
                for c in b { h = UInt32(c) &+ (h << 6) &+ (h << 16) &- h }
                return .integer(Int(h))
            case .djb2:
                var h: UInt32 = 5381
                for c in b { h = (h << 5) &+ h &+ UInt32(c) }
                return .integer(Int(h))
            case .crc32:
                var crc: UInt32 = 0xFFFF_FFFF
                for c in b {
                    crc ^= UInt32(c)
                    for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
                }
                return .integer(Int(crc ^ 0xFFFF_FFFF))
            case .wt6:
                var h0: UInt32 = 0xa53c_965a, h1: UInt32 = 0x5ca6_953a
                for c in b {
                    h0 = (h0 << 1) ^ UInt32(c)
                    h1 = (h1 << 3) ^ h0
                    h0 = (h0 >> 4) | (h0 << 28)
                }
                return .integer(Int(h0 ^ h1))
            }
        }
    }

    /// `debug`: `[debug] PREFIX: type=TYPE VALUE` on standard error, in one write (HAProxy's
    /// line, which it sends to a ring buffer; strata has none).
    static func debugLine(_ v: Value, prefix: String) {
        let type: String
        switch v {
        case .bytes: type = "str"
        case .integer: type = "sint"
        case .boolean: type = "bool"
        case .address(let a): type = a.isV6 ? "ipv6" : "ipv4"
        }
        var line = Array("[debug] \(prefix): type=\(type) <".utf8)
        for b in text(v) {
            if b >= 0x20 && b < 0x7F {
                line.append(b)
            } else {
                line += [0x5C, UInt8(ascii: "x"), HTTPRuleBytes.lowerHex(b >> 4), HTTPRuleBytes.lowerHex(b & 0xF)]
            }
        }
        line += Array(">\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    private static func split(_ b: [UInt8], _ delimiters: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var current: [UInt8] = []
        for c in b {
            if delimiters.contains(c) { out.append(current); current = [] } else { current.append(c) }
        }
        out.append(current)
        return out
    }

    private static func urlDecode(_ b: [UInt8], form: Bool) -> [UInt8]? {
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "%") {
                guard i + 2 < b.count, let h = HTTPByte.hexValue(b[i + 1]), let l = HTTPByte.hexValue(b[i + 2]) else { return nil }
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(form && b[i] == UInt8(ascii: "+") ? 0x20 : b[i])
                i += 1
            }
        }
        return out
    }

    /// `regsub`: each match (the first only without `g`) replaced by the replacement with its
    /// `\N` groups; an empty match moves one byte on, so that a pattern matching nothing ends.
    static func regsub(_ b: [UInt8], _ regex: HTTPRegex, _ replacement: [UInt8], global: Bool) -> [UInt8] {
        var out: [UInt8] = []
        var start = 0
        b.withUnsafeBytes { all in
            withUnsafeTemporaryAllocation(of: regmatch_t.self, capacity: HTTPRegex.maxGroups) { groups in
                while start <= b.count {
                    let rest = UnsafeRawBufferPointer(rebasing: all[start...])
                    guard regex.match(rest, into: groups) else { break }
                    let from = Int(groups[0].rm_so), to = Int(groups[0].rm_eo)
                    out += all[start..<(start + from)]
                    var i = 0
                    while i < replacement.count {
                        if replacement[i] == 0x5C, i + 1 < replacement.count, HTTPByte.isDigit(replacement[i + 1]) {
                            let g = Int(replacement[i + 1] - UInt8(ascii: "0"))
                            if g < groups.count, groups[g].rm_so >= 0 {
                                out += rest[Int(groups[g].rm_so)..<Int(groups[g].rm_eo)]
                            }
                            i += 2
                        } else {
                            out.append(replacement[i])
                            i += 1
                        }
                    }
                    if to == from {
                        if start + to < b.count { out.append(b[start + to]) }
                        start += to + 1
                    } else {
                        start += to
                    }
                    if !global { break }
                }
            }
        }
        if start < b.count { out += b[start...] }
        return out
    }
}
