import Foundation
import StrataTestSupport
import Testing

/// The command line a new user tries first.
@Suite struct CommandLineTests {
    @Test(arguments: ["-v", "--version"])
    func versionNeedsNoConfiguration(_ flag: String) {
        let run = runTool(StrataProcess.binary, [flag])
        #expect(run.status == 0, "\(run.stderr)")
        // One line, as HAProxy's -v (the build options are -vv's).
        #expect(run.stdout.hasPrefix("strata version ") && run.stdout.split(separator: "\n").count == 1, "\(run.stdout)")
    }

    @Test func doubleVerboseVersionPrintsTheBuildOptions() {
        // As `haproxy -vv`: the libraries strata was built with and runs on.
        let run = runTool(StrataProcess.binary, ["-vv"])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("strata version ") == true)
        for prefix in ["Running on: Linux ", "  SWIFT   = 6.", "Built with libev version : 4.", "Running on libev version : 4.",
                       "Built with OpenSSL version : OpenSSL ", "Running on OpenSSL version : OpenSSL "] {
            #expect(lines.contains { $0.hasPrefix(prefix) }, "\(prefix): \(run.stdout)")
        }
    }

    @Test func systemdUnitSaysWhichAdminSocketItsReloadNeeds() throws {
        let root = TestTools.packageRoot
        let unit = try String(contentsOf: root.appendingPathComponent("contrib/systemd/strata.service"), encoding: .utf8)
        let reload = try #require(unit.split(separator: "\n").first { $0.hasPrefix("ExecReload=") })
        let words = reload.split(separator: " ")
        let socket = try #require(words.firstIndex(of: "-S").map { String(words[$0 + 1]) })
        // The unit and the README give the line the configuration needs, and strata accepts it.
        let line = "stats socket \(socket) mode 600 level admin"
        #expect(unit.contains("#       \(line)\n"))
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains("    \(line)\n"))
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("strata.cfg").path
        try "global\n    \(line)\nlisten l\n    bind 127.0.0.1:1\n    server s 127.0.0.1:2\n".write(toFile: config, atomically: true, encoding: .utf8)
        let check = runTool(StrataProcess.binary, ["-c", "-f", config])
        #expect(check.status == 0, "\(check.stderr)")
    }

    /// `-c` checks what the engine checks at start (TLS ciphers, certificates, regexes): a file
    /// that `-f` refuses is never called valid.
    @Test func checkRefusesWhatAStartRefuses() throws {
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("strata.cfg").path
        let cert = TestTools.packageRoot.appendingPathComponent("fixtures/certs/site.pem").path
        try """
            frontend f
                mode http
                bind 127.0.0.1:1 ssl crt \(cert) ciphers NO-SUCH-CIPHER
                default_backend b
            backend b
                mode http
                server s 127.0.0.1:2
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let check = runTool(StrataProcess.binary, ["-c", "-f", config])
        #expect(check.status == 1)
        #expect(check.stderr.contains("strata.cfg:3: bind 127.0.0.1:1: unable to set SSL cipher list to 'NO-SUCH-CIPHER'"), "\(check.stderr)")
    }
}
