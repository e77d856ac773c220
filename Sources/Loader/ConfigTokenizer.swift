/// Cuts one configuration line into words the way HAProxy does (configuration.txt §2.2, §2.3):
/// spaces and tabs separate words, `#` starts a comment, single quotes are literal, double quotes
/// keep spaces and expand environment variables, backslash escapes work outside single quotes.
/// A value with no file attached, so it is tested on strings alone.
public enum ConfigTokenizer {
    /// Why a line could not be cut into words. `column` counts from 1, in bytes.
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var message: String
        public var column: Int

        public init(message: String, column: Int) {
            self.message = message
            self.column = column
        }

        public var description: String { message }
    }

    private enum Quote { case none, single, double }

    /// The words of `line` after quote removal, escapes and expansion. An empty array is a blank
    /// or comment-only line. Variables expand only inside double quotes (`"${NAME}"`, `"$NAME"`,
    /// `"${NAME-default}"`, and `"${NAME[*]}"` which yields one word per space-separated value),
    /// as in HAProxy: outside quotes `$` is an ordinary character. An unset variable is empty.
    public static func tokenize(_ line: some StringProtocol, environment: [String: String])
        throws(Failure) -> [String]
    {
        let result = line.utf8.withContiguousStorageIfAvailable { bytes in
            Result { () throws(Failure) in try tokenize(bytes: bytes, environment: environment) }
        } ?? Array(line.utf8).withUnsafeBufferPointer { bytes in
            Result { () throws(Failure) in try tokenize(bytes: bytes, environment: environment) }
        }
        return try result.get()
    }

    /// The same on the line's UTF-8 bytes (without its newline).
    static func tokenize(bytes: UnsafeBufferPointer<UInt8>, environment: [String: String])
        throws(Failure) -> [String]
    {
        var words: [String] = []
        var cache = WordCache(enabled: false)
        try tokenize(bytes: bytes, environment: environment, into: &words, cache: &cache)
        return words
    }

    /// The loader's path: the words are appended to `words`, an array the caller empties and
    /// reuses from line to line (one allocation for the whole file rather than one per line),
    /// and plain words already seen come from `cache`.
    static func tokenize(bytes: UnsafeBufferPointer<UInt8>, environment: [String: String],
                         into words: inout [String], cache: inout WordCache) throws(Failure)
    {
        // Most lines have no quote and no backslash: their words are the runs between spaces,
        // made into Strings straight from the file's bytes.
        let base = words.count
        if plainWords(bytes, into: &words, cache: &cache) { return }
        words.removeSubrange(base...)
        words += try quotedWords(bytes, environment: environment)
    }

    /// Words of a line without quotes or backslashes before its comment: `$` is ordinary there,
    /// `#` ends the line. False when a quote or a backslash needs the full tokenizer.
    private static func plainWords(_ bytes: UnsafeBufferPointer<UInt8>, into words: inout [String],
                                   cache: inout WordCache) -> Bool
    {
        var start = -1
        var i = 0
        let count = bytes.count
        while i < count {
            let c = bytes[i]
            // Letters, digits and most punctuation are above the quote (0x27); test those first.
            if c > UInt8(ascii: "'") {
                if c == UInt8(ascii: "\\") { return false }
                if start < 0 { start = i }
                i += 1
                continue
            }
            switch c {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"), UInt8(ascii: "#"):
                if start >= 0 {
                    words.append(cache.word(UnsafeBufferPointer(rebasing: bytes[start..<i])))
                    start = -1
                }
                if c == UInt8(ascii: "#") { return true }
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                return false
            default:
                if start < 0 { start = i }
            }
            i += 1
        }
        if start >= 0 {
            words.append(cache.word(UnsafeBufferPointer(rebasing: bytes[start..<i])))
        }
        return true
    }

    private static func quotedWords(_ bytes: UnsafeBufferPointer<UInt8>, environment: [String: String])
        throws(Failure) -> [String]
    {
        var words: [String] = []
        var word: [UInt8] = []
        var inWord = false
        var quote = Quote.none
        var quoteStart = 0
        var i = 0

        func flush() {
            words.append(String(decoding: word, as: UTF8.self))
            word.removeAll(keepingCapacity: true)
            inWord = false
        }

        while i < bytes.count {
            let c = bytes[i]
            switch quote {
            case .single:
                if c == UInt8(ascii: "'") { quote = .none } else { word.append(c) }
                i += 1
                continue
            case .none:
                if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r")
                    || c == UInt8(ascii: "\n")
                {
                    if inWord { flush() }
                    i += 1
                    continue
                }
                if c == UInt8(ascii: "#") { i = bytes.count; continue }
                if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
                    quote = c == UInt8(ascii: "'") ? .single : .double
                    quoteStart = i
                    inWord = true  // `''` is an empty word, not nothing
                    i += 1
                    continue
                }
            case .double:
                if c == UInt8(ascii: "\"") {
                    quote = .none
                    i += 1
                    continue
                }
            }

            inWord = true
            if c == UInt8(ascii: "\\") {
                i = try escape(bytes, at: i, into: &word)
            } else if c == UInt8(ascii: "$") && quote == .double {
                let (values, next) = try variable(bytes, at: i, environment: environment)
                for (n, value) in values.enumerated() {
                    if n > 0 { flush(); inWord = true }
                    word.append(contentsOf: value.utf8)
                }
                i = next
            } else {
                word.append(c)
                i += 1
            }
        }

        if quote != .none {
            let mark = quote == .single ? "'" : "\""
            throw Failure(message: "unterminated quote: the \(mark) at column \(quoteStart + 1) is never closed",
                          column: quoteStart + 1)
        }
        if inWord { flush() }
        return words
    }

    /// Handles the backslash at `i`; returns the index after the sequence.
    private static func escape(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int, into word: inout [UInt8]) throws(Failure) -> Int {
        guard i + 1 < bytes.count else { return i + 1 }  // a lone trailing backslash is dropped, as HAProxy does
        let next = bytes[i + 1]
        switch next {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "#"), UInt8(ascii: "\\"), UInt8(ascii: "'"),
            UInt8(ascii: "\""), UInt8(ascii: "$"):
            word.append(next)
        case UInt8(ascii: "n"): word.append(0x0a)
        case UInt8(ascii: "r"): word.append(0x0d)
        case UInt8(ascii: "t"): word.append(0x09)
        case UInt8(ascii: "x"):
            guard i + 3 < bytes.count, let high = hexValue(bytes[i + 2]), let low = hexValue(bytes[i + 3])
            else {
                throw Failure(message: "invalid escape at column \(i + 1): '\\x' needs two hexadecimal digits",
                              column: i + 1)
            }
            word.append(high << 4 | low)
            return i + 4
        default:
            // Not an escape sequence: the backslash stays (regular expressions rely on it).
            word.append(UInt8(ascii: "\\"))
            return i + 1
        }
        return i + 2
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func isNameStart(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || c == UInt8(ascii: "_")
    }

    private static func isNameChar(_ c: UInt8) -> Bool {
        isNameStart(c) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
    }

    /// Expands the variable whose `$` is at `i` (inside double quotes). Returns the words it
    /// yields (one, or several with `[*]`) and the index after it.
    private static func variable(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int, environment: [String: String])
        throws(Failure) -> ([String], Int)
    {
        var j = i + 1
        let braced = j < bytes.count && bytes[j] == UInt8(ascii: "{")
        if braced { j += 1 }
        guard j < bytes.count, isNameStart(bytes[j]) else {
            throw Failure(
                message: "'$' at column \(i + 1) must start a variable name (write \\$ for a dollar sign)",
                column: i + 1)
        }
        let nameStart = j
        while j < bytes.count && isNameChar(bytes[j]) { j += 1 }
        let name = String(decoding: bytes[nameStart..<j], as: UTF8.self)
        guard braced else { return ([environment[name] ?? ""], j) }

        var fallback: String?
        var split = false
        if j < bytes.count && bytes[j] == UInt8(ascii: "-") {
            let start = j + 1
            j = start
            while j < bytes.count && bytes[j] != UInt8(ascii: "}") { j += 1 }
            fallback = String(decoding: bytes[start..<j], as: UTF8.self)
        } else if bytes[j...].starts(with: Array("[*]".utf8)) {
            split = true
            j += 3
        }
        guard j < bytes.count, bytes[j] == UInt8(ascii: "}") else {
            throw Failure(message: "unterminated variable at column \(i + 1): '${\(name)' needs a closing '}'",
                          column: i + 1)
        }
        // The default replaces only a variable that is not set, not an empty one (HAProxy's rule).
        let value = environment[name] ?? fallback ?? ""
        if split {
            let parts = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            return (parts.isEmpty ? [""] : parts, j + 1)
        }
        return ([value], j + 1)
    }
}
