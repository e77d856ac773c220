/// What a client of the runtime API sent and has not run yet, cut into commands as HAProxy's CLI
/// cuts them: a command ends at a line feed or at a `;` that no backslash escapes; its words are
/// separated by spaces or tabs; a backslash makes the next character literal (`\;` a semicolon,
/// `\ ` a space inside a word, `\\` a backslash) and is itself dropped. So `addr 1.2.3.4\; reload`
/// is one command whose address is `1.2.3.4;`, never a second command.
///
/// A plain value the connection reads into and takes one command at a time from: commands the
/// client sent but strata has not run stay bytes here, at most `limit` of them without an end.
struct AdminInput {
    enum Item: Equatable {
        /// The words of one command; `endsLine`: it was the last of its line.
        case command([String], endsLine: Bool)
        /// A command line ending with the word `<<` (HAProxy's payload): its other words, and the
        /// lines after it up to an empty line, each ending with a line feed.
        case commandWithPayload([String], payload: String)
        /// No end of command in `limit` bytes (HAProxy closes such a connection).
        case tooLong
    }

    let limit: Int
    private var bytes: [UInt8] = []
    /// Bytes before this index are taken.
    private var start = 0

    init(limit: Int) { self.limit = limit }

    /// Bytes held, taken ones excluded.
    var count: Int { bytes.count - start }

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        if start > 0 && start == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            start = 0
        }
        bytes.append(contentsOf: chunk)
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// The next complete command, taken out; nil while its end has not arrived.
    mutating func next() -> Item? {
        var i = start
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "\\"):
                i += 2  // the escaped character is never an end, whatever it is
                continue
            case UInt8(ascii: "\n"), UInt8(ascii: ";"):
                let endsLine = bytes[i] == UInt8(ascii: "\n")
                var end = i
                if end > start && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let words = AdminInput.words(bytes[start..<end])
                if endsLine, words.last == "<<" {
                    // The payload ends at the first empty line; until it has come, nothing is taken.
                    guard let (payload, next) = payload(from: i + 1) else { return count > limit ? .tooLong : nil }
                    start = next
                    compact()
                    return .commandWithPayload(Array(words.dropLast()), payload: payload)
                }
                start = i + 1
                compact()
                return .command(words, endsLine: endsLine)
            default:
                i += 1
            }
        }
        return count > limit ? .tooLong : nil
    }

    /// The payload lines from `from` to the first empty line (`\n` or `\r\n` alone), and where
    /// the input goes on after it; nil while that line has not come.
    private func payload(from: Int) -> (String, Int)? {
        var lineStart = from
        var i = from
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\n") {
                let length = i - lineStart
                if length == 0 || (length == 1 && bytes[lineStart] == UInt8(ascii: "\r")) {
                    return (String(decoding: bytes[from..<lineStart], as: UTF8.self), i + 1)
                }
                lineStart = i + 1
            }
            i += 1
        }
        return nil
    }

    /// Drops taken bytes once they are most of the buffer (the rest moves to the front).
    private mutating func compact() {
        if start == bytes.count {
            bytes.removeAll(keepingCapacity: bytes.capacity <= limit * 2)
            start = 0
        } else if start >= 4096 && start * 2 >= bytes.count {
            bytes.removeSubrange(..<start)
            start = 0
        }
    }

    /// HAProxy's word split: spaces and tabs separate unless escaped; `\X` is `X`, `\\` is `\`,
    /// a backslash at the very end is dropped.
    static func words(_ line: ArraySlice<UInt8>) -> [String] {
        var words: [String] = []
        var word: [UInt8] = []
        var inWord = false
        var i = line.startIndex
        while i < line.endIndex {
            let b = line[i]
            switch b {
            case UInt8(ascii: " "), UInt8(ascii: "\t"):
                if inWord {
                    words.append(String(decoding: word, as: UTF8.self))
                    word.removeAll(keepingCapacity: true)
                    inWord = false
                }
            case UInt8(ascii: "\\"):
                inWord = true
                if i + 1 < line.endIndex {
                    word.append(line[i + 1])
                    i += 1
                }
            default:
                inWord = true
                word.append(b)
            }
            i += 1
        }
        if inWord { words.append(String(decoding: word, as: UTF8.self)) }
        return words
    }
}
