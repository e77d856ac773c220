import Foundation
import Glibc
import StrataTestSupport
import Testing

/// HTTP mode with the real binary over real sockets: routing, header actions, keep-alive both
/// ways, pipelining, chunked bodies, 100-continue, WebSocket through a reload, keep-alive
/// connections across reloads, timeouts and error answers.
@Suite(.serialized) struct HTTPProxyTests {
    struct Origins {
        let main: TestHTTPOrigin
        let api: TestHTTPOrigin
        let b: TestHTTPOrigin
        init() throws {
            main = try TestHTTPOrigin("main")
            api = try TestHTTPOrigin("api")
            b = try TestHTTPOrigin("b")
        }
    }

    static func config(port: UInt16, _ o: Origins, main: UInt16? = nil, extraFrontend: String = "", timeouts: String = "") -> String {
        """
        global
            stats socket @ADMIN@ level admin
            log stdout format raw local0
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
            timeout http-request 1s
        \(timeouts)
            log global
            option httplog
        frontend web
            bind 127.0.0.1:\(port)
            acl is_api path_beg /api/
            acl host_b hdr(host) -i b.example
            http-request set-header X-Strata yes
            http-request del-header X-Secret
            http-response set-header X-Served-By strata
            option forwardfor
            redirect prefix https://secure.example code 301 if { path_beg /old/ }
            use_backend api if is_api
            use_backend b if host_b
        \(extraFrontend)
            default_backend main
        backend main
            server m 127.0.0.1:\(main ?? o.main.port)
        backend api
            server a 127.0.0.1:\(o.api.port)
        backend b
            server b 127.0.0.1:\(o.b.port)
        """
    }

    func start(_ o: Origins, port: UInt16, timeouts: String = "") throws -> StrataProcess {
        let strata = try StrataProcess(config: Self.config(port: port, o, timeouts: timeouts))
        #expect(strata.waitForAdmin())
        return strata
    }

    @Test func routesByHostAndPathAndAppliesHeaderActions() throws {
        let o = try Origins()
        let port = TestSocket.freePort()
        let strata = try start(o, port: port)
        let client = try #require(TestHTTPClient(port: port))
        let main = try #require(client.get("/index.html", headers: ["X-Secret: hunter2"]))
        #expect(main.status == 200)
        #expect(main.body.contains("origin=main"))
        #expect(main.body.contains("h=X-Strata: yes"))
        #expect(!main.body.contains("X-Secret"))
        #expect(main.body.contains("h=X-Forwarded-For: 127.0.0.1"))
        #expect(main.head.contains("X-Served-By: strata\r\n"))
        #expect(try #require(client.get("/api/users")).body.contains("origin=api"))
        #expect(try #require(client.get("/", host: "B.Example")).body.contains("origin=b"))
        let redirect = try #require(client.get("/old/page"))
        #expect(redirect.status == 301)
        #expect(redirect.head.lowercased().contains("location: https://secure.example/old/page\r\n"))
        // httplog lines name the backend and server that answered.
        #expect(strata.waitForOutput("web api/a "))
    }

    @Test func keepAliveBothSidesAndPipelining() throws {
        let o = try Origins()
        let port = TestSocket.freePort()
        let strata = try start(o, port: port)
        let client = try #require(TestHTTPClient(port: port))
        for i in 0..<5 {
            let r = try #require(client.get("/k\(i)"))
            #expect(r.body.contains("line=GET /k\(i) HTTP/1.1"))
            #expect(!r.head.lowercased().contains("connection: close"))
        }
        // Five requests in one write, answered in order on the same connection.
        client.send((0..<5).map { "GET /p\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
        for i in 0..<5 {
            #expect(try #require(client.readResponse()).body.contains("line=GET /p\(i) HTTP/1.1"))
        }
        // One client connection, one server connection reused for all ten requests.
        #expect(o.main.connections == 1)
        _ = strata
    }

    @Test func serverConnectionsAreReusedAcrossClients() throws {
        let o = try Origins()
        let port = TestSocket.freePort()
        let strata = try start(o, port: port)
        // http-reuse safe: a client's second request may ride a connection another client used.
        for _ in 0..<4 {
            let client = try #require(TestHTTPClient(port: port))
            #expect(client.get("/a")?.status == 200)
            #expect(client.get("/b")?.status == 200)
        }
        #expect(o.main.connections < 8)
        _ = strata
    }

    @Test func chunkedBodiesBothWays() throws {
        let o = try Origins()
        let port = TestSocket.freePort()
        let strata = try start(o, port: port)
        let client = try #require(TestHTTPClient(port: port))
        let chunks = ["hello ", String(repeating: "x", count: 40000), " bye"]
        client.send("POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + chunks.map { String($0.utf8.count, radix: 16) + "\r\n" + $0 + "\r\n" }.joined() + "0\r\n\r\n")
        let r = try #require(client.readResponse())
        #expect(r.status == 200)
        #expect(r.head.lowercased().contains("transfer-encoding: chunked"))
        #expect(r.body.contains("body=\(chunks.joined().utf8.count)\n"))
        #expect(r.body.contains("origin=main"))
        _ = strata
    }

    @Test func expectContinueIsRelayed() throws {
        let o = try Origins()
        let port = TestSocket.freePort()
        let strata = try start(o, port: port)
        let client = try #require(TestHTTPClient(port: port))
        client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        let interim = try #require(client.readResponse())
        #expect(interim.status == 100)
        client.send("12345")
        let final = try #require(client.readResponse())
        #expect(final.status == 200)
        #expect(final.body.contains("body=5\n"))
        _ = strata
    }

    @Test func webSocketTunnelSurvivesAReloadAndHoldsItsGeneration() throws {
        let o = try Origins()
        let port = TestSocket.freePort()
        let strata = try start(o, port: port)
        let client = try #require(TestHTTPClient(port: port))
        client.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let switching = try #require(client.readHead())
        #expect(switching.hasPrefix("HTTP/1.1 101 "))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        // The tunnel still echoes, and generation 1 drains with it.
        client.send("ping-through-reload")
        #expect(client.read(count: 19).map { String(decoding: $0, as: UTF8.self) } == "ping-through-reload")
        let rows = try strata.generations()
        #expect(rows.first?.id == 1 && rows.first?.state == "draining" && rows.first?.sessions == 1)
        shutdown(client.fd, Int32(SHUT_RDWR))
        #expect(try eventually { try strata.generations().map(\.id) == [2] })
    }

    @Test func keepAliveConnectionFollowsTheNewGenerationAndStaysOpen() throws {
        let o = try Origins()
        let other = try TestHTTPOrigin("other")
        let port = TestSocket.freePort()
        let strata = try start(o, port: port)
        let client = try #require(TestHTTPClient(port: port))
        #expect(try #require(client.get("/x")).body.contains("origin=main"))
        try strata.write(Self.config(port: port, o, main: other.port))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        let after = try #require(client.get("/y"))
        #expect(after.body.contains("origin=other"))
        #expect(!after.head.lowercased().contains("connection: close"))
        #expect(try strata.generations().map(\.id) == [2])
        // And again: the same connection, a third generation.
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(try #require(client.get("/z")).status == 200)
    }

    @Test func droppedListenerAnswersWithCloseThenCloses() throws {
        let o = try Origins()
        let port = TestSocket.freePort(), port2 = TestSocket.freePort()
        let strata = try start(o, port: port)
        let idle = try #require(TestHTTPClient(port: port))
        #expect(idle.get("/")?.status == 200)
        // A slow request is in flight when the listener goes away.
        let busy = try #require(TestHTTPClient(port: port))
        busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        usleep(300_000)
        try strata.write(Self.config(port: port2, o))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(idle.isClosedByPeer())
        let answer = try #require(busy.readResponse())
        #expect(answer.status == 200)
        #expect(answer.head.lowercased().contains("connection: close"))
        #expect(busy.isClosedByPeer())
        #expect(TestHTTPClient(port: port2)?.get("/")?.status == 200)
    }

    @Test func slowlorisIsClosedByTimeoutHTTPRequest() throws {
        let o = try Origins()
        let port = TestSocket.freePort()
        let strata = try start(o, port: port)
        let client = try #require(TestHTTPClient(port: port))
        client.send("GET / HTTP/1.1\r\nHost: x\r\n")
        let started = Date()
        let r = try #require(client.readResponse())
        #expect(r.status == 408)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(client.isClosedByPeer())
        #expect(o.main.connections == 0)
        _ = strata
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
    ])
    func smugglingAttemptsGet400(request: String) throws {
        let o = try Origins()
        let port = TestSocket.freePort()
        let strata = try start(o, port: port)
        let client = try #require(TestHTTPClient(port: port))
        client.send(request)
        let r = try #require(client.readResponse())
        #expect(r.status == 400)
        #expect(o.main.connections == 0)
        _ = strata
    }

    @Test func serverErrorsAre503And504() throws {
        let o = try Origins()
        let port = TestSocket.freePort()
        let closed = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, o, main: closed, timeouts: "    timeout server 1s\n    retries 1"))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        #expect(client.get("/")?.status == 503)
        let slow = try #require(TestHTTPClient(port: port))
        #expect(slow.get("/api/slow")?.status == 504)
    }
}

extension HTTPProxyTests {
    @Test func localAnswersKeepTheConnectionAlive() throws {
        let o = try Origins()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, o, extraFrontend: """
                http-request return status 200 content-type text/plain string "local answer" if { path /local }
                http-request deny if { path /denied }
            """))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        let local = try #require(client.get("/local"))
        #expect(local.status == 200)
        #expect(local.body == "local answer")
        #expect(!local.head.lowercased().contains("connection: close"))
        #expect(client.get("/denied")?.status == 403)
        // Same connection, still usable, now forwarded.
        #expect(try #require(client.get("/after")).body.contains("origin=main"))
        #expect(try #require(client.get("/old/x")).status == 301)
        #expect(client.get("/again")?.status == 200)
    }
}

extension HTTPProxyTests {
    @Test func bufferRequestWaitsForTheBodyAndAnswersContinue() throws {
        let o = try Origins()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, o, extraFrontend: "    option http-buffer-request"))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        client.send("POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
        // strata answers 100 itself and connects to no server before the body is in.
        #expect(client.readResponse()?.status == 100)
        usleep(200_000)
        #expect(o.main.connections == 0)
        client.send("0123456789")
        var final = try #require(client.readResponse())
        // The server's own 100 Continue may come first: skip interim answers.
        while final.status == 100 { final = try #require(client.readResponse()) }
        #expect(final.status == 200)
        #expect(final.body.contains("body=10\n"))
        #expect(o.main.connections == 1)
    }
}
