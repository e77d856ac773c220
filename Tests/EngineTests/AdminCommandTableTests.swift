import ConfigModel
import Foundation
import StrataTestSupport
import Testing

@testable import Engine

extension Engine {
    /// The answer of the engine's command `words` at `level` (a command that answers at once).
    func admin(_ words: [String], level: AccessLevel = .admin) -> String {
        var answer: String?
        AdminCommandTable.engine.run(words, level: level, engine: self) { answer = $0 }
        return answer ?? "(no answer yet)"
    }

    /// `line`'s words are separated by single spaces.
    func admin(_ line: String, level: AccessLevel = .admin) -> String {
        admin(line.split(separator: " ").map(String.init), level: level)
    }
}

/// The runtime API's commands as one table: levels, `help` and unknown commands as HAProxy 2.6
/// answers them, commands that answer later, and JSON a real parser reads.
@Suite struct AdminCommandTableTests {
    static let helpFooter = [
        "  help [<command>]                        : list matching or all commands",
        "  prompt                                  : toggle interactive mode with prompt",
        "  quit                                    : disconnect",
    ]

    /// The lines of `answer` between its header (returned first) and the footer every usage has.
    static func listed(_ answer: String) -> (header: String, lines: [String]) {
        var lines = answer.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.last == "")
        lines.removeLast()
        #expect(Array(lines.suffix(3)) == helpFooter)
        return (lines[0], Array(lines.dropFirst().dropLast(3)))
    }

    /// HAProxy 2.6's levels: cli.c, stats.c, stream.c, proxy.c, server.c, ssl_ckch.c.
    @Test func everyCommandHasHAProxysLevel() {
        func level(_ line: String) -> AccessLevel? {
            AdminCommandTable.engine.command(for: line.split(separator: " ").map(String.init))?.level
        }
        for line in ["help", "show info", "show info json", "show stat", "show stat typed", "show servers state",
                     "show servers state be", "show backend", "get weight be/s1", "show generations",
                     "set timeout cli 5", "show version", "show activity", "show servers conn", "show servers conn be"] {
            #expect(level(line) == .user, "\(line)")
        }
        for line in ["show env", "show env PATH", "show errors", "show errors web request", "show sess all", "show sess", "show threads", "show ssl cert", "show ssl cert /x.pem", "clear counters"] {
            #expect(level(line) == .operator_, "\(line)")
        }
        for line in ["clear counters all", "disable server be/s1", "enable server be/s1", "disable health be/s1",
                     "enable health be/s1", "set server be/s1 state maint", "set server be/s1 addr 1.2.3.4", "set weight be/s1 2"] {
            #expect(level(line) == .admin, "\(line)")
        }
        #expect(level("frobnicate") == nil)
        #expect(level("show") == nil)
        #expect(level("show servers") == nil)
    }

    @Test func theLevelIsCheckedBeforeTheArguments() throws {
        let (engine, _) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        #expect(engine.admin("set server web/s1 bogus", level: .operator_) == "Permission denied")
        #expect(engine.admin("set server web/s1 bogus") == "usage: set server <backend>/<server> addr | agent | fqdn | health | state | weight")
        #expect(engine.admin("clear counters all", level: .operator_) == "Permission denied")
        #expect(engine.admin("show sess now", level: .user) == "Permission denied")
        #expect(engine.admin("show sess now", level: .operator_).hasPrefix("Unknown command, but maybe"))
        #expect(engine.admin("get weight web/s1", level: .user) == "1 (initial 1)")
    }

    /// Every command with a usage line, once, sorted by it (HAProxy sorts by the line), then help,
    /// prompt and quit; `help WORDS` keeps the commands that start with WORDS.
    @Test func helpIsGeneratedFromTheTable() throws {
        let (engine, _) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        let (header, lines) = Self.listed(engine.admin("help", level: .user))
        #expect(header == "The following commands are valid at this level:")
        #expect(lines == lines.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(lines.count == 39)
        #expect(lines.contains("  show stat [domain <dns|proxy>] [{<iid>|<proxy>} <type> <sid>] [typed|json] [up|no-maint] : report counters for each proxy and server"))
        #expect(lines.contains("  show generations                        : one row per live generation (id state age_s sessions listeners hash)"))
        #expect(lines.contains("  canary set <percent>                    : the canary's share of new work, 0 to 100 (admin level)"))
        #expect(lines.contains("  clear counters [all]                    : clear max statistics counters (or all counters)"))
        #expect(!lines.contains { $0.hasPrefix("  clear counters all") })
        #expect(lines.contains("  show cache                              : show cache status"))

        let shown = Self.listed(engine.admin("help show ssl")).lines
        #expect(shown == ["  show ssl cert [<certfile>]              : display the SSL certificates used in memory, or the details of a file's"])
        #expect(Self.listed(engine.admin("help show")).lines.count == 17)

        // A command registered later is listed in its place.
        var table = AdminCommandTable.engine
        table.register([AdminCommand(["reload"], usage: ("reload", "reload the configuration in place"), level: .admin) { _ in .text("") }])
        var answer = ""
        table.run(["help"], level: .user, engine: engine) { answer = $0 }
        let withReload = Self.listed(answer).lines
        #expect(withReload.count == 40)
        #expect(withReload.firstIndex(of: "  reload                                  : reload the configuration in place")
                == withReload.firstIndex { $0.hasPrefix("  set map") }.map { $0 - 1 })
    }

    /// HAProxy 2.6 (cli.c): a command nothing starts with is answered with the closest commands
    /// by their words' letter transitions, else every command sharing the leading words typed.
    @Test func unknownCommandsAnswerAsHAProxy() throws {
        let (engine, _) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        let better = "Unknown command, but maybe one of the following ones is a better match:"

        let (header, typo) = Self.listed(engine.admin("sho info"))
        #expect(header == better)
        #expect(typo == ["  show info [typed|json]                  : report information about the running process"])

        let stats = Self.listed(engine.admin("show stats"))
        #expect(stats.header == better)
        #expect(stats.lines.map { String($0.prefix(13)) } == ["  show stat ["])

        // No word past the ones that matched: the commands that start with them.
        let show = Self.listed(engine.admin("show"))
        #expect(show.header == better)
        #expect(show.lines.count == 17 && show.lines.allSatisfy { $0.hasPrefix("  show ") })

        // Known words with arguments the command does not take: nothing is close to a word
        // compared with none, so the commands with those words.
        #expect(Self.listed(engine.admin("show info bogus")).lines == typo)
        #expect(Self.listed(engine.admin("show generations now")).lines.count == 1)

        // No word at all.
        let empty = Self.listed(engine.admin([]))
        #expect(empty.header == "Unknown command. Please enter one of the following commands only:")
        #expect(empty.lines.count == 39)

        // At most five proposals, the closest first in the table, listed sorted.
        let far = Self.listed(engine.admin("frobnicate"))
        #expect(far.header == better)
        #expect(far.lines.count == 5)
    }

    /// Holds the answer function of a command that answers later.
    final class Pending: @unchecked Sendable {
        var answer: ((String) -> Void)?
    }

    @Test func aCommandCanAnswerLater() throws {
        let (engine, _) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        let pending = Pending()
        var answers: [String] = []
        var table = AdminCommandTable.engine
        table.register([AdminCommand(["wait"], usage: nil, level: .operator_) { c in
            let arguments = c.arguments.joined(separator: " ")
            return .later { answer in pending.answer = { answer("waited for " + $0 + " " + arguments) } }
        }])
        table.run(["wait", "x"], level: .operator_, engine: engine) { answers.append($0) }
        table.run(["wait"], level: .user, engine: engine) { answers.append($0) }
        #expect(answers == ["Permission denied"])
        pending.answer?("it")
        #expect(answers == ["Permission denied", "waited for it x"])

        // The same words again replace the command.
        table.register([AdminCommand(["wait"], usage: nil, level: .user) { _ in .text("no wait") }])
        table.run(["wait"], level: .user, engine: engine) { answers.append($0) }
        #expect(answers.last == "no wait")
    }

    /// `show info json` and `show stat json` escape what JSON forbids raw in a string, so a value
    /// with a line feed, a quote, a backslash and control bytes reads back as it was.
    @Test(.enabled(if: TestTools.inCI || TestTools.pythonHas("json"), "python3 is not installed"))
    func jsonAnswersReadBackWithPythonsJSONModule() throws {
        let odd = "line one\nsays \"hi\" \\ tab\t bell\u{7} nul\u{0} esc\u{1b} del\u{7f} é"
        var global = GlobalSettings()
        global.description = odd
        var proxies = StatsTestSupport.proxies()
        proxies[0].servers[0].name = odd
        let (engine, _) = try StatsTestSupport.engine(proxies, global: global)
        let expected = odd.utf8.map { String(format: "%02x", $0) }.joined()

        let info = """
            import json, sys
            fields = json.load(sys.stdin)
            print(next(f["value"]["value"] for f in fields if f["field"]["name"] == "description").encode().hex())
            """
        let (status, output) = try TestTools.python(info, input: engine.admin("show info json"))
        #expect(status == 0, "\(output)")
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == expected)

        let stat = """
            import json, sys
            rows = json.load(sys.stdin)
            names = [f["value"]["value"] for row in rows for f in row if f["field"]["name"] == "svname"]
            print(names[1].encode().hex())
            """
        let (statStatus, statOutput) = try TestTools.python(stat, input: engine.admin("show stat json"))
        #expect(statStatus == 0, "\(statOutput)")
        #expect(statOutput.trimmingCharacters(in: .whitespacesAndNewlines) == expected)
    }
}
