import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `http-after-response`: applied to every answer, the server's and strata's own (deny pages,
/// errors, return, raw errorfiles), the backend's rules before the frontend's.
@Suite(.serialized) struct HTTPAfterResponseTests {
    @Test func everyAnswerGoesThroughTheAfterResponseRules() throws {
        let origin = try TestHTTPOrigin("a")
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let page = directory.appendingPathComponent("503.http").path
        try Data("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown".utf8)
            .write(to: URL(fileURLWithPath: page))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 1s
                timeout client 5s
                timeout server 5s
            frontend fe
                bind 127.0.0.1:\(port)
                errorfile 503 \(page)
                http-request deny if { path /deny }
                http-request return status 200 content-type text/plain string returned if { path /return }
                http-request redirect location /elsewhere if { path /redirect }
                use_backend down if { path /down }
                http-after-response set-header X-After "%[status]"
                http-after-response add-header X-Order fe
                http-after-response del-header X-Origin
                http-after-response set-status 429 if { status 403 }
                default_backend app
            backend app
                http-after-response add-header X-Order be
                server a 127.0.0.1:\(origin.port)
            backend down
                server s 127.0.0.1:1 disabled
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))

        // The server's answer: the backend's rules, then the frontend's.
        let forwarded = try #require(client.get("/"))
        #expect(forwarded.status == 200)
        #expect(forwarded.body.hasPrefix("origin=a\n"))
        let head = forwarded.head.lowercased()
        #expect(head.contains("\r\nx-after: 200\r\n"))
        #expect(!head.contains("x-origin"))
        let be = try #require(head.range(of: "x-order: be\r\n")), fe = try #require(head.range(of: "x-order: fe\r\n"))
        #expect(be.lowerBound < fe.lowerBound)

        // A deny page, its status rewritten; the body is still the 403 page.
        let denied = try #require(client.get("/deny"))
        #expect(denied.status == 429)
        #expect(denied.head.lowercased().contains("\r\nx-after: 403\r\n"))
        #expect(denied.body.contains("403 Forbidden"))

        let returned = try #require(client.get("/return"))
        #expect(returned.status == 200 && returned.body == "returned")
        #expect(returned.head.lowercased().contains("\r\nx-after: 200\r\n"))

        let redirected = try #require(client.get("/redirect"))
        #expect(redirected.status == 302)
        #expect(redirected.head.lowercased().contains("\r\nlocation: /elsewhere\r\n"))
        #expect(redirected.head.lowercased().contains("\r\nx-after: 302\r\n"))

        // No server: the frontend's raw errorfile, rewritten too (and the connection closes).
        let down = try #require(client.get("/down"))
        #expect(down.status == 503)
        #expect(down.body == "down")
        #expect(down.head.lowercased().contains("\r\nx-after: 503\r\n"))
        #expect(down.head.lowercased().contains("\r\nx-order: fe\r\n"))
        #expect(down.head.lowercased().contains("connection: close"))
    }

    @Test func withoutAfterResponseRulesLocalAnswersAreUnchanged() throws {
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 1s
                timeout client 5s
                timeout server 5s
            frontend fe
                bind 127.0.0.1:\(port)
                http-request deny
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        let denied = try #require(client.get("/"))
        #expect(denied.status == 403)
        #expect(denied.head.hasPrefix("HTTP/1.1 403 Forbidden\r\ncontent-length: 93\r\ncache-control: no-cache\r\ncontent-type: text/html"))
    }
}
