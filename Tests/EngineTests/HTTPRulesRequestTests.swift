import ConfigModel
import StrataTestSupport
import Testing
@testable import Engine

@Suite struct HTTPRulesRequestTests {
    let pathIs = { (p: String) in condition([term(criterion(.path, .exact, .strings([p])))]) }

    // MARK: Rule order, allow, routing

    @Test func rulesRunInOrderAndAllowStops() throws {
        let harness = try RulesHarness {
            $0.requestRules = [
                requestRule(.allow, condition([term(criterion(.source, .ip, .networks([IPNetwork(address: IPAddress("192.0.2.0")!, prefixLength: 24)])))])),
                requestRule(.deny(status: 403)),
            ]
        }
        #expect(harness.run("GET / HTTP/1.1", "Host: a").isForwarded)
        harness.connection.client = SocketEndpoint(address: IPAddress("203.0.113.1")!, port: 1)
        #expect(harness.run("GET / HTTP/1.1", "Host: a").status == 403)
    }

    @Test func laterRulesSeeEarlierRewrites() throws {
        let harness = try RulesHarness {
            $0.requestRules = [
                requestRule(.setHeader(name: "X-Role", value: text("admin")), pathIs("/a")),
                requestRule(.setPath(text("/rewritten")), pathIs("/a")),
                requestRule(.deny(status: 403), condition([term(criterion(.header("x-role", occurrence: nil), .exact, strings("admin"))),
                                                           term(criterion(.path, .exact, strings("/rewritten")))])),
            ]
        }
        #expect(harness.run("GET /a HTTP/1.1", "Host: a").status == 403)
        #expect(harness.run("GET /b HTTP/1.1", "Host: a", "X-Role: admin").isForwarded)
    }

    @Test func useBackendThenBackendRules() throws {
        let fe = httpProxy("fe", kind: .frontend) {
            $0.backendRules = [BackendSwitchRule(location: rulesLocation, backend: "api",
                                                 condition: condition([term(criterion(.path, .prefix, strings("/api")))]))]
            $0.requestRules = [requestRule(.setHeader(name: "X-Stage", value: text("fe")))]
            $0.redirectRules = [RedirectRule(location: rulesLocation, redirect: Redirect(kind: .location(text("/moved"))),
                                             condition: condition([term(criterion(.path, .exact, strings("/old")))]))]
        }
        var feWithDefault = fe
        feWithDefault.defaultBackend = "web"
        let api = httpProxy("api", kind: .backend) {
            $0.requestRules = [requestRule(.addHeader(name: "X-Stage", value: format(.literal("be "), .variable("b")))),
                               requestRule(.deny(status: 403), condition([term(criterion(.path, .exact, strings("/api/private")))]))]
        }
        let web = httpProxy("web", kind: .backend)
        let harness = try RulesHarness(feWithDefault, backends: [api, web])
        let toAPI = harness.run("GET /api/x HTTP/1.1", "Host: a")
        #expect(toAPI.backend == "api")
        #expect(toAPI.forwarded == "GET /api/x HTTP/1.1\r\nHost: a\r\nX-Stage: fe\r\nX-Stage: be api\r\n\r\n")
        let toWeb = harness.run("GET /x HTTP/1.1", "Host: a")
        #expect(toWeb.isForwarded && toWeb.backend == nil)
        #expect(toWeb.forwarded == "GET /x HTTP/1.1\r\nHost: a\r\nX-Stage: fe\r\n\r\n")
        #expect(harness.run("GET /api/private HTTP/1.1", "Host: a").status == 403)
        #expect(harness.run("GET /old HTTP/1.1", "Host: a").status == 302)
        // No backend at all: 503.
        let lonely = try RulesHarness(fe)
        #expect(lonely.run("GET /x HTTP/1.1", "Host: a").answer == HTTPLocalResponse.errorPage(503).rendered())
    }

    @Test func useService() throws {
        let harness = try RulesHarness {
            $0.requestRules = [requestRule(.useService("prometheus-exporter"), pathIs("/metrics"))]
        }
        guard case .useService(let name) = harness.run("GET /metrics HTTP/1.1", "Host: a").decision else {
            Issue.record("not handed to the service")
            return
        }
        #expect(name == "prometheus-exporter")
        #expect(harness.run("GET / HTTP/1.1", "Host: a").isForwarded)
    }

    // MARK: Rewrites, written byte for byte

    func rewritten(_ action: HTTPRequestAction, _ lines: String...) throws -> String? {
        let harness = try RulesHarness { $0.requestRules = [requestRule(action)] }
        return harness.run(h1Message(lines.joined(separator: "\r\n"))).forwarded
    }

    @Test func headerRewrites() throws {
        #expect(try rewritten(.setHeader(name: "X-A", value: text("new")), "GET / HTTP/1.1", "X-A: 1", "Host: h", "x-a: 2")
                == "GET / HTTP/1.1\r\nHost: h\r\nX-A: new\r\n\r\n")
        #expect(try rewritten(.addHeader(name: "X-A", value: format(.literal("from "), sample(.source))), "GET / HTTP/1.1", "X-A: 1", "Host: h")
                == "GET / HTTP/1.1\r\nX-A: 1\r\nHost: h\r\nX-A: from 192.0.2.10\r\n\r\n")
        #expect(try rewritten(.delHeader(name: "x-a"), "GET / HTTP/1.1", "X-A: 1", "Host: h", "X-A: 2", "Accept: */*")
                == "GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n")
        #expect(try rewritten(.setHeader(name: "Host", value: format(sample(.header("host", occurrence: -1), .lower))),
                              "GET / HTTP/1.1", "Host: WWW.A.COM", "Accept: */*")
                == "GET / HTTP/1.1\r\nAccept: */*\r\nHost: www.a.com\r\n\r\n")
    }

    @Test func replaceHeaderAndValue() throws {
        #expect(try rewritten(.replaceHeader(name: "Cookie", regex: "(.*)(SESSIONID=[^;]*;? ?)(.*)", replacement: text("\\1\\3")),
                              "GET / HTTP/1.1", "Host: h", "Cookie: a=1; SESSIONID=xyz; b=2")
                == "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=2\r\n\r\n")
        // Whole value replaced when the regex matches anywhere; every occurrence; others untouched.
        #expect(try rewritten(.replaceHeader(name: "X-Host", regex: "^([^:]*):([0-9]+)$", replacement: text("\\2 on \\1")),
                              "GET / HTTP/1.1", "X-Host: a.b:81", "Host: h", "X-Host: nomatch", "x-host: c:82")
                == "GET / HTTP/1.1\r\nX-Host: 81 on a.b\r\nHost: h\r\nX-Host: nomatch\r\nx-host: 82 on c\r\n\r\n")
        #expect(try rewritten(.replaceValue(name: "X-Forwarded-For", regex: "^192\\.168\\.(.*)$", replacement: text("172.16.\\1")),
                              "GET / HTTP/1.1", "Host: h", "X-Forwarded-For: 192.168.1.1, 10.0.0.1,192.168.2.2")
                == "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 172.16.1.1, 10.0.0.1,172.16.2.2\r\n\r\n")
        // Case-sensitive, as HAProxy.
        #expect(try rewritten(.replaceHeader(name: "X-A", regex: "ABC", replacement: text("x")), "GET / HTTP/1.1", "Host: h", "X-A: abc")
                == "GET / HTTP/1.1\r\nHost: h\r\nX-A: abc\r\n\r\n")
    }

    @Test func targetAndMethodRewrites() throws {
        #expect(try rewritten(.setPath(text("/new/path")), "GET /old?q=1 HTTP/1.1", "Host: h")
                == "GET /new/path?q=1 HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(try rewritten(.setPath(format(.literal("/v2"), sample(.path))), "GET http://h/old?q=1 HTTP/1.1", "Host: h")
                == "GET http://h/v2/old?q=1 HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(try rewritten(.setQuery(text("a=b")), "GET /p?q=1 HTTP/1.1", "Host: h")
                == "GET /p?a=b HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(try rewritten(.setQuery(text("a=b")), "GET /p HTTP/1.1", "Host: h")
                == "GET /p?a=b HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(try rewritten(.setQuery(text("")), "GET /p HTTP/1.1", "Host: h")
                == "GET /p HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(try rewritten(.setQuery(text("")), "GET /p?x HTTP/1.1", "Host: h")
                == "GET /p? HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(try rewritten(.setURI(format(.literal("/x"), sample(.query))), "GET /p?y HTTP/1.1", "Host: h")
                == "GET /xy HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(try rewritten(.setMethod(text("POST")), "GET /p HTTP/1.1", "Host: h")
                == "POST /p HTTP/1.1\r\nHost: h\r\n\r\n")
        // A sample cannot put a space into the request line.
        #expect(try rewritten(.setPath(format(.literal("/"), sample(.header("x-p", occurrence: -1)))), "GET /p HTTP/1.1", "Host: h", "X-P: a b")
                == "GET /a%20b HTTP/1.1\r\nHost: h\r\nX-P: a b\r\n\r\n")
    }

    @Test func replacePathPathqAndURI() throws {
        // The configurations in the wild: strip a prefix, keep the query.
        #expect(try rewritten(.replaceTarget(part: .path, regex: "/_api(/)?(.*)", replacement: text("/\\2")),
                              "GET /_api/db/doc?rev=1 HTTP/1.1", "Host: h")
                == "GET /db/doc?rev=1 HTTP/1.1\r\nHost: h\r\n\r\n")
        // The part becomes the expanded replacement (HAProxy's exp_replace), not a substitution in it.
        #expect(try rewritten(.replaceTarget(part: .path, regex: "api", replacement: text("/v2")),
                              "GET /x/api/y HTTP/1.1", "Host: h")
                == "GET /v2 HTTP/1.1\r\nHost: h\r\n\r\n")
        // No match: the target is forwarded as it came.
        #expect(try rewritten(.replaceTarget(part: .path, regex: "^/nomatch", replacement: text("/z")),
                              "GET /p?q HTTP/1.1", "Host: h")
                == "GET /p?q HTTP/1.1\r\nHost: h\r\n\r\n")
        // An absolute-form keeps its scheme and authority; the path alone is matched.
        #expect(try rewritten(.replaceTarget(part: .path, regex: "^/old/(.*)$", replacement: text("/new/\\1")),
                              "GET http://h/old/a?b HTTP/1.1", "Host: h")
                == "GET http://h/new/a?b HTTP/1.1\r\nHost: h\r\n\r\n")
        // replace-pathq sees the query too.
        #expect(try rewritten(.replaceTarget(part: .pathQuery, regex: "^/p\\?id=([0-9]+)$", replacement: text("/item/\\1")),
                              "GET /p?id=42 HTTP/1.1", "Host: h")
                == "GET /item/42 HTTP/1.1\r\nHost: h\r\n\r\n")
        // replace-uri sees the whole target, scheme and authority included.
        #expect(try rewritten(.replaceTarget(part: .uri, regex: "^http://[^/]*(/.*)$", replacement: text("\\1")),
                              "GET http://h/a?b HTTP/1.1", "Host: h")
                == "GET /a?b HTTP/1.1\r\nHost: h\r\n\r\n")
    }

    @Test func failedRewriteIs500() throws {
        let harness = try RulesHarness { settings in
            settings.requestRules = (0..<40).map { _ in requestRule(.addHeader(name: "X-Big", value: text(String(repeating: "x", count: 300)))) }
        }
        #expect(harness.run("GET / HTTP/1.1", "Host: h").status == 500)
    }

    // MARK: What the server receives

    @Test func hopByHopFieldsAreRemoved() throws {
        let harness = try RulesHarness { _ in }
        let out = harness.run("GET / HTTP/1.1", "Host: h", "Connection: keep-alive, X-Secret", "Keep-Alive: 5", "X-Secret: s",
                              "Proxy-Connection: x", "TE: trailers", "Upgrade: h2c", "Accept: */*")
        #expect(out.forwarded == "GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n")
        harness.connectionHeader = .close
        #expect(harness.run("GET / HTTP/1.1", "Host: h").forwarded == "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        harness.connectionHeader = .upgrade
        #expect(harness.run("GET /ws HTTP/1.1", "Host: h", "Connection: Upgrade", "Upgrade: websocket").forwarded
                == "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
        // HTTP/1.0 keeps its version; kept alive, it says so.
        harness.connectionHeader = .keepAlive
        #expect(harness.run("GET / HTTP/1.0", "Connection: keep-alive").forwarded == "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    }

    @Test func hopByHopRemovalWithEdits() throws {
        let harness = try RulesHarness { $0.requestRules = [requestRule(.addHeader(name: "X-Added", value: text("1")))] }
        let out = harness.run("GET / HTTP/1.1", "Host: h", "Connection: close, X-Secret", "X-Secret: s", "A: 1", "B:  2 ", "C: 3")
        #expect(out.forwarded == "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nX-Added: 1\r\n\r\n")
    }

    @Test func forwardFor() throws {
        let harness = try RulesHarness { $0.forwardFor = ForwardedHeader(header: "X-Forwarded-For") }
        #expect(harness.run("GET / HTTP/1.1", "Host: h", "X-Forwarded-For: 1.1.1.1").forwarded
                == "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 192.0.2.10\r\n\r\n")
        harness.connection.client = SocketEndpoint(address: IPAddress("2001:db8::5")!, port: 1)
        #expect(harness.run("GET / HTTP/1.1", "Host: h").forwarded == "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 2001:db8::5\r\n\r\n")

        let except = try RulesHarness {
            $0.forwardFor = ForwardedHeader(header: "X-Client", except: IPNetwork(address: IPAddress("192.0.2.0")!, prefixLength: 24))
        }
        #expect(except.run("GET / HTTP/1.1", "Host: h").forwarded == "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        except.connection.client = SocketEndpoint(address: IPAddress("203.0.113.9")!, port: 1)
        #expect(except.run("GET / HTTP/1.1", "Host: h").forwarded == "GET / HTTP/1.1\r\nHost: h\r\nX-Client: 203.0.113.9\r\n\r\n")

        let ifNone = try RulesHarness { $0.forwardFor = ForwardedHeader(header: "X-Forwarded-For", ifNone: true) }
        #expect(ifNone.run("GET / HTTP/1.1", "Host: h", "x-forwarded-for: 1.1.1.1").forwarded
                == "GET / HTTP/1.1\r\nHost: h\r\nx-forwarded-for: 1.1.1.1\r\n\r\n")
        #expect(ifNone.run("GET / HTTP/1.1", "Host: h").forwarded == "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.10\r\n\r\n")
    }

    @Test func forwardForFrontendAndBackend() throws {
        var fe = httpProxy("fe", kind: .frontend) { $0.forwardFor = ForwardedHeader(header: "X-Forwarded-For", ifNone: true) }
        fe.defaultBackend = "be"
        let be = httpProxy("be", kind: .backend) { $0.forwardFor = ForwardedHeader(header: "X-Real-Client") }
        let harness = try RulesHarness(fe, backends: [be])
        // The backend's name wins, and it does not say if-none, so the header is added.
        #expect(harness.run("GET / HTTP/1.1", "Host: h", "X-Real-Client: x").forwarded
                == "GET / HTTP/1.1\r\nHost: h\r\nX-Real-Client: x\r\nX-Real-Client: 192.0.2.10\r\n\r\n")
    }

    @Test func originalTo() throws {
        let harness = try RulesHarness {
            $0.originalTo = ForwardedHeader(header: "X-Original-To")
            $0.forwardFor = ForwardedHeader(header: "X-Forwarded-For")
        }
        harness.connectionHeader = .close
        #expect(harness.run("GET / HTTP/1.1", "Host: h").forwarded
                == "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.10\r\nX-Original-To: 198.51.100.7\r\nConnection: close\r\n\r\n")
        let except = try RulesHarness {
            $0.originalTo = ForwardedHeader(header: "X-Original-To", except: IPNetwork(address: IPAddress("198.51.100.0")!, prefixLength: 24))
        }
        #expect(except.run("GET / HTTP/1.1", "Host: h").forwarded == "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    }

    // MARK: Redirects

    func redirect(_ r: Redirect, _ requestLine: String, host: String = "Host: www.example.com") throws -> String? {
        let harness = try RulesHarness { $0.redirectRules = [RedirectRule(location: rulesLocation, redirect: r, condition: nil)] }
        return harness.run(requestLine, host).answer
    }

    @Test func redirectLocation() throws {
        var r = Redirect(kind: .location(format(.literal("https://"), sample(.header("host", occurrence: -1)), .literal("/login"))))
        #expect(try redirect(r, "GET /a?b HTTP/1.1")
                == "HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: https://www.example.com/login\r\ncache-control: no-cache\r\n\r\n")
        r.code = 301
        r.setCookie = "SEEN=1"
        #expect(try redirect(r, "GET /a?b HTTP/1.1")
                == "HTTP/1.1 301 Moved Permanently\r\ncontent-length: 0\r\nlocation: https://www.example.com/login\r\nset-cookie: SEEN=1; path=/;\r\n\r\n")
    }

    @Test func redirectPrefix() throws {
        var r = Redirect(kind: .prefix(text("https://secure.example.com")))
        r.code = 308
        #expect(try redirect(r, "GET /a/b?c=d HTTP/1.1")
                == "HTTP/1.1 308 Permanent Redirect\r\ncontent-length: 0\r\nlocation: https://secure.example.com/a/b?c=d\r\n\r\n")
        r.dropQuery = true
        r.appendSlash = true
        r.code = 303
        r.clearCookie = "SEEN="
        #expect(try redirect(r, "GET /a/b?c=d HTTP/1.1")
                == "HTTP/1.1 303 See Other\r\ncontent-length: 0\r\nlocation: https://secure.example.com/a/b/\r\ncache-control: no-cache\r\nset-cookie: SEEN=; path=/; Max-Age=0;\r\n\r\n")
        #expect(try redirect(r, "GET /a/ HTTP/1.1").map { $0.contains("location: https://secure.example.com/a/\r\n") } == true)
        // `prefix /` adds nothing: a redirect to the same URL.
        var same = Redirect(kind: .prefix(text("/")))
        same.appendSlash = true
        #expect(try redirect(same, "GET /dir HTTP/1.1").map { $0.contains("location: /dir/\r\n") } == true)
    }

    @Test func redirectScheme() throws {
        var r = Redirect(kind: .scheme(text("https")))
        #expect(try redirect(r, "GET /p?q=1 HTTP/1.1")
                == "HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: https://www.example.com/p?q=1\r\ncache-control: no-cache\r\n\r\n")
        r.code = 307
        r.dropQuery = true
        #expect(try redirect(r, "GET /p?q=1 HTTP/1.1")
                == "HTTP/1.1 307 Temporary Redirect\r\ncontent-length: 0\r\nlocation: https://www.example.com/p\r\ncache-control: no-cache\r\n\r\n")
    }

    @Test func httpRequestRedirectIsARule() throws {
        let harness = try RulesHarness {
            $0.requestRules = [requestRule(.redirect(Redirect(kind: .scheme(text("https")))),
                                           condition([term(criterion(.sslFrontend, .boolean, .none), negated: true)]))]
        }
        #expect(harness.run("GET / HTTP/1.1", "Host: h").answer?.contains("location: https://h/\r\n") == true)
        harness.connection.isTLS = true
        #expect(harness.run("GET / HTTP/1.1", "Host: h").isForwarded)
    }
}
