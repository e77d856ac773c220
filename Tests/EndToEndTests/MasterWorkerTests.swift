import Foundation
import Glibc
import StrataTestSupport
import Testing

/// HAProxy's master-worker habits on strata, one process that reloads in place: `master-worker`,
/// `-W`/`-Ws` start it as usual, and `-S` is one more admin socket that `reload` works on.
@Suite struct MasterWorkerTests {
    static func config(port: UInt16, server: UInt16) -> String {
        """
        global
            master-worker
        defaults
            mode tcp
            timeout connect 2s
            timeout client 30s
            timeout server 30s
        listen app
            bind 127.0.0.1:\(port)
            server s1 127.0.0.1:\(server)
        """
    }

    @Test(arguments: ["-W", "-Ws"])
    func masterWorkerFlagsStartAndTheMasterSocketReloads(_ flag: String) throws {
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort()
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let master = directory.appendingPathComponent("master.sock").path
        let strata = try StrataProcess(config: Self.config(port: port, server: a.port), arguments: [flag, "-S", "\(master),mode,600"])
        #expect(TestSocket.waitForListener(port))
        #expect(eventually { FileManager.default.fileExists(atPath: master) })
        var st = stat()
        #expect(stat(master, &st) == 0 && st.st_mode & 0o777 == 0o600)
        let reload = runTool(StrataProcess.binary, ["reload", "-S", master])
        #expect(reload.status == 0, "\(reload.stdout) \(reload.stderr)")
        #expect(reload.stdout.hasPrefix("Success=1"))
        #expect(try strata.admin("show generations", socket: master).contains("2 active"))
    }

    @Test func aMasterSocketOtherThanAPathIsRefused() {
        let run = runTool(StrataProcess.binary, ["-S", "ipv4@127.0.0.1:9999", "-f", "/dev/null"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("only a UNIX socket path"), "\(run.stderr)")
        #expect(errorsOf("global\n    master-worker exit-on-failure\n").contains("'master-worker' accepts only 'no-exit-on-failure'"))
    }

    func errorsOf(_ config: String) -> String {
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("c.cfg").path
        try? (config + "listen app\n    bind 127.0.0.1:1\n    server s 127.0.0.1:2\n").write(toFile: path, atomically: true, encoding: .utf8)
        let run = runTool(StrataProcess.binary, ["-c", "-f", path])
        return run.stdout + run.stderr
    }
}
