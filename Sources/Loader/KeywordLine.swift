import ConfigModel

/// One keyword line of a section, split into the keyword as people name it (`maxconn`,
/// `option redispatch`, `timeout connect`, `stats socket`) and its arguments, with helpers that
/// read arguments and fail with a message naming the keyword and what it expected.
struct KeywordLine {
    var location: SourceLocation
    /// The line began with `no`.
    var negated: Bool
    /// As shown in messages.
    var keyword: String
    var args: ArraySlice<String>

    static let familyExamples = [
        "option": "option tcplog", "timeout": "timeout connect 5s", "stats": "stats socket PATH",
        "no": "no option redispatch", "monitor": "monitor fail if COND",
    ]

    init(words: [String], location: SourceLocation) {
        self.location = location
        var words = words[...]
        negated = words.count > 1 && words[words.startIndex] == "no"
        if negated { words = words.dropFirst() }
        let first = words.first ?? ""
        if words.count > 1 && KeywordLine.isFamily(first) {
            keyword = first + " " + words[words.startIndex + 1]
            args = words.dropFirst(2)
        } else {
            keyword = first
            args = words.dropFirst()
        }
    }

    /// Keywords whose second word selects the real keyword (a switch, not a set: no hashing on
    /// every line).
    static func isFamily(_ word: String) -> Bool {
        switch word {
        case "option", "timeout", "stats", "monitor": true
        default: false
        }
    }

    func error(_ message: String) -> ConfigError { ConfigError(location, message) }

    /// The argument at `index` (0 is the first after the keyword), or an error saying what was expected.
    func argument(_ index: Int, expecting what: String) throws(ConfigError) -> String {
        guard index < args.count else { throw error("'\(keyword)' expects \(what)") }
        return args[args.startIndex + index]
    }

    func optionalArgument(_ index: Int) -> String? {
        index < args.count ? args[args.startIndex + index] : nil
    }

    /// Refuses arguments past the first `count`.
    func noArguments(after count: Int = 0) throws(ConfigError) {
        guard args.count > count else { return }
        throw error("unexpected argument '\(args[args.startIndex + count])' to '\(keyword)'")
    }

    /// Everything after the keyword as one text (`description`), words joined by a space as HAProxy does.
    func text(expecting what: String) throws(ConfigError) -> String {
        guard !args.isEmpty else { throw error("'\(keyword)' expects \(what)") }
        return args.joined(separator: " ")
    }

    func integer(_ index: Int, range: ClosedRange<Int> = 0...Int.max, name: String? = nil) throws(ConfigError) -> Int {
        guard index < args.count else {
            throw error("'\(name ?? keyword)' expects \(KeywordLine.describe(range))")
        }
        return try KeywordLine.integer(args[args.startIndex + index], range: range, name: name ?? keyword,
                                       location: location)
    }

    /// `name` is only needed for a message: evaluated on error alone.
    static func integer(_ text: String, range: ClosedRange<Int>, name: @autoclosure () -> String,
                        location: SourceLocation) throws(ConfigError) -> Int
    {
        // Not a number at all: say so plainly; the range is for numbers out of it.
        guard let value = decimal(text) else {
            throw ConfigError(location, "'\(name())' expects an integer, got '\(text)'")
        }
        guard range.contains(value) else {
            throw ConfigError(location, "'\(name())' expects \(describe(range)), got '\(text)'")
        }
        return value
    }

    /// `-`? then ASCII digits, as an Int; nil when it is not that or does not fit (`Int(text)`
    /// would also take a leading `+`).
    static func decimal(_ text: String) -> Int? {
        let parsed = withBytes(text) { bytes -> (negative: Bool, magnitude: UInt)? in
            let negative = bytes.first == UInt8(ascii: "-")
            let digits = negative ? UnsafeBufferPointer(rebasing: bytes.dropFirst()) : bytes
            guard !digits.isEmpty else { return nil }
            // The magnitude, negated at the end: Int.min has no positive counterpart.
            var magnitude: UInt = 0
            for c in digits {
                let digit = c &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt(digit))
                guard !o1, !o2 else { return nil }
                magnitude = sum
            }
            return (negative, magnitude)
        }
        guard let (negative, magnitude) = parsed else { return nil }
        if negative {
            guard magnitude <= UInt(Int.max) + 1 else { return nil }
            return magnitude == UInt(Int.max) + 1 ? Int.min : -Int(magnitude)
        }
        guard magnitude <= UInt(Int.max) else { return nil }
        return Int(magnitude)
    }

    static func describe(_ range: ClosedRange<Int>) -> String {
        // Limits at the 32-bit maximum are HAProxy's storage, not something to tell people.
        guard range.upperBound < Int(Int32.max) else {
            switch range.lowerBound {
            case ..<(-Int(Int32.max)): return "an integer"
            case 0: return "a non-negative integer"
            case 1: return "a positive integer"
            case let low: return "an integer of at least \(low)"
            }
        }
        return "an integer from \(range.lowerBound) to \(range.upperBound)"
    }

    /// A time in milliseconds (a bare number is milliseconds).
    func time(_ index: Int) throws(ConfigError) -> Int {
        guard index < args.count else { throw error("'\(keyword)' expects a time (for example 5s)") }
        let text = args[args.startIndex + index]
        switch ConfigUnits.parseTime(text) {
        case .success(let ms): return ms
        case .failure(let failure): throw error("'\(keyword)' expects a time, got '\(text)' (\(failure))")
        }
    }

    /// One of `choices`, or an error listing them.
    func choice(_ index: Int, among choices: [String]) throws(ConfigError) -> String {
        let list = KeywordLine.list(choices)
        guard index < args.count else { throw error("'\(keyword)' expects \(list)") }
        let value = args[args.startIndex + index]
        guard choices.contains(value) else { throw error("'\(keyword)' expects \(list), got '\(value)'") }
        return value
    }

    /// "a, b or c".
    static func list(_ items: [String]) -> String {
        guard items.count > 1 else { return items.first ?? "" }
        return items.dropLast().joined(separator: ", ") + " or " + items.last!
    }
}
