import Foundation
import Glibc
import StrataTestSupport
import Testing

/// A mode tcp frontend whose backend is in mode http: the connection becomes an HTTP one, as
/// HAProxy upgrades the stream. The TCP rules route on the first bytes; the HTTP backend's rules,
/// balancing and keep-alive apply to each request.
@Suite(.serialized) struct TCPToHTTPUpgradeTests {
    @Test func aTCPFrontendHandsHTTPToAnHTTPBackendAndTheRestToATCPOne() throws {
        let origin = try TestHTTPOrigin("web")
        let raw = try TestBackend(.nameThenEcho("raw"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
                log stdout format raw local0
            defaults
                timeout connect 2s
                timeout client 10s
                timeout server 10s
                log global
            frontend edge
                mode tcp
                bind 127.0.0.1:\(port)
                log-format "edge %ft %b/%s %{+Q}r"
                tcp-request inspect-delay 5s
                tcp-request content accept if HTTP
                use_backend web if HTTP
                default_backend raw
            backend web
                mode http
                http-request set-header X-Upgraded yes
                server o 127.0.0.1:\(origin.port)
            backend raw
                mode tcp
                server r 127.0.0.1:\(raw.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        // Two requests on one connection: both through the HTTP backend's rules.
        let client = try #require(TestHTTPClient(port: port))
        let first = try #require(client.get("/one"))
        let second = try #require(client.get("/two"))
        #expect(first.status == 200 && second.status == 200)
        #expect(first.body.contains("h=X-Upgraded: yes") && second.body.contains("line=GET /two HTTP/1.1"), "\(first.body)")
        #expect(strata.waitForOutput("edge edge web/o \"GET /two HTTP/1.1\""), "\(strata.output.suffix(4))")
        // Bytes that are not HTTP stay TCP, to the default backend.
        let fd = try #require(TestSocket.connect(port))
        defer { close(fd) }
        _ = TestSocket.sendAll(fd, "HELLO\n")
        var answer = [UInt8](repeating: 0, count: 64)
        let n = recv(fd, &answer, answer.count, 0)
        #expect(n > 0 && String(decoding: answer[..<max(n, 0)], as: UTF8.self).hasPrefix("raw"), "\(String(decoding: answer[..<max(n, 0)], as: UTF8.self))")
        // `show stat`: the sessions are counted once each on the frontend.
        #expect(try eventually { try strata.admin("show stat").contains("edge,FRONTEND,") })
    }
}
