import HTTP1
import ConfigModel

/// One ACL criterion ready to evaluate: its sample, its match method and its patterns in the form
/// the method tests them (lowercased for `-i`, regexes compiled, networks as masks). A plain value:
/// its tables live in the rule set's constants, so evaluating it copies no reference.
struct HTTPCompiledCriterion {
    enum Patterns {
        case strings(UnsafeBufferPointer<UnsafeRawBufferPointer>)
        case regexes(UnsafeBufferPointer<Unmanaged<HTTPRegex>>)
        case integers(UnsafeBufferPointer<IntegerPattern>)
        case networks(UnsafeBufferPointer<HTTPCompiledNetwork>)
        case none
    }

    let sample: HTTPCompiledSample
    let match: MatchMethod
    let ignoreCase: Bool
    let patterns: Patterns
    /// `-m str` with many patterns: a hash table of them.
    let exactTable: HTTPStringTable?

    init(_ criterion: ACLCriterion, constants: HTTPRuleConstants) throws(ConfigError) {
        sample = HTTPCompiledSample(criterion.sample, constants: constants)
        match = criterion.match
        ignoreCase = criterion.ignoreCase
        var exactTable: HTTPStringTable?
        switch criterion.patterns {
        case .strings(let strings):
            if criterion.match == .regex {
                var regexes: [Unmanaged<HTTPRegex>] = []
                for s in strings {
                    do {
                        regexes.append(constants.keep(try HTTPRegex(s, ignoreCase: criterion.ignoreCase)))
                    } catch {
                        throw ConfigError(criterion.location, "invalid regex '\(s)': \(error.message)")
                    }
                }
                patterns = .regexes(constants.buffer(regexes))
            } else if criterion.match == .integer || criterion.match == .length {
                // Integers written as strings (the Loader normally parses them).
                patterns = .integers(constants.buffer(strings.compactMap { Int($0).map(IntegerPattern.equal) }))
            } else {
                let list = constants.buffer(strings.map { constants.bytes($0, lowercased: criterion.ignoreCase) })
                patterns = .strings(list)
                if criterion.match == .exact && list.count >= HTTPStringTable.threshold {
                    exactTable = HTTPStringTable(list, ignoreCase: criterion.ignoreCase, constants: constants)
                }
            }
        case .integers(let integers):
            patterns = .integers(constants.buffer(integers))
        case .networks(let networks):
            patterns = .networks(constants.buffer(networks.map(HTTPCompiledNetwork.init)))
        case .binary(let list):
            patterns = .strings(constants.buffer(list.map { constants.bytes($0) }))
        case .none:
            patterns = .none
        }
        self.exactTable = exactTable
    }

    /// Whether any value of the sample matches any pattern.
    func evaluate(_ ev: HTTPEvaluation) -> Bool {
        let mark = ev.scratch.samples.count
        defer { ev.scratch.samples.rewind(to: mark) }
        return ev.forEachValue(sample, all: true) { value in
            !self.matches(value, ev)
        }
    }

    @inline(__always)
    private func matches(_ value: HTTPSample, _ ev: HTTPEvaluation) -> Bool {
        switch match {
        case .found:
            return true
        case .boolean:
            return ev.boolean(of: value)
        case .integer:
            guard let n = ev.integer(of: value), case .integers(let list) = patterns else { return false }
            for pattern in list where HTTPCompiledCriterion.integer(n, matches: pattern) { return true }
            return false
        case .length:
            guard let text = ev.bytes(of: value), case .integers(let list) = patterns else { return false }
            for pattern in list where HTTPCompiledCriterion.integer(text.count, matches: pattern) { return true }
            return false
        case .ip:
            guard let address = ev.address(of: value), case .networks(let list) = patterns else { return false }
            for network in list where address.isIn(network) { return true }
            return false
        case .regex:
            guard let text = ev.bytes(of: value), case .regexes(let list) = patterns else { return false }
            for regex in list where regex._withUnsafeGuaranteedRef({ $0.matches(text) }) { return true }
            return false
        case .exact, .prefix, .suffix, .substring, .domain, .directory:
            guard let text = ev.bytes(of: value), case .strings(let list) = patterns else { return false }
            return stringMatches(text, list)
        case .binary:
            guard let bytes = ev.bytes(of: value), case .strings(let list) = patterns else { return false }
            for pattern in list where pattern.count == bytes.count && pattern.elementsEqual(bytes) { return true }
            return false
        }
    }

    /// Whether `text` matches one of `list` by this criterion's string method. Each loop checks
    /// the lengths first: most patterns are refused without reading a byte.
    @inline(__always)
    private func stringMatches(_ text: UnsafeRawBufferPointer, _ list: UnsafeBufferPointer<UnsafeRawBufferPointer>) -> Bool {
        let n = text.count
        switch match {
        case .exact:
            if let exactTable { return exactTable.contains(text, list) }
            for pattern in list where pattern.count == n {
                if HTTPRuleBytes.matches(text, at: 0, pattern, ignoreCase: ignoreCase) { return true }
            }
            return false
        case .prefix:
            for pattern in list where pattern.count <= n {
                if HTTPRuleBytes.matches(text, at: 0, pattern, ignoreCase: ignoreCase) { return true }
            }
            return false
        case .suffix:
            for pattern in list where pattern.count <= n {
                if HTTPRuleBytes.matches(text, at: n &- pattern.count, pattern, ignoreCase: ignoreCase) { return true }
            }
            return false
        case .substring:
            for pattern in list where HTTPRuleBytes.contains(text, pattern, ignoreCase: ignoreCase) { return true }
            return false
        case .domain:
            for pattern in list where HTTPCompiledCriterion.word(pattern, in: text, ignoreCase: ignoreCase, domain: true) {
                return true
            }
            return false
        case .directory:
            for pattern in list where HTTPCompiledCriterion.word(pattern, in: text, ignoreCase: ignoreCase, domain: false) {
                return true
            }
            return false
        default:
            return false
        }
    }

    static func integer(_ n: Int, matches pattern: IntegerPattern) -> Bool {
        switch pattern {
        case .equal(let v): return n == v
        case .greaterOrEqual(let v): return n >= v
        case .greater(let v): return n > v
        case .lessOrEqual(let v): return n <= v
        case .less(let v): return n < v
        case .range(let low, let high): return (low.map { n >= $0 } ?? true) && (high.map { n <= $0 } ?? true)
        }
    }

    /// HAProxy's `-m dom` and `-m dir`: the pattern (without its own leading and trailing
    /// delimiters) equals a word of the text, words being delimited by `/` and `?`, plus `.` and
    /// `:` for domains.
    static func word(_ pattern: UnsafeRawBufferPointer, in text: UnsafeRawBufferPointer, ignoreCase: Bool,
                     domain: Bool) -> Bool {
        @inline(__always) func isDelimiter(_ b: UInt8) -> Bool {
            b == HTTPByte.slash || b == HTTPByte.questionMark || (domain && (b == HTTPByte.dot || b == HTTPByte.colon))
        }
        var start = 0
        var end = pattern.count
        while start < end && isDelimiter(pattern[start]) { start += 1 }
        while end > start && isDelimiter(pattern[end - 1]) { end -= 1 }
        let word = HTTPRuleBytes.slice(pattern, start..<end)
        guard word.count <= text.count else { return false }
        var atWordStart = true
        var i = 0
        let last = text.count - word.count
        while i <= last {
            if i < text.count && isDelimiter(text[i]) {
                atWordStart = true
                i += 1
                continue
            }
            if atWordStart && HTTPRuleBytes.matches(text, at: i, word, ignoreCase: ignoreCase)
                && (i + word.count == text.count || isDelimiter(text[i + word.count])) {
                return true
            }
            atWordStart = false
            i += 1
        }
        return false
    }
}

/// `-m str` against many patterns: an open-addressing table of the patterns' indices, keyed by a
/// hash of their bytes (lowercase for `-i`, as the patterns are stored), so a sample is hashed once
/// and compared with the patterns of its slot only. Lives in the rule set's constants.
struct HTTPStringTable {
    /// Fewer patterns than this are scanned (lengths first), which costs less than hashing.
    static let threshold = 8

    private let slots: UnsafeBufferPointer<Int32>
    private let mask: Int
    private let ignoreCase: Bool

    init(_ patterns: UnsafeBufferPointer<UnsafeRawBufferPointer>, ignoreCase: Bool, constants: HTTPRuleConstants) {
        var size = 16
        while size < patterns.count * 2 { size <<= 1 }
        var slots = [Int32](repeating: -1, count: size)
        for (i, pattern) in patterns.enumerated() {
            var slot = HTTPStringTable.hash(pattern, ignoreCase: false) & (size - 1)
            while slots[slot] >= 0 { slot = (slot + 1) & (size - 1) }
            slots[slot] = Int32(i)
        }
        self.slots = constants.buffer(slots)
        mask = size - 1
        self.ignoreCase = ignoreCase
    }

    /// FNV-1a over the bytes (lowercased with `ignoreCase`).
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer, ignoreCase: Bool) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var i = 0
        while i < bytes.count {
            let b = ignoreCase ? HTTPByte.lowercased(bytes[i]) : bytes[i]
            h = (h ^ UInt64(b)) &* 0x100_0000_01b3
            i &+= 1
        }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// Whether `text` equals one of `patterns` (the ones the table was built from).
    func contains(_ text: UnsafeRawBufferPointer, _ patterns: UnsafeBufferPointer<UnsafeRawBufferPointer>) -> Bool {
        var slot = HTTPStringTable.hash(text, ignoreCase: ignoreCase) & mask
        while true {
            let index = slots[slot]
            if index < 0 { return false }
            let pattern = patterns[Int(index)]
            if pattern.count == text.count && HTTPRuleBytes.matches(text, at: 0, pattern, ignoreCase: ignoreCase) {
                return true
            }
            slot = (slot &+ 1) & mask
        }
    }
}
