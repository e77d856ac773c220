import Foundation
import Glibc
import StrataTestSupport
import Synchronization
import Testing

/// The admin socket cannot be turned against the proxy: a client that does not read, many idle
/// clients, an escaped `;` and a `level user` socket each stay within what HAProxy allows.
@Suite(.serialized) struct AdminSocketTests {
    /// An HTTP frontend on `port` to `origin`, the unix admin socket at `level`, and a TCP admin
    /// socket (`ipv4@127.0.0.1:tcpAdmin`) with its own options.
    static func config(port: UInt16, origin: UInt16, level: String = "admin", tcpAdmin: UInt16, tcpOptions: String = "level user",
                       timeout: String = "30s") -> String {
        """
        global
            stats socket @ADMIN@ level \(level)
            stats socket ipv4@127.0.0.1:\(tcpAdmin) \(tcpOptions)
            stats timeout \(timeout)

        defaults
            mode http
            timeout connect 2s
            timeout client 30s
            timeout server 30s

        frontend web
            bind 127.0.0.1:\(port)
            default_backend b

        backend b
            server s1 127.0.0.1:\(origin)
        """
    }

    /// One command on the TCP admin socket; nil when no answer came within `seconds`.
    static func adminTCP(_ port: UInt16, _ command: String, seconds: Double = 10) -> String? {
        guard let fd = TestSocket.connect(port, timeout: seconds) else { return nil }
        defer { close(fd) }
        guard TestSocket.sendAll(fd, command + "\n") else { return nil }
        let answer = TestSocket.readToEnd(fd)
        return answer.isEmpty ? nil : String(decoding: answer, as: UTF8.self)
    }

    /// VmRSS of `pid` in kB.
    static func rss(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    static func served(_ port: UInt16) -> Bool {
        guard let client = TestHTTPClient(port: port, timeout: 5), let r = client.get("/during") else { return false }
        return r.status == 200
    }

    @Test func aClientThatNeverReadsIsBoundedAndClosedAtStatsTimeout() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, tcpAdmin: TestSocket.freePort(), timeout: "3s"))
        #expect(strata.waitForAdmin())
        #expect(Self.served(port))
        _ = try strata.admin("show stat")
        let baseline = Self.rss(strata.pid)

        // In interactive mode, command after command as fast as the socket takes them; the
        // answers are never read. The thread reports when strata closed the connection.
        let fd = try #require(TestSocket.connectUnix(strata.adminSocket))
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        let closedAfter = Guarded<Double?>(nil)
        let sent = Guarded(0)
        let done = Guarded(false)
        let start = Date()
        Thread {
            let flood = Array(("prompt\n" + String(repeating: "show stat\nshow info\nshow sess\n", count: 50)).utf8)
            var chunk = flood
            while Date().timeIntervalSince(start) < 8 {
                let n = chunk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n > 0 {
                    sent.withLock { $0 += n }
                    chunk = Array(flood.dropFirst(7))  // "prompt" once
                } else if n < 0 && errno == EAGAIN {
                    usleep(5_000)
                } else {
                    closedAfter.withLock { $0 = Date().timeIntervalSince(start) }
                    break
                }
            }
            done.withLock { $0 = true }
        }.start()

        // The HTTP frontend of the same process answers all along, and memory stays flat.
        var maxRSS = baseline
        var failures = 0
        while Date().timeIntervalSince(start) < 2.5 {
            if !Self.served(port) { failures += 1 }
            maxRSS = max(maxRSS, Self.rss(strata.pid))
            usleep(100_000)
        }
        #expect(failures == 0)
        #expect(maxRSS - baseline < 20_000, "RSS grew from \(baseline) kB to \(maxRSS) kB")
        // strata stopped reading: the client's sends block long before 8 s of flooding.
        #expect(sent.withLock { $0 } < 8 << 20)

        // No progress either way for `stats timeout` (3 s): closed, though the client still sends.
        #expect(eventually(seconds: 9) { done.withLock { $0 } })
        let closed = try #require(closedAfter.withLock { $0 })
        #expect(closed > 2.5 && closed < 6, "closed after \(closed) s")
        #expect(try strata.admin("show info").contains("Name: strata"))
    }

    @Test func idleConnectionsPastMaxconnWaitInTheBacklog() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort(), tcpAdmin = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, tcpAdmin: tcpAdmin))
        #expect(strata.waitForAdmin())
        #expect(Self.served(port))
        let baseline = strata.fds().count

        // 300 connections that never send: HAProxy serves 10 (its stats frontend's maxconn) and
        // leaves the others to the kernel.
        var idle: [Int32] = []
        defer { idle.forEach { close($0) } }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = tcpAdmin.bigEndian
        for _ in 0..<300 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            idle.append(fd)
        }
        usleep(500_000)
        let held = strata.fds().count - baseline
        #expect(held <= 10, "strata holds \(held) more fds")
        #expect(Self.served(port))
        // A socket at its limit does not answer, and is not spinning on accept either.
        #expect(Self.adminTCP(tcpAdmin, "show info", seconds: 1) == nil)

        idle.forEach { close($0) }
        idle.removeAll()
        #expect(eventually(seconds: 15) { Self.adminTCP(tcpAdmin, "show info", seconds: 2)?.contains("Name: strata") == true })
        #expect(try eventually { strata.fds().count <= baseline })
    }

    @Test func aSocketAtItsMaxconnAcceptsAgainWhenOneCloses() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort(), tcpAdmin = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, tcpAdmin: tcpAdmin,
                                                           tcpOptions: "level user maxconn 2"))
        #expect(strata.waitForAdmin())
        // Two interactive clients: each answered, so each was accepted.
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        for _ in 0..<2 {
            let fd = try #require(TestSocket.connect(tcpAdmin, timeout: 5))
            #expect(TestSocket.sendAll(fd, "prompt\n"))
            #expect(TestSocket.read(fd, count: 3) == Array("\n> ".utf8))
            held.append(fd)
        }
        // The third waits in the backlog ...
        let third = try #require(TestSocket.connect(tcpAdmin, timeout: 1))
        defer { close(third) }
        #expect(TestSocket.sendAll(third, "show info\n"))
        #expect(TestSocket.read(third, count: 1).isEmpty)
        // ... until one of the two leaves.
        #expect(TestSocket.sendAll(held[0], "quit\n"))
        TestSocket.setTimeout(third, seconds: 5)
        #expect(String(decoding: TestSocket.readToEnd(third), as: UTF8.self).hasPrefix("Name: strata\n"))
    }

    @Test func anEscapedSemicolonStaysInItsArgument() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, tcpAdmin: TestSocket.freePort()))
        #expect(strata.waitForAdmin())
        // HAProxy: one command whose address is "127.0.0.2;", which is no address.
        #expect(try strata.admin("set server b/s1 addr 127.0.0.2\\; reload") == "Invalid addr '127.0.0.2;' by 'stats socket command'")
        #expect(try strata.generations().map(\.id) == [1])
        #expect(try strata.admin("show info").contains("\nReloads: 0\n"))
        #expect(try strata.serversState()["s1"]?.fields[4] == "127.0.0.1")
        #expect(Self.served(port))
        // An unescaped one separates, and a backslash keeps a space inside a word.
        let both = try strata.admin("show generations;get weight b/s1")
        #expect(both.hasPrefix("# id state age_s sessions listeners hash\n1 active"))
        #expect(both.hasSuffix("\n\n1 (initial 1)"))
        #expect(try strata.admin("show servers state no\\ such") == "Can't find backend.")
    }

    @Test func levelsAreHAProxys() throws {
        let echo = try TestBackend(.nameThenEcho("e"))
        let port = TestSocket.freePort(), operatorPort = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level user
                stats socket ipv4@127.0.0.1:\(operatorPort) level operator

            defaults
                mode tcp
                timeout connect 2s
                timeout client 30s
                timeout server 30s

            listen app
                bind 127.0.0.1:\(port)
                server s1 127.0.0.1:\(echo.port)
            """)
        #expect(strata.waitForAdmin())
        let session = try #require(TestSocket.connect(port))
        defer { close(session) }
        #expect(TestSocket.readLine(session) == "e")

        // user: reading the process and the servers' state, nothing about clients or certificates.
        for command in ["show sess", "show ssl cert", "clear counters", "clear counters all", "reload",
                        "set server app/s1 state maint", "set server app/s1 bogus", "disable health app/s1"] {
            #expect(try strata.admin(command) == "Permission denied", "\(command)")
        }
        #expect(try strata.admin("show info").contains("Name: strata"))
        #expect(try strata.admin("get weight app/s1") == "1 (initial 1)")
        #expect(try strata.serversState()["s1"] != nil)
        // `show stat` leaves server addresses out below operator, as HAProxy does.
        let userStat = try strata.admin("show stat")
        #expect(userStat.contains("app,s1,") && !userStat.contains("127.0.0.1:\(echo.port)"))

        // operator: sessions and counters, no state change.
        let sessions = try #require(Self.adminTCP(operatorPort, "show sess"))
        #expect(sessions.contains("src=127.0.0.1:") && sessions.contains("fe=app"))
        #expect(Self.adminTCP(operatorPort, "clear counters") == "\n")
        #expect(Self.adminTCP(operatorPort, "clear counters all") == "Permission denied\n\n")
        #expect(Self.adminTCP(operatorPort, "set server app/s1 state maint") == "Permission denied\n\n")
        #expect(Self.adminTCP(operatorPort, "show stat")?.contains("127.0.0.1:\(echo.port)") == true)
        #expect(try strata.serversState()["s1"]?.admin == 0)
    }

    /// `help` lists the engine's commands and the daemon's `reload` and `reload plan`; an unknown
    /// command gets HAProxy's answer; `show info json` reads back with Python's json module
    /// whatever the `description` holds (the configuration's `\n` and `\x01` escapes included).
    @Test(.enabled(if: TestTools.available(TestTools.hasPython), "python3 is not installed"))
    func helpUnknownCommandsAndJSONComeFromTheCommandTable() throws {
        try TestTools.require(TestTools.hasPython, "python3")
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let config = Self.config(port: port, origin: origin.port, tcpAdmin: TestSocket.freePort())
            .replacingOccurrences(of: "global\n", with: "global\n    description \"two\\nlines \\\"quoted\\\" back\\\\slash \\x01\"\n")
        let strata = try StrataProcess(config: config)
        #expect(strata.waitForAdmin())

        let help = try strata.admin("help")
        #expect(help.hasPrefix("The following commands are valid at this level:\n  add map <map> <key> <val>               : add a map entry (payload supported instead of key/val)\n  add server <bk>/<srv>                   : create a new server\n  canary abort "))
        #expect(help.contains("\n  reload                                  : reload the configuration in place (admin level)\n"))
        #expect(help.hasSuffix("\n  quit                                    : disconnect"))
        #expect(try strata.admin("relaod") == """
            Unknown command, but maybe one of the following ones is a better match:
              reload                                  : reload the configuration in place (admin level)
              reload plan [json]                      : what a reload would change; changes nothing (admin level)
              help [<command>]                        : list matching or all commands
              prompt                                  : toggle interactive mode with prompt
              quit                                    : disconnect
            """)

        let (status, output) = try TestTools.python("""
            import json, sys
            fields = json.load(sys.stdin)
            print(json.dumps(next(f["value"]["value"] for f in fields if f["field"]["name"] == "description")))
            """, input: try strata.admin("show info json"))
        #expect(status == 0, "\(output)")
        #expect(output == #""two\nlines \"quoted\" back\\slash \u0001""# + "\n")
    }
}
