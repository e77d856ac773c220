import ConfigModel
import Foundation
import Glibc
import StrataTestSupport
import Testing

@testable import Engine

/// The exporter: valid exposition (checked with Python's prometheus_client, a real parser),
/// HAProxy's series names with `strata_`, per-generation series that follow a session through a
/// drain and disappear at retire, and counters that a reload does not reset.
@Suite(.serialized) struct PrometheusTests {
    /// The samples of an exposition: `name{labels}` → value.
    static func samples(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            out[String(line[..<space])] = Double(line[line.index(after: space)...])
        }
        return out
    }

    static func scrape(_ engine: Engine) -> String {
        GenerationLifetimeTests.onLoop(engine) { String(decoding: engine.prometheusMetrics(), as: UTF8.self) }
    }

    /// Waits (up to 5 s) until `check` holds for a scrape.
    static func eventually(_ engine: Engine, _ check: ([String: Double]) -> Bool) -> [String: Double] {
        var last: [String: Double] = [:]
        _ = StrataTestSupport.eventually(seconds: 5, every: 0.05) {
            last = samples(scrape(engine))
            return check(last)
        }
        return last
    }

    @Test func expositionIsWellFormedWithUniqueSeries() throws {
        let (engine, g) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        g.frontends["web"]!.counters[testLoop].countResponse(status: 200)
        engine.metrics.recordReload(success: true, generation: 2, seconds: 0.02, messages: ["ok"])
        engine.metrics.recordReload(success: false, generation: 3, seconds: 0.3, messages: ["bad"])
        let text = String(decoding: engine.prometheusMetrics(), as: UTF8.self)
        var declared = Set<String>()
        var seen = Set<String>()
        var family = ""
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                family = String(line.split(separator: " ")[2])
                #expect(declared.insert(family).inserted, "family \(family) declared twice")
                continue
            }
            if line.hasPrefix("#") { continue }
            let series = String(line[..<line.lastIndex(of: " ")!])
            #expect(seen.insert(series).inserted, "duplicate series \(series)")
            #expect(series.hasPrefix(family), "\(series) outside its family \(family)")
            // HAProxy's families under its names, strata's own under its prefix.
            #expect(series.hasPrefix("strata_") || series.hasPrefix("haproxy_"))
        }
        let s = Self.samples(text)
        #expect(s["strata_generation_info{generation=\"1\",state=\"active\",hash=\"hash1\"}"] == 1)
        #expect(s["strata_generations{state=\"active\"}"] == 1)
        #expect(s["strata_generations{state=\"draining\"}"] == 0)
        #expect(s["strata_generation_sessions{generation=\"1\"}"] == 0)
        #expect(s["strata_reloads_total{result=\"success\"}"] == 1)
        #expect(s["strata_reloads_total{result=\"failure\"}"] == 1)
        #expect(s["strata_reload_duration_seconds_bucket{le=\"0.025\"}"] == 1)
        #expect(s["strata_reload_duration_seconds_bucket{le=\"+Inf\"}"] == 2)
        #expect(s["strata_reload_duration_seconds_count"] == 2)
        #expect(s["haproxy_frontend_http_responses_total{proxy=\"web\",code=\"2xx\"}"] == 1)
        #expect(s["haproxy_frontend_http_responses_total{proxy=\"db\",code=\"2xx\"}"] == nil)  // TCP
        #expect(s["haproxy_server_status{proxy=\"web\",server=\"s1\",state=\"UP\"}"] == 1)
        #expect(s["haproxy_server_status{proxy=\"web\",server=\"s1\",state=\"DOWN\"}"] == 0)
        #expect(s["haproxy_server_limit_sessions{proxy=\"web\",server=\"s2\"}"] == 10)
        #expect(s["haproxy_backend_status{proxy=\"db\",state=\"UP\"}"] == 1)
        #expect(s["haproxy_backend_active_servers{proxy=\"web\"}"] == 1)
        #expect(s["haproxy_backend_backup_servers{proxy=\"web\"}"] == 1)
        #expect(s["haproxy_server_connect_time_average_seconds{proxy=\"db\",server=\"pg,1\"}"] == 0)
        #expect(s["haproxy_process_current_connections"] == 0)
        // Scopes, HAProxy's query parameters.
        let (scope, noMaint) = PrometheusScope.parse(query: "scope=server&scope=generation&no-maint")
        #expect(scope == [.server, .generation])
        #expect(noMaint)
        let servers = String(decoding: engine.prometheusMetrics(scope: .server), as: UTF8.self)
        #expect(!servers.contains("haproxy_frontend_"))
        #expect(servers.contains("haproxy_server_current_sessions{proxy=\"web\",server=\"s1\"} 0\n"))
    }

    @Test func useServiceAnswersWithTheExpositionOfTheScopeAsked() throws {
        let (engine, _) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        let answer = try #require(StatsTestSupport.withHead("GET /metrics?scope=generation HTTP/1.1\r\nHost: x\r\n\r\n") { head, input in
            Engine.serviceCall("prometheus-exporter", head, input: input).map { engine.answer($0) }
        })
        #expect(answer.status == 200)
        #expect(answer.text.hasPrefix("HTTP/1.1 200 OK\r\ncontent-length: \(answer.body.count)\r\n"))
        #expect(answer.text.contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        let body = String(decoding: answer.body, as: UTF8.self)
        #expect(body.contains("strata_generation_info{generation=\"1\",state=\"active\",hash=\"hash1\"} 1\n"))
        #expect(!body.contains("haproxy_server_"))
        let head = try #require(StatsTestSupport.withHead("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n") { head, input in
            Engine.serviceCall("prometheus-exporter", head, input: input).map { engine.answer($0) }
        })
        #expect(head.body.isEmpty)
        let unknown = StatsTestSupport.withHead("GET / HTTP/1.1\r\nHost: x\r\n\r\n") { head, input in
            Engine.serviceCall("nosuch", head, input: input).map { engine.answer($0) }
        }
        #expect(unknown == nil)
    }

    @Test func labelValuesAreEscaped() {
        var w = PrometheusWriter(capacity: 64)
        w.labelValue("a\"b\\c\nd")
        #expect(String(decoding: w.finish(), as: UTF8.self) == "a\\\"b\\\\c\\nd")
        var n = PrometheusWriter(capacity: 64)
        n.milliseconds(1234); n.end(); n.double(0.5); n.end(); n.int(-7); n.end(); n.unsigned(0)
        #expect(String(decoding: n.finish(), as: UTF8.self) == "1.234\n0.500000\n-7\n0")
    }

    @Test(.enabled(if: TestTools.available(TestTools.hasPrometheusClient),
                   "python3 with prometheus_client is not installed (pip install prometheus_client)"))
    func prometheusClientParsesTheExposition() throws {
        let (engine, g) = try StatsTestSupport.engine(StatsTestSupport.proxies())
        let loopCounters = g.backends["web"]!.servers[0].state.counters[testLoop]
        var times = loopCounters.times
        times.add(queue: 0, connect: 3, response: 12, total: 20)
        loopCounters.times = times
        engine.metrics.recordReload(success: true, generation: 2, seconds: 0.02, messages: [])
        let text = String(decoding: engine.prometheusMetrics(), as: UTF8.self)
        let script = """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            families = list(text_string_to_metric_families(sys.stdin.read()))
            names = {f.name: f for f in families}
            assert names["strata_reload_duration_seconds"].type == "histogram", names["strata_reload_duration_seconds"].type
            assert names["strata_generation_info"].type == "gauge"
            info = [s for s in names["strata_generation_info"].samples]
            assert info[0].labels == {"generation": "1", "state": "active", "hash": "hash1"}, info[0].labels
            ct = [s for s in names["haproxy_server_connect_time_average_seconds"].samples if s.labels["server"] == "s1"][0]
            assert abs(ct.value - 0.003) < 1e-9, ct.value
            assert any(f.name.startswith("haproxy_server_sessions") and f.type == "counter" for f in families)
            print(len(families), sum(len(f.samples) for f in families))
            """
        let (status, output) = try TestTools.python(script, input: text)
        #expect(status == 0, "\(output)")
    }

    /// A scrape of 10,000 servers, timed (`STRATA_PERF=1`; meaningful in a release build:
    /// `swift test -c release -Xswiftc -enable-testing --filter scrapeOfTenThousandServers`).
    /// bench/scrape.sh compares the whole HTTP round trip with HAProxy's exporter.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["STRATA_PERF"] != nil))
    func scrapeOfTenThousandServers() throws {
        let here = SourceLocation(file: "test", line: 1)
        var many = Proxy(name: "many", kind: .backend, location: here, id: 2)
        many.mode = .http
        many.servers = (0..<10_000).map { i in
            ConfigModel.Server(name: "s\(i)", location: here, id: i + 1, host: "10.0.0.1",
                               address: .v4(0x0a00_0000 | UInt32(i)), port: 8080, options: ServerOptions())
        }
        let (engine, _) = try StatsTestSupport.engine([many])
        var best = Double.infinity
        var size = 0
        for _ in 0..<5 {
            let start = MonotonicClock.now()
            size = engine.prometheusMetrics().count
            best = min(best, MonotonicClock.now() - start)
        }
        print("scrape of 10,000 servers: \(Int(best * 1000)) ms, \(size) bytes")
        var csvBest = Double.infinity
        for _ in 0..<3 {
            let start = MonotonicClock.now()
            _ = engine.admin("show stat")
            csvBest = min(csvBest, MonotonicClock.now() - start)
        }
        print("show stat of 10,000 servers: \(Int(csvBest * 1000)) ms")
    }

    @Test func seriesFollowASessionThroughADrainAndDisappearAtRetire() throws {
        // An origin that accepts and never answers: the request stays in flight.
        let silent = try TestSocket.listen(what: "silent origin")
        defer { close(silent.fd) }
        // A short server timeout ends the abandoned request soon after the client leaves.
        let proxy = try HTTPTestProxy(origin: silent.port) { $0.timeouts.server = 300 }
        defer { proxy.stop() }
        let fd = try #require(TestSocket.connect(proxy.port))
        TestSocket.sendAll(fd, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        var s = Self.eventually(proxy.engine) { $0["strata_generation_sessions{generation=\"1\"}"] == 1 }
        #expect(s["strata_generation_sessions{generation=\"1\"}"] == 1)
        #expect(s["strata_generation_info{generation=\"1\",state=\"active\",hash=\"test1\"}"] == 1)

        try proxy.reload(origin: silent.port) { $0.timeouts.server = 300 }
        s = Self.samples(Self.scrape(proxy.engine))
        #expect(s["strata_generation_info{generation=\"1\",state=\"draining\",hash=\"test1\"}"] == 1)
        #expect(s["strata_generation_info{generation=\"2\",state=\"active\",hash=\"test2\"}"] == 1)
        #expect(s["strata_generation_sessions{generation=\"1\"}"] == 1)
        #expect(s["strata_generation_sessions{generation=\"2\"}"] == 0)
        #expect(s["strata_generations{state=\"draining\"}"] == 1)
        #expect(s["strata_generation_draining_seconds{generation=\"1\"}"] != nil)
        #expect(s["haproxy_frontend_current_sessions{proxy=\"web\"}"] == 1)

        close(fd)  // the client gives up: the request ends, generation 1 retires
        s = Self.eventually(proxy.engine) { $0["strata_generations{state=\"draining\"}"] == 0 }
        #expect(s.keys.filter { $0.contains("generation=\"1\"") }.isEmpty, "\(s.keys.filter { $0.contains("generation=\"1\"") })")
        #expect(s["strata_generation_info{generation=\"2\",state=\"active\",hash=\"test2\"}"] == 1)
        #expect(s["strata_generations{state=\"active\"}"] == 1)
    }

    @Test func countersDoNotResetOnReload() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let proxy = try HTTPTestProxy(origin: origin.port)
        defer { proxy.stop() }
        let fd = try #require(TestSocket.connect(proxy.port))
        defer { close(fd) }
        let reader = HTTPTestReader(fd: fd)
        for i in 0..<3 {
            TestSocket.sendAll(fd, "GET /c/\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            _ = try #require(reader.readResponse())
        }
        let keys = ["haproxy_frontend_http_requests_total{proxy=\"web\"}", "haproxy_frontend_bytes_in_total{proxy=\"web\"}",
                    "haproxy_frontend_bytes_out_total{proxy=\"web\"}", "haproxy_backend_http_requests_total{proxy=\"web\"}",
                    "haproxy_backend_sessions_total{proxy=\"web\"}", "haproxy_server_sessions_total{proxy=\"web\",server=\"origin\"}",
                    "haproxy_server_bytes_out_total{proxy=\"web\",server=\"origin\"}",
                    "haproxy_frontend_http_responses_total{proxy=\"web\",code=\"2xx\"}"]
        let before = Self.eventually(proxy.engine) { $0["haproxy_frontend_http_responses_total{proxy=\"web\",code=\"2xx\"}"] == 3 }
        #expect(before["haproxy_frontend_http_requests_total{proxy=\"web\"}"] == 3)
        for reload in 0..<3 {
            try proxy.reload(origin: origin.port)
            let after = Self.samples(Self.scrape(proxy.engine))
            for k in keys {
                let b = try #require(before[k], "\(k)")
                let a = try #require(after[k], "\(k) after reload \(reload)")
                #expect(a >= b, "\(k) went from \(b) to \(a) on reload \(reload)")
            }
        }
        // The same connection's next request counts on the same series.
        TestSocket.sendAll(fd, "GET /c/after HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try #require(reader.readResponse())
        let later = Self.eventually(proxy.engine) { $0["haproxy_frontend_http_responses_total{proxy=\"web\",code=\"2xx\"}"] == 4 }
        #expect(later["haproxy_frontend_http_requests_total{proxy=\"web\"}"] == 4)
        #expect(later["haproxy_server_sessions_total{proxy=\"web\",server=\"origin\"}"] == 4)
    }
}
