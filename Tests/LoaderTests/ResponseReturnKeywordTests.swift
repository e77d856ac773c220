import ConfigModel
import Testing
@testable import Loader

/// `http-response return`, the `silent-drop` actions of http-request, http-response and
/// tcp-request: where they land, and what stays refused.
@Suite struct ResponseReturnKeywordTests {
    func proxy(_ text: String) throws -> Proxy {
        try #require(try load(text).config.proxy(named: "fe"))
    }

    @Test func httpResponseReturnReadsAsHTTPRequestReturnDoes() throws {
        let fe = try proxy("""
            frontend fe
                mode http
                bind 127.0.0.1:8080
                http-response return status 503 content-type text/plain lf-string "was %[status]" hdr X-Kind "%[res.hdr(x-origin)]" if { status 200 }
                http-response return status 204
                default_backend app
            backend app
                mode http
            """)
        let rules = fe.http.responseRules
        try #require(rules.count == 2)
        guard case .returnResponse(503, "text/plain", .string(let body), let headers) = rules[0].action else {
            Issue.record("\(rules[0].action)")
            return
        }
        #expect(body.source == "was %[status]")
        #expect(body.parts.contains(.sample(SampleExpression(fetch: .status))))
        #expect(headers.map(\.name) == ["X-Kind"])
        #expect(rules[0].condition != nil)
        guard case .returnResponse(204, nil, .none, []) = rules[1].action else {
            Issue.record("\(rules[1].action)")
            return
        }
    }

    @Test func httpResponseReturnRefusesWhatHTTPRequestReturnRefuses() {
        let base = "backend app\n    mode http\nfrontend fe\n    mode http\n    bind 127.0.0.1:8080\n    default_backend app\n"
        #expect(errors(base + "    http-response return status 200 string hello\n")
            == ["test.cfg:7: 'http-response return': a body needs 'content-type' (for example content-type text/plain)"])
        #expect(errors(base + "    http-response return status 304 content-type text/plain string x\n")
            == ["test.cfg:7: 'http-response return': a 304 answer has no body"])
        // A request fetch has nothing to read in a response rule.
        #expect(errors(base + "    http-response return status 200 content-type text/plain lf-string %[path]\n")
            == ["test.cfg:7: 'http-response return': 'path' needs the HTTP request headers: it cannot be used in an 'http-response' rule"])
        #expect(errors(base + "    http-response return status 200 errorfiles site\n")
            == ["test.cfg:7: 'errorfiles': unknown http-errors section 'site'"])
        let missing = errors(base + "    http-response return status 200 content-type text/plain lf-file /nonexistent/x\n")
        #expect(missing.count == 1 && missing[0].hasPrefix("test.cfg:7: 'http-response return': cannot read file '/nonexistent/x'"), "\(missing)")
    }

    @Test func silentDropIsAnActionOfEachRuleSet() throws {
        let fe = try proxy("""
            frontend fe
                mode http
                bind 127.0.0.1:8080
                tcp-request connection silent-drop if { src 10.0.0.0/8 }
                tcp-request content silent-drop if { src 10.1.0.0/16 }
                http-request silent-drop if { path /drop }
                http-response silent-drop if { status 500 }
                default_backend app
            backend app
                mode http
            """)
        #expect(fe.tcp.connection.map(\.action) == [.silentDrop])
        #expect(fe.tcp.content.map(\.action) == [.silentDrop])
        #expect(fe.http.requestRules.map(\.action) == [.silentDrop])
        #expect(fe.http.responseRules.map(\.action) == [.silentDrop])
        #expect(fe.http.requestRules[0].condition != nil)
    }

    @Test func silentDropTakesNoArgument() {
        let base = "backend app\n    mode http\nfrontend fe\n    mode http\n    bind 127.0.0.1:8080\n    default_backend app\n"
        #expect(errors(base + "    http-request silent-drop now\n")
            == ["test.cfg:7: unexpected argument 'now' to 'http-request silent-drop' (a condition starts with 'if' or 'unless')"])
        #expect(errors(base + "    http-response silent-drop 1\n")
            == ["test.cfg:7: unexpected argument '1' to 'http-response silent-drop' (a condition starts with 'if' or 'unless')"])
    }
}

/// `http-after-response`: the header, status and variable actions land in their own list.
@Suite struct AfterResponseKeywordTests {
    @Test func afterResponseRulesAreKeptApartFromResponseRules() throws {
        let loaded = try load("""
            frontend fe
                mode http
                bind 127.0.0.1:8080
                http-response set-header X-Response 1
                http-after-response set-header X-After "%[status]"
                http-after-response del-header Server
                http-after-response set-status 429 if { status 403 }
                http-after-response set-var(txn.code) status
                http-after-response allow
                default_backend app
            backend app
                mode http
                http-after-response add-header X-Backend yes
            """)
        let fe = try #require(loaded.config.proxy(named: "fe"))
        #expect(fe.http.responseRules.count == 1)
        let actions = fe.http.afterResponseRules.map(\.action)
        try #require(actions.count == 5)
        guard case .setHeader("X-After", let value) = actions[0] else { Issue.record("\(actions[0])"); return }
        #expect(value.parts == [.sample(SampleExpression(fetch: .status))])
        #expect(actions[1] == .delHeader(name: "Server"))
        #expect(actions[2] == .setStatus(429, reason: nil))
        #expect(actions[3] == .setVariable(name: "txn.code", value: SampleExpression(fetch: .status)))
        #expect(actions[4] == .allow)
        #expect(fe.http.afterResponseRules[2].condition != nil)
        let app = try #require(loaded.config.proxy(named: "app"))
        #expect(app.http.afterResponseRules.map(\.action) == [.addHeader(name: "X-Backend", value: SampleParser.literal("yes"))])
    }

    @Test func actionsAfterTheAnswerIsChosenAreRefused() {
        let base = "backend app\n    mode http\nfrontend fe\n    mode http\n    bind 127.0.0.1:8080\n    default_backend app\n"
        #expect(errors(base + "    http-after-response deny\n")
            == ["test.cfg:7: 'deny' is not an http-after-response action"])
        #expect(errors(base + "    http-after-response set-log-level silent\n")
            == ["test.cfg:7: 'http-after-response set-log-level' is not supported yet"])
        #expect(errors(base + "    http-after-response set-header X %[path]\n")
            == ["test.cfg:7: 'http-after-response set-header': 'path' needs the HTTP request headers: it cannot be used in an 'http-response' rule"])
    }
}

/// `hdr_val` fetches and `set-log-level`.
@Suite struct HeaderValueAndLogLevelKeywordTests {
    @Test func hdrValIsAnIntegerFetchOfEachSide() throws {
        let loaded = try load("""
            frontend fe
                mode http
                bind 127.0.0.1:8080
                acl big hdr_val(x-n) gt 10
                http-request set-header X "%[req.hdr_val(x-n,2)]"
                http-response set-header Y "%[res.hdr_val(content-length)]"
                http-request set-log-level silent if big
                http-response set-log-level err
                default_backend app
            backend app
                mode http
            """)
        let fe = try #require(loaded.config.proxy(named: "fe"))
        let big = try #require(fe.http.acls.first { $0.name == "big" }).criteria[0]
        #expect(big.sample.fetch == .headerValue("x-n", occurrence: nil))
        #expect(big.match == .integer && big.patterns == .integers([.greater(10)]))
        guard case .setHeader(_, let x) = fe.http.requestRules[0].action,
              case .setHeader(_, let y) = fe.http.responseRules[0].action else {
            Issue.record("\(fe.http.requestRules) \(fe.http.responseRules)")
            return
        }
        #expect(x.parts == [.sample(SampleExpression(fetch: .headerValue("x-n", occurrence: 2)))])
        #expect(y.parts == [.sample(SampleExpression(fetch: .responseHeaderValue("content-length", occurrence: -1)))])
        #expect(fe.http.requestRules[1].action == .setLogLevel(-1))
        #expect(fe.http.responseRules[1].action == .setLogLevel(3))
    }

    @Test func wrongUsesAreRefused() {
        let base = "backend app\n    mode http\nfrontend fe\n    mode http\n    bind 127.0.0.1:8080\n    default_backend app\n"
        #expect(errors(base + "    http-request set-log-level loud\n")
            == ["test.cfg:7: 'http-request set-log-level': unknown level 'loud' (expected emerg, alert, crit, err, warning, notice, info, debug or silent)"])
        #expect(errors(base + "    http-request set-log-level\n")
            == ["test.cfg:7: 'http-request set-log-level' expects a level (emerg, alert, crit, err, warning, notice, info, debug or silent)"])
        #expect(errors(base + "    http-request set-header X %[res.hdr_val(x)]\n")
            == ["test.cfg:7: 'http-request set-header': 'res.hdr_val' needs the HTTP response: it cannot be used in an 'http-request' rule"])
    }
}

/// `option abortonclose`: honored in mode http; refused on a TCP backend's own line; in a
/// frontend, HAProxy's warning.
@Suite struct AbortOnCloseKeywordTests {
    @Test func abortOnCloseIsABackendSideOption() throws {
        let loaded = try load("""
            defaults
                mode http
                option abortonclose
            backend inherits
                server s 127.0.0.1:1
            backend opts_out
                no option abortonclose
                server s 127.0.0.1:1
            """)
        #expect(try #require(loaded.config.proxy(named: "inherits")).http.abortOnClose)
        #expect(try #require(loaded.config.proxy(named: "opts_out")).http.abortOnClose == false)
    }

    @Test func aTCPBackendsOwnLineIsRefused() {
        #expect(errors("""
            backend t
                mode tcp
                option abortonclose
                server s 127.0.0.1:1
            """) == ["test.cfg:3: 'option abortonclose' is not supported yet in mode tcp (backend 't'; strata honors it in mode http)"])
        #expect(errors("""
            frontend f
                mode http
                bind 127.0.0.1:8080
                option abortonclose
                default_backend b
            backend b
                mode http
            """) == [])  // HAProxy's warning: ignored, a frontend has no backend capability
    }
}
