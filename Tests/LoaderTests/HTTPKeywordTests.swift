import Foundation
import ConfigModel
import Testing
@testable import Loader

/// The keywords of `mode http` land where the engine reads them (fixtures/valid/http.cfg and
/// snippets).
@Suite struct HTTPKeywordTests {
    static let fixture = "fixtures/valid/http.cfg"

    func proxy(_ name: String) throws -> Proxy {
        try #require(try loadFixture(HTTPKeywordTests.fixture).config.proxy(named: name))
    }

    func acl(_ proxy: Proxy, _ name: String) throws -> [ACLCriterion] {
        try #require(proxy.http.acls.first { $0.name == name }).criteria
    }

    @Test func globalTuning() throws {
        let global = try loadFixture(HTTPKeywordTests.fixture).config.global
        #expect(global.bufferSize == 32768)
        #expect(global.maxHeaders == 200)
        #expect(GlobalSettings().bufferSize == 16384 && GlobalSettings().maxHeaders == 101)
    }

    @Test func defaultsReachEveryProxy() throws {
        let www = try proxy("www")
        #expect(www.mode == .http)
        #expect(www.http.httpLog && !www.http.httpLogCLF)
        #expect(www.http.forwardFor == ForwardedHeader(header: "X-Forwarded-For",
                                                       except: IPNetwork(address: .v4(0x7f00_0000), prefixLength: 8),
                                                       ifNone: true))
        #expect(www.timeouts.httpRequest == 10_000)
        #expect(www.timeouts.httpKeepAlive == 2000)
        let page = try #require(www.http.errorFiles[503])
        #expect(String(decoding: page, as: UTF8.self).hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
        #expect(www.http.reuse == .aggressive)
        // A backend of its own errorfile for 503 replaces the inherited one.
        let api = try proxy("api")
        #expect(String(decoding: try #require(api.http.errorFiles[503]), as: UTF8.self).hasPrefix("HTTP/1.1 403"))
        #expect(api.http.reuse == .never)
        #expect(try proxy("metrics").http.httpLogCLF)
    }

    @Test func aclsWithTheirMatchMethodsAndPatterns() throws {
        let www = try proxy("www")
        let isAPI = try acl(www, "is_api")
        try #require(isAPI.count == 2)  // two lines, ORed
        #expect(isAPI[0].sample == SampleExpression(fetch: .path))
        #expect(isAPI[0].match == .prefix && isAPI[0].ignoreCase)
        #expect(isAPI[0].patterns == .strings(["/api/", "/v2/"]))
        #expect(isAPI[1].sample.fetch == .header("host", occurrence: nil))
        #expect(isAPI[1].match == .exact && isAPI[1].patterns == .strings(["api.example.com"]))

        #expect(try acl(www, "static")[0].match == .suffix)
        #expect(try acl(www, "static_dir")[0].match == .directory)
        #expect(try acl(www, "host_dom")[0].match == .domain)
        #expect(try acl(www, "host_dom")[0].sample.fetch == .header("host", occurrence: nil))
        #expect(try acl(www, "admin_net")[0].patterns == .networks([
            IPNetwork(address: .v4(0x0a00_0000), prefixLength: 8),
            IPNetwork(address: .v4(0xc0a8_0000), prefixLength: 16),
            IPNetwork(address: IPAddress("::1")!, prefixLength: 128),
        ]))
        #expect(try acl(www, "admin_net")[0].match == .ip)
        #expect(try acl(www, "high_port")[0].patterns == .integers([.greaterOrEqual(1024)]))
        #expect(try acl(www, "high_port")[0].match == .integer)
        #expect(try acl(www, "small")[0].patterns == .integers([.range(80, 90), .equal(443)]))
        #expect(try acl(www, "has_auth")[0].match == .found && acl(www, "has_auth")[0].patterns == ACLPatterns.none)
        #expect(try acl(www, "many_cookies")[0].sample.fetch == .headerCount("cookie"))
        #expect(try acl(www, "many_cookies")[0].patterns == .integers([.greater(3)]))
        #expect(try acl(www, "short_ua")[0].match == .length)
        #expect(try acl(www, "short_ua")[0].patterns == .integers([.lessOrEqual(10)]))
        #expect(try acl(www, "old_http")[0].sample.fetch == .requestVersion)
        #expect(try acl(www, "uid")[0].sample.fetch == .urlParameter("uid"))
        #expect(try acl(www, "uid")[0].match == .regex && acl(www, "uid")[0].patterns == .strings(["^[0-9]+$"]))
        // `-f`: one pattern per line, comments and blank lines skipped.
        #expect(try acl(www, "blocked")[0].patterns == .strings(["/admin", "/internal"]))
        #expect(try acl(www, "lower_host")[0].sample == SampleExpression(fetch: .header("host", occurrence: nil), converters: [.lower]))
        #expect(try acl(www, "tls")[0].sample.fetch == .sslFrontend && acl(www, "tls")[0].match == .boolean)
        #expect(try acl(www, "method_post")[0].sample.fetch == .method)
        #expect(try acl(www, "q")[0].sample.fetch == .query && acl(www, "q")[0].match == .substring)
        #expect(try acl(www, "base_shop")[0].sample.fetch == .base && acl(www, "base_shop")[0].match == .prefix)
        #expect(try acl(www, "url_abs")[0].sample.fetch == .url && acl(www, "url_abs")[0].match == .regex)
        #expect(try acl(www, "first_xff")[0].sample.fetch == .header("x-forwarded-for", occurrence: 1))
        #expect(try acl(www, "whole_line")[0].sample.fetch == .fullHeader("accept"))
        #expect(try acl(www, "is_api")[0].location.line == 26)
    }

    @Test func conditionsResolveNamedPredefinedAndAnonymousACLs() throws {
        let www = try proxy("www")
        let rules = www.http.requestRules
        // `deny … if blocked || { path_beg /private/ } !admin_net`
        let deny = try #require(rules.first)
        #expect(deny.action == .deny(status: 403))
        let condition = try #require(deny.condition)
        #expect(!condition.inverted)
        try #require(condition.alternatives.count == 2)
        #expect(condition.alternatives[0].map(\.name) == ["blocked"])
        #expect(condition.alternatives[0][0].criteria == (try acl(www, "blocked")))
        #expect(condition.alternatives[1].map(\.name) == ["{ path_beg /private/ }", "admin_net"])
        #expect(condition.alternatives[1].map(\.negated) == [false, true])
        #expect(condition.alternatives[1][0].criteria.first?.match == .prefix)

        // Predefined ACLs expand into criteria.
        let setURI = try #require(rules.first { if case .setURI = $0.action { true } else { false } })
        let methGet = try #require(setURI.condition?.alternatives.first?.last)
        #expect(methGet.name == "METH_GET")
        #expect(methGet.criteria.first?.sample.fetch == .method)
        #expect(methGet.criteria.first?.patterns == .strings(["GET", "HEAD"]))
        let allow = try #require(rules.last)
        #expect(allow.action == .allow)
        #expect(allow.condition?.alternatives.first?.first?.criteria.first?.patterns == .networks([
            IPNetwork(address: .v4(0x7f00_0000), prefixLength: 8), IPNetwork(address: IPAddress("::1")!, prefixLength: 128),
        ]))

        // `unless !base_shop`, `or`.
        let backends = www.http.backendRules
        #expect(backends.map(\.backend) == ["api", "static", "shop"])
        #expect(backends[0].condition?.alternatives.map { $0.map(\.name) } == [["is_api", "method_post"], ["is_api"]])
        #expect(backends[1].condition?.alternatives.map { $0.map(\.name) } == [["static"], ["static_dir"]])
        #expect(backends[2].condition?.inverted == true)
        #expect(backends[2].condition?.alternatives.first?.first?.negated == true)
        #expect(backends[0].location.line == 74)
    }

    @Test func requestRules() throws {
        let rules = try proxy("www").http.requestRules.map(\.action)
        #expect(rules.count == 15)
        guard case .returnResponse(200, "text/plain", .file(let path, let contents), []) = rules[1] else {
            Issue.record("\(rules[1])"); return
        }
        #expect(path == "../files/robots.txt" && String(decoding: contents, as: UTF8.self).hasPrefix("User-agent"))
        guard case .returnResponse(200, "application/json", .string(let body), let headers) = rules[2] else {
            Issue.record("\(rules[2])"); return
        }
        #expect(body.parts == [.literal("{\"client\":\""), .sample(SampleExpression(fetch: .source)), .literal("\"}")])
        #expect(headers == [.init(name: "X-Served-By", value: FormatString(parts: [.literal("strata")], source: "strata"))])
        guard case .returnResponse(200, nil, .rawMessage(_, let message), []) = rules[3] else { Issue.record("\(rules[3])"); return }
        #expect(String(decoding: message, as: UTF8.self).hasPrefix("HTTP/1.1 403 Forbidden"))
        #expect(rules[4] == .setHeader(name: "X-Client-IP", value: FormatString(parts: [.sample(SampleExpression(fetch: .source))], source: "%[src]")))
        #expect(rules[5] == .addHeader(name: "X-Request-Line",
                                       value: FormatString(parts: [.variable("HM"), .literal(" "), .variable("HU")], source: "%HM %HU")))
        #expect(rules[6] == .delHeader(name: "X-Debug"))
        #expect(rules[7] == .replaceHeader(name: "User-Agent", regex: "^curl/(.*)$",
                                           replacement: FormatString(parts: [.literal("curl-\\1")], source: "curl-\\1")))
        #expect(rules[8] == .replaceValue(name: "Accept-Encoding", regex: "^gzip$",
                                          replacement: FormatString(parts: [.literal("identity")], source: "identity")))
        #expect(rules[9] == .setPath(FormatString(parts: [.literal("/v2"), .sample(SampleExpression(fetch: .path))], source: "/v2%[path]")))
        #expect(rules[10] == .setQuery(FormatString(parts: [.literal("lang=en")], source: "lang=en")))
        #expect(rules[11] == .setURI(FormatString(parts: [.literal("/index.html")], source: "/index.html")))
        #expect(rules[12] == .setMethod(FormatString(parts: [.literal("GET")], source: "GET")))
        var https = Redirect(kind: .scheme(FormatString(parts: [.literal("https")], source: "https")))
        https.code = 301
        #expect(rules[13] == .redirect(https))
        #expect(rules[14] == .allow)
        // In a backend.
        #expect(try proxy("app").http.requestRules.map(\.action)
            == [.setHeader(name: "X-Backend", value: FormatString(parts: [.literal("app")], source: "app"))])
        // use-service, then a catch-all answer.
        let metrics = try proxy("metrics").http.requestRules
        #expect(metrics.map(\.action).first == .useService("prometheus-exporter"))
        #expect(metrics.last?.condition == nil)
    }

    @Test func replacePathPathqAndURIRules() throws {
        let config = try load("""
            frontend f
                mode http
                bind 127.0.0.1:1
                http-request replace-path /_api(/)?(.*) /\\2
                http-request replace-pathq ^/p\\?id=(.*) /item/\\1 if { path_beg /p }
                http-request replace-uri ^http://[^/]*(/.*) \\1
                default_backend b
            backend b
                mode http
                server s 127.0.0.1:2
            """).config
        let rules = try #require(config.proxies.first { $0.name == "f" }).http.requestRules
        #expect(rules.map(\.action) == [
            .replaceTarget(part: .path, regex: "/_api(/)?(.*)", replacement: FormatString(parts: [.literal("/\\2")], source: "/\\2")),
            .replaceTarget(part: .pathQuery, regex: "^/p\\?id=(.*)", replacement: FormatString(parts: [.literal("/item/\\1")], source: "/item/\\1")),
            .replaceTarget(part: .uri, regex: "^http://[^/]*(/.*)", replacement: FormatString(parts: [.literal("\\1")], source: "\\1")),
        ])
        #expect(rules[1].condition != nil)
        #expect(errors("frontend f\n    mode http\n    bind 127.0.0.1:1\n    http-request replace-path (x /y\n    default_backend b\nbackend b\n    mode http\n    server s 127.0.0.1:2\n").first?
            .hasPrefix("test.cfg:4: invalid regex '(x'") == true)
        #expect(errors("frontend f\n    mode http\n    bind 127.0.0.1:1\n    http-request replace-uri ^/x\n    default_backend b\nbackend b\n    mode http\n    server s 127.0.0.1:2\n")
            == ["test.cfg:4: 'http-request replace-uri' expects a replacement after the regex"])
    }

    @Test func aRealmOfSeveralWordsKeepsTheFirstWithAWarning() throws {
        let loaded = try load("listen stats\n    mode http\n    bind 127.0.0.1:1\n    stats enable\n    stats realm HAProxy Statistics\n")
        #expect(loaded.config.proxies.first?.stats?.realm == "HAProxy")
        #expect(loaded.warnings.map(\.description) == [
            "test.cfg:5: 'stats realm': only 'HAProxy' is the realm, as in HAProxy ('Statistics' ignored): quote the realm or escape its spaces",
        ])
    }

    @Test func userlistsWithGroupsOnEitherSide() throws {
        let text = """
            frontend f
                mode http
                bind 127.0.0.1:1
                acl ok http_auth(L1)
                acl admins http_auth_group(L1) G1
                http-request auth realm Zone if !ok
                http-request auth if !admins
                default_backend b
            backend b
                mode http
                server s 127.0.0.1:2
            userlist L1
                group G1 users tiger,scott
                group G2
                user tiger password $6$k6y3o.eP$JlKBx9za9667qe4xHSwRv6J.C0/D7cV91
                user scott insecure-password elgato groups G2
            """
        let config = try load(text).config
        let http = try #require(config.proxies.first { $0.name == "f" }).http
        let list = try #require(http.userlists["L1"])
        #expect(list.users.map(\.name) == ["tiger", "scott"])
        #expect(list.users[0].groups == ["G1"])
        #expect(list.users[1].groups == ["G2", "G1"])
        #expect(list.users[1].password == .clear("elgato"))
        #expect(http.requestRules.map(\.action) == [.auth(realm: "Zone"), .auth(realm: nil)])
        #expect(errors(text.replacingOccurrences(of: "http_auth(L1)", with: "http_auth(L2)"))
            == ["test.cfg:4: unable to find userlist 'L2'"])
        #expect(errors(text.replacingOccurrences(of: "groups G2", with: "groups G3"))
            == ["test.cfg:16: user 'scott': no group 'G3' in userlist 'L1'"])
        #expect(errors(text.replacingOccurrences(of: "users tiger,scott", with: "users tiger,lion"))
            == ["test.cfg:13: group 'G1': no user 'lion' in userlist 'L1'"])
        #expect(errors(text.replacingOccurrences(of: "insecure-password elgato", with: "password elgato"))
            == ["test.cfg:16: 'user scott': 'elgato' is not a crypt(3) hash ($5$…, $6$…, $y$…)"])
    }

    @Test func redirectRules() throws {
        let redirects = try proxy("www").http.redirectRules
        try #require(redirects.count == 3)
        var first = Redirect(kind: .prefix(FormatString(parts: [.literal("https://www.example.com")], source: "https://www.example.com")))
        first.code = 308
        first.dropQuery = true
        #expect(redirects[0].redirect == first)
        #expect(redirects[1].redirect.setCookie == "SEEN=1" && redirects[1].redirect.code == 302)
        #expect(redirects[1].condition?.alternatives.count == 2)
        #expect(redirects[2].redirect.clearCookie == "SEEN=" && redirects[2].redirect.appendSlash)
    }

    @Test func redirectOptionsComeInAnyOrder() throws {
        // HAProxy reads every redirect option anywhere before the condition, the kind included.
        let loaded = try load("""
            frontend f
                mode http
                bind 127.0.0.1:1
                http-request redirect code 302 location /x
                http-request redirect drop-query code 301 set-cookie A=1 prefix /p if { path /old }
                redirect code 303 scheme https clear-cookie A= append-slash
                redirect set-cookie A=1 location /a clear-cookie B= location /b
            """)
        let proxy = try #require(loaded.config.proxies.first)
        let location = Redirect(kind: .location(FormatString(parts: [.literal("/x")], source: "/x")))
        var prefix = Redirect(kind: .prefix(FormatString(parts: [.literal("/p")], source: "/p")))
        prefix.code = 301
        prefix.dropQuery = true
        prefix.setCookie = "A=1"
        #expect(proxy.http.requestRules.map(\.action) == [.redirect(location), .redirect(prefix)])
        #expect(proxy.http.requestRules[1].condition != nil)
        var scheme = Redirect(kind: .scheme(FormatString(parts: [.literal("https")], source: "https")))
        scheme.code = 303
        scheme.clearCookie = "A="
        scheme.appendSlash = true
        // A later kind or cookie replaces the earlier one, as in HAProxy.
        var last = Redirect(kind: .location(FormatString(parts: [.literal("/b")], source: "/b")))
        last.clearCookie = "B="
        #expect(proxy.http.redirectRules.map(\.redirect) == [scheme, last])
        #expect(errors("frontend f\n    mode http\n    bind 127.0.0.1:1\n    redirect code 302 drop-query\n")
            == ["test.cfg:4: 'redirect' expects location, prefix or scheme and a target"])
        #expect(errors("frontend f\n    mode http\n    bind 127.0.0.1:1\n    http-request redirect code 302 location\n")
            == ["test.cfg:4: 'http-request redirect' expects a target after 'location'"])
    }

    @Test func responseRules() throws {
        let rules = try proxy("www").http.responseRules
        #expect(rules.map(\.action) == [
            .setHeader(name: "X-Frame-Options", value: FormatString(parts: [.literal("DENY")], source: "DENY")),
            .addHeader(name: "Via", value: FormatString(parts: [.literal("strata")], source: "strata")),
            .delHeader(name: "Server"),
            .replaceHeader(name: "Location", regex: "^http://(.*)$", replacement: FormatString(parts: [.literal("https://\\1")], source: "https://\\1")),
            .replaceValue(name: "Cache-Control", regex: "^private$", replacement: FormatString(parts: [.literal("no-store")], source: "no-store")),
            .setStatus(503, reason: "Try Later"),
            .deny(status: 502),
            .allow,
        ])
        #expect(rules[5].condition?.alternatives.first?.first?.criteria.first?.sample.fetch == .status)
        #expect(rules[6].condition?.alternatives.first?.first?.criteria.first?.sample.fetch == .responseHeader("x-leak", occurrence: nil))
        #expect(rules[7].condition?.alternatives.first?.first?.criteria.first?.patterns == .integers([.range(200, 299)]))
    }

    @Test func frontendOptions() throws {
        let www = try proxy("www")
        #expect(www.http.captures == [HeaderCapture(name: "Host", length: 64), HeaderCapture(name: "User-Agent", length: 128)])
        #expect(www.http.bufferRequest)
        #expect(www.http.connectionMode == .keepAlive)
        #expect(www.defaultBackend == "app")
    }

    @Test func backendOptions() throws {
        let app = try proxy("app")
        #expect(app.balance == .uri(whole: true))
        #expect(app.http.hashType == .consistent)
        var cookie = CookiePersistence(name: "SRV", mode: .insert)
        cookie.indirect = true
        cookie.nocache = true
        cookie.httpOnly = true
        cookie.secure = true
        cookie.maxIdle = 1_800_000
        cookie.maxLife = 28_800_000
        #expect(app.http.cookie == cookie)
        #expect(app.servers.map(\.options.cookie) == ["a1", "a2"])
        #expect(app.http.connectionMode == .serverClose)
        #expect(app.http.originalTo == ForwardedHeader(header: "X-Orig-Dst", except: IPNetwork(address: .v4(0x0a00_0000), prefixLength: 8)))

        let api = try proxy("api")
        #expect(api.balance == .urlParameter("uid"))
        #expect(api.http.connectionMode == .close)
        #expect(api.http.hashType == .mapBased)

        let statics = try proxy("static")
        #expect(statics.balance == .header("host"))
        #expect(!statics.http.bufferRequest)
        #expect(statics.http.cookie?.mode == .rewrite)

        let shop = try proxy("shop")
        #expect(shop.http.forwardFor == ForwardedHeader(header: "X-Real-IP"))
        #expect(shop.http.connectionMode == .keepAlive)
        #expect(shop.http.cookie?.mode == .prefix)
    }

    // MARK: Snippets

    @Test func aclLinesAfterARuleStillCount() throws {
        // The rule refers to the ACL itself (HAProxy): a later line with the same name adds to it.
        let loaded = try load("""
            listen l
                mode http
                bind 127.0.0.1:1
                acl a path /one
                http-request deny if a
                acl a path /two
                server s 127.0.0.1:2
            """)
        let rule = try #require(loaded.config.proxies.first?.http.requestRules.first)
        #expect(rule.condition?.alternatives.first?.first?.criteria.map(\.patterns) == [.strings(["/one"]), .strings(["/two"])])
    }

    @Test func samplesInFormatsTakeTheLastOccurrence() throws {
        let loaded = try load("""
            listen l
                mode http
                bind 127.0.0.1:1
                http-request set-header X-Host %[hdr(host),lower]
                http-request set-header X-Second %[req.hdr(x-list,2)]
                http-response set-header X-Status "%[status] %[res.hdr(server)] %ci:%cp %%"
                server s 127.0.0.1:2
            """)
        let proxy = try #require(loaded.config.proxies.first)
        #expect(proxy.http.requestRules.map(\.action) == [
            .setHeader(name: "X-Host", value: FormatString(parts: [.sample(SampleExpression(fetch: .header("host", occurrence: -1), converters: [.lower]))],
                                                           source: "%[hdr(host),lower]")),
            .setHeader(name: "X-Second", value: FormatString(parts: [.sample(SampleExpression(fetch: .header("x-list", occurrence: 2)))],
                                                             source: "%[req.hdr(x-list,2)]")),
        ])
        #expect(proxy.http.responseRules.first?.action == .setHeader(name: "X-Status", value: FormatString(parts: [
            .sample(SampleExpression(fetch: .status)), .literal(" "), .sample(SampleExpression(fetch: .responseHeader("server", occurrence: -1))),
            .literal(" "), .variable("ci"), .literal(":"), .variable("cp"), .literal(" %"),
        ], source: "%[status] %[res.hdr(server)] %ci:%cp %%")))
    }

    @Test func predefinedACLs() throws {
        let names = ["TRUE", "FALSE", "HTTP", "HTTP_1.0", "HTTP_1.1", "HTTP_CONTENT", "HTTP_URL_ABS", "HTTP_URL_SLASH",
                     "HTTP_URL_STAR", "LOCALHOST", "METH_CONNECT", "METH_DELETE", "METH_GET", "METH_HEAD", "METH_OPTIONS",
                     "METH_POST", "METH_PUT", "METH_TRACE"]
        let text = "listen l\n    mode http\n    bind 127.0.0.1:1\n    server s 127.0.0.1:2\n"
            + names.map { "    http-request deny if \($0)\n" }.joined()
        let rules = try #require(try load(text).config.proxies.first).http.requestRules
        let terms = rules.compactMap { $0.condition?.alternatives.first?.first }
        #expect(terms.map(\.name) == names)
        #expect(terms.allSatisfy { !$0.criteria.isEmpty })
        #expect(terms[0].criteria.first?.sample.fetch == .constant(true))
        #expect(terms[1].criteria.first?.sample.fetch == .constant(false))
        #expect(terms[4].criteria.first?.patterns == .strings(["1.1"]))
        #expect(terms[8].criteria.first?.patterns == .strings(["*"]))
        #expect(terms[17].criteria.first?.patterns == .strings(["TRACE"]))
        // A user ACL of the same name wins.
        let own = try load(text.replacingOccurrences(of: "    server s", with: "    acl TRUE path /x\n    server s"))
        #expect(own.config.proxies.first?.http.requestRules.first?.condition?.alternatives.first?.first?.criteria.first?.sample.fetch == .path)
    }

    @Test func aFrontendWithRulesNeedsNoDefaultBackend() throws {
        let loaded = try load("""
            frontend f
                mode http
                bind 127.0.0.1:1
                use_backend b if { path_beg /b }
            frontend g
                mode http
                bind 127.0.0.1:2
                http-request return status 200
            backend b
                mode http
                server s 127.0.0.1:3
            """)
        #expect(loaded.config.proxies.count == 3)
        #expect(errors("frontend f\n    mode http\n    bind 127.0.0.1:1\n")
            == ["test.cfg:1: frontend 'f' has no default_backend: its connections would have nowhere to go"])
    }

    @Test func connectionModesAndNoOption() throws {
        let loaded = try load("""
            defaults
                mode http
                option httpclose
            listen a
                bind 127.0.0.1:1
                server s 127.0.0.1:2
            listen b
                bind 127.0.0.1:3
                no option httpclose
                server s 127.0.0.1:4
            listen c
                bind 127.0.0.1:5
                no option http-server-close
                option http-buffer-request
                no option http-buffer-request
                server s 127.0.0.1:6
            """)
        let modes = loaded.config.proxies.map(\.http.connectionMode)
        #expect(modes == [.close, .keepAlive, .close])
        #expect(loaded.config.proxies[2].http.bufferRequest == false)
    }

    @Test func theLastLogFormatKeywordWins() throws {
        let loaded = try load("""
            listen a
                mode http
                bind 127.0.0.1:1
                option tcplog
                option httplog
                server s 127.0.0.1:2
            listen b
                mode http
                bind 127.0.0.1:3
                option httplog
                option tcplog
                server s 127.0.0.1:4
            """)
        #expect(loaded.config.proxies[0].http.httpLog && loaded.config.proxies[0].log.format == .connect)
        #expect(!loaded.config.proxies[1].http.httpLog && loaded.config.proxies[1].log.format == .tcplog)
    }

    @Test func httpKeywordsFromDefaultsAreNotErrorsInTCPProxies() throws {
        let loaded = try load("""
            defaults
                mode http
                option forwardfor
                timeout http-request 5s
            listen tcp
                mode tcp
                bind 127.0.0.1:1
                server s 127.0.0.1:2
            """)
        #expect(loaded.config.proxies.first?.mode == .tcp)
    }

    @Test func captures() throws {
        let loaded = try load("""
            frontend fe
                mode http
                bind 127.0.0.1:1
                capture request header Host len 10
                capture response header Content-Type len 20
                capture response header Server len 5
                default_backend be
            backend be
                mode http
                server s 127.0.0.1:2
            """)
        let http = try #require(loaded.config.proxies.first).http
        #expect(http.captures == [HeaderCapture(name: "Host", length: 10)])
        #expect(http.responseCaptures == [HeaderCapture(name: "Content-Type", length: 20), HeaderCapture(name: "Server", length: 5)])
        #expect(errors("frontend fe\n    mode http\n    capture response header Server\n")
            .contains("test.cfg:3: 'capture response header Server' expects 'len N' after the name"))
        #expect(errors("frontend fe\n    mode http\n    capture response trailer X len 1\n")
            .contains("test.cfg:3: 'capture' expects 'request header NAME len N', 'response header NAME len N' or 'cookie NAME len N'"))
    }

    /// Slots are numbered per direction in the order of their lines, whichever line made them
    /// (HAProxy's `nb_req_cap`/`nb_rsp_cap`); `id N` must name one in a frontend.
    @Test func captureSlotsAndActions() throws {
        let loaded = try load("""
            frontend fe
                mode http
                bind 127.0.0.1:1
                capture request header Host len 10
                http-request capture path len 5
                declare capture request len 7
                declare capture response len 3
                capture response header Server len 4
                http-request capture req.hdr(x-a) id 2 if { path /a }
                http-response capture status id 0
                http-after-response capture res.hdr(server) id 1
                capture cookie SID len 100
                default_backend be
            backend be
                mode http
                http-request capture src id 9
                server s 127.0.0.1:2
            """)
        let http = try #require(loaded.config.proxies.first).http
        #expect(http.captures == [HeaderCapture(name: "Host", length: 10), HeaderCapture(name: nil, length: 5), HeaderCapture(name: nil, length: 7)])
        #expect(http.responseCaptures == [HeaderCapture(name: nil, length: 3), HeaderCapture(name: "Server", length: 4)])
        #expect(http.requestRules.map(\.action) == [.capture(SampleExpression(fetch: .path), slot: 1),
                                                    .capture(SampleExpression(fetch: .header("x-a", occurrence: -1)), slot: 2)])
        #expect(http.responseRules.map(\.action) == [.capture(SampleExpression(fetch: .status), slot: 0)])
        #expect(http.afterResponseRules.map(\.action) == [.capture(SampleExpression(fetch: .responseHeader("server", occurrence: -1)), slot: 1)])
        // tune.http.cookielen (64) bounds it, with HAProxy's warning.
        #expect(http.cookieCapture == CookieCapture(name: "SID", length: 63))
        #expect(loaded.warnings.map(\.description).contains("test.cfg:12: truncating capture length to 63 bytes for frontend 'fe'"))
        // A backend's `id` is looked up in each request's frontend.
        #expect(loaded.config.proxies[1].http.requestRules.map(\.action) == [.capture(SampleExpression(fetch: .source), slot: 9)])

        let pre = "frontend fe\n    mode http\n    bind 127.0.0.1:1\n"
        #expect(errors(pre + "    declare capture request len 2\n    http-request capture path id 1\n")
            .contains("test.cfg:5: unable to find capture id '1' referenced by http-request capture rule"))
        #expect(errors(pre + "    http-response capture status id 0\n")
            .contains("test.cfg:4: unable to find capture id '0' referenced by http-response capture rule"))
        #expect(errors(pre + "    http-response capture status len 4\n")
            .contains("test.cfg:4: 'http-response capture': expects 'id', found 'len'"))
        #expect(errors(pre + "    http-request capture path len 0\n").contains("test.cfg:4: 'http-request capture': length must be > 0"))
        #expect(errors(pre + "    http-request capture path\n")
            .contains("test.cfg:4: 'http-request capture' expects <expression> [ 'len' <length> | id <idx> ]"))
        #expect(errors(pre + "    http-request capture status len 4\n").contains { $0.hasPrefix("test.cfg:4: 'http-request capture': ") })
        #expect(errors(pre + "    declare capture both len 4\n")
            .contains("test.cfg:4: 'declare capture' requires a direction ('request' or 'response')"))
        #expect(errors(pre + "    declare capture request len x\n").contains("test.cfg:4: 'declare capture': cannot parse the length 'x'."))
        #expect(errors(pre + "    capture cookie SID\n").contains("test.cfg:4: 'capture' expects 'cookie' <cookie_name> 'len' <len>"))
        #expect(errors("backend be\n    mode http\n    http-request capture path len 4\n")
            .contains("test.cfg:3: 'http-request capture': proxy 'be' has no frontend capability"))
        #expect(errors("backend be\n    mode http\n    declare capture request len 4\n")
            .contains { $0.hasPrefix("test.cfg:3: 'declare' is not supported in section 'backend'") })
    }

    @Test func errorlocIsAnErrorfileOfARedirect() throws {
        let loaded = try load("frontend fe\n    mode http\n    bind 127.0.0.1:1\n    errorloc 503 /m\n    errorloc303 403 https://x/y\n    http-request deny\n")
        let files = try #require(loaded.config.proxies.first).http.errorFiles
        #expect(files[503] == Array("HTTP/1.1 302 Found\r\nCache-Control: no-cache\r\nContent-length: 0\r\nLocation: /m\r\n\r\n".utf8))
        #expect(files[403].map { String(decoding: $0, as: UTF8.self) }?.hasPrefix("HTTP/1.1 303 See Other\r\n") == true)
        let pre = "frontend fe\n    mode http\n    bind 127.0.0.1:1\n"
        #expect(errors(pre + "    errorloc302 302 /x\n").contains { $0.hasPrefix("test.cfg:4: errorloc302 : status code '302' not handled") })
        #expect(errors(pre + "    errorloc 503\n").contains("test.cfg:4: errorloc : expects <status_code> and <url> as arguments."))
        #expect(errors(pre + "    errorloc 503 /a /b\n").contains("test.cfg:4: errorloc : expects exactly two arguments."))
    }

    @Test func httpErrorRefusesWhatItCannotMakeAtLoad() throws {
        let pre = "frontend fe\n    mode http\n    bind 127.0.0.1:1\n    http-request deny\n"
        #expect(errors(pre + "    http-error status 403 content-type text/plain lf-string %[path]\n")
            .contains("test.cfg:5: 'http-error': 'lf-string' is not supported yet (strata makes error answers when the configuration loads; 'string' and 'file' are)"))
        #expect(errors(pre + "    http-error status 403 hdr X %[path]\n")
            .contains("test.cfg:5: 'http-error': 'hdr X' with samples is not supported yet (strata makes error answers when the configuration loads)"))
        #expect(errors(pre + "    http-error status 302 string x\n").contains { $0.hasPrefix("test.cfg:5: 'http-error': status code 302 is not one strata answers") })
        #expect(errors(pre + "    http-error string x\n").contains("test.cfg:5: 'http-error' expects 'status <code>' first"))
        #expect(errors(pre + "    http-error status 403 string x\n")
            .contains("test.cfg:5: 'http-error': a body needs 'content-type' (for example content-type text/html)"))
        let loaded = try load(pre + "    http-error status 403 content-type text/plain string no hdr X-A b\n")
        #expect(loaded.config.proxies[0].http.errorFiles[403]
            == Array("HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nX-A: b\r\n\r\nno".utf8))
    }

    @Test func returnWithErrorFiles() throws {
        let pre = "frontend fe\n    mode http\n    bind 127.0.0.1:1\n"
        #expect(errors(pre + "    http-request return status 302 default-errorfiles\n")
            .contains { $0.hasPrefix("test.cfg:4: 'http-request return': 'default-errorfiles' needs a status strata has error answers for") })
        #expect(errors(pre + "    http-request return status 503 errorfiles nowhere\n")
            .contains("test.cfg:4: 'errorfiles': unknown http-errors section 'nowhere'"))
        #expect(errors(pre + "    http-request return status 503 content-type text/plain default-errorfiles\n")
            .contains("test.cfg:4: 'http-request return': 'content-type text/plain' cannot go with 'default-errorfiles' (the file is the whole answer)"))
    }

    @Test func balanceHash() throws {
        let loaded = try load("backend be\n    mode http\n    balance hash req.hdr(x-user),lower\n    server s 127.0.0.1:2\n")
        #expect(loaded.config.proxies[0].balance
            == .hash(SampleExpression(fetch: .header("x-user", occurrence: -1), converters: [.lower]), source: "req.hdr(x-user),lower"))
        #expect(errors("backend be\n    mode http\n    balance hash\n")
            .contains("test.cfg:3: 'balance' expects a sample expression after 'hash' (for example hash req.cook(sid))"))
        #expect(errors("backend be\n    mode http\n    balance hash status\n").contains { $0.hasPrefix("test.cfg:3: 'balance hash': ") })
        #expect(errors("backend be\n    mode tcp\n    balance hash src\n    server s 127.0.0.1:2\n")
            .contains { $0.hasPrefix("test.cfg:3: 'balance hash' needs 'mode http'") })
    }

    @Test func statsHTTPRequestRules() throws {
        let pre = "frontend fe\n    mode http\n    bind 127.0.0.1:1\n    stats enable\n"
        let loaded = try load(pre + "    stats http-request deny deny_status 429 if { src 10.0.0.0/8 }\n    stats http-request auth realm R\n    stats http-request allow\n")
        let rules = try #require(loaded.config.proxies[0].stats).rules
        #expect(rules.map(\.action) == [.deny(status: 429), .auth(realm: "R"), .allow])
        #expect(rules[0].condition != nil && rules[1].condition == nil)
        #expect(loaded.warnings.map(\.description).contains("test.cfg:7: previous 'stats http-request' action has no condition attached, further entries are NOOP"))
        #expect(errors(pre + "    stats auth a:b\n    stats http-request allow\n")
            .contains("test.cfg:6: stats 'auth'/'realm' and 'http-request' can't be used at the same time (frontend 'fe')"))
        #expect(errors(pre + "    stats http-request allow\n    stats realm X\n")
            .contains("test.cfg:6: stats 'auth'/'realm' and 'http-request' can't be used at the same time (frontend 'fe')"))
        #expect(errors(pre + "    stats http-request tarpit\n").contains("test.cfg:5: 'stats http-request' expects allow, deny or auth, got 'tarpit'"))
        #expect(errors("defaults\n    stats http-request allow\n").contains { $0.hasPrefix("test.cfg:2: 'stats http-request' is not supported in section 'defaults'") })
    }

    @Test func httpResponseRedirect() throws {
        let pre = "frontend fe\n    mode http\n    bind 127.0.0.1:1\n    http-request deny\n"
        let loaded = try load(pre + "    http-response redirect scheme https code 301 if { status 200 }\n")
        guard case .redirect(let r) = loaded.config.proxies[0].http.responseRules[0].action else { Issue.record("not a redirect"); return }
        #expect(r.code == 301)
        #expect(errors(pre + "    http-after-response redirect location /x\n")
            .contains { $0.hasPrefix("test.cfg:5: 'redirect' is not an http-after-response action") })
        #expect(errors(pre + "    http-response redirect location %[path]\n")
            .contains { $0.hasPrefix("test.cfg:5: 'http-response redirect'") })
    }

    @Test func hashBalanceFactor() throws {
        let loaded = try load("defaults\n    hash-balance-factor 150\nbackend be\n    mode tcp\n    balance source\n    hash-type consistent\n    server s 127.0.0.1:2\n")
        #expect(loaded.config.proxies[0].http.hashBalanceFactor == 150)
        #expect(errors("backend be\n    hash-balance-factor 100\n").contains("test.cfg:2: 'hash-balance-factor' must be 0 or greater than 100."))
        #expect(errors("backend be\n    hash-balance-factor\n").contains("test.cfg:2: 'hash-balance-factor' expects an integer argument."))
        #expect(errors("frontend fe\n    hash-balance-factor 150\n").contains { $0.hasPrefix("test.cfg:2: 'hash-balance-factor' is not supported in section 'frontend'") })
    }

    /// `set-map(FILE)`/`del-map(FILE)` need a map the configuration loads; the ACL ones are refused.
    @Test func mapActions() throws {
        let dir = NSTemporaryDirectory() + "strata-maps-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "a 1\n".write(toFile: dir + "/m.map", atomically: true, encoding: .utf8)
        let loaded = try load("""
            frontend fe
                mode http
                bind 127.0.0.1:1
                http-request set-header X-M %[path,map(\(dir)/m.map)]
                http-request set-map(\(dir)/m.map) %[path] %[src] if { path /x }
                http-response del-map(\(dir)/m.map) %[res.hdr(x-k)]
                http-after-response set-map(\(dir)/m.map) k v
                default_backend be
            backend be
                mode http
                server s 127.0.0.1:2
            """)
        let http = try #require(loaded.config.proxies.first).http
        guard case .setMap(let file, let key, let value) = http.requestRules[1].action else { Issue.record("\(http.requestRules)"); return }
        #expect(file == dir + "/m.map" && key.source == "%[path]" && value.source == "%[src]")
        guard case .deleteMapEntry(dir + "/m.map", _) = http.responseRules[0].action else { Issue.record("\(http.responseRules)"); return }
        let pre = "frontend fe\n    mode http\n    bind 127.0.0.1:1\n"
        #expect(errors(pre + "    http-request set-map(\(dir)/other.map) %[path] x\n")
            .contains { $0.hasPrefix("test.cfg:4: unable to find map '\(dir)/other.map'") })
        #expect(errors(pre + "    http-request set-map(\(dir)/m.map) %[path]\n    http-request set-header X %[path,map(\(dir)/m.map)]\n")
            .contains("test.cfg:4: 'http-request set-map' expects exactly 2 arguments"))
        #expect(errors(pre + "    http-request del-map %[path]\n")
            .contains("test.cfg:4: 'http-request del-map' expects the map file in parentheses: del-map(FILE)"))
        #expect(errors(pre + "    http-request add-acl(\(dir)/m.map) %[path]\n")
            .contains("test.cfg:4: 'http-request add-acl' is not supported yet (strata's ACL pattern files do not change at run time)"))
    }

    @Test func optionPersistAndMworkerMaxReloads() throws {
        let loaded = try load("""
            global
                mworker-max-reloads 3
            defaults
                option persist
            backend a
                mode http
                server s 127.0.0.1:2
            backend b
                mode http
                no option persist
                server s 127.0.0.1:2
            """)
        #expect(loaded.config.proxies.map(\.persist) == [true, false])
        #expect(loaded.warnings.map(\.description).contains { $0.hasPrefix("test.cfg:2: 'mworker-max-reloads' has no effect") })
        #expect(errors("global\n    mworker-max-reloads x\n").first?.hasPrefix("test.cfg:2:") == true)
        // A frontend has no backend side: HAProxy's warning.
        let frontend = try load("frontend f\n    mode http\n    bind 127.0.0.1:1\n    option persist\n    default_backend a\nbackend a\n    mode http\n    server s 127.0.0.1:2\n")
        #expect(frontend.warnings.map(\.description) == ["test.cfg:4: 'option persist' ignored because frontend 'f' has no backend capability"])
    }

    @Test func keywordsInTheWrongSection() {
        #expect(errors("defaults\n    acl a path /\n") == [
            "test.cfg:2: 'acl' is not supported in section 'defaults' (only in frontend, listen, backend)",
        ])
        #expect(errors("backend b\n    mode http\n    use_backend c\n    server s 127.0.0.1:1\n") == [
            "test.cfg:3: 'use_backend' is not supported in section 'backend' (only in frontend, listen)",
        ])
        #expect(errors("backend b\n    mode http\n    capture request header Host len 10\n    server s 127.0.0.1:1\n") == [
            "test.cfg:3: 'capture' is not supported in section 'backend' (only in frontend, listen)",
        ])
    }

    @Test(arguments: [
        ("acl a src 10.0.0.0/255.255.0.0", IPNetwork(address: .v4(0x0a00_0000), prefixLength: 16)),
        ("acl a src 2001:db8::/32", IPNetwork(address: IPAddress("2001:db8::")!, prefixLength: 32)),
        ("acl a src localhost", IPNetwork(address: .v4(0x7f00_0001), prefixLength: 32)),
        ("acl a dst 192.0.2.1", IPNetwork(address: .v4(0xc000_0201), prefixLength: 32)),
    ])
    func networks(_ line: String, _ network: IPNetwork) throws {
        let loaded = try load("listen l\n    mode http\n    bind 127.0.0.1:1\n    \(line)\n    server s 127.0.0.1:2\n")
        #expect(loaded.config.proxies.first?.http.acls.first?.criteria.first?.patterns == .networks([network]))
    }

    @Test func integerPatterns() throws {
        let loaded = try load("listen l\n    mode http\n    bind 127.0.0.1:1\n    acl a dst_port -- eq 80 lt 10 le 11 gt 12 :20 30: -5\n    server s 127.0.0.1:2\n")
        #expect(loaded.config.proxies.first?.http.acls.first?.criteria.first?.patterns
            == .integers([.equal(80), .less(10), .lessOrEqual(11), .greater(12), .range(nil, 20), .range(30, nil), .equal(-5)]))
    }
}
