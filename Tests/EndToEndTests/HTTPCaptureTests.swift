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

    /// `declare capture`, `http-request capture … len|id`, `http-response capture … id` and
    /// `capture cookie`: the slots numbered as HAProxy numbers them, filled by the rules (a
    /// backend's included), read back by `capture.req.hdr(N)`/`capture.res.hdr(N)` in rules and
    /// in the log, and `%CC`/`%CS` (also in `option httplog`'s line).
    @Test func captureActionsFillNumberedSlots() throws {
        let origin = try TestHTTPOrigin("capt")
        let port = TestSocket.freePort(), plain = TestSocket.freePort()
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
                capture request header X-Host len 20
                declare capture request len 10
                http-request capture req.hdr(x-id) len 4
                http-request capture path id 1
                http-request set-header X-Slot %[capture.req.hdr(2)]
                capture response header X-Origin len 3
                declare capture response len 6
                http-response capture status id 1
                http-response set-header X-Res %[capture.res.hdr(0)]-%[capture.res.hdr(1)]
                capture cookie sess len 12
                log-format "fe hr=%hr hs=%hs cc=%CC cs=%CS r1=%[capture.req.hdr(1)] s1=%[capture.res.hdr(1)] %{+Q}r"
                default_backend be
            frontend logged
                bind 127.0.0.1:\(plain)
                option httplog
                capture cookie sess len 12
                default_backend be
            backend be
                http-request capture req.hdr(x-be) id 2 if { req.hdr(x-be) -m found }
                http-response add-header Set-Cookie "sessid=%[res.hdr(x-origin)]XYZ; Path=/"
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")

        let r = runTool("curl", ["-sS", "-D", "-", "-H", "X-Host: example", "-H", "X-Id: ab12345",
                                 "-H", "Cookie: other=1; sessid=abcdefghijklmnop", "http://127.0.0.1:\(port)/one/two/three"])
        // The rule after the capture reads slot 2; the answer's rule reads both response slots.
        #expect(r.stdout.lowercased().contains("x-slot: ab12"), "\(r.stdout)")
        #expect(r.stdout.contains("X-Res: cap-200"), "\(r.stdout)")
        // Slot 1: the path truncated to 10; slot 2: X-Id truncated to 4 (the backend's rule did
        // not match). The cookies as name=value truncated to 12, the response's after the rules.
        #expect(strata.waitForOutput(
            "fe hr={example|/one/two/t|ab12} hs={cap|200} cc=sessid=abcde cs=sessid=captX r1=/one/two/t s1=200 \"GET /one/two/three HTTP/1.1\""),
            "\(strata.output.joined(separator: "\n"))")

        // The backend's `id 2` overwrites the frontend's slot; no cookie sent: `%CC` is `-`.
        _ = runTool("curl", ["-sS", "-o", "/dev/null", "-H", "X-Id: zz", "-H", "X-Be: backend", "http://127.0.0.1:\(port)/b"])
        #expect(strata.waitForOutput("fe hr={|/b|back} hs={cap|200} cc=- cs=sessid=captX r1=/b s1=200 \"GET /b HTTP/1.1\""),
                "\(strata.output.joined(separator: "\n"))")

        // `option httplog`: HAProxy's `%CC %CS` between the bytes and the termination state.
        _ = runTool("curl", ["-sS", "-o", "/dev/null", "-H", "Cookie: sess=1", "http://127.0.0.1:\(plain)/h"])
        #expect(strata.waitForOutput(" sess=1 sessid=captX ---- "), "\(strata.output.joined(separator: "\n"))")
    }
}
