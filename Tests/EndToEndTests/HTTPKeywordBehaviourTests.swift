import Foundation
import Glibc
import StrataTestSupport
import Testing

/// Keywords real configurations carry, each end to end with the real binary: `http-request
/// reject`, `option http-ignore-probes`, `option httpslog`, `log-tag` and `monitor fail`.
@Suite(.serialized) struct HTTPKeywordBehaviourTests {
    static func config(port: UInt16, origin: UInt16, global: String = "", frontend: String = "",
                       log: String = "log stdout format raw local0") -> String {
        """
        global
            stats socket @ADMIN@ level admin
            \(log)
        \(global)
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
            log global
        frontend web
            bind 127.0.0.1:\(port)
        \(frontend)
            default_backend b
        backend b
            server s 127.0.0.1:\(origin)
        """
    }

    /// A column of `show stat` for a proxy's FRONTEND or BACKEND row.
    static func stat(_ strata: StrataProcess, _ proxy: String, _ row: String, _ column: String) throws -> String? {
        let lines = try strata.admin("show stat").split(separator: "\n").map(String.init)
        guard let header = lines.first?.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false),
              let index = header.firstIndex(of: Substring(column)) else { return nil }
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            if fields.count > index, fields[0] == proxy, fields[1] == row { return String(fields[index]) }
        }
        return nil
    }

    /// Reads until the peer closes; nil on a timeout.
    static func readToEnd(_ fd: Int32) -> [UInt8]? {
        TestSocket.setTimeout(fd, seconds: 5)
        var all: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return all }
            if n < 0 { return errno == ECONNRESET ? all : nil }
            all += buf[0..<n]
        }
    }

    @Test func rejectClosesWithNothingSentAndCountsADeniedRequest() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, frontend: """
                log-format "reject-test %ST %ts %HP"
                http-request reject if { path /reject }
            """))
        #expect(strata.waitForAdmin())
        let fd = try #require(TestSocket.connect(port, timeout: 5))
        defer { close(fd) }
        #expect(TestSocket.sendAll(fd, "GET /reject HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(Self.readToEnd(fd) == [])
        #expect(try Self.stat(strata, "web", "FRONTEND", "dreq") == "1")
        #expect(origin.heads.isEmpty)
        #expect(strata.waitForOutput("reject-test -1 PR /reject"))
        // Other requests go on.
        #expect(try #require(TestHTTPClient(port: port)?.get("/fine")).status == 200)
        #expect(try Self.stat(strata, "web", "FRONTEND", "dreq") == "1")
    }

    @Test func ignoreProbesLogsAndCountsNothingForAnEmptyConnection() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, frontend: """
                option http-ignore-probes
                log-format "probe-test %ST %HP"
            """))
        #expect(strata.waitForAdmin())
        #expect(strata.waitForOutput("'option http-ignore-probes' changes nothing"))
        for _ in 0..<3 {
            let fd = try #require(TestSocket.connect(port, timeout: 5))
            close(fd)
        }
        #expect(try #require(TestHTTPClient(port: port)?.get("/after")).status == 200)
        #expect(strata.waitForOutput("probe-test 200 /after"))
        usleep(200_000)
        #expect(strata.output.filter { $0.hasPrefix("probe-test") } == ["probe-test 200 /after"])
        #expect(try Self.stat(strata, "web", "FRONTEND", "ereq") == "0")
    }

    /// HAProxy's HTTPS format: the httplog line, then the connection's error codes, resumption,
    /// SNI, TLS version and cipher; on a plain connection the TLS fields have no value.
    @Test func httpslogLineShape() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let tls = TestSocket.freePort()
        let pki = TLSTestPKI.shared
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, frontend: """
                bind 127.0.0.1:\(tls) ssl crt \(pki.path("a.pem"))
                option httpslog
            """))
        #expect(strata.waitForAdmin())
        #expect(try #require(TestHTTPClient(port: port)?.get("/plain")).status == 200)
        let curl = runTool("curl", ["-sk", "--resolve", "a.test:\(tls):127.0.0.1", "https://a.test:\(tls)/secure"])
        #expect(curl.stdout.contains("origin=o"), "\(curl.stderr)")
        #expect(strata.waitForOutput("/secure HTTP/1.1\""))
        let plain = try #require(strata.output.first { $0.contains("\"GET /plain HTTP/1.1\"") })
        #expect(plain.wholeMatch(of: /127\.0\.0\.1:\d+ \[[^\]]+\] web b\/s \d+\/\d+\/\d+\/\d+\/\d+ 200 \d+ - - ---- \d+\/\d+\/\d+\/\d+\/0 0\/0 "GET \/plain HTTP\/1\.1" 0\/-\/-\/-\/0 -\/-\/-/) != nil, "\(plain)")
        let secure = try #require(strata.output.first { $0.contains("\"GET /secure HTTP/1.1\"") })
        #expect(secure.wholeMatch(of: /127\.0\.0\.1:\d+ \[[^\]]+\] web~ b\/s \d+\/\d+\/\d+\/\d+\/\d+ 200 \d+ - - ---- \d+\/\d+\/\d+\/\d+\/0 0\/0 "GET \/secure HTTP\/1\.1" 0\/0000000000000000\/0\/0\/0 a\.test\/TLSv1\.3\/TLS_[A-Z0-9_]+/) != nil, "\(secure)")
    }

    /// `log-tag` in `global` names every line; a proxy's own wins for its lines.
    @Test func logTagNamesTheSyslogLines() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let dir = StrataProcess.makeDirectory()
        let path = dir.appendingPathComponent("syslog").path
        let syslog = try #require(TestSocket.bindUnix(path, type: Int32(SOCK_DGRAM.rawValue)))
        defer { close(syslog) }
        TestSocket.setTimeout(syslog, seconds: 10)
        func next() -> String {
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { recv(syslog, $0.baseAddress, $0.count, 0) }
            return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : ""
        }
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, global: "    log-tag edge-lb",
                                                           frontend: "    log-format \"tagged %HP\"\n    log-tag web-fe",
                                                           log: "log \(path) local0"))
        #expect(strata.waitForAdmin())
        // The process's own line (the generation going active) carries the global tag.
        var line = next()
        while !line.isEmpty && !line.contains("generation") { line = next() }
        #expect(line.wholeMatch(of: /<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d edge-lb\[\d+\]: .*generation.*/) != nil, "\(line)")
        #expect(try #require(TestHTTPClient(port: port)?.get("/tagged")).status == 200)
        line = next()
        while !line.isEmpty && !line.contains("tagged") { line = next() }
        #expect(line.wholeMatch(of: /<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d web-fe\[\d+\]: tagged \/tagged/) != nil, "\(line)")
    }

    @Test func monitorFailAnswers503WhileItsConditionHolds() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, frontend: """
                monitor-uri /health
                acl draining hdr(x-drain) yes
                monitor fail if draining || { path_end /down }
            """))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        #expect(try #require(client.get("/health")).status == 200)
        #expect(try #require(client.get("/health", headers: ["X-Drain: yes"])).status == 503)
        #expect(try #require(client.get("/health")).status == 200)
        // Only the monitor URI is the monitor's: other paths go to the server.
        #expect(try #require(client.get("/x/down")).status == 200)
        #expect(origin.heads.count == 1)
    }

    /// The common normalizers in a row, as configurations chain them, and `strict` refusing a
    /// broken `%` sequence with 400.
    @Test func normalizeURIRewritesTheTargetTheServerSees() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, frontend: """
                http-request normalize-uri path-merge-slashes
                http-request normalize-uri path-strip-dot
                http-request normalize-uri path-strip-dotdot full
                http-request normalize-uri percent-decode-unreserved strict
                http-request normalize-uri percent-to-uppercase
                http-request normalize-uri query-sort-by-name
            """))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        let answer = try #require(client.get("//a/./b/../../../c//%7euser%2fx?z=1&a=2&m=3&a=1"))
        #expect(answer.status == 200)
        #expect(answer.body.contains("line=GET /c/~user%2Fx?a=2&a=1&m=3&z=1 HTTP/1.1\n"), "\(answer.body)")
        let refused = try #require(TestHTTPClient(port: port)?.get("/bad%zz"))
        #expect(refused.status == 400)
        #expect(origin.heads.count == 1)
    }

    /// `wait-for-body`: no server until `at-least` bytes of the body are in, or the time has
    /// passed (then the request goes on, no 408).
    @Test func waitForBodyHoldsTheServerBackUntilEnoughBodyOrItsTime() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, frontend: """
                http-request wait-for-body time 600ms at-least 10
            """))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        client.send("POST /enough HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n12345")
        usleep(300_000)
        #expect(origin.heads.isEmpty)
        client.send("67890")
        #expect(eventually(seconds: 0.25) { origin.heads.count == 1 })
        client.send("abcdefghij")
        let enough = try #require(client.reader.readResponse())
        #expect(enough.status == 200)
        #expect(enough.body.contains("body=20\n"))

        let started = Date()
        client.send("POST /late HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n12")
        #expect(eventually(seconds: 2) { origin.heads.count == 2 })
        let waited = Date().timeIntervalSince(started)
        #expect(waited > 0.5 && waited < 1.5, "\(waited)")
        client.send("345678901234567890")
        let late = try #require(client.reader.readResponse())
        #expect(late.status == 200)
        #expect(late.body.contains("body=20\n"))
    }
}
