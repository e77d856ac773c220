import Foundation
import Glibc
import StrataTestSupport
import Testing

/// HAProxy's own tools and the admin commands they send, on strata's admin socket: hatop (Debian's
/// package) run under tmux shows the servers and disables one; `show info` has HAProxy 2.6's
/// fields in its order, which hatop's own parser reads; `set timeout cli`, `show version`,
/// `show env` and `show activity` answer as HAProxy's do.
@Suite(.serialized) struct HAProxyToolsTests {
    static let hatop: String? = ["/usr/bin/hatop", "/usr/local/bin/hatop"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let hasTmux = runTool("tmux", ["-V"]).status == 0

    static func config(port: UInt16, down: UInt16, other: UInt16) -> String {
        """
        global
            stats socket @ADMIN@ level admin
        defaults
            mode http
            timeout connect 2s
            timeout client 30s
            timeout server 30s
        frontend web
            bind 127.0.0.1:\(port)
            default_backend app
        backend app
            server s1 127.0.0.1:\(down) check inter 500
            server s2 127.0.0.1:\(other)
        """
    }

    static func start() throws -> StrataProcess {
        let strata = try StrataProcess(config: config(port: TestSocket.freePort(), down: TestSocket.freePort(),
                                                      other: TestSocket.freePort()))
        try #require(strata.waitForAdmin())
        return strata
    }

    /// hatop's main screen on strata's socket lists the proxies and servers; F10 on a server runs
    /// hatop's `disable server app/s1`, which `show stat` then reports as MAINT, and F9 enables it.
    @Test(.enabled(if: TestTools.available(HAProxyToolsTests.hatop != nil && HAProxyToolsTests.hasTmux),
                   "hatop or tmux is not installed (apt-get install hatop tmux)"))
    func hatopShowsServersAndDisablesOne() throws {
        try TestTools.require(Self.hatop != nil && Self.hasTmux, "hatop and tmux")
        let strata = try Self.start()
        defer { strata.stop() }
        let tmuxSocket = "strata-hatop-\(getpid())"
        let errors = strata.directory.appendingPathComponent("hatop.err").path
        func tmux(_ args: [String]) -> String { runTool("tmux", ["-L", tmuxSocket] + args, timeout: 10).stdout }
        var serverPID: Int32 = 0
        // The server and hatop end with the test, whatever happened (tmux's server outlived
        // `kill-server` here: it is killed by its pid too).
        defer {
            _ = tmux(["kill-server"])
            if serverPID > 0 { kill(serverPID, SIGKILL) }
            unlink("/tmp/tmux-\(getuid())/\(tmuxSocket)")
        }
        // A terminal large enough for hatop (at least 78x20); its errors go to a file: it exits at
        // once on a `show info` it cannot parse, and the window then says so. The tmux server
        // outlives the client that starts it and keeps every fd the client inherited, among them
        // the one Foundation watches to see its child exit: the client is started by Python with
        // every fd but 0-2 closed (`close_fds`), on /dev/null.
        let window = "\(Self.hatop!) -s \(strata.adminSocket) -i 1 2> \(errors); sleep 60"
        let spawn = "import subprocess, sys; subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)"
        runTool("python3", ["-c", spawn, "tmux", "-L", tmuxSocket, "new-session", "-d", "-x", "160", "-y", "40", window], timeout: 10)
        serverPID = Int32(tmux(["display-message", "-p", "#{pid}"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        func screen() -> String { tmux(["capture-pane", "-p"]) }
        let shown = eventually(seconds: 10) { screen().contains(">>> app") }
        let hatopErrors = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(shown, "hatop's screen:\n\(screen())\nhatop's errors: \(hatopErrors)")
        let text = screen()
        #expect(text.contains("strata Version: 0.1.0"))
        #expect(text.contains(">>> web"))
        for row in ["FRONTEND", "s1", "s2", "BACKEND"] {
            #expect(text.split(separator: "\n").contains { $0.hasPrefix(row + " ") }, "\(row) in:\n\(text)")
        }
        // The cursor starts on the first line (">>> web"): FRONTEND, a blank line, ">>> app", s1.
        _ = tmux(["send-keys", "Down", "Down", "Down", "Down"])
        #expect(eventually(seconds: 5) { screen().contains("[#2/#1]") }, "cursor on app/s1:\n\(screen())")
        _ = tmux(["send-keys", "F10"])
        let maint = eventually(seconds: 10) {
            (try? strata.admin("show stat"))?.contains("\napp,s1,") == true
                && ((try? strata.admin("show stat")) ?? "").split(separator: "\n").contains { $0.hasPrefix("app,s1,") && $0.split(separator: ",", omittingEmptySubsequences: false)[17] == "MAINT" }
        }
        #expect(maint, "show stat after F10:\n\((try? strata.admin("show stat")) ?? "")")
        #expect(eventually(seconds: 5) { screen().split(separator: "\n").contains { $0.hasPrefix("s1 ") && $0.contains("MAINT") } })
        _ = tmux(["send-keys", "F9"])
        #expect(eventually(seconds: 10) {
            ((try? strata.admin("show stat")) ?? "").split(separator: "\n").contains {
                $0.hasPrefix("app,s1,") && $0.split(separator: ",", omittingEmptySubsequences: false)[17] != "MAINT"
            }
        })
    }

    /// `show info`: HAProxy 2.6's fields by name, in its order (strata's own after them), and the
    /// typed form numbered as HAProxy numbers them; hatop's own parser (its `parse_info`) reads it.
    @Test func showInfoHasHAProxysFields() throws {
        let strata = try Self.start()
        defer { strata.stop() }
        let info = try strata.admin("show info")
        let names = info.split(separator: "\n").map { String($0.prefix { $0 != ":" }) }
        // HAProxy leaves out description without one, and the zlib fields when built without zlib
        // (Debian's uses libslz); so does strata (it has no zlib memory limit to report).
        let expected = HAProxyReference.showInfoFields.filter { !["description", "ZlibMemUsage", "MaxZlibMemUsage"].contains($0) }
        #expect(Array(names.prefix(expected.count)) == expected)
        #expect(names.dropFirst(expected.count).first == "CurrSessions")
        let typed = try strata.admin("show info typed").split(separator: "\n")
        for (i, name) in HAProxyReference.showInfoFields.enumerated() where expected.contains(name) {
            #expect(typed.contains { $0.hasPrefix("\(i).\(name).1:") }, "\(i).\(name)")
        }
        for line in ["Nbproc: 1", "Process_num: 1", "Maxpipes: 0", "Run_queue: 0", "Unstoppable Jobs: 0", "Tainted: 0"] {
            #expect(info.contains("\n" + line + "\n"), "\(line)")
        }
        #expect(info.contains("\nRelease_date: 20"))

        if let hatop = Self.hatop, TestTools.hasPython {
            let script = """
                import importlib.machinery, importlib.util, sys
                loader = importlib.machinery.SourceFileLoader("hatop", sys.argv[1])
                spec = importlib.util.spec_from_loader("hatop", loader)
                hatop = importlib.util.module_from_spec(spec)
                loader.exec_module(hatop)
                info = hatop.parse_info(sys.stdin.read().splitlines())
                print(info["software_name"], info["software_release"], info["maxpipes"], info["tasks"], info["runqueue"])
                """
            let (status, output) = try TestTools.python(script, input: info + "\n", arguments: [hatop])
            #expect(status == 0, "\(output)")
            #expect(output.hasPrefix("strata 20"), "\(output)")
        }
    }

    /// `set timeout cli` changes the connection's idle timeout (hatop sends it first); HAProxy's
    /// answers to a bad one. `show version`, `show env`, `show activity`.
    @Test func processCommands() throws {
        let strata = try Self.start()
        defer { strata.stop() }
        #expect(try strata.admin("set timeout cli 5") == "")
        #expect(try strata.admin("set timeout foo 5") == "'set timeout' only supports 'cli'.")
        #expect(try strata.admin("set timeout cli abc") == "Invalid timeout value.")
        #expect(try strata.admin("set timeout cli 0") == "Invalid timeout value.")
        #expect(try strata.admin("show version") == "0.1.0")
        #expect(try strata.admin("show env PATH").hasPrefix("PATH=/"))
        #expect(try strata.admin("show env STRATA_NO_SUCH_VARIABLE") == "Variable not found")
        let activity = try strata.admin("show activity").split(separator: "\n")
        #expect(activity.first?.hasPrefix("thread_id: ") == true)
        #expect(activity.contains { $0.hasPrefix("accepted: ") })

        // In prompt mode, a connection idle past `set timeout cli 1` is closed (the default,
        // `stats timeout`, is 10 s).
        let fd = try #require(TestSocket.connectUnix(strata.adminSocket))
        defer { close(fd) }
        #expect(TestSocket.sendAll(fd, "prompt\nset timeout cli 1\n"))
        TestSocket.setTimeout(fd, seconds: 5)
        let started = Date()
        let answered = TestSocket.readToEnd(fd)
        #expect(String(decoding: answered, as: UTF8.self).contains("> "))
        #expect(Date().timeIntervalSince(started) < 4, "closed after \(Date().timeIntervalSince(started)) s")
    }

    /// `show errors` after a refused request: HAProxy's report with the bytes received and the
    /// position the HTTP parser stopped at; `show errors PROXY request`, an unknown proxy.
    @Test func showErrorsCapturesTheLastInvalidRequest() throws {
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, down: TestSocket.freePort(), other: TestSocket.freePort()))
        defer { strata.stop() }
        try #require(strata.waitForAdmin())
        #expect(try strata.admin("show errors").hasPrefix("Total events captured on ["))
        #expect(try strata.admin("show errors").hasSuffix(": 0"))
        let fd = try #require(TestSocket.connect(port))
        defer { close(fd) }
        // A space inside the target: the request line is invalid at byte 7 (HAProxy 2.6 reports 7 too).
        #expect(TestSocket.sendAll(fd, "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"))
        TestSocket.setTimeout(fd, seconds: 5)
        #expect(String(decoding: TestSocket.readToEnd(fd), as: UTF8.self).hasPrefix("HTTP/1.1 400"))
        let report = try strata.admin("show errors")
        let lines = report.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first?.hasSuffix("] : 1") == true, "\(report)")
        #expect(lines.contains { $0.hasSuffix("] frontend web (#1): invalid request") }, "\(report)")
        #expect(lines.contains { $0.hasPrefix("  backend <NONE> (#-1), server <NONE> (#-1), event #0, src 127.0.0.1:") })
        #expect(lines.contains("  len 30, wraps at 16384, error at position 7"), "\(report)")
        #expect(lines.contains("  00000  GET /a b HTTP/1.1\\r\\n"), "\(report)")
        #expect(lines.contains("  00019  Host: x\\r\\n"))
        // The same capture (the header line carries the time of the command).
        #expect(try strata.admin("show errors web request").split(separator: "\n").dropFirst() == report.split(separator: "\n").dropFirst())
        #expect(try strata.admin("show errors web response").hasSuffix(": 1"))
        #expect(try strata.admin("show errors nosuch") == "No such proxy.")
        #expect(try strata.admin("show sess all") == "")
        // `show servers conn`, `show stat domain`.
        let conns = try strata.admin("show servers conn").split(separator: "\n")
        #expect(conns.first?.hasPrefix("# bkname/svname bkid/svid addr port - purge_delay used_cur used_max need_est unsafe_nb safe_nb idle_lim idle_cur idle_per_thr[") == true)
        #expect(conns.dropFirst().map { String($0.prefix { $0 != " " }) } == ["app/s1", "app/s2"])
        #expect(try strata.admin("show servers conn nosuch") == "Can't find backend.")
        let plain = try strata.admin("show stat").split(separator: "\n").map { $0.split(separator: ",").prefix(2) }
        #expect(try strata.admin("show stat domain proxy").split(separator: "\n").map { $0.split(separator: ",").prefix(2) } == plain)
        #expect(try strata.admin("show stat domain dns") == "Invalid statistics domain.")
        #expect(try strata.admin("show sess 0x1") == "")
    }
}
