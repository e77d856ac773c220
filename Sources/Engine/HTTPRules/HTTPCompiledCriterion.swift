import ConfigModel

/// One ACL criterion ready to evaluate: its sample, its match method and its patterns in the form
/// the method tests them (lowercased for `-i`, regexes compiled, networks as masks).
struct HTTPCompiledCriterion {
    enum Patterns {
        case strings([UnsafeRawBufferPointer])
        case regexes([HTTPRegex])
        case integers([IntegerPattern])
        case networks([HTTPCompiledNetwork])
        case none
    }

    let sample: HTTPCompiledSample
    let match: MatchMethod
    let ignoreCase: Bool
    let patterns: Patterns

    init(_ criterion: ACLCriterion, constants: HTTPRuleConstants) throws(ConfigError) {
        sample = HTTPCompiledSample(criterion.sample, constants: constants)
        match = criterion.match
        ignoreCase = criterion.ignoreCase
        switch criterion.patterns {
        case .strings(let strings):
            if criterion.match == .regex {
                var regexes: [HTTPRegex] = []
                for s in strings {
                    do {
                        regexes.append(try HTTPRegex(s, ignoreCase: criterion.ignoreCase))
                    } catch {
                        throw ConfigError(criterion.location, "invalid regex '\(s)': \(error.message)")
                    }
                }
                patterns = .regexes(regexes)
            } else if criterion.match == .integer || criterion.match == .length {
                // Integers written as strings (the Loader normally parses them).
                patterns = .integers(strings.compactMap { Int($0).map(IntegerPattern.equal) })
            } else {
                patterns = .strings(strings.map { constants.bytes($0, lowercased: criterion.ignoreCase) })
            }
        case .integers(let integers):
            patterns = .integers(integers)
        case .networks(let networks):
            patterns = .networks(networks.map(HTTPCompiledNetwork.init))
        case .none:
            patterns = .none
        }
    }

    /// Whether any value of the sample matches any pattern.
    func evaluate(_ ev: HTTPEvaluation) -> Bool {
        let mark = ev.scratch.samples.count
        defer { ev.scratch.samples.rewind(to: mark) }
        return ev.forEachValue(sample, all: true) { value in
            !self.matches(value, ev)
        }
    }

    private func matches(_ value: HTTPSample, _ ev: HTTPEvaluation) -> Bool {
        switch match {
        case .found:
            return true
        case .boolean:
            return ev.boolean(of: value)
        case .integer:
            guard let n = ev.integer(of: value), case .integers(let list) = patterns else { return false }
            return list.contains { HTTPCompiledCriterion.integer(n, matches: $0) }
        case .length:
            guard let text = ev.bytes(of: value), case .integers(let list) = patterns else { return false }
            return list.contains { HTTPCompiledCriterion.integer(text.count, matches: $0) }
        case .ip:
            guard let address = ev.address(of: value), case .networks(let list) = patterns else { return false }
            return list.contains { address.isIn($0) }
        case .regex:
            guard let text = ev.bytes(of: value), case .regexes(let list) = patterns else { return false }
            return list.contains { $0.matches(text) }
        case .exact, .prefix, .suffix, .substring, .domain, .directory:
            guard let text = ev.bytes(of: value), case .strings(let list) = patterns else { return false }
            for pattern in list where stringMatches(text, pattern) { return true }
            return false
        }
    }

    private func stringMatches(_ text: UnsafeRawBufferPointer, _ pattern: UnsafeRawBufferPointer) -> Bool {
        switch match {
        case .exact: return HTTPRuleBytes.equals(text, pattern, ignoreCase: ignoreCase)
        case .prefix: return HTTPRuleBytes.hasPrefix(text, pattern, ignoreCase: ignoreCase)
        case .suffix: return HTTPRuleBytes.hasSuffix(text, pattern, ignoreCase: ignoreCase)
        case .substring: return HTTPRuleBytes.contains(text, pattern, ignoreCase: ignoreCase)
        case .domain: return HTTPCompiledCriterion.word(pattern, in: text, ignoreCase: ignoreCase, domain: true)
        case .directory: return HTTPCompiledCriterion.word(pattern, in: text, ignoreCase: ignoreCase, domain: false)
        default: return false
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
