import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `capture request header` and `capture response header` in the log (`%hr`, `%hs`, and
/// `option httplog`'s `{…}` fields), with the real binary and a real origin.
@Suite(.serialized) struct HTTPCaptureTests {
    @Test func responseHeadersAreCapturedBesideRequestHeaders() throws {
        let origin = try TestHTTPOrigin("capt")
        let port = TestSocket.freePort(), empty = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
                log stdout format raw local0
            defaults
                mode http
                log global
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend fe
                bind 127.0.0.1:\(port)
                capture request header User-Agent len 8
                capture response header X-Origin len 3
                capture response header X-Absent len 5
                capture response header Content-Length len 10
                log-format "fe %ST hr=%hr hs=%hs %{+Q}r"
                default_backend be
            frontend nothing
                bind 127.0.0.1:\(empty)
                option httplog
                capture response header X-Origin len 3
                capture response header Server len 3
                default_backend none
            backend be
                server o 127.0.0.1:\(origin.port)
            backend none
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")

        // The server's X-Origin ("capt") truncated to 3, an absent header empty, the length whole.
        let r = runTool("curl", ["-sS", "-D", "-", "-o", "/dev/null", "-A", "agent{1}|two", "http://127.0.0.1:\(port)/one"])
        let length = r.stdout.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .map { $0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces) } ?? "?"
        // Request side: truncated to 8 bytes, then `{`, `|`, `}` written #XX.
        #expect(strata.waitForOutput("fe 200 hr={agent#7B1#7D} hs={cap||\(length)} \"GET /one HTTP/1.1\""),
                "\(strata.output.joined(separator: "\n"))")

        // No server answered (503 from strata): the slots are there, empty, as HAProxy prints them.
        let none = runTool("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(empty)/x"])
        #expect(none.stdout == "503")
        #expect(strata.waitForOutput(" 503 ") && strata.output.joined().contains("{|} \"GET /x HTTP/1.1\""),
                "\(strata.output.joined(separator: "\n"))")
    }
}
