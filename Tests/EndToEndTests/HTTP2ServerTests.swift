import Foundation
import Glibc
import StrataTestSupport
import Testing

/// HTTP/2 to servers with the real binary: HTTP/1.1 (curl) and HTTP/2 clients through strata to a
/// python `h2` origin over h2c (`proto h2`) and TLS (`ssl alpn h2`), the translations both ways,
/// gRPC-style trailers end to end, streams of many clients on one server connection, a reload
/// that keeps it, and ALPN's choice of HTTP/1.1 followed.
@Suite(.serialized, .enabled(if: TestTools.available(TestTools.hasCurl && TestTools.pythonHas("h2")),
                             "curl or python3 h2 is not installed"))
struct HTTP2ServerTests {
    let pki = TLSTestPKI.shared

    func config(plain: UInt16, h2c: UInt16, server: String, extra: String = "") -> String {
        """
        global
            stats socket @ADMIN@ level admin
            log stdout format raw local0
            nbthread 1
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
            log global
        frontend fe
            bind 127.0.0.1:\(plain)
            bind 127.0.0.1:\(h2c) proto h2
            log-format "%ft %ST %{+Q}r %HV %b/%s"
            default_backend be
        backend be
            \(server)
        \(extra)
        """
    }

    func curl(_ arguments: [String]) -> (status: Int32, stdout: String, stderr: String) {
        runTool("curl", ["-sS", "--max-time", "10"] + arguments)
    }

    func info(_ strata: StrataProcess, _ field: String) throws -> Int? {
        let text = try strata.admin("show info")
        for line in text.split(separator: "\n") where line.hasPrefix("\(field): ") {
            return Int(line.dropFirst(field.count + 2))
        }
        return nil
    }

    @Test func http11ClientsReachAnH2cServer() throws {
        let origin = try TestH2Origin()
        let plain = TestSocket.freePort(), h2c = TestSocket.freePort()
        let strata = try StrataProcess(config: config(plain: plain, h2c: h2c, server: "server o 127.0.0.1:\(origin.port) proto h2"))
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let base = "http://127.0.0.1:\(plain)"

        // The head as pseudo-headers: Host became :authority, no connection-specific field.
        let get = curl(["-H", "Connection: keep-alive", "-H", "X-Custom: one", "\(base)/hello?x=1"])
        #expect(get.stdout.contains("h=:method: GET"), "\(get.stdout) \(get.stderr)")
        #expect(get.stdout.contains("h=:scheme: http"))
        #expect(get.stdout.contains("h=:path: /hello?x=1"))
        #expect(get.stdout.contains("h=:authority: 127.0.0.1:\(plain)"))
        #expect(get.stdout.contains("h=x-custom: one"))
        #expect(!get.stdout.contains("h=connection") && !get.stdout.contains("h=host:"), "\(get.stdout)")
        #expect(strata.waitForOutput("fe 200 \"GET /hello?x=1 HTTP/1.1\" HTTP/1.1 be/o"), "\(strata.output.joined(separator: "\n"))")

        // Bodies: with a length, and chunked (which HTTP/2 carries as DATA, without the framing).
        let posted = curl(["-d", "0123456789", "\(base)/post"])
        #expect(posted.stdout.contains("body=10") && posted.stdout.contains("h=content-length: 10"), "\(posted.stdout)")
        let streamed = runTool("sh", ["-c", "head -c 100000 /dev/zero | curl -sS --max-time 10 -T - \(base)/upload"])
        #expect(streamed.stdout.contains("body=100000"), "\(streamed.stdout) \(streamed.stderr)")
        #expect(!streamed.stdout.contains("transfer-encoding"))

        // Answers: without a length, chunked to the HTTP/1.1 client; 1 MiB across windows; 204; HEAD.
        let unsized = curl(["-i", "\(base)/nolength"])
        #expect(unsized.stdout.lowercased().contains("transfer-encoding: chunked"), "\(unsized.stdout)")
        #expect(unsized.stdout.contains("h=:path: /nolength"))
        let big = curl(["-o", "/dev/null", "-w", "%{http_code} %{size_download}", "\(base)/big"])
        let parts = big.stdout.split(separator: " ")
        #expect(parts.count == 2 && parts[0] == "200" && Int(parts[1])! > 1 << 20, "\(big.stdout) \(big.stderr)")
        let empty = curl(["-i", "\(base)/empty"])
        #expect(empty.stdout.hasPrefix("HTTP/1.1 204"), "\(empty.stdout)")
        let head = curl(["-I", "\(base)/head"])
        #expect(head.stdout.hasPrefix("HTTP/1.1 200") && head.stdout.contains("content-length:"), "\(head.stdout)")

        // Every request so far rode one connection to the server, as streams.
        #expect(try info(strata, "H2ServerConnectionsTotal") == 1)
        // A stream the server resets: an idempotent request is tried once more on a new
        // connection (as on a pooled HTTP/1.1 one), then it is the server's failure, 502. The
        // first connection goes on.
        let reset = curl(["-o", "/dev/null", "-w", "%{http_code}", "\(base)/reset"])
        #expect(reset.stdout == "502", "\(reset.stdout)")
        #expect(try info(strata, "H2ServerConnectionsTotal") == 2)
        let after = curl(["\(base)/after"])
        #expect(after.stdout.contains("conn=1"), "\(after.stdout)")
        // Connections without streams close once idle for the pool's lifetime (5 s).
        // (The retry's connection was its request's alone, and closed after it.)
        #expect(try info(strata, "H2ServerConnections") == 1)
        #expect(try eventually(seconds: 15, every: 0.5) { try info(strata, "H2ServerConnections") == 0 })
        let fresh = curl(["\(base)/fresh"])
        #expect(fresh.stdout.contains("conn=3"), "\(fresh.stdout)")
        #expect(try (info(strata, "H2ServerStreamsTotal") ?? 0) >= 10)
    }

    @Test func streamsOfManyClientsShareOneConnection() throws {
        let origin = try TestH2Origin()
        let plain = TestSocket.freePort(), h2c = TestSocket.freePort(), quick = TestSocket.freePort()
        let strata = try StrataProcess(config: config(plain: plain, h2c: h2c, server: "server o 127.0.0.1:\(origin.port) proto h2", extra: """
            frontend quick
                bind 127.0.0.1:\(quick)
                default_backend quick
            backend quick
                timeout server 200ms
                server o 127.0.0.1:\(origin.port) proto h2
            """))
        #expect(strata.waitForAdmin())
        // 20 clients at once, each on its own connection, each answered 0.5 s later by the
        // origin: they overlap, as streams of one server connection.
        let urls = (0..<20).flatMap { ["-w", "\\n", "http://127.0.0.1:\(plain)/slow/\($0)"] }
        let run = curl(["--parallel", "--parallel-max", "20"] + urls)
        #expect(run.stdout.components(separatedBy: "conn=1\n").count == 21, "\(run.stdout) \(run.stderr)")
        let overlap = run.stdout.split(separator: "\n").compactMap { $0.hasPrefix("maxopen=") ? Int($0.dropFirst(8)) : nil }.max()
        #expect((overlap ?? 0) > 1, "streams were open side by side: \(run.stdout)")
        #expect(try info(strata, "H2ServerConnectionsTotal") == 1)
        #expect(try info(strata, "H2ServerStreamsTotal") == 20)
        // The same per backend, in `show stat`'s h2 columns: `be` made the connection, not `quick`.
        let (_, rows) = try ObservabilityStatsTests.parseCSV(strata.admin("show stat"))
        let be = try #require(rows.first { $0["pxname"] == "be" && $0["svname"] == "BACKEND" })
        #expect(be["h2_total_connections"] == "1" && be["h2_backend_total_streams"] == "20", "\(be)")
        let quickRow = try #require(rows.first { $0["pxname"] == "quick" && $0["svname"] == "BACKEND" })
        #expect(quickRow["h2_total_connections"] == "0", "\(quickRow)")
        let last = curl(["http://127.0.0.1:\(plain)/last"])
        #expect(last.stdout.contains("conn=1") && last.stdout.contains("resets=0"), "\(last.stdout)")

        // A server slower than `timeout server`: 504, its stream is cancelled (RST_STREAM), the
        // late answer dropped, and the connection serves the next request.
        let timedOut = curl(["-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(quick)/slow/late"])
        #expect(timedOut.stdout == "504", "\(timedOut.stdout)")
        var next = ""
        #expect(eventually(seconds: 5, every: 0.1) {
            next = curl(["http://127.0.0.1:\(quick)/next"]).stdout
            return next.contains("resets=1")
        }, "\(next)")
        // (The second backend's server is a server of its own: a connection of its own.)
        #expect(next.contains("conn=2"), "\(next)")
        #expect(try info(strata, "H2ServerConnectionsTotal") == 2)
    }

    @Test func grpcTrailersPassEndToEnd() throws {
        let origin = try TestH2Origin()
        let plain = TestSocket.freePort(), h2c = TestSocket.freePort()
        let strata = try StrataProcess(config: config(plain: plain, h2c: h2c, server: "server o 127.0.0.1:\(origin.port) proto h2"))
        #expect(strata.waitForAdmin())
        // An HTTP/2 client: `te: trailers` reaches the server, its trailers reach the client.
        let h2 = curl(["--http2-prior-knowledge", "-v", "-H", "te: trailers", "-H", "content-type: application/grpc",
                       "--data-binary", "grpc-frame", "http://127.0.0.1:\(h2c)/grpc.Service/Call"])
        #expect(h2.stdout.contains("h=te: trailers"), "\(h2.stdout) \(h2.stderr)")
        #expect(h2.stdout.contains("h=content-type: application/grpc"))
        #expect(h2.stdout.contains("bodytext=grpc-frame"))
        #expect(h2.stderr.contains("< HTTP/2 200"), "\(h2.stderr)")
        #expect(h2.stderr.contains("< content-type: application/grpc"))
        #expect(h2.stderr.contains("< grpc-status: 0") && h2.stderr.contains("< grpc-message: fine"), "\(h2.stderr)")
        // An HTTP/1.1 client gets them as the chunked answer's trailer section.
        let h1 = runTool("python3", ["-c", """
            import socket
            s = socket.create_connection(('127.0.0.1', \(plain)))
            s.sendall(b'POST /grpc.Service/Call HTTP/1.1\\r\\nHost: x\\r\\nTE: trailers\\r\\nContent-Length: 3\\r\\n\\r\\nabc')
            s.settimeout(5)
            data = b''
            while not data.endswith(b'\\r\\n\\r\\n') or b'0\\r\\n' not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            print(data.decode())
            """])
        #expect(h1.stdout.lowercased().contains("transfer-encoding: chunked"), "\(h1.stdout) \(h1.stderr)")
        #expect(h1.stdout.contains("h=te: trailers"))
        #expect(h1.stdout.contains("0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n"), "\(h1.stdout)")
    }

    @Test func tlsFollowsALPNAndAReloadKeepsTheConnection() throws {
        let certificate = pki.path("default.pem")
        let h2Origin = try TestH2Origin(tls: (certificate, certificate, "h2"))
        let h1Origin = try TestH2Origin(tls: (certificate, certificate, "http/1.1"))
        let plain = TestSocket.freePort(), h2c = TestSocket.freePort(), other = TestSocket.freePort()
        func cfg(_ comment: String) -> String {
            config(plain: plain, h2c: h2c, server: "server o 127.0.0.1:\(h2Origin.port) ssl verify none alpn h2,http/1.1", extra: """
                backend h1
                    server o 127.0.0.1:\(h1Origin.port) ssl verify none alpn h2,http/1.1
                frontend other
                    bind 127.0.0.1:\(other)
                    # \(comment)
                    default_backend h1
                """)
        }
        let strata = try StrataProcess(config: cfg("first"))
        #expect(strata.waitForAdmin())
        // The server chose h2: HTTP/2 over TLS (:scheme https).
        let first = curl(["http://127.0.0.1:\(plain)/one"])
        #expect(first.stdout.contains("conn=1") && first.stdout.contains("h=:scheme: https"), "\(first.stdout) \(first.stderr)")
        // The server chose HTTP/1.1: strata speaks HTTP/1.1 to it, as ALPN said.
        let h1 = curl(["-i", "http://127.0.0.1:\(other)/"])
        #expect(h1.stdout.hasPrefix("HTTP/1.1 200") && h1.stdout.contains("h1 ok"), "\(h1.stdout) \(h1.stderr)")
        #expect(try info(strata, "H2ServerALPNChoseHTTP1") == 1)
        // A reload that leaves the server unchanged keeps its connection: the next stream rides it.
        try strata.write(cfg("second"))
        strata.signal(SIGHUP)
        #expect(strata.waitForOutput("generation 2 active"))
        let second = curl(["http://127.0.0.1:\(plain)/two"])
        #expect(second.stdout.contains("conn=1"), "\(second.stdout)")
        #expect(second.stdout.contains("h=:path: /two"))
    }
}
