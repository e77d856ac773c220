import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `stats http-request allow|deny|auth`: the first rule that applies decides who gets the stats
/// page, as HAProxy's; with `auth unless { http_auth(LIST) }` as its documentation shows.
@Suite(.serialized) struct StatsHTTPRequestTests {
    @Test func theFirstApplyingRuleDecides() throws {
        let origin = try TestHTTPOrigin("app")
        let port = TestSocket.freePort(), guarded = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            userlist ops
                user admin insecure-password secret
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend fe
                bind 127.0.0.1:\(port)
                stats enable
                stats uri /stats
                stats http-request deny if { req.hdr(x-block) -m found }
                stats http-request auth realm Ops if { req.hdr(x-login) -m found }
                stats http-request allow
                default_backend app
            frontend fe2
                bind 127.0.0.1:\(guarded)
                stats enable
                stats uri /stats
                stats http-request auth unless { http_auth(ops) }
                default_backend app
            backend app
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        func get(_ port: UInt16, _ extra: [String]) -> String {
            runTool("curl", ["-sS", "-i"] + extra + ["http://127.0.0.1:\(port)/stats;csv"]).stdout
        }
        #expect(get(port, []).hasPrefix("HTTP/1.1 200"), "\(get(port, []))")
        let blocked = get(port, ["-H", "X-Block: 1"])
        #expect(blocked.hasPrefix("HTTP/1.1 403") && blocked.contains("Request forbidden"), "\(blocked)")
        let login = get(port, ["-H", "X-Login: 1"])
        #expect(login.hasPrefix("HTTP/1.1 401") && login.contains("www-authenticate: Basic realm=\"Ops\""), "\(login)")
        // Other paths are not the page's business.
        #expect(runTool("curl", ["-sS", "http://127.0.0.1:\(port)/x"]).stdout.hasPrefix("origin=app"))

        let challenged = get(guarded, [])
        #expect(challenged.hasPrefix("HTTP/1.1 401") && challenged.contains("realm=\"HAProxy Statistics\""), "\(challenged)")
        #expect(get(guarded, ["-u", "admin:wrong"]).hasPrefix("HTTP/1.1 401"))
        #expect(get(guarded, ["-u", "admin:secret"]).hasPrefix("HTTP/1.1 200"))
    }
}
