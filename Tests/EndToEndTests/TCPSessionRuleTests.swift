import CLibEV
import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `tcp-request session` with the real binary: evaluated once the session is validated (on the
/// addresses a PROXY header carried), rejecting by source without a log line (counted in
/// `dses`), and tracking stick counters per session, not per request.
@Suite(.serialized) struct TCPSessionRuleTests {
    static func entries(_ strata: StrataProcess, _ table: String) throws -> [String] {
        try strata.admin("show table \(table)").split(separator: "\n").dropFirst().map(String.init)
    }

    @Test func rejectBySourceAndTrackInModeTCPWithTheAddressesAPROXYHeaderCarried() throws {
        let backend = try TestBackend(.echo)
        let port = TestSocket.freePort(), proxied = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
                log stdout format raw local0
            defaults
                mode tcp
                timeout connect 2s
                timeout client 10s
                timeout server 10s
                log global
                option tcplog
            listen l
                bind 127.0.0.1:\(port)
                bind 127.0.0.1:\(proxied) accept-proxy
                stick-table type ip size 100 store conn_cnt,sess_cnt,gpc0
                tcp-request session reject if { src 127.0.0.3 }
                tcp-request session track-sc0 src
                tcp-request session sc-inc-gpc0(0)
                server s 127.0.0.1:\(backend.port)
            """)
        #expect(strata.waitForAdmin())
        func echoed(_ port: UInt16, from source: String, header: String = "") -> Bool {
            guard let fd = TestSocket.connect(port, from: source) else { return false }
            defer { close(fd) }
            _ = TestSocket.sendAll(fd, header + "ping\n")
            return TestSocket.readLine(fd) == "ping"
        }
        #expect(echoed(port, from: "127.0.0.2"))
        #expect(echoed(port, from: "127.0.0.2"))
        // Rejected: closed without a byte through, no log line, counted as a denied session.
        #expect(!echoed(port, from: "127.0.0.3"))
        #expect(eventually { (try? ProxyProtocolTests.stat(strata, proxy: "l", field: "dses")) == "1" })
        #expect(try ProxyProtocolTests.stat(strata, proxy: "l", field: "dcon") == "0")
        // The rules see the client a PROXY header names, not the balancer that sent it.
        #expect(!echoed(proxied, from: "127.0.0.2", header: "PROXY TCP4 127.0.0.3 127.0.0.1 4000 80\r\n"))
        #expect(echoed(proxied, from: "127.0.0.3", header: "PROXY TCP4 198.18.0.7 127.0.0.1 4000 80\r\n"))
        #expect(eventually { (try? ProxyProtocolTests.stat(strata, proxy: "l", field: "dses")) == "2" })
        // Each accepted session tracked once: counted as a session, its gpc0 raised once.
        #expect(eventually {
            let lines = (try? Self.entries(strata, "l")) ?? []
            return lines.contains { $0.contains(" key=127.0.0.2 ") && $0.contains(" conn_cnt=2 ") && $0.hasSuffix(" sess_cnt=2") && $0.contains(" gpc0=2 ") }
                && lines.contains { $0.contains(" key=198.18.0.7 ") && $0.hasSuffix(" sess_cnt=1") }
        }, "\((try? strata.admin("show table l")) ?? "")")
        #expect(try !Self.entries(strata, "l").contains { $0.contains("127.0.0.3") })
        #expect(strata.waitForOutput("l l/s "))
        #expect(!strata.output.contains { $0.hasPrefix("127.0.0.3:") })
    }

    @Test func inModeHTTPASessionIsTheConnectionNotEachRequest() throws {
        let server = try RecordingServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: ProxyProtocolTests.httpConfig(port: port, server: server.port, bindOptions: "", extra: """
                stick-table type ip size 100 store sess_cnt,http_req_cnt
                tcp-request session reject if { src 127.0.0.3 }
                tcp-request session track-sc1 src
            """))
        #expect(strata.waitForAdmin())
        let fd = try #require(TestSocket.connect(port, from: "127.0.0.2"))
        for path in ["/one", "/two"] {
            _ = TestSocket.sendAll(fd, "GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
            let head = TestSocket.readLine(fd)
            #expect(head?.hasPrefix("HTTP/1.1 200") == true)
            while let line = TestSocket.readLine(fd), line != "\r" {}
            _ = TestSocket.read(fd, count: 2)  // the RecordingServer's body: "ok"
        }
        close(fd)
        #expect(eventually {
            (try? Self.entries(strata, "web"))?.first { $0.contains(" key=127.0.0.2 ") }.map {
                $0.contains(" sess_cnt=1 ") && $0.contains(" http_req_cnt=2")
            } == true
        }, "\((try? strata.admin("show table web")) ?? "")")
        #expect(ProxyProtocolTests.request(port, header: [], path: "/rejected", from: "127.0.0.3").isEmpty)
        #expect(eventually { (try? ProxyProtocolTests.stat(strata, proxy: "web", field: "dses")) == "1" })
        #expect(!server.allBytes.contains("/rejected"))
    }

    /// After the TLS handshake the rules see what it said (`ssl_fc_sni`): an HTTP and a TCP
    /// frontend each reject a name, and let the others through.
    @Test func afterTheTLSHandshakeTheRulesSeeTheServerName() throws {
        let pki = TLSTestPKI.shared
        let server = try RecordingServer()
        let echo = try TestBackend(.echo)
        let http = TestSocket.freePort(), tcp = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
                crt-base \(pki.directory)
            defaults
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend web
                mode http
                bind 127.0.0.1:\(http) ssl crt default.pem
                tcp-request session reject if { ssl_fc_sni -i blocked.test }
                default_backend app
            backend app
                mode http
                server s 127.0.0.1:\(server.port)
            listen raw
                mode tcp
                bind 127.0.0.1:\(tcp) ssl crt default.pem
                tcp-request session reject if { ssl_fc_sni -i blocked.test }
                server s 127.0.0.1:\(echo.port)
            """)
        #expect(strata.waitForAdmin())
        let allowed = try #require(TLSTestClient(port: http, serverName: "ok.test"))
        #expect(allowed.get("/allowed") == "ok")
        // The handshake completes; then the session is closed without an answer.
        let blocked = try #require(TLSTestClient(port: http, serverName: "blocked.test"))
        #expect(blocked.get("/blocked") == nil)
        #expect(!server.allBytes.contains("/blocked"))
        let through = try #require(TLSTestClient(port: tcp, serverName: "ok.test"))
        through.send("ping\n")
        var byte = [UInt8](repeating: 0, count: 5)
        #expect(SSL_read(through.ssl, &byte, 5) == 5 && byte == Array("ping\n".utf8))
        let stopped = try #require(TLSTestClient(port: tcp, serverName: "blocked.test"))
        stopped.send("ping\n")
        #expect(SSL_read(stopped.ssl, &byte, 5) <= 0)
        #expect(eventually { (try? ProxyProtocolTests.stat(strata, proxy: "web", field: "dses")) == "1" })
        #expect(eventually { (try? ProxyProtocolTests.stat(strata, proxy: "raw", field: "dses")) == "1" })
    }
}
