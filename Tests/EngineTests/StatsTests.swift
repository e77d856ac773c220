import ConfigModel
import Foundation
import Glibc
import StrataTestSupport
import Testing

@testable import Engine
@testable import HTTP1

/// Helpers: a request head parsed as the session parses it, an engine with one generation.
enum StatsTestSupport {
    /// Calls `body` with the parsed head of `request` and the bytes it points into.
    static func withHead<T>(_ request: String, _ body: (borrowing HTTPHead, UnsafeRawBufferPointer) -> T) -> T {
        var parser = HTTPRequestParser()
        let bytes = Array(request.utf8)
        return bytes.withUnsafeBytes { input in
            guard case .headersComplete = parser.parse(input) else { fatalError("not a complete head: \(request)") }
            return body(parser.head, input)
        }
    }

    /// An engine (not running) with one generation of `proxies` activated, nothing listening.
    static func engine(_ proxies: [Proxy], global: GlobalSettings = GlobalSettings(), id: Int = 1) throws -> (Engine, Generation) {
        let engine = Engine(defaultLoop: false)
        let g = try engine.makeGeneration(ConfigGeneration(id: id, hash: "hash\(id)", config: Config(global: global, proxies: proxies), files: []))
        engine.activate(g, listenerFDs: [:])
        return (engine, g)
    }

    static func proxies() -> [Proxy] {
        let here = SourceLocation(file: "test", line: 1)
        var web = Proxy(name: "web", kind: .listen, location: here, id: 2)
        web.mode = .http
        var stats = StatsPage(location: here)
        stats.uri = "/stats"
        stats.credentials = [.init(user: "admin", password: "s3cret")]
        stats.realm = "strata \"stats\""
        stats.admin = Condition(inverted: false, alternatives: [[ConditionTerm(name: "TRUE", criteria: [
            ACLCriterion(location: here, sample: SampleExpression(fetch: .constant(true)), match: .boolean, ignoreCase: false, patterns: .none),
        ], negated: false)]])
        stats.refresh = 5000
        web.stats = stats
        var s2 = ServerOptions()
        s2.backup = true
        s2.maxconn = 10
        web.servers = [
            ConfigModel.Server(name: "s1", location: here, id: 1, host: "127.0.0.1", address: .v4(0x7f00_0001), port: 8081, options: ServerOptions()),
            ConfigModel.Server(name: "s2", location: here, id: 2, host: "127.0.0.1", address: .v4(0x7f00_0001), port: 8082, options: s2),
        ]
        var tcp = Proxy(name: "db", kind: .listen, location: here, id: 3)
        tcp.servers = [ConfigModel.Server(name: "pg,1", location: here, id: 1, host: "10.0.0.1", address: .v4(0x0a00_0001), port: 5432, options: ServerOptions())]
        return [web, tcp]
    }
}

@Suite struct StatsTests {
    @Test func fieldTableIsHAProxysOrder() {
        #expect(StatsField.csvHeader == HAProxyReference.showStatHeader + ",")
        for field in StatsField.allCases { #expect(field.name == "\(field)") }
    }

    @Test func showStatHasAFrontendServersAndABackendPerProxy() throws {
        let (engine, _) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        let csv = engine.admin("show stat")
        let lines = csv.split(separator: "\n").map(String.init)
        #expect(lines[0] == StatsField.csvHeader)
        let names = lines.dropFirst().map { $0.split(separator: ",", maxSplits: 2).prefix(2).joined(separator: ",") }
        #expect(names == ["web,FRONTEND", "web,s1", "web,s2", "web,BACKEND", "db,FRONTEND", "db,\"pg", "db,BACKEND"])
        // Every line has the header's number of fields (a comma-quoted server name included).
        let rows = engine.statsRows()
        #expect(rows.count == 7)
        let s2 = try #require(rows.first { $0.string(.svname) == "s2" })
        #expect(s2.string(.status) == "no check")
        #expect(s2.string(.bck) == "1")
        #expect(s2.string(.slim) == "10")
        #expect(s2.string(.addr) == "127.0.0.1:8082")
        #expect(s2.string(.type) == "2")
        #expect(s2.string(.iid) == "2")
        #expect(s2.string(.sid) == "2")
        let backend = try #require(rows.first { $0.string(.pxname) == "web" && $0.type == .backend })
        #expect(backend.string(.status) == "UP")
        #expect(backend.string(.act) == "1")
        #expect(backend.string(.algo) == "roundrobin")
        let frontend = try #require(rows.first { $0.type == .frontend })
        #expect(frontend.string(.status) == "OPEN")
        #expect(frontend.string(.mode) == "http")
        // Filters: proxy 3, servers only.
        let filtered = engine.statsRows(proxyID: 3, types: 4, serverID: -1)
        #expect(filtered.map { $0.string(.svname) } == ["pg,1"])
        #expect(engine.admin("show stat db 4 -1").split(separator: "\n").count == 2)
        #expect(engine.admin("show stat nosuch 4 -1") == "No such proxy.")
    }

    @Test(.enabled(if: TestTools.available(TestTools.hasPython), "python3 is not installed"))
    func showStatParsesWithPythonsCSVModule() throws {
        let (engine, _) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        let csv = engine.admin("show stat")
        let script = """
            import csv, sys
            text = sys.stdin.read()
            assert text.startswith("# ")
            rows = list(csv.DictReader(text[2:].splitlines()))
            header = text[2:].splitlines()[0].split(",")
            assert header[:3] == ["pxname", "svname", "qcur"], header[:3]
            assert all(len(r) == len(header) for r in rows), [len(r) for r in rows]
            print(len(rows), "|".join(r["pxname"] + "/" + r["svname"] + "/" + r["status"] for r in rows))
            """
        let (status, output) = try TestTools.python(script, input: csv)
        #expect(status == 0, "\(output)")
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines)
                == "7 web/FRONTEND/OPEN|web/s1/no check|web/s2/no check|web/BACKEND/UP|db/FRONTEND/OPEN|db/pg,1/no check|db/BACKEND/UP")
    }

    @Test func typedAndJSONUseHAProxysPositionsAndTags() throws {
        let (engine, _) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        let typed = engine.admin("show stat typed").split(separator: "\n")
        #expect(typed.contains("F.2.0.0.pxname.1:KNS:str:web"))
        #expect(typed.contains("F.2.0.4.scur.1:MGP:u32:0"))
        #expect(typed.contains("S.2.1.17.status.1:SGP:str:no check"))
        #expect(typed.contains("B.2.0.19.act.1:MGP:u32:1"))
        let json = engine.admin("show stat json")
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[[String: Any]]]
        let rows = try #require(parsed)
        #expect(rows.count == 7)
        let first = rows[0][0]
        #expect(first["objType"] as? String == "Frontend")
        #expect((first["field"] as? [String: Any])?["name"] as? String == "pxname")
        #expect((first["value"] as? [String: Any])?["value"] as? String == "web")
    }

    @Test func clearCountersKeepsTotalsUnlessAll() throws {
        let (engine, g) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        let f = try #require(g.frontends["web"])
        f.counters.sessionStarted(on: testLoop)
        f.counters.sessionStarted(on: testLoop)
        f.counters.sessionEnded(on: testLoop)
        #expect(f.counters.maxSessions == 2)
        #expect(engine.admin("clear counters", level: .operator_) == "")
        #expect(f.counters.maxSessions == 1)
        #expect(f.counters.totalSessions == 2)
        #expect(engine.admin("clear counters all", level: .operator_) == "Permission denied")
        #expect(f.counters.totalSessions == 2)
        #expect(engine.admin("clear counters all") == "")
        #expect(f.counters.totalSessions == 0)
        #expect(f.counters.currentSessions == 1)
    }

    /// The one JSON escaper: what JSON forbids raw in a string is escaped, the rest kept.
    @Test func jsonQuotedEscapesEveryControlCharacter() {
        let all = String(String.UnicodeScalarView((0..<0x20).compactMap(Unicode.Scalar.init)))
        let quoted = (all + "\"\\/").jsonQuoted
        #expect(quoted.hasPrefix("\"\\u0000\\u0001"))
        #expect(quoted.hasSuffix("\\u001e\\u001f\\\"\\\\/\""))
        #expect(!quoted.unicodeScalars.dropFirst().dropLast().contains { $0.value < 0x20 })
        let decoded = try? JSONSerialization.jsonObject(with: Data(quoted.utf8), options: .fragmentsAllowed) as? String
        #expect(decoded == all + "\"\\/")
    }

    @Test func timesAverageOverTheLastSessions() {
        var t = StatsTimes()
        #expect(t.connectAverage == 0)
        t.add(queue: -1, connect: 10, response: 20, total: 40)
        t.add(queue: 0, connect: 30, response: 40, total: 80)
        #expect(t.connectAverage == 20)
        #expect(t.responseAverage == 30)
        #expect(t.totalMax == 80)
        #expect(t.queueAverage == 0)
        for _ in 0..<5000 { t.add(queue: 0, connect: 5, response: 5, total: 5) }
        #expect((4...6).contains(t.connectAverage))
    }

    @Test func accountFeedsTimesResponseClassesAbortsAndLastSession() throws {
        let (engine, g) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        let b = try #require(g.backends["web"])
        let s1 = b.servers[0]
        var r = LogRecord(mode: .http, frontend: g.frontends["web"]!, generation: 1, acceptDate: 0)
        r.backend = b
        r.server = s1
        r.queue = 0
        r.connect = 4
        r.response = 10
        r.active = 30
        r.status = 404
        engine.workers[0].account(r)
        r.status = 200
        r.termination = TerminationState(cause: UInt8(ascii: "C"), phase: UInt8(ascii: "D"))
        engine.workers[0].account(r)
        #expect(s1.state.responsesByClass == [0, 1, 0, 1, 0, 0])
        #expect(s1.state.times.connectAverage == 4)
        #expect(s1.state.times.totalMax == 30)
        #expect(s1.state.clientAborts == 1)
        #expect(b.counters.clientAborts == 1)
        #expect(b.counters.times.responseAverage == 10)
        #expect(s1.state.lastSession == engine.workers[0].loop.now)
        // A local answer after a failed connect: no server response, no times.
        r.connect = -1
        r.response = -1
        r.status = 503
        r.termination = TerminationState(cause: UInt8(ascii: "S"), phase: UInt8(ascii: "C"))
        engine.workers[0].account(r)
        #expect(s1.state.responsesByClass[4] == 0)
        #expect(s1.state.serverAborts == 0)
        let row = try #require(engine.statsRows().first { $0.string(.svname) == "s1" })
        #expect(row.string(.hrsp_2xx) == "1")
        #expect(row.string(.ctime) == "4")
        #expect(row.string(.cli_abrt) == "1")
    }

    // MARK: the stats page

    @Test func statsURIMatchesAsAPrefixWithHAProxysOptions() throws {
        let (engine, g) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        let f = try #require(g.frontends["web"])
        let page = StatsTestSupport.withHead("GET /stats;csv;norefresh HTTP/1.1\r\nHost: x\r\n\r\n") { head, input in
            Engine.statsPageRequest(head, input: input, frontend: f, backend: nil)
        }
        #expect(page?.format == .csv)
        #expect(page?.refresh == false)
        let other = StatsTestSupport.withHead("GET /app HTTP/1.1\r\nHost: x\r\n\r\n") { head, input in
            Engine.statsPageRequest(head, input: input, frontend: f, backend: nil)
        }
        #expect(other == nil)
        let put = StatsTestSupport.withHead("PUT /stats HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n") { head, input in
            Engine.statsPageRequest(head, input: input, frontend: f, backend: nil)
        }
        #expect(put == nil)
    }

    static func answer(_ engine: Engine, _ g: Generation, _ request: String, body: String = "") -> StatsServiceAnswer? {
        let f = g.frontends["web"]!
        return StatsTestSupport.withHead(request) { head, input in
            guard let page = Engine.statsPageRequest(head, input: input, frontend: f, backend: g.backends["web"]) else { return nil }
            let info = HTTPConnectionInfo(client: SocketEndpoint(address: .v4(0x7f00_0001), port: 5000), local: nil)
            return Array(body.utf8).withUnsafeBytes { b in
                engine.answer(Engine.statsPageCall(page, head, input: input, connection: info, scratch: HTTPRuleScratch(), frontend: f, body: b))
            }
        }
    }


    @Test func basicAuthRefusesAWrongPassword() throws {
        let (engine, g) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        let none = try #require(Self.answer(engine, g, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(none.status == 401)
        #expect(none.text.contains("www-authenticate: Basic realm=\"strata \\\"stats\\\"\"\r\n"))
        let wrong = try #require(Self.answer(engine, g, "GET /stats HTTP/1.1\r\nHost: x\r\n\(basicAuthorization("admin:wrong"))\r\n\r\n"))
        #expect(wrong.status == 401)
        let garbage = try #require(Self.answer(engine, g, "GET /stats HTTP/1.1\r\nHost: x\r\nAuthorization: Basic !!!\r\n\r\n"))
        #expect(garbage.status == 401)
        let right = try #require(Self.answer(engine, g, "GET /stats HTTP/1.1\r\nHost: x\r\n\(basicAuthorization("admin:s3cret"))\r\n\r\n"))
        #expect(right.status == 200)
        #expect(right.text.contains("content-type: text/html\r\n"))
        #expect(right.text.contains("refresh: 5\r\n"))
    }

    @Test func pageListsGenerationsAndProxies() throws {
        let (engine, g) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        engine.metrics.sample()
        let auth = basicAuthorization("admin:s3cret") + "\r\n"
        let page = try #require(Self.answer(engine, g, "GET /stats HTTP/1.1\r\nHost: x\r\n\(auth)\r\n"))
        let body = String(decoding: page.body, as: UTF8.self)
        #expect(body.contains("<section id=\"generations\">"))
        #expect(body.contains("<tr class=\"active\" data-generation=\"1\"><td>1</td><td class=\"n\">active</td>"))
        #expect(body.contains("<svg id=\"generations-chart\""))
        #expect(body.contains("<table class=\"tbl\" id=\"proxy-web\">"))
        #expect(body.contains("name=\"action\""))  // `stats admin if TRUE`
        #expect(body.contains("pg,1"))
        // HAProxy's proxy tables first, the generations after them (their detail folded); the
        // legend, the display options, the session-rate and Dwntme/Thrtle columns.
        let proxyAt = try #require(body.range(of: "id=\"proxy-web\"")).lowerBound
        let generationsAt = try #require(body.range(of: "<section id=\"generations\">")).lowerBound
        #expect(proxyAt < generationsAt)
        #expect(body.contains("<details id=\"generations-detail\">"))
        // Each generation's line has its own small chart.
        #expect(body.contains("<svg class=\"sparkline\" data-generation=\"1\""))
        #expect(body.contains("<table id=\"legend\">"))
        #expect(body.contains("id=\"hide-down\" href=\"/stats;up\">Hide 'DOWN' servers</a>"))
        #expect(body.contains("id=\"refresh-now\""))
        #expect(body.contains("<th colspan=\"3\">Session rate</th>"))
        #expect(body.contains("<th>Dwntme</th><th>Thrtle</th>"))
        // `?scope=` keeps the proxies whose name contains it.
        let scoped = try #require(Self.answer(engine, g, "GET /stats?scope=DB HTTP/1.1\r\nHost: x\r\n\(auth)\r\n"))
        let scopedBody = String(decoding: scoped.body, as: UTF8.self)
        #expect(scopedBody.contains("id=\"proxy-db\"") && !scopedBody.contains("id=\"proxy-web\""))
        let csv = try #require(Self.answer(engine, g, "GET /stats;csv HTTP/1.1\r\nHost: x\r\n\(auth)\r\n"))
        #expect(String(decoding: csv.body, as: UTF8.self).hasPrefix(StatsField.csvHeader + "\n"))
        let json = try #require(Self.answer(engine, g, "GET /stats;json HTTP/1.1\r\nHost: x\r\n\(auth)\r\n"))
        #expect(json.text.contains("content-type: application/json\r\n"))
        let head = try #require(Self.answer(engine, g, "HEAD /stats HTTP/1.1\r\nHost: x\r\n\(auth)\r\n"))
        #expect(head.body.isEmpty)
        #expect(!head.text.contains("content-length: 0\r\n"))
    }

    @Test func adminFormDrainsAServerAndIsDeniedWithoutAdmin() throws {
        var proxies = StatsTestSupport.proxies()
        let (engine, g) = try StatsTestSupport.engine(proxies)
        let auth = basicAuthorization("admin:s3cret") + "\r\n"
        let form = "s=s1&action=drain&b=%232"
        let post = try #require(Self.answer(engine, g, "POST /stats HTTP/1.1\r\nHost: x\r\n\(auth)Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\n\r\n", body: form))
        #expect(post.status == 303)
        #expect(post.text.contains("location: /stats;st=DONE\r\n"))
        #expect(g.backends["web"]!.servers[0].state.health.statusText == "DRAIN")
        #expect(engine.statsAdminAction("s=nosuch&action=maint&b=web") == "ERRP")
        #expect(engine.statsAdminAction("s=s1&action=ready&b=web") == "DONE")
        #expect(g.backends["web"]!.servers[0].state.health.statusText == "no check")
        let done = try #require(Self.answer(engine, g, "GET /stats;st=DONE HTTP/1.1\r\nHost: x\r\n\(auth)\r\n"))
        #expect(String(decoding: done.body, as: UTF8.self).contains("Action processed successfully."))

        proxies[0].stats?.admin = nil
        let (engine2, g2) = try StatsTestSupport.engine(proxies)
        let denied = try #require(Self.answer(engine2, g2, "POST /stats HTTP/1.1\r\nHost: x\r\n\(auth)Content-Length: \(form.utf8.count)\r\n\r\n", body: form))
        #expect(denied.text.contains("location: /stats;st=DENY\r\n"))
        #expect(g2.backends["web"]!.servers[0].state.health.statusText == "no check")
        let page = try #require(Self.answer(engine2, g2, "GET /stats HTTP/1.1\r\nHost: x\r\n\(auth)\r\n"))
        #expect(!String(decoding: page.body, as: UTF8.self).contains("name=\"action\""))
    }

    @Test func sessionsChartDrawsEachGenerationWhereItLived() throws {
        let (engine, _) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        let now = 1000.0
        let history = [
            MetricsRegistry.Sample(time: now - 3, generations: [(1, .active, 4)]),
            MetricsRegistry.Sample(time: now - 2, generations: [(1, .draining, 2), (2, .active, 1)]),
            MetricsRegistry.Sample(time: now - 1, generations: [(1, .draining, 0), (2, .active, 3)]),
            MetricsRegistry.Sample(time: now, generations: [(2, .active, 3)]),
        ]
        let svg = engine.sessionsChart(history, now: now)
        #expect(svg.components(separatedBy: "class=\"generation-line\" data-generation=\"1\"").count == 2)
        #expect(svg.components(separatedBy: "class=\"generation-line\" data-generation=\"2\"").count == 2)
        #expect(svg.contains(">generation 1</text>"))
        #expect(svg.contains(">4</text>"))  // the peak labels the axis
    }
}
