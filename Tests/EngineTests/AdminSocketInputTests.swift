import ConfigModel
import Testing

@testable import Engine

/// The runtime API's input cut into commands as HAProxy's CLI cuts it.
@Suite struct AdminSocketInputTests {
    /// Every item `text` holds, in order.
    static func items(_ text: String, limit: Int = 16384) -> [AdminInput.Item] {
        var input = AdminInput(limit: limit)
        input.append(text)
        var out: [AdminInput.Item] = []
        while let item = input.next() {
            out.append(item)
            if item == .tooLong { break }  // the connection closes there
        }
        return out
    }

    static func command(_ words: [String], endsLine: Bool = true) -> AdminInput.Item {
        .command(words, endsLine: endsLine)
    }

    @Test func semicolonsAndLinesSeparateCommands() {
        #expect(Self.items("show info;show stat\nhelp\n") == [
            Self.command(["show", "info"], endsLine: false), Self.command(["show", "stat"]), Self.command(["help"]),
        ])
        #expect(Self.items("show  info\t typed\r\n") == [Self.command(["show", "info", "typed"])])
        #expect(Self.items("show info;\n") == [Self.command(["show", "info"], endsLine: false), Self.command([])])
        // No end yet: nothing to run.
        #expect(Self.items("show in").isEmpty)
    }

    @Test func anEscapedSemicolonIsPartOfItsWord() {
        #expect(Self.items("set server web/s1 addr 127.0.0.1\\; reload\n") == [
            Self.command(["set", "server", "web/s1", "addr", "127.0.0.1;", "reload"]),
        ])
        #expect(Self.items("a\\;b;c\n") == [Self.command(["a;b"], endsLine: false), Self.command(["c"])])
    }

    @Test func backslashesEscapeAsHAProxysDo() {
        // `\ ` keeps a space in the word, `\\` is one backslash, `\x` is `x`, a last `\` is dropped.
        #expect(Self.items("set a\\ b c\\\\d e\\x\n") == [Self.command(["set", "a b", "c\\d", "ex"])])
        #expect(Self.items("x\\\\;y\n") == [Self.command(["x\\"], endsLine: false), Self.command(["y"])])
        #expect(Self.items("x y\\\r\n") == [Self.command(["x", "y"])])
        // An escaped line feed does not end the command.
        #expect(Self.items("a\\\nb\n") == [Self.command(["a\nb"])])
    }

    @Test func commandsAreTakenOneAtATime() {
        var input = AdminInput(limit: 64)
        input.append("show info\nshow st")
        #expect(input.next() == Self.command(["show", "info"]))
        #expect(input.next() == nil)
        #expect(input.count == 7)
        input.append("at\n")
        #expect(input.next() == Self.command(["show", "stat"]))
        #expect(input.count == 0)
    }

    @Test func aCommandLongerThanTheBoundIsRefused() {
        var input = AdminInput(limit: 16)
        input.append(String(repeating: "x", count: 16))
        #expect(input.next() == nil)
        input.append("x")
        #expect(input.next() == .tooLong)
        // Complete commands before it still run.
        #expect(Self.items("help\n" + String(repeating: "y", count: 40), limit: 16) == [Self.command(["help"]), .tooLong])
    }

    /// HAProxy's payload: a command line ending with `<<`, then lines up to an empty one.
    @Test func aPayloadRunsToTheFirstEmptyLine() {
        #expect(Self.items("add map m <<\nk1 v1\nk2 two words\n\nshow info\n") == [
            .commandWithPayload(["add", "map", "m"], payload: "k1 v1\nk2 two words\n"), Self.command(["show", "info"]),
        ])
        #expect(Self.items("add map m <<\r\nk v\r\n\r\n") == [.commandWithPayload(["add", "map", "m"], payload: "k v\r\n")])
        // Without its empty line, nothing is taken yet; then it is.
        var input = AdminInput(limit: 16384)
        input.append("add map m <<\nk v\n")
        #expect(input.next() == nil)
        input.append("\n")
        #expect(input.next() == .commandWithPayload(["add", "map", "m"], payload: "k v\n"))
        // `<<` elsewhere is a word; after a `;` it starts no payload.
        #expect(Self.items("a << b\nc <<;d\n") == [Self.command(["a", "<<", "b"]), Self.command(["c", "<<"], endsLine: false), Self.command(["d"])])
        // A payload that never ends is bounded as a command is.
        #expect(Self.items("add map m <<\n" + String(repeating: "k v\n", count: 100), limit: 64) == [.tooLong])
    }
}
