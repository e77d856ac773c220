import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `http-request use-service prometheus-exporter` with the real binary, scraped over HTTP and
/// parsed by Python's `prometheus_client`: the per-generation series follow a session through a
/// drain and disappear at retire, carried counters never go back across reloads, and the reload
/// and generation series agree with `show generations`.
@Suite(.serialized) struct ObservabilityPrometheusTests {
    static func config(port: UInt16, origin: UInt16, held: UInt16, comment: String = "", broken: Bool = false) -> String {
        """
        global
            stats socket @ADMIN@ level admin
        defaults
            mode http
            timeout connect 2s
            timeout client 30s
            timeout server 30s
        # \(comment)
        frontend web
            bind 127.0.0.1:\(port)
            http-request use-service prometheus-exporter if { path /metrics }
            use_backend hold if { path_beg /hold }
            default_backend main
        \(broken ? "    no-such-keyword here" : "")
        backend main
            server m 127.0.0.1:\(origin)
        backend hold
            server h 127.0.0.1:\(held)
        """
    }

    /// `show generations` as (id, state, sessions).
    static func generations(_ strata: StrataProcess) throws -> [(id: Int, state: String, sessions: Int)] {
        try strata.generations().map { ($0.id, $0.state, $0.sessions) }
    }

    /// The generation series of a scrape agree with `show generations` taken right after it:
    /// the same ids, each with its state, and one `strata_generations{state}` count per state.
    static func expectGenerationsMatch(_ scrape: PrometheusScrape, _ rows: [(id: Int, state: String, sessions: Int)],
                                       sourceLocation: SourceLocation = #_sourceLocation) {
        let info = scrape.series("strata_generation_info")
        #expect(info.map { Int($0.labels["generation"]!)! }.sorted() == rows.map(\.id).sorted(), sourceLocation: sourceLocation)
        for row in rows {
            let sample = info.first { $0.labels["generation"] == String(row.id) }
            #expect(sample?.labels["state"] == row.state, sourceLocation: sourceLocation)
            #expect(sample?.labels["hash"]?.isEmpty == false, sourceLocation: sourceLocation)
            #expect(sample?.value == 1, sourceLocation: sourceLocation)
            #expect(scrape.value("strata_generation_age_seconds", ["generation": String(row.id)]) != nil, sourceLocation: sourceLocation)
            #expect(scrape.value("strata_generation_sessions_killed_total", ["generation": String(row.id)]) == 0, sourceLocation: sourceLocation)
        }
        for state in ["active", "draining"] {
            #expect(scrape.value("strata_generations", ["state": state]) == Double(rows.filter { $0.state == state }.count),
                    sourceLocation: sourceLocation)
        }
    }

    @Test(.enabled(if: TestTools.available(TestTools.hasPrometheusClient),
                   "python3 with prometheus_client is not installed (pip install prometheus_client)"))
    func seriesFollowASessionThroughADrainAndDisappearAtRetire() throws {
        try TestTools.require(TestTools.hasPrometheusClient, "python3 prometheus_client")
        let origin = try TestHTTPOrigin("main")
        let held = try HeldOrigin()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, held: held.port))
        #expect(strata.waitForAdmin())

        // Generation 1 alone; the scrape is itself a session of it.
        let first = try PrometheusScrape.scrape(port)
        #expect(first.types["strata_generation_info"] == "gauge")
        #expect(first.types["strata_reload_duration_seconds"] == "histogram")
        #expect(first.types["strata_reloads"] == "counter")
        #expect(first.value("strata_generation_sessions", ["generation": "1"]) == 1)
        Self.expectGenerationsMatch(first, try Self.generations(strata))

        // A request held in flight by its origin.
        let client = try #require(TestHTTPClient(port: port))
        client.send("GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(eventually { held.waiting == 1 })
        #expect(try PrometheusScrape.scrape(port).value("strata_generation_sessions", ["generation": "1"]) == 2)

        // The reload: generation 1 drains with that one request, the scrape runs on generation 2.
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        let draining = try PrometheusScrape.scrape(port)
        let rows = try Self.generations(strata)
        #expect(rows.map(\.id) == [1, 2])
        #expect(draining.value("strata_generation_info", ["generation": "1", "state": "draining",
                                                          "hash": draining.series("strata_generation_info").first { $0.labels["generation"] == "1" }?.labels["hash"] ?? ""]) == 1)
        #expect(draining.value("strata_generation_sessions", ["generation": "1"]) == 1)
        #expect(draining.value("strata_generation_sessions", ["generation": "2"]) == 1)
        #expect(draining.value("strata_generation_listeners", ["generation": "1"]) == 0)
        #expect(draining.value("strata_generation_draining_seconds", ["generation": "1"]).map { $0 >= 0 } == true)
        #expect(draining.value("strata_generation_draining_seconds", ["generation": "2"]) == nil)
        let age1 = try #require(draining.value("strata_generation_age_seconds", ["generation": "1"]))
        let age2 = try #require(draining.value("strata_generation_age_seconds", ["generation": "2"]))
        #expect(age1 >= age2)
        Self.expectGenerationsMatch(draining, rows)

        // The held request ends normally on generation 1; then generation 1 retires and its series go.
        held.release()
        let answer = try #require(client.readResponse())
        #expect(answer.status == 200)
        #expect(answer.body == "held\n")
        #expect(try eventually { try strata.generations().map(\.id) == [2] })
        let retired = try PrometheusScrape.scrape(port)
        #expect(retired.samples(ofGeneration: 1).isEmpty, "\(retired.samples(ofGeneration: 1).map(\.name))")
        #expect(retired.value("strata_generation_sessions", ["generation": "2"]) == 1)
        #expect(retired.value("strata_generations", ["state": "draining"]) == 0)
        Self.expectGenerationsMatch(retired, try Self.generations(strata))
        // The request that drained is counted where it ran, and stays counted.
        #expect(retired.value("haproxy_backend_http_requests_total", ["proxy": "hold"]) == 1)
        #expect(retired.value("haproxy_server_sessions_total", ["proxy": "hold", "server": "h"]) == 1)
    }

    /// The counters a test follows across reloads: frontend, backend and server totals.
    static let carried: [(String, [String: String])] = [
        ("haproxy_frontend_sessions_total", ["proxy": "web"]),
        ("haproxy_frontend_connections_total", ["proxy": "web"]),
        ("haproxy_frontend_http_requests_total", ["proxy": "web"]),
        ("haproxy_frontend_bytes_in_total", ["proxy": "web"]),
        ("haproxy_frontend_bytes_out_total", ["proxy": "web"]),
        ("haproxy_frontend_http_responses_total", ["proxy": "web", "code": "2xx"]),
        ("haproxy_backend_sessions_total", ["proxy": "main"]),
        ("haproxy_backend_http_requests_total", ["proxy": "main"]),
        ("haproxy_backend_bytes_out_total", ["proxy": "main"]),
        ("haproxy_backend_http_responses_total", ["proxy": "main", "code": "2xx"]),
        ("haproxy_backend_loadbalanced_total", ["proxy": "main"]),
        ("haproxy_server_sessions_total", ["proxy": "main", "server": "m"]),
        ("haproxy_server_bytes_out_total", ["proxy": "main", "server": "m"]),
        ("haproxy_server_http_responses_total", ["proxy": "main", "server": "m", "code": "2xx"]),
        ("haproxy_server_loadbalanced_total", ["proxy": "main", "server": "m"]),
    ]

    static func counters(_ scrape: PrometheusScrape, sourceLocation: SourceLocation = #_sourceLocation) -> [String: Double] {
        var out: [String: Double] = [:]
        for (name, labels) in carried {
            let v = scrape.value(name, labels)
            #expect(v != nil, "\(name)\(labels) missing", sourceLocation: sourceLocation)
            out[name + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")] = v ?? -1
        }
        return out
    }

    static func expectNoneWentBack(_ before: [String: Double], _ after: [String: Double], sourceLocation: SourceLocation = #_sourceLocation) {
        for (key, old) in before {
            #expect((after[key] ?? -1) >= old, "\(key) went from \(old) to \(after[key] ?? -1)", sourceLocation: sourceLocation)
        }
    }

    @Test(.enabled(if: TestTools.available(TestTools.hasPrometheusClient),
                   "python3 with prometheus_client is not installed (pip install prometheus_client)"))
    func countersDoNotResetAcrossReloadsAndReloadSeriesMatchShowGenerations() throws {
        try TestTools.require(TestTools.hasPrometheusClient, "python3 prometheus_client")
        let origin = try TestHTTPOrigin("main")
        let held = try HeldOrigin()
        held.release()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, held: held.port))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        for i in 0..<5 { #expect(client.get("/a\(i)")?.status == 200) }

        let s1 = try PrometheusScrape.scrape(port)
        let c1 = Self.counters(s1)
        #expect(s1.value("haproxy_backend_http_requests_total", ["proxy": "main"]) == 5)
        #expect(s1.value("haproxy_server_sessions_total", ["proxy": "main", "server": "m"]) == 5)
        #expect(s1.value("strata_reloads_total", ["result": "success"]) == 0)
        #expect(s1.value("strata_reloads_total", ["result": "failure"]) == 0)

        // A reload that changes the file (a comment) and one that changes nothing.
        try strata.write(Self.config(port: port, origin: origin.port, held: held.port, comment: "reloaded"))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        let s2 = try PrometheusScrape.scrape(port)
        let c2 = Self.counters(s2)
        Self.expectNoneWentBack(c1, c2)
        // Nothing reached `main` since: its figures are exactly what they were.
        #expect(s2.value("haproxy_backend_http_requests_total", ["proxy": "main"]) == 5)
        #expect(s2.value("haproxy_server_sessions_total", ["proxy": "main", "server": "m"]) == 5)
        #expect(s2.value("haproxy_server_bytes_out_total", ["proxy": "main", "server": "m"]) == s1.value("haproxy_server_bytes_out_total", ["proxy": "main", "server": "m"]))
        #expect(s2.value("strata_reloads_total", ["result": "success"]) == 2)
        Self.expectGenerationsMatch(s2, try Self.generations(strata))

        // Traffic on the new generation adds to the carried counters (the keep-alive client too).
        for i in 0..<3 { #expect(client.get("/b\(i)")?.status == 200) }
        let s3 = try PrometheusScrape.scrape(port)
        let c3 = Self.counters(s3)
        Self.expectNoneWentBack(c2, c3)
        #expect(s3.value("haproxy_backend_http_requests_total", ["proxy": "main"]) == 8)
        #expect(s3.value("haproxy_server_sessions_total", ["proxy": "main", "server": "m"]) == 8)
        #expect(s3.value("haproxy_server_http_responses_total", ["proxy": "main", "server": "m", "code": "2xx"]) == 8)
        #expect((s3.value("haproxy_frontend_http_requests_total", ["proxy": "web"]) ?? 0)
                >= (s2.value("haproxy_frontend_http_requests_total", ["proxy": "web"]) ?? 0) + 3)

        // A failed reload changes nothing, and is counted as one.
        let before = try Self.generations(strata)
        try strata.write(Self.config(port: port, origin: origin.port, held: held.port, broken: true))
        #expect(try strata.admin("reload").hasPrefix("Success=0"))
        try strata.write(Self.config(port: port, origin: origin.port, held: held.port))
        let s4 = try PrometheusScrape.scrape(port)
        #expect(s4.value("strata_reloads_total", ["result": "success"]) == 2)
        #expect(s4.value("strata_reloads_total", ["result": "failure"]) == 1)
        #expect(s4.value("strata_reload_duration_seconds_count") == 3)
        #expect(s4.value("strata_reload_duration_seconds_bucket", ["le": "+Inf"]) == 3)
        #expect((s4.value("strata_reload_duration_seconds_sum") ?? 0) > 0)
        let afterFailure = try Self.generations(strata)
        #expect(afterFailure.map(\.id) == before.map(\.id))
        Self.expectGenerationsMatch(s4, afterFailure)
        Self.expectNoneWentBack(c3, Self.counters(s4))

        // And one more good reload: the counts go on, `show info` agrees.
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        let s5 = try PrometheusScrape.scrape(port)
        #expect(s5.value("strata_reloads_total", ["result": "success"]) == 3)
        #expect(s5.value("strata_reloads_total", ["result": "failure"]) == 1)
        Self.expectGenerationsMatch(s5, try Self.generations(strata))
        Self.expectNoneWentBack(c3, Self.counters(s5))
        let info = try strata.admin("show info")
        #expect(info.contains("FailedReloads: 1"), "\(info)")
        let current = try #require(try Self.generations(strata).first { $0.state == "active" })
        #expect(s5.series("strata_generation_info").contains { $0.labels["generation"] == String(current.id) && $0.labels["state"] == "active" })
    }
}
