import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `server-state-file` with `load-server-state-from-file global`: strata's `show servers state`
/// is a file HAProxy reads (and applies), and a new strata process starts from it.
@Suite(.serialized) struct HealthStateFileTests {

    static func config(port: UInt16, state: String, _ s: [HealthOrigin]) -> String {
        """
        global
            stats socket @ADMIN@ level admin
            server-state-file \(state)
        defaults
            mode http
            timeout connect 1s
            timeout check 5s
            timeout client 10s
            timeout server 10s
            load-server-state-from-file global
        frontend fe
            bind 127.0.0.1:\(port)
            default_backend be
        backend be
            option httpchk GET /health
            http-check expect status 200
            default-server check inter 100ms rise 2 fall 2
            server s1 127.0.0.1:\(s[0].port)
            server s2 127.0.0.1:\(s[1].port) weight 20
            server s3 127.0.0.1:\(s[2].port)
        """
    }

    static func rows(_ text: String) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: " ").map(String.init)
            if f.count >= 20 { out[f[3]] = f }
        }
        return out
    }

    @Test func stateFileRoundTripsThroughHAProxyAndANewProcess() throws {
        let s = try [HealthOrigin("s1"), HealthOrigin("s2"), HealthOrigin("s3")]
        s[2].healthy = false
        let dir = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let statePath = dir.appendingPathComponent("servers.state").path
        let port = TestSocket.freePort()
        let config = Self.config(port: port, state: statePath, s)

        // The first process: no file yet (a notice, as HAProxy's), then state set at runtime.
        let first = try StrataProcess(config: config)
        #expect(first.waitForAdmin())
        #expect(first.waitForOutput("config: Can't open global server state file '\(statePath)': No such file or directory"))
        // DOWN, and its health counter run down to 0 (it goes on falling after the transition):
        // the state then stays as dumped while the checks go on failing.
        #expect(try eventually { try first.serversState()["s3"].map { $0.operational == 0 && $0.fields[12] == "0" } == true })
        #expect(try first.admin("set server be/s1 state maint") == "")
        #expect(try first.admin("set server be/s2 weight 10") == "")
        #expect(try first.admin("disable health be/s2") == "")
        // The operator's `show servers state > file`.
        let dump = try first.admin("show servers state") + "\n"
        try dump.write(toFile: statePath, atomically: true, encoding: .utf8)
        let saved = Self.rows(dump)
        #expect(saved["s1"]?[6] == "1" && saved["s2"]?[7] == "10" && saved["s2"]?[13] == "2" && saved["s3"]?[5] == "0")
        first.signal(SIGTERM)
        #expect(first.waitForExit() != nil)

        // `strata -c` reads it as `haproxy -c` does: nothing to say about it.
        let strataConfig = dir.appendingPathComponent("strata.cfg").path
        try (config.replacingOccurrences(of: "@ADMIN@", with: dir.appendingPathComponent("check.sock").path) + "\n")
            .write(toFile: strataConfig, atomically: true, encoding: .utf8)
        let strataCheck = runTool(StrataProcess.binary, ["-c", "-f", strataConfig])
        #expect(strataCheck.status == 0 && !strataCheck.stderr.contains("["), "strata -c: \(strataCheck.stderr)")
        try "1\n# nothing\nbroken line\n".write(toFile: statePath + ".bad", atomically: true, encoding: .utf8)
        try (config.replacingOccurrences(of: "@ADMIN@", with: dir.appendingPathComponent("check.sock").path)
            .replacingOccurrences(of: statePath, with: statePath + ".bad") + "\n").write(toFile: strataConfig, atomically: true, encoding: .utf8)
        let badCheck = runTool(StrataProcess.binary, ["-c", "-f", strataConfig])
        #expect(badCheck.status == 0 && badCheck.stderr.contains("[WARNING] config: corrupted global server state file '\(statePath).bad' at line 2."), "\(badCheck.stderr)")

        // HAProxy reads it: no complaint about the file, and it applies it (s3 DOWN at start).
        if TestTools.haproxy != nil || TestTools.inCI {
            try TestTools.require(TestTools.haproxy != nil, "haproxy")
            let haproxy = try #require(TestTools.haproxy)
            let configPath = dir.appendingPathComponent("haproxy.cfg").path
            let adminPath = dir.appendingPathComponent("haproxy.sock").path
            try (config.replacingOccurrences(of: "@ADMIN@", with: adminPath) + "\n").write(toFile: configPath, atomically: true, encoding: .utf8)
            let check = runTool(haproxy, ["-c", "-f", configPath])
            #expect(check.status == 0, "\(check.stderr)")
            for bad in ["corrupted", "Can't get version", "application failed", "invalid", "mismatch", "can't find", "Can't open"] {
                #expect(!check.stderr.contains(bad), "haproxy -c: \(check.stderr)")
            }
            #expect(check.stderr.contains("Server be/s3 is DOWN, changed from server-state after a reload"), "\(check.stderr)")
            // And a running HAProxy shows the state it took from strata's file.
            let ha = Process()
            ha.executableURL = URL(fileURLWithPath: haproxy)
            ha.arguments = ["-db", "-f", configPath]
            ha.standardOutput = FileHandle.nullDevice
            ha.standardError = FileHandle.nullDevice
            try ha.run()
            defer { if ha.isRunning { kill(ha.processIdentifier, SIGKILL) }; ha.waitUntilExit() }
            #expect(try eventually { TestSocket.command("show servers state be", unixSocket: adminPath) != nil })
            let theirs = Self.rows(TestSocket.command("show servers state be", unixSocket: adminPath) ?? "")
            #expect(theirs["s1"]?[6] == "1", "HAProxy's s1: \(theirs["s1"] ?? [])")
            #expect(theirs["s2"]?[7] == "10" && theirs["s2"]?[8] == "20", "HAProxy's s2: \(theirs["s2"] ?? [])")
            #expect(theirs["s2"].map { (Int($0[13]) ?? 0) & 0x04 == 0 } == true, "HAProxy's s2 checks: \(theirs["s2"] ?? [])")
            #expect(theirs["s3"]?[5] == "0", "HAProxy's s3: \(theirs["s3"] ?? [])")
            kill(ha.processIdentifier, SIGTERM)
            ha.waitUntilExit()
        }

        // A new strata process starts from the file: before any check or request, s1 is in
        // maintenance, s2 keeps its weight and its checks off, s3 is DOWN.
        let before = (s[0].requests, s[2].requests)
        let second = try StrataProcess(config: config)
        #expect(second.waitForAdmin())
        let rows = try second.serversState()
        #expect(rows["s1"]?.admin == 1)
        #expect(rows["s2"]?.weight == 10 && rows["s2"]?.fields[13] == "2")
        #expect(rows["s3"]?.operational == 0)
        #expect(second.waitForOutput("Server be/s3 is DOWN, changed from server-state after a reload"))
        for _ in 0..<6 { #expect(HealthCheckTests.request(port) == "s2") }
        #expect(s[0].requests == before.0 && s[2].requests == before.1)
        // What it dumps is what it read (but the time since the last change).
        let again = Self.rows(try second.admin("show servers state"))
        for name in ["s1", "s2", "s3"] {
            var a = again[name] ?? [], b = saved[name] ?? []
            if a.count > 9 && b.count > 9 { a[9] = "-"; b[9] = "-" }
            #expect(a == b, "\(name): \(a) after \(b)")
        }
    }
}
