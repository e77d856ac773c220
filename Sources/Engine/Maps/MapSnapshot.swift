import ConfigModel
import Glibc

/// One state of a map: its entries in order and the indexes its converters look up. Immutable:
/// the admin socket's changes build a new snapshot (copy on write) that `SharedMap` publishes.
///
/// Lookups, by match method (HAProxy's semantics, doc/configuration.txt "map"):
/// - `str`: a hash of the keys.
/// - `beg`: the longest key that begins the sample: the hash probed with the sample's prefixes of
///   each key length there is, longest first.
/// - `end`: the first key in file order that ends the sample: the hash probed with the suffixes of
///   each key length there is.
/// - `dir`, `dom`: the first key in file order equal to a run of delimited words: the hash (of the
///   keys without their outer delimiters) probed with each run of the sample whose length a key
///   has; a sample with more runs than the map has keys is matched key by key instead.
/// - `ip`: the longest network holding the address: a hash per prefix length there is, longest first.
/// - `int`: a hash of the plain integers, then the ranges in order.
/// - `sub`, `reg`: key by key in file order (HAProxy walks a list for these too).
final class MapSnapshot: @unchecked Sendable {
    struct Entry {
        /// What `show map` shows and `del map #ID` names.
        var id: UInt64
        var key: [UInt8]
        var value: [UInt8]
        var line: Int
    }

    let entries: [Entry]
    private let matches: Set<MapMatch>

    private var exact = MapKeyTable(capacity: 0)
    /// Distinct key lengths, longest first.
    private var lengths: [Int] = []
    private var dirTable = MapKeyTable(capacity: 0)
    private var dirLengths = Set<Int>()
    private var domTable = MapKeyTable(capacity: 0)
    private var domLengths = Set<Int>()
    private var regexes: [HTTPRegex?] = []
    private var integers: [Int: Int] = [:]
    private var ranges: [(low: Int?, high: Int?, index: Int)] = []
    /// Per prefix length (0…32 / 0…128), longest first: network -> entry.
    private var v4: [(length: Int, networks: [UInt32: Int])] = []
    private var v6: [(length: Int, networks: [V6Key: Int])] = []

    struct V6Key: Hashable {
        var high: UInt64
        var low: UInt64
    }

    init(entries: [Entry], matches: Set<MapMatch>) {
        self.entries = entries
        self.matches = matches
        let needsExact = matches.contains(.str) || matches.contains(.beg) || matches.contains(.end)
        if needsExact {
            exact = MapKeyTable(capacity: entries.count)
            var lengthSet = Set<Int>()
            for (i, e) in entries.enumerated() {
                exact.insert(e.key, index: i)
                lengthSet.insert(e.key.count)
            }
            lengths = lengthSet.sorted(by: >)
        }
        if matches.contains(.dir) {
            dirTable = MapKeyTable(capacity: entries.count)
            for (i, e) in entries.enumerated() {
                let k = MapSnapshot.stripped(e.key, MapSnapshot.isDirDelimiter)
                guard !k.isEmpty else { continue }
                dirTable.insert(k, index: i)
                dirLengths.insert(k.count)
            }
        }
        if matches.contains(.dom) {
            domTable = MapKeyTable(capacity: entries.count)
            for (i, e) in entries.enumerated() {
                let k = MapSnapshot.stripped(e.key, MapSnapshot.isDomDelimiter)
                guard !k.isEmpty else { continue }
                domTable.insert(k, index: i)
                domLengths.insert(k.count)
            }
        }
        if matches.contains(.reg) {
            regexes = entries.map { try? HTTPRegex(String(decoding: $0.key, as: UTF8.self), ignoreCase: false) }
        }
        if matches.contains(.int) {
            for (i, e) in entries.enumerated() {
                guard let (low, high) = MapSnapshot.integerKey(e.key) else { continue }
                if let low, let high, low == high {
                    if integers[low] == nil { integers[low] = i }
                } else {
                    ranges.append((low, high, i))
                }
            }
        }
        if matches.contains(.ip) {
            var four: [Int: [UInt32: Int]] = [:]
            var six: [Int: [V6Key: Int]] = [:]
            for (i, e) in entries.enumerated() {
                guard let (address, length) = MapSnapshot.network(e.key) else { continue }
                if address.isV6 {
                    let m = MapSnapshot.mask6(address.high, address.low, length)
                    if six[length, default: [:]][V6Key(high: m.0, low: m.1)] == nil { six[length, default: [:]][V6Key(high: m.0, low: m.1)] = i }
                } else {
                    let m = MapSnapshot.mask4(address.v4, length)
                    if four[length, default: [:]][m] == nil { four[length, default: [:]][m] = i }
                }
            }
            v4 = four.sorted { $0.key > $1.key }.map { ($0.key, $0.value) }
            v6 = six.sorted { $0.key > $1.key }.map { ($0.key, $0.value) }
        }
    }

    // MARK: lookups: the index of the entry that matches, or nil

    func find(_ sample: UnsafeRawBufferPointer, _ match: MapMatch) -> Int? {
        switch match {
        case .str: return exact.find(sample)
        case .beg:
            for l in lengths where l <= sample.count {
                if let i = exact.find(UnsafeRawBufferPointer(rebasing: sample[0..<l])) { return i }
            }
            return nil
        case .end:
            var best: Int?
            for l in lengths where l <= sample.count {
                if let i = exact.find(UnsafeRawBufferPointer(rebasing: sample[(sample.count - l)...])), i < (best ?? Int.max) { best = i }
            }
            return best
        case .sub:
            for (i, e) in entries.enumerated() {
                if e.key.isEmpty { return i }
                let found = e.key.withUnsafeBytes { k in MapSnapshot.contains(sample, k) }
                if found { return i }
            }
            return nil
        case .dir: return words(sample, dirTable, dirLengths, MapSnapshot.isDirDelimiter)
        case .dom: return words(sample, domTable, domLengths, MapSnapshot.isDomDelimiter)
        case .reg:
            for i in regexes.indices {
                if let r = regexes[i], r.matches(sample) { return i }
            }
            return nil
        case .int:
            guard let n = HTTPRuleBytes.integer(sample) else { return nil }
            return find(integer: n)
        case .ip:
            guard let a = HTTPAddressBits.parse(sample) else { return nil }
            return find(address: a)
        }
    }

    func find(integer n: Int) -> Int? {
        var best = integers[n]
        for r in ranges where r.index < (best ?? Int.max) {
            if (r.low.map { n >= $0 } ?? true) && (r.high.map { n <= $0 } ?? true) { best = r.index; break }
        }
        return best
    }

    func find(address a: HTTPAddressBits) -> Int? {
        let v4Address = a.isV6 ? a.mappedV4 : a.v4
        if let v4Address {
            for t in v4 {
                if let i = t.networks[MapSnapshot.mask4(v4Address, t.length)] { return i }
            }
        }
        let (h, l) = a.asV6
        for t in v6 {
            let m = MapSnapshot.mask6(h, l, t.length)
            if let i = t.networks[V6Key(high: m.0, low: m.1)] { return i }
        }
        return nil
    }

    /// `dir`/`dom`: runs of whole words of the sample, probed in the table; the first key in file
    /// order wins.
    private func words(_ sample: UnsafeRawBufferPointer, _ table: MapKeyTable, _ lengths: Set<Int>,
                       _ isDelimiter: (UInt8) -> Bool) -> Int? {
        guard table.count > 0, sample.count > 0 else { return nil }
        var starts: [Int] = [0]
        var ends: [Int] = []
        for (i, b) in sample.enumerated() where isDelimiter(b) {
            starts.append(i + 1)
            ends.append(i)
        }
        ends.append(sample.count)
        if starts.count * ends.count / 2 > entries.count {
            // Fewer keys than runs: key by key, in order.
            for (i, e) in entries.enumerated() {
                let k = MapSnapshot.stripped(e.key, isDelimiter)
                if !k.isEmpty && k.withUnsafeBytes({ MapSnapshot.containsWord(sample, $0, isDelimiter) }) { return i }
            }
            return nil
        }
        var best: Int?
        for s in starts {
            for e in ends where e > s && lengths.contains(e - s) {
                if let i = table.find(UnsafeRawBufferPointer(rebasing: sample[s..<e])), i < (best ?? Int.max) { best = i }
            }
        }
        return best
    }

    static func containsWord(_ sample: UnsafeRawBufferPointer, _ word: UnsafeRawBufferPointer, _ isDelimiter: (UInt8) -> Bool) -> Bool {
        guard word.count <= sample.count else { return false }
        var s = 0
        while s + word.count <= sample.count {
            if (s == 0 || isDelimiter(sample[s - 1])) && (s + word.count == sample.count || isDelimiter(sample[s + word.count]))
                && memcmp(sample.baseAddress! + s, word.baseAddress!, word.count) == 0
            {
                return true
            }
            s += 1
        }
        return false
    }

    /// Whether `key` (not empty) occurs in `sample`: memchr to each candidate of its first byte.
    static func contains(_ sample: UnsafeRawBufferPointer, _ key: UnsafeRawBufferPointer) -> Bool {
        guard key.count <= sample.count, let base = sample.baseAddress, let k = key.baseAddress else { return false }
        var s = 0
        let last = sample.count - key.count
        let first = Int32(key[0])
        while s <= last {
            guard let hit = memchr(base + s, first, last - s + 1) else { return false }
            s = base.distance(to: UnsafeRawPointer(hit))
            if memcmp(base + s, k, key.count) == 0 { return true }
            s += 1
        }
        return false
    }

    static func isDirDelimiter(_ b: UInt8) -> Bool { b == UInt8(ascii: "/") || b == UInt8(ascii: "?") }
    static func isDomDelimiter(_ b: UInt8) -> Bool {
        b == UInt8(ascii: "/") || b == UInt8(ascii: "?") || b == UInt8(ascii: ".") || b == UInt8(ascii: ":")
    }

    static func stripped(_ key: [UInt8], _ isDelimiter: (UInt8) -> Bool) -> [UInt8] {
        var s = key.startIndex, e = key.endIndex
        while s < e && isDelimiter(key[s]) { s += 1 }
        while e > s && isDelimiter(key[e - 1]) { e -= 1 }
        return Array(key[s..<e])
    }

    static func integerKey(_ key: [UInt8]) -> (Int?, Int?)? {
        key.withUnsafeBytes { k -> (Int?, Int?)? in
            if let colon = k.firstIndex(of: UInt8(ascii: ":")) {
                let low = UnsafeRawBufferPointer(rebasing: k[..<colon]), high = UnsafeRawBufferPointer(rebasing: k[(colon + 1)...])
                guard low.count + high.count > 0 else { return nil }
                let l = low.isEmpty ? nil : HTTPRuleBytes.integer(low)
                let h = high.isEmpty ? nil : HTTPRuleBytes.integer(high)
                if !low.isEmpty && l == nil || !high.isEmpty && h == nil { return nil }
                return (l, h)
            }
            guard let v = HTTPRuleBytes.integer(k) else { return nil }
            return (v, v)
        }
    }

    /// `ADDR[/PREFIX]` (a dotted IPv4 mask too), or nil.
    static func network(_ key: [UInt8]) -> (HTTPAddressBits, Int)? {
        key.withUnsafeBytes { k -> (HTTPAddressBits, Int)? in
            let slash = k.firstIndex(of: UInt8(ascii: "/"))
            guard let address = HTTPAddressBits.parse(UnsafeRawBufferPointer(rebasing: k[..<(slash ?? k.count)])) else { return nil }
            let maximum = address.isV6 ? 128 : 32
            guard let slash else { return (address, maximum) }
            let rest = UnsafeRawBufferPointer(rebasing: k[(slash + 1)...])
            if let n = HTTPRuleBytes.integer(rest), n >= 0, n <= maximum { return (address, n) }
            if !address.isV6, let mask = HTTPAddressBits.parse(rest), !mask.isV6 {
                let ones = (~mask.v4).leadingZeroBitCount == 32 ? 32 : mask.v4.leadingZeroBitCount == 0 ? (~mask.v4).leadingZeroBitCount : 0
                if mask.v4 == 0 { return (address, 0) }
                if ones > 0 && (ones == 32 || mask.v4 << UInt32(ones) == 0) { return (address, ones) }
            }
            return nil
        }
    }

    static func mask4(_ a: UInt32, _ length: Int) -> UInt32 {
        length == 0 ? 0 : a & (UInt32.max << UInt32(32 - length))
    }

    static func mask6(_ h: UInt64, _ l: UInt64, _ length: Int) -> (UInt64, UInt64) {
        let hi = length >= 64 ? UInt64.max : (length == 0 ? 0 : UInt64.max << UInt64(64 - length))
        let lo = length <= 64 ? 0 : (length == 128 ? UInt64.max : UInt64.max << UInt64(128 - length))
        return (h & hi, l & lo)
    }
}
