import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `http-request early-hint NAME FMT`: `103 Early Hints` answers before the final one, grouped as
/// HAProxy groups them, to HTTP/1.1 clients only; with a real origin and a raw socket.
@Suite(.serialized) struct HTTPEarlyHintTests {
    @Test func earlyHintsGoFirstGroupedByConsecutiveRules() throws {
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
                http-request early-hint Link "</style.css>; rel=preload; as=style"
                http-request early-hint Link "</app.js>; rel=preload; as=script"
                http-request early-hint X-Path %[path] if { path_beg /p }
                http-request return status 200 content-type text/plain string local if { path /local }
                default_backend app
            backend app
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        func exchange(_ request: String) throws -> String {
            let fd = try #require(TestSocket.connect(port))
            defer { close(fd) }
            TestSocket.setTimeout(fd, seconds: 10)
            #expect(TestSocket.sendAll(fd, request))
            return String(decoding: TestSocket.readToEnd(fd), as: UTF8.self)
        }
        let links = "Link: </style.css>; rel=preload; as=style\r\nLink: </app.js>; rel=preload; as=script\r\n"
        // Two unconditional rules make one 103; the conditional one starts another.
        let served = try exchange("GET /p1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(served.hasPrefix("HTTP/1.1 103 Early Hints\r\n" + links + "\r\nHTTP/1.1 103 Early Hints\r\nX-Path: /p1\r\n\r\nHTTP/1.1 200 OK\r\n"),
                "\(served)")
        #expect(served.contains("GET /p1 HTTP/1.1"), "the origin answered: \(served)")
        // Before strata's own answer too.
        let local = try exchange("GET /local HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(local.hasPrefix("HTTP/1.1 103 Early Hints\r\n" + links + "\r\nHTTP/1.1 200 OK\r\n"), "\(local)")
        #expect(local.hasSuffix("local"))
        // HTTP/1.0 knows no 1xx: none is sent.
        let old = try exchange("GET /p2 HTTP/1.0\r\nHost: x\r\n\r\n")
        #expect(old.hasPrefix("HTTP/1.1 200 OK\r\n") || old.hasPrefix("HTTP/1.0 200 OK\r\n"), "\(old)")
        // curl reads the interim answer and then the final one.
        let curl = runTool("curl", ["-sS", "-v", "-o", "/dev/null", "http://127.0.0.1:\(port)/x"])
        #expect(curl.stderr.contains("< HTTP/1.1 103 Early Hints") && curl.stderr.contains("< HTTP/1.1 200 OK"), "\(curl.stderr)")
    }
}
