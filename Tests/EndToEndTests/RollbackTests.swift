import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `strata rollback` against the real binary: the previous generation's configuration comes back
/// from memory (the file may be gone), its listeners through the listener cache, and a rollback
/// that cannot bind changes nothing.
@Suite(.serialized) struct RollbackTests {
    static func rollback(_ strata: StrataProcess) -> (status: Int32, output: String) {
        let run = runTool(StrataProcess.binary, ["rollback", "-S", strata.adminSocket])
        return (run.status, run.stdout + run.stderr)
    }

    static func refused(_ port: UInt16) -> Bool {
        guard let fd = TestSocket.connect(port) else { return true }
        defer { close(fd) }
        // Accepted by a listener that then closed (its queue served): no name comes back.
        return TestSocket.readLine(fd) == nil
    }

    @Test func rollbackWithTheFileDeletedRestoresTheOldBackendAndClosesTheAddedListener() throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b"))
        let port = TestSocket.freePort(), added = TestSocket.freePort()
        let strata = try StrataProcess(config: GenerationTests.config(port: port, server: a.port))
        #expect(strata.waitForAdmin())
        #expect(GenerationTests.name(port) == "a")
        // Nothing to roll back to yet.
        let none = Self.rollback(strata)
        #expect(none.status == 1)
        #expect(none.output.hasPrefix("Success=0\n--\nrollback: no previous generation"))
        #expect(!(try strata.admin("show generations")).contains("rollback"))

        try strata.write(GenerationTests.config(port: port, server: b.port, extraListen: """
            listen extra
                bind 127.0.0.1:\(added)
                server x 127.0.0.1:\(b.port)
            """))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(GenerationTests.name(port) == "b")
        #expect(GenerationTests.name(added) == "b")
        // Generation 1 retired (no session left); its configuration is kept for the rollback.
        #expect(try eventually { try strata.generations().map(\.id) == [2] })
        let hash1 = try #require(try strata.admin("show generations").split(separator: "\n").first { $0.hasPrefix("# rollback") })
        #expect(hash1.hasPrefix("# rollback restores generation 1 (hash "))

        // The file is gone: a reload fails, a rollback does not read it.
        try FileManager.default.removeItem(atPath: strata.configPath)
        #expect(try strata.admin("reload").hasPrefix("Success=0"))
        // Generation 1's configuration is built ahead once generation 2 is active.
        #expect(try eventually { try strata.admin("show generations").contains("# rollback restores generation 1 (hash ") && strata.admin("show generations").contains(", prepared") })
        let back = Self.rollback(strata)
        #expect(back.status == 0, "\(back.output)")
        #expect(back.output.hasPrefix("Success=1\n--\n"))
        #expect(back.output.contains("built ahead from memory; listeners acquired and every loop swapped in "))
        #expect(back.output.contains("rollback from generation 2: generation 1's configuration restored as generation 4 active"))
        #expect(back.output.contains("1 kept, 0 new, 1 closed"))
        #expect(GenerationTests.name(port) == "a")
        #expect(try eventually { Self.refused(added) })
        let rows = try strata.generations()
        #expect(rows.last?.id == 4 && rows.last?.state == "active")
        // Generation 1's hash is the restored one's; the one to come back to now is generation 2.
        let shown = try strata.admin("show generations")
        #expect(shown.contains("# rollback restores generation 2 (hash "))
        #expect(shown.contains(String(hash1.split(separator: " ").last!.dropLast())))

        // And back again: the listener generation 2 added is bound anew.
        let again = Self.rollback(strata)
        #expect(again.status == 0, "\(again.output)")
        #expect(again.output.contains("generation 2's configuration restored as generation 5 active"))
        #expect(again.output.contains("1 kept, 1 new, 0 closed"))
        #expect(GenerationTests.name(port) == "b")
        #expect(GenerationTests.name(added) == "b")
    }

    @Test func rollbackThatCannotBindChangesNothing() throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b"))
        let port = TestSocket.freePort(), dropped = TestSocket.freePort()
        let extra = """
            listen extra
                bind 127.0.0.1:\(dropped)
                server x 127.0.0.1:\(a.port)
            """
        let strata = try StrataProcess(config: GenerationTests.config(port: port, server: a.port, extraListen: extra))
        #expect(strata.waitForAdmin())
        try strata.write(GenerationTests.config(port: port, server: b.port))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(try eventually { Self.refused(dropped) })
        // Another process takes the port generation 1 listened on.
        let blocker = try TestSocket.listen(port: dropped, what: "blocker")
        defer { close(blocker.fd) }
        let fdsBefore = strata.fds().count
        let answer = try strata.admin("rollback")
        #expect(answer.hasPrefix("Success=0\n--\n"))
        #expect(answer.contains("cannot bind 127.0.0.1:\(dropped)"))
        #expect(answer.contains("rollback to generation 1's configuration (generation 3) failed: nothing was changed"))
        #expect(try strata.generations().map(\.id) == [2])
        #expect(GenerationTests.name(port) == "b")
        #expect(try eventually { strata.fds().count == fdsBefore })
        // Still there to roll back to once the port is free.
        #expect(try strata.admin("show generations").contains("# rollback restores generation 1 "))
    }

    @Test func serverStateAndCountersCarryOverAsInAReload() throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b"))
        let port = TestSocket.freePort()
        let two = "    server s2 127.0.0.1:\(b.port)"
        let strata = try StrataProcess(config: GenerationTests.config(port: port, server: a.port, global: "") + two)
        #expect(strata.waitForAdmin())
        for _ in 0..<3 { _ = GenerationTests.name(port) }
        // Generation 2 drops s2; s1 (same identity) is put in maintenance on it.
        try strata.write(GenerationTests.config(port: port, server: a.port))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(try strata.admin("set server app/s1 state maint").isEmpty)
        let answer = try strata.admin("rollback")
        #expect(answer.hasPrefix("Success=1"), "\(answer)")
        let state = try strata.serversState("app")
        // s1 keeps its runtime maintenance (no health flap, no reset); s2 comes back as new.
        #expect(state["s1"]?.admin == 1)
        #expect(state["s2"]?.admin == 0)
        #expect(GenerationTests.name(port) == "b")
        let stat = try strata.admin("show stat").split(separator: "\n").first { $0.hasPrefix("app,FRONTEND,") }
        // stot (column 8) counts the connections of every generation.
        #expect(stat.map { Int($0.split(separator: ",", omittingEmptySubsequences: false)[7]) ?? 0 } == 4)
    }

    @Test func withoutRoomForAPreparedOneARollbackBuildsFromMemory() throws {
        let a = try TestBackend(.nameThenEcho("a")), b = try TestBackend(.name("b"))
        let port = TestSocket.freePort()
        // Two generations at most: with generation 1 draining, none is built ahead.
        let strata = try StrataProcess(config: GenerationTests.config(port: port, server: a.port, global: "    max-generations 2"))
        #expect(strata.waitForAdmin())
        let held = try #require(TestSocket.connect(port))
        defer { close(held) }
        #expect(TestSocket.readLine(held) == "a")
        try strata.write(GenerationTests.config(port: port, server: b.port, global: "    max-generations 2"))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        usleep(200_000)
        #expect(try strata.admin("show generations").contains("# rollback restores generation 1 (hash ") )
        #expect(try !strata.admin("show generations").contains(", prepared"))
        let back = try strata.admin("rollback")
        #expect(back.hasPrefix("Success=1"), "\(back)")
        #expect(back.contains("built from memory in "))
        #expect(GenerationTests.name(port) == "a")
    }

    @Test func rollbackNeedsTheAdminLevel() throws {
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: GenerationTests.config(port: port, server: a.port, level: "operator"))
        #expect(strata.waitForAdmin())
        #expect(try strata.admin("rollback") == "Permission denied")
    }
}
