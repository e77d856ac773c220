import Foundation
import Glibc
import StrataTestSupport
import Testing

/// The runtime API's `show stat` and the stats page with the real binary: the CSV parses with
/// Python's csv module and its header is HAProxy's own (read from a running HAProxy 2.6), `stats
/// auth` refuses a wrong password, and the page loads in headless chromium, listing the live
/// generations while one drains.
@Suite(.serialized) struct ObservabilityStatsTests {
    static func config(port: UInt16, statsPort: UInt16, origin: UInt16, held: UInt16, tcpServer: UInt16) -> String {
        """
        global
            stats socket @ADMIN@ level admin
        defaults
            timeout connect 2s
            timeout client 30s
            timeout server 30s
        frontend web
            mode http
            bind 127.0.0.1:\(port)
            stats uri /admin/stats
            stats realm Strata\\ statistics
            stats auth admin:s3cret
            stats auth ops:also-good
            use_backend hold if { path_beg /hold }
            default_backend main
        backend main
            mode http
            balance roundrobin
            server m1 127.0.0.1:\(origin)
            server m2 127.0.0.1:\(origin)
        backend hold
            mode http
            server h 127.0.0.1:\(held)
        listen db
            mode tcp
            bind 127.0.0.1:\(TestSocket.freePort())
            server pg 127.0.0.1:\(tcpServer)
        listen stats
            mode http
            bind 127.0.0.1:\(statsPort)
            stats enable
            stats uri /
        """
    }

    /// Parses CSV text with Python's csv module: the header's names (without `# `) and each row as
    /// a name -> value map; fails when a row's width differs from the header's.
    static let csvParser = """
        import sys, csv, json
        rows = list(csv.reader(sys.stdin.read().splitlines()))
        rows = [r for r in rows if r]
        header = rows[0]
        assert header[0].startswith("# "), header[0]
        header[0] = header[0][2:]
        out = {"header": header, "rows": []}
        for r in rows[1:]:
            assert len(r) == len(header), (len(r), len(header), r[:2])
            out["rows"].append(dict(zip(header, r)))
        print(json.dumps(out))
        """

    static func parseCSV(_ text: String) throws -> (header: [String], rows: [[String: String]]) {
        let (status, output) = try TestTools.python(csvParser, input: text)
        guard status == 0, let json = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] else {
            throw TestSocket.Failure(description: "csv refused show stat: \(output)")
        }
        return (json["header"] as? [String] ?? [], json["rows"] as? [[String: String]] ?? [])
    }

    /// HAProxy's own `show stat` header, from HAProxy 2.6 run on a small configuration.
    static func haproxyShowStatHeader() throws -> String {
        let port = TestSocket.freePort()
        let haproxy = try HAProxyProcess(config: """
            global
                stats socket @SOCKET@ level admin
            defaults
                mode http
                timeout connect 1s
                timeout client 1s
                timeout server 1s
            frontend fe
                bind 127.0.0.1:\(port)
                default_backend be
            backend be
                server s1 127.0.0.1:1
            """)
        defer { haproxy.stop() }
        let answer = try haproxy.command("show stat")
        return String(answer.split(separator: "\n").first ?? "")
    }

    struct Fixture {
        let origin: TestHTTPOrigin
        let held: HeldOrigin
        let tcp: TestBackend
        let port: UInt16
        let statsPort: UInt16
        let strata: StrataProcess
        init() throws {
            origin = try TestHTTPOrigin("main")
            held = try HeldOrigin()
            tcp = try TestBackend(.name("pg"))
            port = TestSocket.freePort()
            statsPort = TestSocket.freePort()
            strata = try StrataProcess(config: ObservabilityStatsTests.config(port: port, statsPort: statsPort, origin: origin.port,
                                                                              held: held.port, tcpServer: tcp.port))
        }
    }

    @Test(.enabled(if: TestTools.available(TestTools.hasPython), "python3 is not installed"))
    func showStatParsesAsCSVInHAProxysColumnOrder() throws {
        try TestTools.require(TestTools.hasPython, "python3")
        let f = try Fixture()
        #expect(f.strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: f.port))
        for i in 0..<4 { #expect(client.get("/r\(i)")?.status == 200) }
        // A request is counted on its loop as it ends, just after its answer left: wait for the
        // count rather than race the loop.
        #expect(try eventually { try f.strata.admin("show stat").contains("web,FRONTEND,") && Self.parseCSV(f.strata.admin("show stat")).1.first { $0["pxname"] == "web" && $0["svname"] == "FRONTEND" }.map { Int($0["hrsp_2xx"] ?? "") ?? 0 >= 4 } == true })

        let text = try f.strata.admin("show stat")
        let (header, rows) = try Self.parseCSV(text)

        // HAProxy's header, read from HAProxy when it is installed (CI installs it).
        var reference = HAProxyReference.showStatHeader
        if TestTools.haproxy != nil || TestTools.inCI {
            try TestTools.require(TestTools.haproxy != nil, "haproxy")
            reference = try Self.haproxyShowStatHeader()
        }
        let haproxyColumns = reference.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let strataColumns = header.last == "" ? Array(header.dropLast()) : header
        // strata's columns are HAProxy's, in HAProxy's order, its per-module counters after `-` too.
        let comparable = haproxyColumns.last == "" ? Array(haproxyColumns.dropLast()) : haproxyColumns
        #expect(strataColumns == comparable, "strata: \(strataColumns.suffix(5)) haproxy: \(comparable.suffix(5))")
        #expect(strataColumns.first == "pxname" && strataColumns.contains("agg_check_status"))
        #expect(text.hasPrefix("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,"))

        func row(_ px: String, _ sv: String) -> [String: String]? { rows.first { $0["pxname"] == px && $0["svname"] == sv } }
        let web = try #require(row("web", "FRONTEND"))
        #expect(web["type"] == "0")
        #expect(web["status"] == "OPEN")
        #expect(web["mode"] == "http")
        #expect(Int(web["req_tot"] ?? "") ?? 0 >= 4)
        #expect(Int(web["hrsp_2xx"] ?? "") ?? 0 >= 4)
        let m1 = try #require(row("main", "m1")), m2 = try #require(row("main", "m2"))
        #expect(m1["type"] == "2" && m2["type"] == "2")
        #expect((Int(m1["stot"] ?? "") ?? 0) + (Int(m2["stot"] ?? "") ?? 0) == 4)
        #expect(m1["addr"] == "127.0.0.1:\(f.origin.port)")
        let main = try #require(row("main", "BACKEND"))
        #expect(main["type"] == "1")
        #expect(main["stot"] == "4")
        #expect(main["algo"] == "roundrobin")
        #expect(Int(main["bout"] ?? "") ?? 0 > 0)
        #expect(row("db", "FRONTEND") != nil && row("db", "pg") != nil && row("db", "BACKEND") != nil)
        // A backend without servers (`listen stats`) is UP, as HAProxy reports it.
        #expect(row("stats", "BACKEND")?["status"] == "UP")
        #expect(row("db", "FRONTEND")?["mode"] == "tcp")
        // HAProxy's row order: a proxy's FRONTEND, its servers, its BACKEND.
        let order = rows.filter { $0["pxname"] == "main" }.map { $0["svname"]! }
        #expect(order == ["m1", "m2", "BACKEND"])

        // The stats page's `;csv` is the same CSV.
        let page = try #require(TestHTTPClient(port: f.statsPort))
        let csv = try #require(page.get("/;csv"))
        #expect(csv.status == 200)
        let (pageHeader, pageRows) = try Self.parseCSV(csv.body)
        #expect(pageHeader == header)
        #expect(pageRows.count == rows.count)

        // `show stat json` is JSON (Python's json module reads it).
        let json = try f.strata.admin("show stat json")
        let (status, output) = try TestTools.python("""
            import sys, json
            rows = json.load(sys.stdin)
            names = {f["field"]["name"] for r in rows for f in r}
            assert "pxname" in names and "stot" in names, names
            print(len(rows))
            """, input: json)
        #expect(status == 0, "\(output)")
        #expect(Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) == rows.count)
    }


    @Test func statsAuthRefusesAWrongPasswordAndAcceptsTheRightOne() throws {
        let f = try Fixture()
        #expect(f.strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: f.port))
        // No credentials, a wrong password, an unknown user: 401 with the realm.
        for headers in [[], [basicAuthorization("admin:wrong")], [basicAuthorization("nobody:s3cret")], [basicAuthorization("admin")],
                        ["Authorization: Bearer s3cret"]] {
            let answer = try #require(client.get("/admin/stats", headers: headers))
            #expect(answer.status == 401, "\(headers)")
            #expect(answer.head.lowercased().contains("www-authenticate: basic realm=\"strata statistics\""), "\(answer.head)")
            #expect(!answer.body.contains("pxname"))
        }
        // The right password (either user), on the same keep-alive connection.
        let page = try #require(client.get("/admin/stats", headers: [basicAuthorization("admin:s3cret")]))
        #expect(page.status == 200)
        #expect(page.head.lowercased().contains("content-type: text/html"))
        #expect(page.body.contains("generations-table"))
        let csv = try #require(client.get("/admin/stats;csv", headers: [basicAuthorization("ops:also-good")]))
        #expect(csv.status == 200)
        #expect(csv.body.hasPrefix("# pxname,svname,"))
        // A path outside the stats URI is proxied as usual.
        #expect(client.get("/other")?.body.contains("origin=main") == true)
    }

    @Test(.enabled(if: TestTools.available(TestTools.chromium != nil), "chromium is not installed"),
          .timeLimit(.minutes(3)))
    func statsPageLoadsInChromiumAndListsTheGenerations() throws {
        try TestTools.require(TestTools.chromium != nil, "chromium")
        let f = try Fixture()
        #expect(f.strata.waitForAdmin())
        // A drain in progress: a request held on generation 1, generation 2 active.
        let client = try #require(TestHTTPClient(port: f.port))
        client.send("GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(eventually { f.held.waiting == 1 })
        usleep(1_100_000)  // a sample of the chart before the reload (one a second)
        #expect(try f.strata.admin("reload").hasPrefix("Success=1"))
        usleep(1_100_000)  // and one after
        #expect(try f.strata.generations().map(\.state) == ["draining", "active"])

        let url = "http://127.0.0.1:\(f.statsPort)/"
        let (dom, log) = try TestTools.browse(url, ["--dump-dom"])
        let console = log.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(console.isEmpty, "console messages: \(console)")
        #expect(dom.contains("id=\"generations-table\""))
        #expect(dom.contains("data-generation=\"1\"><td>1</td><td class=\"n\">draining</td>"), "\(dom.prefix(3000))")
        #expect(dom.contains("data-generation=\"2\"><td>2</td><td class=\"n\">active</td>"))
        #expect(dom.contains("class=\"generation-line\" data-generation=\"1\""))
        #expect(dom.contains("id=\"proxy-web\""))
        #expect(dom.contains("id=\"proxy-main\""))

        let directory = TestTools.screenshotDirectory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let shot = directory.appendingPathComponent("stats-page-e2e.png")
        try? FileManager.default.removeItem(at: shot)
        let (_, shotLog) = try TestTools.browse(url, ["--screenshot=\(shot.path)", "--window-size=1280,1600", "--hide-scrollbars"])
        #expect(shotLog.split(separator: "\n").filter { $0.contains(":CONSOLE") }.isEmpty)
        let png = try Data(contentsOf: shot)
        #expect(png.count > 10_000)
        #expect(png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        print("stats page screenshot (real binary): \(shot.path)")

        f.held.release()
        #expect(client.readResponse()?.status == 200)
        #expect(try eventually { try f.strata.generations().map(\.id) == [2] })
    }
}
