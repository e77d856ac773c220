import Foundation
import Glibc
import StrataTestSupport
import Testing

/// Session log lines of the real binary (`log stdout format raw` and `rfc5424`): `option httplog`
/// and `option tcplog` field by field, each field's form checked by a regular expression and,
/// with HAProxy 2.6 installed (CI), compared with HAProxy's own line for the same exchange on the
/// same configuration; `option logasap` (one early line, nothing at the end); `log-format-sd`
/// where RFC 5424 puts it; `%gen` across a reload.
@Suite(.serialized) struct ObservabilityLogTests {
    struct Ports {
        var web = TestSocket.freePort()
        var tin = TestSocket.freePort()
        var tasap = TestSocket.freePort()
        var hasap = TestSocket.freePort()
        var sd = TestSocket.freePort()
        var gen = TestSocket.freePort()
    }

    /// The same configuration for strata and HAProxy (HAProxy has no `%gen`: the `gen` frontend
    /// is strata's only).
    static func config(_ p: Ports, origin: UInt16, tcp: UInt16, echo: UInt16, held: UInt16, strata: Bool) -> String {
        """
        global
            \(strata ? "stats socket @ADMIN@ level admin" : "stats socket @SOCKET@ level admin")
            log stdout format raw local0
        defaults
            log global
            timeout connect 2s
            timeout client 30s
            timeout server 30s
        frontend web
            mode http
            option httplog
            bind 127.0.0.1:\(p.web)
            default_backend main
        backend main
            mode http
            server m 127.0.0.1:\(origin)
        frontend tin
            mode tcp
            option tcplog
            bind 127.0.0.1:\(p.tin)
            default_backend tout
        backend tout
            mode tcp
            server t1 127.0.0.1:\(tcp)
        listen tasap
            mode tcp
            option tcplog
            option logasap
            bind 127.0.0.1:\(p.tasap)
            server e 127.0.0.1:\(echo)
        listen hasap
            mode http
            option httplog
            option logasap
            bind 127.0.0.1:\(p.hasap)
            server h 127.0.0.1:\(held)
        frontend sd
            mode http
            no log
            log stdout format rfc5424 local0
            option httplog
            log-format-sd "[strata@32473 fe=\\"%f\\" client=\\"%ci\\"]"
            bind 127.0.0.1:\(p.sd)
            default_backend main
        \(strata ? """
        frontend gen
            mode http
            log-format "gen=%gen %ci %ST %{+Q}r"
            bind 127.0.0.1:\(p.gen)
            default_backend main
        """ : "")
        """
    }

    // HAProxy's formats (doc/configuration.txt 8.2.3 and 8.2.2), one group per field.
    static let date = #"\[(\d{2}/(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/\d{4}:\d{2}:\d{2}:\d{2}\.\d{3})\]"#
    /// `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r`
    static let httplog = #"^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5}) "# + date
        + #" ([\w.-]+~?) ([\w.-]+)/([\w.<>-]+) (-1|\d+)/(-1|\d+)/(-1|\d+)/(-1|\d+)/(\+?\d+) (-1|\d{3}) (\+?\d+) (-|\S+) (-|\S+) ([A-Za-z-]{4}) (\d+)/(\d+)/(\d+)/(\d+)/(\+?\d+) (\d+)/(\d+) "([^"]*)"$"#
    /// `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`
    static let tcplog = #"^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5}) "# + date
        + #" ([\w.-]+~?) ([\w.-]+)/([\w.<>-]+) (-1|\d+)/(-1|\d+)/(\+?\d+) (\+?\d+) ([A-Za-z-]{2}) (\d+)/(\d+)/(\d+)/(\d+)/(\+?\d+) (\d+)/(\d+)$"#

    /// The regular expression's groups in `line`, or nil when it does not match.
    static func groups(_ pattern: String, _ line: String) -> [String]? {
        let regex = try! NSRegularExpression(pattern: pattern)
        let range = NSRange(line.startIndex..., in: line)
        guard let m = regex.firstMatch(in: line, range: range) else { return nil }
        return (1..<m.numberOfRanges).map { i in
            Range(m.range(at: i), in: line).map { String(line[$0]) } ?? ""
        }
    }

    /// The first line of `lines` that contains `marker`, waiting for it.
    static func line(_ lines: () -> [String], containing marker: String, seconds: Double = 10) -> String? {
        var found: String?
        _ = eventually(seconds: seconds) {
            found = lines().first { $0.contains(marker) }
            return found != nil
        }
        return found
    }

    /// The local port of a connected socket (the `%cp` the proxy logs).
    static func localPort(_ fd: Int32) -> Int {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// What a client does on each proxy, the same for strata and HAProxy: one HTTP request on
    /// `web`, a TCP exchange on `tin`; returns what the client saw (`%cp`, `%B`).
    struct Exchange {
        var httpPort = 0, httpBytes = 0, tcpPort = 0, tcpBytes = 0
    }

    static func exchange(_ p: Ports) throws -> Exchange {
        var e = Exchange()
        let client = try #require(TestHTTPClient(port: p.web))
        e.httpPort = localPort(client.fd)
        let answer = try #require(client.get("/x?y=1"))
        #expect(answer.status == 200)
        e.httpBytes = answer.head.utf8.count + answer.body.utf8.count
        let fd = try #require(TestSocket.connect(p.tin))
        e.tcpPort = localPort(fd)
        let data = TestSocket.readToEnd(fd)
        e.tcpBytes = data.count
        close(fd)
        return e
    }

    /// A field's shape: every run of digits becomes `9` (`127.0.0.1:35280` → `9.9.9.9:9`), so
    /// two log lines of the same format compare field by field whatever their figures.
    static func shape(_ field: Substring) -> String {
        var out = ""
        var inDigits = false
        for c in field {
            if c.isASCII && c.isNumber {
                if !inDigits { out.append("9") }
                inDigits = true
            } else {
                out.append(c)
                inDigits = false
            }
        }
        return out
    }

    /// The two lines compare field by field: the same number of fields, each of the same shape
    /// (digits aside), `skip` excepted.
    static func expectSameShape(_ strata: String, _ haproxy: String, skip: Set<Int> = [], sourceLocation: SourceLocation = #_sourceLocation) {
        let a = strata.split(separator: " ", omittingEmptySubsequences: false)
        let b = haproxy.split(separator: " ", omittingEmptySubsequences: false)
        #expect(a.count == b.count, "strata: \(strata)\nhaproxy: \(haproxy)", sourceLocation: sourceLocation)
        for (i, (x, y)) in zip(a, b).enumerated() where !skip.contains(i) {
            #expect(Self.shape(x) == Self.shape(y),
                    "field \(i): strata '\(x)' haproxy '\(y)'\nstrata: \(strata)\nhaproxy: \(haproxy)", sourceLocation: sourceLocation)
        }
    }

    struct Backends {
        let origin: TestHTTPOrigin
        let tcp: TestBackend
        let echo: TestBackend
        let held: HeldOrigin
        init() throws {
            origin = try TestHTTPOrigin("main")
            tcp = try TestBackend(.name("t"))
            echo = try TestBackend(.nameThenEcho("e"))
            held = try HeldOrigin(headFirst: true)
        }
        func config(_ p: Ports, strata: Bool) -> String {
            ObservabilityLogTests.config(p, origin: origin.port, tcp: tcp.port, echo: echo.port, held: held.port, strata: strata)
        }
    }

    @Test func httplogAndTcplogMatchHAProxysFormatsFieldByField() throws {
        let backends = try Backends()
        let p = Ports()
        let strata = try StrataProcess(config: backends.config(p, strata: true))
        #expect(strata.waitForAdmin())
        let seen = try Self.exchange(p)

        // httplog: each field's form, then its value where the test knows it.
        let http = try #require(Self.line({ strata.output }, containing: " web main/m "))
        let h = try #require(Self.groups(Self.httplog, http), "not httplog: \(http)")
        #expect(h[0] == "127.0.0.1")
        #expect(h[1] == String(seen.httpPort))
        #expect(h[3] == "web" && h[4] == "main" && h[5] == "m")
        #expect(h[11] == "200")
        #expect(h[12] == String(seen.httpBytes))
        #expect(h[13] == "-" && h[14] == "-")
        #expect(h[15] == "----")
        #expect(h[23] == "GET /x?y=1 HTTP/1.1")
        #expect([h[6], h[7], h[8], h[9]].allSatisfy { Int($0)! >= 0 })
        #expect(Int(h[10])! >= Int(h[9])!)  // Ta covers Tr
        // The request date is now (give or take the machine).
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "dd/MMM/yyyy:HH:mm:ss.SSS"
        let when = try #require(formatter.date(from: h[2]))
        #expect(abs(when.timeIntervalSinceNow) < 60)

        // tcplog.
        let tcp = try #require(Self.line({ strata.output }, containing: " tin tout/t1 "))
        let t = try #require(Self.groups(Self.tcplog, tcp), "not tcplog: \(tcp)")
        #expect(t[0] == "127.0.0.1" && t[1] == String(seen.tcpPort))
        #expect(t[3] == "tin" && t[4] == "tout" && t[5] == "t1")
        #expect(t[9] == String(seen.tcpBytes))
        #expect(t[10] == "--")
        #expect(Int(t[6])! >= 0 && Int(t[7])! >= 0 && Int(t[8])! >= Int(t[7])!)

        // HAProxy's lines for the same exchanges on the same configuration.
        if TestTools.haproxy != nil || TestTools.inCI {
            try TestTools.require(TestTools.haproxy != nil, "haproxy")
            let hp = Ports()
            let haproxy = try HAProxyProcess(config: backends.config(hp, strata: false))
            defer { haproxy.stop() }
            try haproxy.waitUntilReady()
            _ = try Self.exchange(hp)
            let theirs = try #require(Self.line({ haproxy.output }, containing: " web main/m "), "\(haproxy.output)")
            #expect(Self.groups(Self.httplog, theirs) != nil, "the regular expression does not read HAProxy's httplog: \(theirs)")
            Self.expectSameShape(http, theirs)
            let theirsTCP = try #require(Self.line({ haproxy.output }, containing: " tin tout/t1 "))
            #expect(Self.groups(Self.tcplog, theirsTCP) != nil, "the regular expression does not read HAProxy's tcplog: \(theirsTCP)")
            Self.expectSameShape(tcp, theirsTCP)
        }
    }

    /// `option logasap`, TCP: one line when the server connection is established (`+` on `%Tt`
    /// and `%B`), none when it ends. HTTP: one line when the response head has gone to the client.
    @Test func logasapLogsOnceEarly() throws {
        let backends = try Backends()
        let p = Ports()
        let strata = try StrataProcess(config: backends.config(p, strata: true))
        #expect(strata.waitForAdmin())
        let compare = TestTools.haproxy != nil || TestTools.inCI
        if compare { try TestTools.require(TestTools.haproxy != nil, "haproxy") }
        let hp = Ports()
        let haproxy = compare ? try HAProxyProcess(config: backends.config(hp, strata: false)) : nil
        defer { haproxy?.stop() }
        try haproxy?.waitUntilReady()

        func tcpSession(_ port: UInt16, _ output: @escaping () -> [String]) throws -> String? {
            let fd = try #require(TestSocket.connect(port))
            defer { close(fd) }
            #expect(TestSocket.readLine(fd) == "e")
            // Logged while the session is still open.
            let early = Self.line(output, containing: " tasap tasap/e ")
            #expect(TestSocket.sendAll(fd, "ping\n"))
            #expect(TestSocket.readLine(fd) == "ping")
            return early
        }
        let early = try #require(try tcpSession(p.tasap) { strata.output })
        let t = try #require(Self.groups(Self.tcplog, early), "not tcplog: \(early)")
        #expect(t[8].hasPrefix("+") && t[9].hasPrefix("+"), "\(early)")
        #expect(t[10] == "--")
        // Closed: nothing more (the session ended: the generation holds none).
        #expect(try eventually { try strata.generations().first?.sessions == 0 })
        usleep(200_000)
        #expect(strata.output.filter { $0.contains(" tasap tasap/e ") }.count == 1)

        // HTTP: the head arrives, the body waits: the line is there before the body.
        let client = try #require(TestHTTPClient(port: p.hasap))
        client.send("GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        let head = try #require(client.readHead())
        #expect(head.hasPrefix("HTTP/1.1 200"))
        let httpEarly = try #require(Self.line({ strata.output }, containing: " hasap hasap/h "))
        let h = try #require(Self.groups(Self.httplog, httpEarly), "not httplog: \(httpEarly)")
        #expect(h[10].hasPrefix("+") && h[12].hasPrefix("+"), "\(httpEarly)")
        #expect(h[11] == "200")
        #expect(h[12] == "+\(head.utf8.count)")

        if let haproxy {
            let theirs = try #require(try tcpSession(hp.tasap) { haproxy.output }, "\(haproxy.output)")
            Self.expectSameShape(early, theirs)
            let other = try #require(TestHTTPClient(port: hp.hasap))
            other.send("GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(other.readHead() != nil)
            let theirsHTTP = try #require(Self.line({ haproxy.output }, containing: " hasap hasap/h "), "\(haproxy.output)")
            Self.expectSameShape(httpEarly, theirsHTTP)
            backends.held.release()
            #expect(other.read(count: 5).map { String(decoding: $0, as: UTF8.self) } == "held\n")
        }
        backends.held.release()
        #expect(client.read(count: 5).map { String(decoding: $0, as: UTF8.self) } == "held\n")
        // The response ended: no second line.
        #expect(try eventually { try strata.generations().first?.sessions == 0 })
        usleep(200_000)
        #expect(strata.output.filter { $0.contains(" hasap hasap/h ") }.count == 1)
    }

    /// `log-format-sd` goes between the message id and the message on an RFC 5424 target, as
    /// HAProxy puts it; `%gen` names the generation a request ran under.
    @Test func structuredDataAndGenerationInLogLines() throws {
        let backends = try Backends()
        let p = Ports()
        let strata = try StrataProcess(config: backends.config(p, strata: true))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: p.sd))
        #expect(client.get("/sd")?.status == 200)
        let line = try #require(Self.line({ strata.output }, containing: "\"GET /sd HTTP/1.1\""))
        // <134>1 TIMESTAMP HOSTNAME strata PID - [SD] MESSAGE
        let rfc5424 = #"^<134>1 (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00) (\S+) strata (\d+) - \[strata@32473 fe="sd" client="127\.0\.0\.1"\] (.*)$"#
        let g = try #require(Self.groups(rfc5424, line), "\(line)")
        #expect(g[2] == String(strata.pid))
        #expect(Self.groups(Self.httplog, g[3]) != nil, "\(g[3])")
        #expect(g[3].contains(" sd main/m "))

        if TestTools.haproxy != nil || TestTools.inCI {
            try TestTools.require(TestTools.haproxy != nil, "haproxy")
            let hp = Ports()
            let haproxy = try HAProxyProcess(config: backends.config(hp, strata: false))
            defer { haproxy.stop() }
            try haproxy.waitUntilReady()
            let other = try #require(TestHTTPClient(port: hp.sd))
            #expect(other.get("/sd")?.status == 200)
            let theirs = try #require(Self.line({ haproxy.output }, containing: "\"GET /sd HTTP/1.1\""), "\(haproxy.output)")
            // The hostname (HAProxy writes `-` without log-send-hostname) and the tag differ.
            Self.expectSameShape(line, theirs, skip: [2, 3])
        }

        // %gen: generation 1, then 2 after a reload, on the same keep-alive connection.
        let gen = try #require(TestHTTPClient(port: p.gen))
        #expect(gen.get("/one")?.status == 200)
        #expect(Self.line({ strata.output }, containing: "\"GET /one HTTP/1.1\"")?.hasPrefix("gen=1 127.0.0.1 200 ") == true)
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(gen.get("/two")?.status == 200)
        #expect(Self.line({ strata.output }, containing: "\"GET /two HTTP/1.1\"")?.hasPrefix("gen=2 127.0.0.1 200 ") == true)
    }
}
