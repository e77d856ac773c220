import ConfigModel
import StrataTestSupport
import Testing
@testable import Engine
@testable import HTTP1

@Suite struct HTTPRulesResponseTests {
    // MARK: http-response rules

    @Test func responseRules() throws {
        let harness = try RulesHarness {
            $0.responseRules = [
                responseRule(.delHeader(name: "Server")),
                responseRule(.setHeader(name: "X-Status", value: format(sample(.status)))),
                responseRule(.addHeader(name: "X-Via", value: text("strata"))),
                responseRule(.replaceHeader(name: "Location", regex: "^http://(.*)$", replacement: text("https://\\1"))),
                responseRule(.setStatus(404, reason: nil), condition([term(criterion(.status, .integer, .integers([.equal(410)])))])),
                responseRule(.setStatus(299, reason: "Fine"), condition([term(criterion(.responseHeader("x-odd", occurrence: nil), .found, .none))])),
            ]
        }
        _ = harness.run("GET / HTTP/1.1", "Host: h")
        let (_, out) = harness.respond("HTTP/1.1 302 Found", "Server: apache", "Location: http://h/x", "Content-Length: 0")
        #expect(out == "HTTP/1.1 302 Found\r\nLocation: https://h/x\r\nContent-Length: 0\r\nX-Status: 302\r\nX-Via: strata\r\n\r\n")
        let (_, gone) = harness.respond("HTTP/1.1 410 Gone", "Content-Length: 0")
        #expect(gone == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nX-Status: 410\r\nX-Via: strata\r\n\r\n")
        let (_, odd) = harness.respond("HTTP/1.1 200 OK", "X-Odd: 1", "Content-Length: 0")
        #expect(odd == "HTTP/1.1 299 Fine\r\nX-Odd: 1\r\nContent-Length: 0\r\nX-Status: 200\r\nX-Via: strata\r\n\r\n")
    }

    @Test func responseDenyIs502() throws {
        let harness = try RulesHarness {
            $0.responseRules = [responseRule(.deny(status: 502), condition([term(criterion(.responseHeader("x-leak", occurrence: nil), .found, .none))]))]
        }
        _ = harness.run("GET / HTTP/1.1", "Host: h")
        let (decision, _) = harness.respond("HTTP/1.1 200 OK", "X-Leak: secret", "Content-Length: 0")
        guard case .respond(let page) = decision else {
            Issue.record("not denied")
            return
        }
        #expect(page.rendered() == HTTPLocalResponse.errorPage(502).rendered())
        let (allowed, _) = harness.respond("HTTP/1.1 200 OK", "Content-Length: 0")
        guard case .forward = allowed else {
            Issue.record("denied")
            return
        }
    }

    @Test func backendRulesRunBeforeFrontendRules() throws {
        var fe = httpProxy("fe", kind: .frontend) {
            $0.responseRules = [responseRule(.addHeader(name: "X-Order", value: text("fe")))]
        }
        fe.defaultBackend = "be"
        let be = httpProxy("be", kind: .backend) {
            $0.responseRules = [responseRule(.addHeader(name: "X-Order", value: text("be"))),
                                responseRule(.allow),
                                responseRule(.addHeader(name: "X-Never", value: text("1")))]
        }
        let harness = try RulesHarness(fe, backends: [be])
        _ = harness.run("GET / HTTP/1.1", "Host: h")
        let (_, out) = harness.respond("HTTP/1.1 200 OK", "Content-Length: 0")
        #expect(out == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Order: be\r\nX-Order: fe\r\n\r\n")
    }

    @Test func responseHeadConnection() throws {
        let harness = try RulesHarness { _ in }
        _ = harness.run("GET / HTTP/1.0")
        let (_, ka) = harness.respond("HTTP/1.1 200 OK", "Connection: keep-alive", "Keep-Alive: timeout=5", "Transfer-Encoding: chunked",
                                      clientVersion: .http10)
        #expect(ka == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n")
        let (_, close) = harness.respond("HTTP/1.1 200 OK", "Content-Length: 3", connectionHeader: .close)
        #expect(close == "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n")
        let (_, upgrade) = harness.respond("HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", "Upgrade: websocket",
                                           connectionHeader: .upgrade)
        #expect(upgrade == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
    }

    // MARK: Cookie persistence

    func persistence(_ cookie: CookiePersistence) throws -> RulesHarness {
        var proxy = httpProxy { $0.cookie = cookie }
        proxy.servers = [server("s1", cookie: "s1"), server("s2", cookie: "s2"), server("backup", cookie: nil)]
        let harness = try RulesHarness(proxy)
        return harness
    }

    /// Runs a request through persistence; returns the designated server and the forwarded head.
    func request(_ harness: RulesHarness, _ lines: String..., usable: Set<Int> = [0, 1, 2]) -> (Int?, String?) {
        var designated: Int?
        harness.beforeWrite = { backend, head, input in
            designated = backend.persistentServer(head, input: input, scratch: harness.scratch) { usable.contains($0) }
        }
        let out = harness.run(h1Message(lines.joined(separator: "\r\n")))
        return (designated, out.forwarded)
    }

    @Test func insertIndirectNocache() throws {
        var cookie = CookiePersistence(name: "SRV", mode: .insert)
        cookie.indirect = true
        cookie.nocache = true
        cookie.httpOnly = true
        let harness = try persistence(cookie)

        // First visit: no cookie; the server is chosen by balancing; the answer sets it.
        let (none, first) = request(harness, "GET / HTTP/1.1", "Host: h")
        #expect(none == nil && first == "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        let (_, set) = harness.respond("HTTP/1.1 200 OK", "Content-Length: 0", "Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT", server: 1)
        #expect(set == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                + "Set-Cookie: SRV=s2; path=/; HttpOnly\r\nCache-control: private\r\n\r\n")

        // Next visit: the cookie designates s2 and is removed from the forwarded request.
        let (s2, again) = request(harness, "GET / HTTP/1.1", "Host: h", "Cookie: a=1; SRV=s2; b=2")
        #expect(s2 == 1)
        #expect(again == "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=2\r\n\r\n")
        // Same server: no new Set-Cookie; the server's own SRV cookie is removed.
        let (_, direct) = harness.respond("HTTP/1.1 200 OK", "Set-Cookie: SRV=mine", "Content-Length: 0", server: 1)
        #expect(direct == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

        // Only cookie on the line: the whole field goes. s2 down: nothing designated.
        let (down, alone) = request(harness, "GET / HTTP/1.1", "Host: h", "Cookie: SRV=s2", usable: [0])
        #expect(down == nil)
        #expect(alone == "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        // Served by s1 instead: a new cookie, and no Cache-control for an uncacheable answer.
        let (_, moved) = harness.respond("HTTP/1.1 200 OK", "Cache-Control: no-store", "Content-Length: 0", server: 0)
        #expect(moved == "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 0\r\nSet-Cookie: SRV=s1; path=/; HttpOnly\r\n\r\n")
        // A server without a cookie value clears it.
        _ = request(harness, "GET / HTTP/1.1", "Host: h")
        let (_, cleared) = harness.respond("HTTP/1.1 200 OK", "Content-Length: 0", server: 2)
        #expect(cleared == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nSet-Cookie: SRV=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/; HttpOnly\r\n\r\n")
    }

    @Test func insertWithoutIndirectKeepsTheCookie() throws {
        var cookie = CookiePersistence(name: "SRV", mode: .insert)
        cookie.secure = true
        let harness = try persistence(cookie)
        let (s1, out) = request(harness, "GET / HTTP/1.1", "Host: h", "Cookie: SRV=s1")
        #expect(s1 == 0)
        #expect(out == "GET / HTTP/1.1\r\nHost: h\r\nCookie: SRV=s1\r\n\r\n")
        let (_, direct) = harness.respond("HTTP/1.1 200 OK", "Content-Length: 0", server: 0)
        #expect(direct == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        _ = request(harness, "GET / HTTP/1.1", "Host: h", "Cookie: SRV=unknown")
        let (_, other) = harness.respond("HTTP/1.1 200 OK", "Content-Length: 0", server: 1)
        #expect(other == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nSet-Cookie: SRV=s2; path=/; Secure\r\n\r\n")
    }

    @Test func rewrite() throws {
        let harness = try persistence(CookiePersistence(name: "JSESSIONID", mode: .rewrite))
        let (s2, out) = request(harness, "GET / HTTP/1.1", "Host: h", "Cookie: JSESSIONID=s2")
        #expect(s2 == 1)
        #expect(out == "GET / HTTP/1.1\r\nHost: h\r\nCookie: JSESSIONID=s2\r\n\r\n")
        let (_, resp) = harness.respond("HTTP/1.1 200 OK", "Set-Cookie: JSESSIONID=abc123; Path=/app", "Set-Cookie: other=1",
                                        "Content-Length: 0", server: 0)
        #expect(resp == "HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID=s1; Path=/app\r\nSet-Cookie: other=1\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func prefix() throws {
        let harness = try persistence(CookiePersistence(name: "JSESSIONID", mode: .prefix))
        let (_, resp) = { () -> (HTTPResponseDecision, String?) in
            _ = request(harness, "GET / HTTP/1.1", "Host: h")
            return harness.respond("HTTP/1.1 200 OK", "Set-Cookie: JSESSIONID=abc123; Path=/", "Content-Length: 0", server: 1)
        }()
        #expect(resp == "HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID=s2~abc123; Path=/\r\nContent-Length: 0\r\n\r\n")
        // The server sees its own value again.
        let (s2, out) = request(harness, "GET / HTTP/1.1", "Host: h", "Cookie: x=1; JSESSIONID=s2~abc123")
        #expect(s2 == 1)
        #expect(out == "GET / HTTP/1.1\r\nHost: h\r\nCookie: x=1; JSESSIONID=abc123\r\n\r\n")
    }

    // MARK: Balancing keys

    @Test func balanceKeys() throws {
        let harness = try RulesHarness { _ in }
        func key(_ algorithm: BalanceAlgorithm, _ lines: String...) -> UInt64? {
            var parser = HTTPRequestParser()
            let bytes = h1Message(lines.joined(separator: "\r\n"))
            return bytes.withUnsafeBytes { input -> UInt64? in
                guard case .headersComplete = parser.parse(input) else { return nil }
                return harness.frontend.balanceKey(for: algorithm, parser.head, input: input, connection: harness.connection, scratch: harness.scratch)
            }
        }
        let sdbm = { (s: String) -> UInt64 in
            var h: UInt32 = 0
            for b in s.utf8 { h = UInt32(b) &+ (h << 6) &+ (h << 16) &- h }
            return UInt64(h)
        }
        #expect(key(.uri(whole: false), "GET /a/b?c=1 HTTP/1.1", "Host: h") == sdbm("/a/b"))
        #expect(key(.uri(whole: true), "GET /a/b?c=1 HTTP/1.1", "Host: h") == sdbm("/a/b?c=1"))
        #expect(key(.uri(whole: false), "GET /a/b?c=1 HTTP/1.1", "Host: h") == key(.uri(whole: false), "GET /a/b?d=2 HTTP/1.1", "Host: h"))
        #expect(key(.urlParameter("user"), "GET /p?x=1&user=bob HTTP/1.1", "Host: h") == sdbm("bob"))
        #expect(key(.urlParameter("user"), "GET /p?x=1 HTTP/1.1", "Host: h") == nil)
        #expect(key(.urlParameter("user"), "GET /p?user= HTTP/1.1", "Host: h") == nil)
        #expect(key(.header("X-Tenant"), "GET / HTTP/1.1", "Host: h", "x-tenant: acme, other") == sdbm("acme"))
        #expect(key(.header("X-Tenant"), "GET / HTTP/1.1", "Host: h") == nil)
        #expect(key(.roundRobin, "GET / HTTP/1.1", "Host: h") == nil)
    }

    // MARK: Captures

    @Test func capturedRequestHeaders() throws {
        let harness = try RulesHarness {
            $0.captures = [HeaderCapture(name: "Host", length: 8), HeaderCapture(name: "User-Agent", length: 32),
                           HeaderCapture(name: "X-Id", length: 4)]
        }
        _ = harness.run("GET / HTTP/1.1", "Host: www.example.com", "User-Agent: curl {7|8} \"x\"")
        #expect(String(decoding: harness.scratch.capturedRequestHeaders, as: UTF8.self) == "{www.exam|curl #7B7#7C8#7D #22x#22|}")
        // The last occurrence counts, whole (not split on commas).
        _ = harness.run("GET / HTTP/1.1", "Host: b", "X-Id: 1", "x-id: 2,3")
        #expect(String(decoding: harness.scratch.capturedRequestHeaders, as: UTF8.self) == "{b||2,3}")
        let none = try RulesHarness { _ in }
        _ = none.run("GET / HTTP/1.1", "Host: a")
        #expect(none.scratch.capturedRequestHeaders.isEmpty)
    }
}
