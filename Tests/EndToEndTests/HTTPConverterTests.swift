import Foundation
import Glibc
import StrataTestSupport
import Testing

/// Converters in rules, as real configurations chain them: each header the origin receives is a
/// converter's output on a known input.
@Suite(.serialized) struct HTTPConverterTests {
    @Test func convertersTransformSamplesInOrder() throws {
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
                http-request set-header X-Word %[path,word(2,/)]
                http-request set-header X-Word-Last %[path,word(-1,/)]
                http-request set-header X-Field %[req.hdr(x-in),field(2,:)]
                http-request set-header X-Fields %[req.hdr(x-in),field(2,:,2)]
                http-request set-header X-Regsub %[path,regsub(/+,_,g)]
                http-request set-header X-Regsub-First %[path,regsub(^/api,/v2)]
                http-request set-header X-Len %[path,length]
                http-request set-header X-Add %[path,length,add(10),mul(2)]
                http-request set-header X-Hex %[req.hdr(x-raw),hex]
                http-request set-header X-B64 %[req.hdr(x-raw),base64]
                http-request set-header X-B64-Back %[req.hdr(x-raw),base64,b64dec]
                http-request set-header X-Url %[url_param(q),url_dec]
                http-request set-header X-Json %[req.hdr(x-quote),json]
                http-request set-header X-Bytes %[req.hdr(x-raw),bytes(1,3)]
                http-request set-header X-Mask %[src,ipmask(24)]
                http-request set-header X-Upper-Word %[path,word(1,/),upper]
                http-request set-header X-Crc %[req.hdr(x-raw),crc32]
                http-request deny if { path,length gt 40 }
                acl odd_len path,length,odd
                http-request set-header X-Odd yes if odd_len
                default_backend app
            backend app
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        let answer = try #require(client.get("/api//users/42?q=a%20b%2Bc", headers: [
            "X-In: one:two:three:four", "X-Raw: hello", "X-Quote: say \"hi\"\\now",
        ]))
        #expect(answer.status == 200)
        let b = answer.body
        #expect(b.contains("h=X-Word: users"), "\(b)")
        #expect(b.contains("h=X-Word-Last: 42"))
        #expect(b.contains("h=X-Field: two"))
        #expect(b.contains("h=X-Fields: two:three"))
        #expect(b.contains("h=X-Regsub: _api_users_42"))
        #expect(b.contains("h=X-Regsub-First: /v2//users/42"))
        #expect(b.contains("h=X-Len: 14"))
        #expect(b.contains("h=X-Add: 48"))
        #expect(b.contains("h=X-Hex: 68656C6C6F"))
        #expect(b.contains("h=X-B64: aGVsbG8="))
        #expect(b.contains("h=X-B64-Back: hello"))
        #expect(b.contains("h=X-Url: a b+c"))
        #expect(b.contains("h=X-Json: say \\\"hi\\\"\\\\now"), "\(b)")
        #expect(b.contains("h=X-Bytes: ell"))
        #expect(b.contains("h=X-Mask: 127.0.0.0"))
        #expect(b.contains("h=X-Upper-Word: API"))
        #expect(b.contains("h=X-Crc: 907060870"))
        #expect(!b.contains("h=X-Odd"))
        #expect(try #require(client.get("/odd1")).body.contains("h=X-Odd: yes"))
        #expect(try #require(client.get("/" + String(repeating: "x", count: 45))).status == 403)
    }

    /// The values are HAProxy 2.6's for the same line (`haproxy -f` with `return lf-string`).
    @Test func hashesConcatDebugAndVariableDefaultsAnswerAsHAProxy() throws {
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
                http-request set-var(txn.v) path,bytes(1)
                http-request return status 200 content-type text/plain lf-string "%[path,bytes(1),xxh3] %[path,bytes(1),xxh3(42)] %[path,bytes(1),xxh32] %[path,bytes(1),xxh32(7)] %[path,bytes(1),xxh64] %[path,bytes(1),xxh64(9)] %[path,bytes(1,1),concat(<,txn.v,>)] %[path,bytes(1,1),concat(,txn.none,)] %[var(txn.none,dflt)] %[var(txn.v,dflt)] %[path,bytes(1,1),debug(pfx)]"
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        let answer = try #require(client.get("/hello"))
        #expect(answer.body == "-7685981735718036227 -4973654939900610249 4211111929 2401278968 2794345569481354659 8283300412161402089 h<hello> h dflt hello h", "\(answer.body)")
        #expect(strata.waitForOutput("[debug] pfx: type=str <h>"), "\(strata.output)")
    }

    @Test func constantFetchesIifAndAnEmptyPatternFile() throws {
        let port = TestSocket.freePort()
        let dir = StrataProcess.makeDirectory().path
        // A pattern file of comments only: HAProxy takes it, and its ACL matches nothing.
        try "# no address listed yet\n\n".write(toFile: dir + "/blocked.lst", atomically: true, encoding: .utf8)
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
                acl blocked src -f \(dir)/blocked.lst
                http-request deny if blocked
                http-request return status 403 content-type text/plain string lan if { hdr_ip(x-ip) 10.0.0.0/8 }
                http-request set-path /changed
                http-request return status 200 content-type text/plain lf-string "%[capture.req.method] %[capture.req.uri] %[capture.req.ver] %[path] %[str(abc)] %[int(41),add(1)] %[bool(1),iif(yes,no)] %[bool(0),iif(yes,no)] %[path,length,odd,iif(odd,even)] [%[env(PATH)]] [%[env(STRATA_TEST_SURELY_UNSET)]]" if { str(on) -m str on }
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        let answer = try #require(client.get("/abc"))
        #expect(answer.status == 200)
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        // capture.req.*: the request line as sent, before set-path.
        #expect(answer.body == "GET /abc HTTP/1.1 /changed abc 42 yes no even [\(path)] []", "\(answer.body)")
        // hdr_ip: the header's value as an address; a value that is not one matches nothing.
        #expect(client.get("/abc", headers: ["X-IP:  10.1.2.3 "])?.status == 403)
        #expect(client.get("/abc", headers: ["X-IP: 192.0.2.1"])?.status == 200)
        #expect(client.get("/abc", headers: ["X-IP: 10.1.2.3.4"])?.status == 200)
    }

    @Test func theAnsweringServerIsAFetchOfTheResponseRules() throws {
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
                log stdout format raw local0
                log-format "jsonlog %[capture.req.uri,json(utf8s)] %[capture.req.method,lower,json]"
                http-response set-header X-Server %[srv_name]/%[srv_id]
                http-response set-header X-Served yes if { srv_id 2 }
                default_backend app
            backend app
                server down 127.0.0.1:1 disabled
                server first 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        let answer = try #require(client.get("/x"))
        // The second server line: id 2 (HAProxy numbers servers from 1 in their order).
        #expect(answer.head.lowercased().contains("x-server: first/2") && answer.head.lowercased().contains("x-served: yes"), "\(answer.head)")
        // json in a log line: HAProxy's escaping (`/` too).
        #expect(strata.waitForOutput("jsonlog \\/x get"), "\(strata.output.suffix(3))")
    }

    @Test func converterArgumentsTheyCannotTakeAreRefusedAtTheirLine() throws {
        let dir = StrataProcess.makeDirectory().path
        let config = dir + "/strata.cfg"
        try """
            frontend fe
                mode http
                bind 127.0.0.1:1
                http-request set-header X-A %[path,xxh3(abc)]
                http-request set-header X-B %[path,debug(pfx,buf1)]
                http-request set-header X-C %[path,concat(a,notascope,b)]
                http-request set-header X-D %[path,xxh32(99999999999)]
                default_backend b
            backend b
                mode http
                server s 127.0.0.1:2
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let check = runTool(StrataProcess.binary, ["-c", "-f", config])
        let out = check.stderr + check.stdout
        #expect(check.status == 1)
        #expect(out.contains("\(config):4: ") && out.contains("converter 'xxh3' expects an optional unsigned integer seed"), "\(out)")
        #expect(out.contains("\(config):5: ") && out.contains("an event sink ('buf1') is not supported"), "\(out)")
        #expect(out.contains("\(config):6: ") && out.contains("converter 'concat': 'notascope'"), "\(out)")
        #expect(out.contains("\(config):7: ") && out.contains("converter 'xxh32' expects"), "\(out)")
    }
}
