import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `http-response return` (the server's answer dropped, strata's own sent) and the `silent-drop`
/// actions (the connection reset, nothing answered), over real sockets.
@Suite(.serialized) struct HTTPResponseReturnTests {
    /// What a read on `fd` sees: bytes, an orderly close (0), or a reset (ECONNRESET).
    enum ReadOutcome: Equatable {
        case bytes
        case closed
        case reset
        case other(Int32)
    }

    static func readOutcome(_ fd: Int32) -> ReadOutcome {
        TestSocket.setTimeout(fd, seconds: 5)
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = recv(fd, &buffer, buffer.count, 0)
        if n > 0 { return .bytes }
        if n == 0 { return .closed }
        return errno == ECONNRESET ? .reset : .other(errno)
    }

    /// The value of `column` in `show stat`'s row starting with `row`.
    static func stat(_ strata: StrataProcess, _ row: String, _ column: String) throws -> String {
        let stat = try strata.admin("show stat")
        let lines = stat.split(separator: "\n")
        let header = try #require(lines.first).dropFirst(2).split(separator: ",", omittingEmptySubsequences: false)
        let index = try #require(header.firstIndex(of: Substring(column)))
        let line = try #require(lines.first { $0.hasPrefix(row) })
        return String(line.split(separator: ",", omittingEmptySubsequences: false)[index])
    }

    @Test func aResponseReturnReplacesTheServersAnswer() throws {
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
                http-request set-var(txn.url) url
                http-response return status 418 content-type text/plain lf-string "was %[status] from %[res.hdr(x-origin)]" hdr X-Replaced "yes" if { var(txn.url) -m sub replace }
                default_backend app
            backend app
                server a 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        let replaced = try #require(client.get("/replace"))
        #expect(replaced.status == 418)
        #expect(replaced.body == "was 200 from a")
        #expect(replaced.head.lowercased().contains("\r\nx-replaced: yes\r\n"))
        #expect(replaced.head.lowercased().contains("content-type: text/plain"))
        #expect(!replaced.head.lowercased().contains("x-origin"))
        // The server saw the request; its 1 MiB answer is dropped, and the connection goes on.
        let big = try #require(client.get("/big?replace"))
        #expect(big.status == 418 && big.body == "was 200 from ")  // /big has no X-Origin
        let forwarded = try #require(client.get("/other"))
        #expect(forwarded.status == 200)
        #expect(forwarded.body.hasPrefix("origin=a\nline=GET /other HTTP/1.1\n"))
        #expect(origin.heads.count == 3)
        // A return is a local answer, not a refusal.
        #expect(try Self.stat(strata, "fe,FRONTEND,", "dresp") == "0")
    }

    @Test func aResponseReturnWithoutBodyAndAnUnmatchedOneForwards() throws {
        let origin = try TestHTTPOrigin("b")
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
                default_backend app
            backend app
                http-response return status 204 if { res.hdr(x-origin) c }
                http-response return status 503 content-type text/html string "<p>down</p>" if { res.hdr(x-origin) b }
                server b 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        let answer = try #require(client.get("/"))
        #expect(answer.status == 503)
        #expect(answer.body == "<p>down</p>")
        #expect(answer.head.lowercased().contains("content-length: 11\r\n"))
        #expect(client.get("/again")?.status == 503)
    }

    @Test func lfFileIsALogFormatReadAtLoad() throws {
        let origin = try TestHTTPOrigin("lf")
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let request = directory.appendingPathComponent("request.txt").path
        let response = directory.appendingPathComponent("response.txt").path
        try Data("path=%[path]\nmethod=%[method]\n".utf8).write(to: URL(fileURLWithPath: request))
        try Data("status=%[status] origin=%[res.hdr(x-origin)]".utf8).write(to: URL(fileURLWithPath: response))
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
                http-request return status 200 content-type text/plain lf-file \(request) if { path_beg /local }
                http-response return status 200 content-type text/plain lf-file \(response)
                default_backend app
            backend app
                server a 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        #expect(client.get("/local/x")?.body == "path=/local/x\nmethod=GET\n")
        #expect(client.get("/remote")?.body == "status=200 origin=lf")
    }

    @Test func httpRequestSilentDropResetsTheConnectionWithoutAnAnswer() throws {
        let origin = try TestHTTPOrigin("c")
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
                http-request silent-drop if { path /drop }
                default_backend app
            backend app
                server c 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        #expect(client.get("/ok")?.status == 200)
        client.send("GET /drop HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(Self.readOutcome(client.fd) == .reset)
        #expect(origin.heads.count == 1)
        #expect(try Self.stat(strata, "fe,FRONTEND,", "dreq") == "1")
    }

    @Test func httpResponseSilentDropResetsTheClientConnection() throws {
        let origin = try TestHTTPOrigin("d")
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
                http-request set-var(txn.path) path
                http-response silent-drop if { var(txn.path) /drop }
                default_backend app
            backend app
                server d 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        #expect(client.get("/ok")?.status == 200)
        client.send("GET /drop HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(Self.readOutcome(client.fd) == .reset)
        #expect(origin.heads.count == 2)
        #expect(try Self.stat(strata, "fe,FRONTEND,", "dresp") == "1")
        #expect(try Self.stat(strata, "app,BACKEND,", "dresp") == "1")
    }

    @Test func tcpRequestSilentDropResetsWhereRejectCloses() throws {
        let origin = try TestHTTPOrigin("e")
        let dropPort = TestSocket.freePort(), rejectPort = TestSocket.freePort(), contentPort = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                timeout connect 1s
                timeout client 5s
                timeout server 5s
            frontend drop
                mode tcp
                bind 127.0.0.1:\(dropPort)
                tcp-request connection silent-drop if { src 127.0.0.1 }
                default_backend app
            frontend reject
                mode tcp
                bind 127.0.0.1:\(rejectPort)
                tcp-request connection reject if { src 127.0.0.1 }
                default_backend app
            frontend content
                mode tcp
                bind 127.0.0.1:\(contentPort)
                tcp-request inspect-delay 2s
                tcp-request content silent-drop if { req.payload(0,4) -m bin 44524f50 }
                tcp-request content accept if { req.len gt 0 }
                default_backend app
            backend app
                mode tcp
                server e 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let dropped = try #require(TestSocket.connect(dropPort))
        defer { close(dropped) }
        #expect(Self.readOutcome(dropped) == .reset)
        let rejected = try #require(TestSocket.connect(rejectPort))
        defer { close(rejected) }
        #expect(Self.readOutcome(rejected) == .closed)
        #expect(try Self.stat(strata, "drop,FRONTEND,", "dcon") == "1")

        let content = try #require(TestSocket.connect(contentPort))
        defer { close(content) }
        TestSocket.sendAll(content, "DROP / HTTP/1.1\r\n\r\n")
        #expect(Self.readOutcome(content) == .reset)
        #expect(try Self.stat(strata, "content,FRONTEND,", "dreq") == "1")
        #expect(origin.connections == 0)
        // Other bytes go through.
        let passing = try #require(TestHTTPClient(port: contentPort))
        #expect(passing.get("/")?.status == 200)
    }
}
