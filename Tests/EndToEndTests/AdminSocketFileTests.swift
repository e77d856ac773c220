import Foundation
import Glibc
import StrataTestSupport
import Testing

/// A unix admin socket's file belongs to the process that answers on it: a second strata on the
/// same configuration fails without taking it, a stale file is replaced, `-sf` hands it over.
@Suite(.serialized) struct AdminSocketFileTests {
    /// GenerationTests' configuration with the admin socket at `path`.
    static func config(port: UInt16, server: UInt16, admin path: String) -> String {
        GenerationTests.config(port: port, server: server).replacingOccurrences(of: "@ADMIN@", with: path)
    }

    /// The pid `show info` answers on `path`.
    static func pid(answeringOn path: String, via strata: StrataProcess) -> Int32? {
        guard let info = try? strata.admin("show info", socket: path) else { return nil }
        return info.split(separator: "\n").first { $0.hasPrefix("Pid: ") }.flatMap { Int32($0.dropFirst(5)) }
    }

    @Test func aSecondStrataOnTheSameSocketFailsAndLeavesTheFirstReachable() throws {
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort()
        let first = try StrataProcess(config: GenerationTests.config(port: port, server: a.port))
        #expect(first.waitForAdmin())
        let second = try StrataProcess(config: Self.config(port: port, server: a.port, admin: first.adminSocket))
        #expect(second.waitForExit() == 1)
        #expect(second.output.contains {
            $0.contains("cannot bind stats socket \(first.adminSocket): process \(first.pid) answers on it")
        })
        // The first one kept its socket file and its port.
        #expect(Self.pid(answeringOn: first.adminSocket, via: first) == first.pid)
        #expect(GenerationTests.name(port) == "a")
    }

    @Test func aStaleSocketFileIsReplaced() throws {
        let a = try TestBackend(.name("a"))
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("stale.sock").path
        // Bound and closed without listening: what a process killed with SIGKILL leaves behind.
        let fd = try #require(TestSocket.bindUnix(path))
        close(fd)
        try #require(FileManager.default.fileExists(atPath: path))
        let strata = try StrataProcess(config: Self.config(port: TestSocket.freePort(), server: a.port, admin: path))
        #expect(try eventually { Self.pid(answeringOn: path, via: strata) == strata.pid })
    }

    @Test func softRestartHandsTheSocketOverAndTheOldProcessLeavesItInPlace() throws {
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort()
        let old = try StrataProcess(config: GenerationTests.config(port: port, server: a.port))
        #expect(old.waitForAdmin())
        let path = old.adminSocket
        let new = try StrataProcess(config: Self.config(port: port, server: a.port, admin: path), arguments: ["-sf", "\(old.pid)"])
        #expect(try eventually { Self.pid(answeringOn: path, via: new) == new.pid })
        #expect(old.waitForExit(seconds: 10) == 0)
        // The old process removed no file at exit: the path is the new one's.
        #expect(Self.pid(answeringOn: path, via: new) == new.pid)
    }
}
