import Testing
@testable import Loader

@Suite struct TokenizerTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var line: String
        var words: [String]
        var testDescription: String { line }
    }

    static let environment = ["HOST": "10.0.0.1", "PORT": "8080", "EMPTY": "", "LIST": "a  b c", "SPACED": "x y"]

    static let vectors: [Vector] = [
        Vector(line: "", words: []),
        Vector(line: "   \t  ", words: []),
        Vector(line: "# a comment", words: []),
        Vector(line: "    bind :80   # trailing comment", words: ["bind", ":80"]),
        Vector(line: "\tserver\ts1\t127.0.0.1:80", words: ["server", "s1", "127.0.0.1:80"]),
        Vector(line: "a#b c", words: ["a"]),
        Vector(line: "line\r", words: ["line"]),
        // Single quotes: nothing is interpreted.
        Vector(line: "description 'a b # \\n ${HOST}'", words: ["description", "a b # \\n ${HOST}"]),
        // Double quotes: spaces and # kept, variables and escapes interpreted.
        Vector(line: "description \"a b # c\"", words: ["description", "a b # c"]),
        Vector(line: "bind \"${HOST}:${PORT}\"", words: ["bind", "10.0.0.1:8080"]),
        Vector(line: "bind \"$HOST:$PORT\"", words: ["bind", "10.0.0.1:8080"]),
        Vector(line: "x \"${UNSET}\"", words: ["x", ""]),
        Vector(line: "x \"${UNSET-fallback}\" \"${EMPTY-fallback}\"", words: ["x", "fallback", ""]),
        Vector(line: "x \"${LIST[*]}\"", words: ["x", "a", "b", "c"]),
        Vector(line: "x \"${SPACED}\"", words: ["x", "x y"]),
        Vector(line: "x \"\\$HOST\"", words: ["x", "$HOST"]),
        // Outside double quotes `$` is an ordinary character (HAProxy expands only inside them).
        Vector(line: "x ${HOST} $HOST", words: ["x", "${HOST}", "$HOST"]),
        // Quotes join with what touches them.
        Vector(line: "x a\"b c\"'d e'f", words: ["x", "ab cd ef"]),
        Vector(line: "x '' \"\"", words: ["x", "", ""]),
        // Escapes outside single quotes.
        Vector(line: "x a\\ b", words: ["x", "a b"]),
        Vector(line: "x \\#not-a-comment", words: ["x", "#not-a-comment"]),
        Vector(line: "x \\\\ \\' \\\"", words: ["x", "\\", "'", "\""]),
        Vector(line: "x \"\\t\\n\\r\"", words: ["x", "\t\n\r"]),
        Vector(line: "x \\t\\x41", words: ["x", "\tA"]),
        Vector(line: "x \"say \\\"hi\\\"\"", words: ["x", "say \"hi\""]),
        // An unknown escape keeps its backslash (regular expressions rely on it).
        Vector(line: "x ^/a\\.b$", words: ["x", "^/a\\.b$"]),
        Vector(line: "x 5s\\", words: ["x", "5s"]),
        Vector(line: "x 'it'\\''s'", words: ["x", "it's"]),
    ]

    @Test(arguments: vectors)
    func vector(_ vector: Vector) throws {
        #expect(try ConfigTokenizer.tokenize(vector.line, environment: Self.environment) == vector.words)
    }

    @Test(arguments: [
        ("x \"open", "unterminated quote: the \" at column 3 is never closed"),
        ("x 'open", "unterminated quote: the ' at column 3 is never closed"),
        ("x \"${HOST\"", "unterminated variable at column 4: '${HOST' needs a closing '}'"),
        ("x \"$\"", "'$' at column 4 must start a variable name (write \\$ for a dollar sign)"),
        ("x \"${1A}\"", "'$' at column 4 must start a variable name (write \\$ for a dollar sign)"),
        ("x \\xZ1", "invalid escape at column 3: '\\x' needs two hexadecimal digits"),
    ])
    func failure(_ line: String, _ message: String) {
        #expect(throws: ConfigTokenizer.Failure.self) {
            try ConfigTokenizer.tokenize(line, environment: [:])
        }
        do {
            _ = try ConfigTokenizer.tokenize(line, environment: [:])
        } catch {
            #expect(error.message == message)
        }
    }

    @Test func substringInput() throws {
        let text = "a b\nc d"
        let first = text.split(separator: "\n")[0]
        #expect(try ConfigTokenizer.tokenize(first, environment: [:]) == ["a", "b"])
    }
}
