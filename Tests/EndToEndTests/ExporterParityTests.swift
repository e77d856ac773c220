import Foundation
import Glibc
import StrataTestSupport
import Testing

/// The exporter under HAProxy's names: for the same configuration, the metric families strata
/// exports beside those HAProxy 2.6 exports (started by the test when `haproxy` is installed),
/// with only the exceptions listed here, each with its reason; `promtool check metrics` finds
/// nothing to say (HAProxy's own output has one complaint); `scope` and `no-maint` select as
/// HAProxy's parameters do.
@Suite(.serialized) struct ExporterParityTests {
    /// HAProxy 2.6 families strata does not export, and why.
    static let missing: [String: String] = [
        "haproxy_frontend_failed_header_rewriting_total": "a rewrite that does not fit is not counted apart yet",
        "haproxy_backend_failed_header_rewriting_total": "a rewrite that does not fit is not counted apart yet",
        "haproxy_server_failed_header_rewriting_total": "a rewrite that does not fit is not counted apart yet",
        "haproxy_frontend_internal_errors_total": "strata's internal errors are not counted per proxy yet",
        "haproxy_backend_internal_errors_total": "strata's internal errors are not counted per proxy yet",
        "haproxy_server_internal_errors_total": "strata's internal errors are not counted per proxy yet",
        "haproxy_server_need_connections_current": "HAProxy's estimate of connections needed has no equivalent in strata's pool",
    ]

    static func config(port: UInt16, down: UInt16, other: UInt16, admin: String) -> String {
        """
        global
            stats socket \(admin) level admin
        defaults
            mode http
            timeout connect 2s
            timeout client 30s
            timeout server 30s
        frontend web
            bind 127.0.0.1:\(port)
            http-request use-service prometheus-exporter if { path /metrics }
            default_backend app
        backend app
            server s1 127.0.0.1:\(down) check inter 500
            server s2 127.0.0.1:\(other)
        """
    }

    /// The family names of an exposition text (its `# TYPE` lines) and their types.
    static func families(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let words = line.split(separator: " ")
            if words.count >= 4 { out[String(words[2])] = String(words[3]) }
        }
        return out
    }

    static func get(_ port: UInt16, _ path: String) throws -> String {
        let client = try #require(TestHTTPClient(port: port))
        let answer = try #require(client.get(path))
        #expect(answer.status == 200)
        return answer.body
    }

    @Test func familiesAreHAProxysAndPromtoolFindsNothing() throws {
        let port = TestSocket.freePort(), down = TestSocket.freePort(), other = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, down: down, other: other, admin: "@ADMIN@"))
        defer { strata.stop() }
        try #require(strata.waitForAdmin())
        #expect(eventually(seconds: 10) { ((try? strata.admin("show stat")) ?? "").contains("app,s1,") })
        let text = try Self.get(port, "/metrics")
        let ours = Self.families(text)
        // strata's own series keep their prefix; every other family is HAProxy's.
        #expect(ours.keys.allSatisfy { $0.hasPrefix("haproxy_") || $0.hasPrefix("strata_") })
        #expect(ours.keys.filter { $0.hasPrefix("strata_") }.allSatisfy {
            $0.hasPrefix("strata_generation") || $0.hasPrefix("strata_reload") || $0.hasPrefix("strata_resolver")
                || $0.hasPrefix("strata_canary") || $0.hasPrefix("strata_h2_")
        })
        for family in ["haproxy_process_nbthread", "haproxy_process_build_info", "haproxy_frontend_max_session_rate",
                       "haproxy_backend_agg_server_status", "haproxy_backend_uweight", "haproxy_server_downtime_seconds_total",
                       "haproxy_server_connection_attempts_total", "strata_generation_info", "strata_reloads_total"] {
            #expect(ours[family] != nil, "\(family)")
        }
        for name in Self.missing.keys { #expect(ours[name] == nil, "\(name) is exported now: take it off the exceptions") }

        if runTool("promtool", ["--version"]).status == 0 || TestTools.inCI {
            let check = runTool("promtool", ["check", "metrics"], input: text)
            #expect(check.status == 0 && check.stdout.isEmpty && check.stderr.isEmpty,
                    "promtool: \(check.stdout)\(check.stderr)")
        }

        guard TestTools.haproxy != nil || TestTools.inCI else { return }
        try TestTools.require(TestTools.haproxy != nil, "haproxy")
        let hport = TestSocket.freePort()
        let haproxy = try HAProxyProcess(config: Self.config(port: hport, down: down, other: other, admin: "@SOCKET@"))
        defer { haproxy.stop() }
        try haproxy.waitUntilReady()
        let theirs = Self.families(try Self.get(hport, "/metrics"))
        #expect(theirs.count > 150)
        let notOurs = Set(theirs.keys).subtracting(ours.keys).subtracting(Self.missing.keys)
        #expect(notOurs.isEmpty, "HAProxy exports, strata does not: \(notOurs.sorted())")
        let notTheirs = Set(ours.keys).filter { $0.hasPrefix("haproxy_") }.subtracting(theirs.keys)
        #expect(notTheirs.isEmpty, "strata exports under HAProxy's prefix, HAProxy does not: \(notTheirs.sorted())")
        for (name, type) in ours where theirs[name] != nil && name != "haproxy_process_failed_resolutions" {
            #expect(theirs[name] == type, "\(name): \(type), HAProxy's \(theirs[name]!)")
        }
    }

    /// `scope` keeps the families of the scopes named (`scope=` alone: none), `no-maint` leaves
    /// out the servers in maintenance.
    @Test func scopeAndNoMaint() throws {
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, down: TestSocket.freePort(), other: TestSocket.freePort(),
                                                           admin: "@ADMIN@"))
        defer { strata.stop() }
        try #require(strata.waitForAdmin())
        let servers = Self.families(try Self.get(port, "/metrics?scope=server")).keys
        #expect(!servers.isEmpty && servers.allSatisfy { $0.hasPrefix("haproxy_server_") })
        let two = Self.families(try Self.get(port, "/metrics?scope=frontend&scope=backend")).keys
        #expect(two.contains("haproxy_frontend_current_sessions") && two.contains("haproxy_backend_current_sessions"))
        #expect(!two.contains { $0.hasPrefix("haproxy_server_") || $0.hasPrefix("haproxy_process_") })
        #expect(Self.families(try Self.get(port, "/metrics?scope=global")).keys.allSatisfy { $0.hasPrefix("haproxy_process_") })

        #expect(try strata.admin("disable server app/s1") == "")
        let all = try Self.get(port, "/metrics?scope=server")
        let noMaint = try Self.get(port, "/metrics?scope=server&no-maint")
        #expect(all.contains("server=\"s1\""))
        #expect(!noMaint.contains("server=\"s1\"") && noMaint.contains("server=\"s2\""))
    }
}
