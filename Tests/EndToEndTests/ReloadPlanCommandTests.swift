import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `strata reload --plan` against the real binary: it says what a reload would change, gives the
/// errors a reload would give, and changes nothing: no traffic moves, no port is bound, no
/// generation is made, no reload is counted.
@Suite(.serialized) struct ReloadPlanCommandTests {
    static func config(port: UInt16, servers: String, more: String = "") -> String {
        """
        global
            stats socket @ADMIN@ level admin
        defaults
            mode tcp
            timeout connect 2s
            timeout client 30s
            timeout server 30s
        listen app
            bind 127.0.0.1:\(port)
        \(servers)
        \(more)
        """
    }

    static func plan(_ strata: StrataProcess, json: Bool = false) -> (status: Int32, lines: [String], output: String) {
        let run = runTool(StrataProcess.binary, ["reload", "--plan"] + (json ? ["--json"] : []) + ["-S", strata.adminSocket])
        return (run.status, run.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty },
                run.stdout + run.stderr)
    }

    /// The 1-based line of the configuration file that contains `text`.
    static func line(of text: String, in strata: StrataProcess) throws -> Int {
        let lines = try String(contentsOfFile: strata.configPath, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        return try #require(lines.firstIndex { $0.contains(text) }) + 1
    }

    /// What a plan must leave as it was.
    struct Untouched: Equatable {
        var generations: [String]
        var reloads: [String]
        var fds: Int

        init(_ strata: StrataProcess) throws {
            generations = try strata.generations().map { "\($0.id) \($0.state) \($0.listeners)" }
            reloads = try strata.admin("show info").split(separator: "\n").map(String.init)
                .filter { $0.hasPrefix("Reloads:") || $0.hasPrefix("FailedReloads:") }
            // Once the connections just made (these admin commands, a proxied test connection)
            // are closed on strata's side too: the same count three times in a row.
            var counts: [Int] = []
            let deadline = Date().addingTimeInterval(5)
            repeat {
                counts.append(strata.fds().count)
                if counts.count >= 3 && Set(counts.suffix(3)).count == 1 { break }
                usleep(100_000)
            } while Date() < deadline
            fds = counts.last ?? 0
        }
    }

    @Test func planListsTheChangesAndAnInvalidLineAndChangesNothing() throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b"))
        let port = TestSocket.freePort(), newPort = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, servers: "    server s1 127.0.0.1:\(a.port)"))
        #expect(strata.waitForAdmin())
        #expect(GenerationTests.name(port) == "a")
        let before = try Untouched(strata)
        #expect(before.generations == ["1 active 1"])
        #expect(before.reloads == ["Reloads: 0", "FailedReloads: 0"])

        let candidate = Self.config(port: port, servers: """
                server s1 127.0.0.1:\(b.port)
                server s2 127.0.0.1:\(a.port)
            """, more: """
            listen extra
                bind 127.0.0.1:\(newPort)
                server x 127.0.0.1:\(a.port)
            """)
        try strata.write(candidate)
        let plan = Self.plan(strata)
        #expect(plan.status == 0, "\(plan.output)")
        #expect(Array(plan.lines.prefix(2)) == ["Success=1", "--"])
        let hash = try #require(try strata.admin("show generations").split(separator: "\n").last?.split(separator: " ").last)
        #expect(Array(plan.lines.dropFirst(2)) == [
            "~ server app/s1 address 127.0.0.1:\(a.port) -> 127.0.0.1:\(b.port)",
            "+ server app/s2",
            "+ listen extra",
            "= listener 127.0.0.1:\(port) kept",
            "+ listener 127.0.0.1:\(newPort) (frontend extra) will bind",
            "! health state of app/s1 resets (address changed)",
            plan.lines.last.map { $0.hasPrefix("= generation 1 (hash \(hash)) -> candidate (hash ") ? $0 : "(a last line naming generation 1)" } ?? "",
        ])

        // The same plan for tools, exit status included; the document alone on standard output.
        let json = Self.plan(strata, json: true)
        #expect(json.status == 0)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.lines.joined().utf8)) as? [String: Any])
        #expect(document["success"] as? Bool == true)
        #expect((document["changes"] as? [[String: Any]])?.compactMap { $0["line"] as? String } == Array(plan.lines.dropFirst(2)))

        // An invalid line: the error as a reload prints it, and exit 1.
        try strata.write(candidate + "\n    bogus 1\n")
        let refused = Self.plan(strata)
        #expect(refused.status == 1)
        let bogus = try Self.line(of: "bogus", in: strata)
        #expect(Array(refused.lines.prefix(3)) == [
            "Success=0", "--", "\(strata.configPath):\(bogus): 'bogus' is not supported in section 'listen'",
        ])
        let refusedJSON = Self.plan(strata, json: true)
        #expect(refusedJSON.status == 1)
        #expect(refusedJSON.lines.joined().contains("\"success\":false"))

        // Nothing moved: traffic, listeners, generations, reload counters, fds.
        #expect(GenerationTests.name(port) == "a")
        #expect(TestSocket.connect(newPort, timeout: 2) == nil, "the plan left \(newPort) bound")
        #expect(try Untouched(strata) == before)

        // And a reload of the same file fails with the line the plan gave.
        let reload = try strata.admin("reload")
        #expect(reload.hasPrefix("Success=0\n--\n" + refused.lines[2] + "\n"))
    }

    @Test func planOfAListenerOnATakenPortGivesTheBindErrorAndExitsOne() throws {
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort(), free = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, servers: "    server s1 127.0.0.1:\(a.port)"))
        #expect(strata.waitForAdmin())
        // Another socket holds this port (without SO_REUSEPORT).
        let blocker = try TestBackend(.name("blocker"))
        let before = try Untouched(strata)
        try strata.write(Self.config(port: port, servers: "    server s1 127.0.0.1:\(a.port)", more: """
            listen extra
                bind 127.0.0.1:\(free)
                server s1 127.0.0.1:\(a.port)
            listen clash
                bind 127.0.0.1:\(blocker.port)
                server s1 127.0.0.1:\(a.port)
            """))
        let plan = Self.plan(strata)
        #expect(plan.status == 1)
        let line = try Self.line(of: "bind 127.0.0.1:\(blocker.port)", in: strata)
        #expect(Array(plan.lines.prefix(3)) == [
            "Success=0", "--",
            "\(strata.configPath):\(line): cannot bind 127.0.0.1:\(blocker.port) for listen 'clash': Address already in use (bind)",
        ])
        // The free port tried beside it was closed again; nothing else moved.
        #expect(TestSocket.connect(free, timeout: 2) == nil)
        #expect(GenerationTests.name(port) == "a")
        #expect(try Untouched(strata) == before)
        #expect(blocker.connections == 0)
    }
}
