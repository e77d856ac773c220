/// Where a configuration item was written. Every parsed item keeps one, so that every error a
/// person reads points at a line they can edit.
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    /// 0: the file as a whole (what a message is about has no line: the file is empty, or a
    /// keyword it had was removed).
    public var line: Int

    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    /// The file as a whole, written `file` rather than `file:line`.
    public init(file: String) {
        self.init(file: file, line: 0)
    }

    public var description: String { line > 0 ? "\(file):\(line)" : file }
}

/// One configuration error: `file:line: message`.
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation?
    public var message: String

    public init(_ location: SourceLocation?, _ message: String) {
        self.location = location
        self.message = ConfigError.shortened(message)
    }

    /// A word in a configuration can be megabytes (a pasted blob, a quote never closed): a message
    /// shows its start. A word of the message (a run without a space) longer than this many bytes
    /// keeps its first `shownCharacters` characters, then "…", then the quote or bracket that
    /// closed it.
    static let longWord = 128
    static let shownCharacters = 64

    /// `message` with its long words cut; linear in its length.
    public static func shortened(_ message: String) -> String {
        let bytes = message.utf8
        guard bytes.count > longWord else { return message }
        var out: [UInt8] = []
        var changed = false
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: 0x20) ?? bytes.endIndex
            let word = bytes[start..<end]
            if word.count > longWord {
                changed = true
                var kept = 0
                var cut = word.startIndex
                // Whole scalars: a UTF-8 continuation byte (10xxxxxx) is never where a cut goes.
                while cut < word.endIndex && (kept < shownCharacters || word[cut] & 0xC0 == 0x80) {
                    if word[cut] & 0xC0 != 0x80 { kept += 1 }
                    cut = word.index(after: cut)
                }
                out.append(contentsOf: word[..<cut])
                out.append(contentsOf: "…".utf8)
                let closing = word.reversed().prefix { "'\")]},.:;?".utf8.contains($0) }.prefix(3)
                out.append(contentsOf: closing.reversed())
            } else {
                out.append(contentsOf: word)
            }
            if end < bytes.endIndex { out.append(0x20) }
            start = end < bytes.endIndex ? bytes.index(after: end) : end
        }
        return changed ? String(decoding: out, as: UTF8.self) : message
    }

    public var description: String {
        guard let location else { return message }
        return "\(location): \(message)"
    }
}

/// Every error of a load, in file and line order.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigError]

    public init(_ errors: [ConfigError]) { self.errors = errors }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
