import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `http-response redirect location|prefix|scheme`: the server's answer gives way to a redirect,
/// `prefix` and `scheme` built from the request's path and Host as the request rules left them.
@Suite(.serialized) struct HTTPResponseRedirectTests {
    @Test func aResponseRuleRedirects() throws {
        let origin = try TestHTTPOrigin("app")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend fe
                bind 127.0.0.1:\(port)
                http-request set-path /rw%[path] if { path_beg /x }
                default_backend app
            backend app
                http-request set-var(txn.kind) req.hdr(x-kind)
                http-response redirect location /elsewhere code 303 if { var(txn.kind) -m str location }
                http-response redirect prefix https://new.example drop-query if { var(txn.kind) -m str prefix }
                http-response redirect scheme https code 308 if { var(txn.kind) -m str scheme } { res.hdr(x-origin) app }
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        func head(_ path: String, _ kind: String?) -> String {
            runTool("curl", ["-sS", "-i", "-H", "Host: site.test"] + (kind.map { ["-H", "X-Kind: \($0)"] } ?? [])
                    + ["http://127.0.0.1:\(port)\(path)"]).stdout
        }
        let location = head("/a", "location")
        #expect(location.hasPrefix("HTTP/1.1 303 See Other\r\n") && location.contains("location: /elsewhere\r\n"), "\(location)")
        let prefix = head("/x/a?q=1", "prefix")
        #expect(prefix.hasPrefix("HTTP/1.1 302 Found\r\n") && prefix.contains("location: https://new.example/rw/x/a\r\n"), "\(prefix)")
        let scheme = head("/s?z=1", "scheme")
        #expect(scheme.hasPrefix("HTTP/1.1 308 Permanent Redirect\r\n") && scheme.contains("location: https://site.test/s?z=1\r\n"), "\(scheme)")
        // No rule applies: the server's answer.
        let plain = head("/p", nil)
        #expect(plain.hasPrefix("HTTP/1.1 200 OK\r\n") && plain.contains("origin=app"), "\(plain)")
    }
}
