import Foundation
import Glibc
import StrataTestSupport
import Testing

/// What a request carries to its server about itself and its client: `unique-id-format` /
/// `unique-id-header` (the same ID at the server, in the response's rules and in the log line)
/// and `option forwarded` (RFC 7239), with the real binary, a real origin and real clients.
@Suite(.serialized) struct HTTPRequestIdentityTests {
    static func config(port: UInt16, origin: UInt16, frontend: String = "", backend: String = "") -> String {
        """
        global
            stats socket @ADMIN@ level admin
            log stdout format raw local0
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
            log global
        frontend web
            bind 127.0.0.1:\(port)
        \(frontend)
            default_backend b
        backend b
        \(backend)
            server s 127.0.0.1:\(origin)
        """
    }

    /// The documentation's format: the same ID at the origin, in `%[unique-id]` of a response
    /// rule and in the log's `%ID`; a new one for the next request on the connection.
    @Test func theUniqueIDReachesTheServerTheResponseRulesAndTheLog() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, frontend: #"""
                unique-id-format %{+X}o\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid
                unique-id-header X-Request-ID
                log-format "request-id=%ID status=%ST"
                http-response set-header X-Echo-ID %[unique-id]
            """#))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        var ids: [String] = []
        for _ in 0..<2 {
            let answer = try #require(client.get("/"))
            #expect(answer.status == 200)
            let sent = try #require(answer.body.split(separator: "\n").first { $0.hasPrefix("h=X-Request-ID: ") })
            let id = String(sent.dropFirst("h=X-Request-ID: ".count))
            // 127.0.0.1 is 7F000001; ports 4 hex digits, the date 8, counter and pid at least 4.
            #expect(id.wholeMatch(of: /7F000001:[0-9A-F]{4}_7F000001:[0-9A-F]{4}_[0-9A-F]{8}_[0-9A-F]{4,}:[0-9A-F]{4,}/) != nil, "\(id)")
            #expect(answer.head.contains("X-Echo-ID: \(id)\r\n"))
            #expect(strata.waitForOutput("request-id=\(id) status=200"))
            ids.append(id)
        }
        #expect(ids[0] != ids[1])
    }

    /// `%[uuid]`, the common modern format; a request answered by strata itself (no server)
    /// still logs its ID, made before its head went.
    @Test func aUUIDFormatIsLoggedEvenForALocalAnswer() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, frontend: """
                unique-id-format %[uuid()]
                unique-id-header X-Request-ID
                log-format "id=%ID path=%HP"
                http-request deny if { path /denied }
            """))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        let answer = try #require(client.get("/ok"))
        let sent = try #require(answer.body.split(separator: "\n").first { $0.hasPrefix("h=X-Request-ID: ") })
        let id = String(sent.dropFirst("h=X-Request-ID: ".count))
        #expect(id.wholeMatch(of: /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/) != nil, "\(id)")
        #expect(strata.waitForOutput("id=\(id) path=/ok"))
        let denied = try #require(TestHTTPClient(port: port)?.get("/denied"))
        #expect(denied.status == 403)
        #expect(strata.waitForOutput("path=/denied"))
        let logged = try #require(strata.output.first { $0.hasSuffix("path=/denied") })
        #expect(logged.wholeMatch(of: /id=[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12} path=\/denied/) != nil, "\(logged)")
    }

    /// `option forwarded` without parameters is HAProxy's `proto` and `for`; with them, each in
    /// HAProxy's order, the client's own `Forwarded` kept before strata's.
    @Test func optionForwardedAddsTheRFC7239Field() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, backend: """
                option forwarded proto host by for for_port
            """))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        let answer = try #require(client.get("/", host: "app.example:8080", headers: ["Forwarded: for=192.0.2.1"]))
        #expect(answer.status == 200)
        let fields = answer.body.split(separator: "\n").filter { $0.hasPrefix("h=Forwarded: ") }
        #expect(fields.count == 2)
        #expect(fields.first == "h=Forwarded: for=192.0.2.1")
        let ours = try #require(fields.last)
        #expect(ours.wholeMatch(of: /h=Forwarded: proto=http;host="app.example:8080";by=127.0.0.1;for="127.0.0.1:\d+"/) != nil, "\(ours)")

        // Without parameters, through curl.
        try strata.write(Self.config(port: port, origin: origin.port, backend: "    option forwarded"))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        let curl = runTool("curl", ["-s", "http://127.0.0.1:\(port)/"])
        #expect(curl.stdout.contains("h=Forwarded: proto=http;for=127.0.0.1\n"), "\(curl.stdout)")
    }

    /// The `-expr` forms: a value from the request, written when RFC 7239 allows it, obfuscated
    /// (`_…`) when it is a token, `unknown` (and no port) when it is neither.
    @Test func optionForwardedExpressions() throws {
        let origin = try TestHTTPOrigin("o")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, origin: origin.port, backend: """
                option forwarded host-expr req.hdr(x-host) by-expr req.hdr(x-by) for-expr req.hdr(x-for) for_port-expr req.hdr(x-port)
            """))
        #expect(strata.waitForAdmin())
        func forwarded(_ headers: [String]) throws -> String {
            let answer = try #require(TestHTTPClient(port: port)?.get("/", headers: headers))
            let field = answer.body.split(separator: "\n").first { $0.hasPrefix("h=Forwarded: ") }
            return String(try #require(field).dropFirst("h=Forwarded: ".count))
        }
        #expect(try forwarded(["X-Host: example.org", "X-By: 10.0.0.1", "X-For: [2001:db8::1]", "X-Port: 8443"])
                == #"host="example.org";by=10.0.0.1;for="[2001:db8::1]:8443""#)
        #expect(try forwarded(["X-Host: bad host", "X-By: edge-1", "X-For: hidden", "X-Port: _p1"])
                == #"host="";by=_edge-1;for="_hidden:_p1""#)
        #expect(try forwarded(["X-For: a b", "X-Port: 8 0"]) == #"host="";by=unknown;for="unknown""#)
        // Not a port (above 65535), but a token: obfuscated, as HAProxy writes it.
        #expect(try forwarded(["X-For: 192.0.2.7", "X-Port: 99999"]) == #"host="";by=unknown;for="192.0.2.7:_99999""#)
    }
}
