import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `hdr_val`/`req.hdr_val`/`res.hdr_val` (a header's value as an integer) and `set-log-level`.
@Suite(.serialized) struct HTTPHeaderValueTests {
    @Test func headerValuesReadAsIntegers() throws {
        let origin = try TestHTTPOrigin("a")
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
                acl big hdr_val(x-n) gt 10
                http-request deny deny_status 429 if big
                http-request set-header X-Double "%[req.hdr_val(x-n),mul(2)]"
                http-response set-header X-Length-Plus-One "%[res.hdr_val(content-length),add(1)]"
                default_backend app
            backend app
                server a 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        #expect(client.get("/", headers: ["X-N: 11"])?.status == 429)
        // A string compared as text would put "9" after "10"; an integer does not.
        let small = try #require(client.get("/", headers: ["X-N: 9"]))
        #expect(small.status == 200)
        #expect(small.body.contains("h=X-Double: 18\n"))
        // HAProxy's reading: a sign, the leading digits, nothing else; no digit is 0.
        #expect(try #require(client.get("/", headers: ["X-N: -4abc"])).body.contains("h=X-Double: -8\n"))
        #expect(try #require(client.get("/", headers: ["X-N: abc"])).body.contains("h=X-Double: 0\n"))
        let length = try #require(small.head.lowercased().split(separator: "\r\n").first { $0.hasPrefix("content-length: ") })
        let n = try #require(Int(length.dropFirst("content-length: ".count)))
        #expect(small.head.lowercased().contains("\r\nx-length-plus-one: \(n + 1)\r\n"))
    }

    @Test func setLogLevelSilencesOrRaisesTheRequestsLine() throws {
        let port = TestSocket.freePort(), filtered = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                option httplog
                timeout connect 1s
                timeout client 5s
                timeout server 5s
            frontend fe
                bind 127.0.0.1:\(port)
                log stdout format short local0
                http-request set-log-level err if { path /loud }
                http-request set-log-level silent if { path /quiet }
                http-request return status 200
            frontend notices
                bind 127.0.0.1:\(filtered)
                log stdout format short local0 notice
                http-request set-log-level notice if { path /notice }
                http-request return status 200
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        #expect(client.get("/ordinary")?.status == 200)
        #expect(client.get("/quiet")?.status == 200)
        #expect(client.get("/loud")?.status == 200)
        // A target that takes notice and above: an ordinary (info) line is left out.
        let other = try #require(TestHTTPClient(port: filtered))
        #expect(other.get("/info")?.status == 200)
        #expect(other.get("/notice")?.status == 200)
        #expect(strata.waitForOutput("GET /notice HTTP/1.1"))
        #expect(strata.waitForOutput("GET /loud HTTP/1.1"))
        let lines = strata.output.joined(separator: "\n").split(separator: "\n")
        // `short`: `<LEVEL>`.
        #expect(lines.contains { $0.hasPrefix("<6>") && $0.contains("GET /ordinary ") })
        #expect(lines.contains { $0.hasPrefix("<3>") && $0.contains("GET /loud ") })
        #expect(lines.contains { $0.hasPrefix("<5>") && $0.contains("GET /notice ") })
        #expect(!lines.contains { $0.contains("GET /quiet ") })
        #expect(!lines.contains { $0.contains("GET /info ") })
    }
}
