import Foundation
import Glibc
import StrataTestSupport
import Testing

/// Answers strata makes itself: the stats page of a frontend that has no backend (the most common
/// stats setup in the wild), and how such answers are logged (HAProxy's timers and flags).
@Suite(.serialized) struct HTTPLocalAnswerTests {
    @Test func aStatsFrontendWithoutBackendServesThePage() throws {
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            frontend stats
                mode http
                bind 127.0.0.1:\(port)
                stats enable
                stats uri /stats
                stats refresh 10s
            """)
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        let page = try #require(client.get("/stats"))
        #expect(page.status == 200)
        #expect(page.body.contains("<html"))
        #expect(try #require(client.get("/stats;csv")).body.hasPrefix("# pxname,svname,"))
        // What the page does not take has nowhere to go.
        #expect(client.get("/other")?.status == 503)
    }

    @Test func aReturnIsLoggedAsALocalAnswerAndADenyAsARefusal() throws {
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
                log stdout format raw local0
            defaults
                mode http
                log global
                option httplog
                timeout client 5s
                timeout server 5s
                timeout connect 1s
            frontend web
                bind 127.0.0.1:\(port)
                http-request deny if { path /deny }
                http-request return status 200 content-type text/plain string ok
            """)
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        #expect(client.get("/ret")?.status == 200)
        #expect(client.get("/deny")?.status == 403)
        // HAProxy: `0/-1/-1/-1/0 200 … LR--` and `0/-1/-1/-1/0 403 … PR--`.
        #expect(strata.waitForOutput("\"GET /deny HTTP/1.1\""))
        let lines = strata.output.joined(separator: "\n").split(separator: "\n").map(String.init)
        let ret = try #require(lines.first { $0.contains("GET /ret ") })
        let deny = try #require(lines.first { $0.contains("GET /deny ") })
        #expect(ret.contains(" 0/-1/-1/-1/0 200 ") && ret.contains(" LR-- "), "\(ret)")
        #expect(deny.contains("/-1/-1/-1/") && deny.contains(" 403 ") && deny.contains(" PR-- "), "\(deny)")
        let stat = try strata.admin("show stat")
        let web = try #require(stat.split(separator: "\n").first { $0.hasPrefix("web,FRONTEND,") })
        let header = try #require(stat.split(separator: "\n").first).dropFirst(2).split(separator: ",", omittingEmptySubsequences: false)
        let dreq = try #require(header.firstIndex(of: "dreq"))
        #expect(web.split(separator: ",", omittingEmptySubsequences: false)[dreq] == "1")
    }
}

/// `http-errors` sections imported with `errorfiles`: the whole section or some codes, the
/// proxy's own `errorfile` winning; a wrong name or code refused at its line.
@Suite(.serialized) struct HTTPErrorsSectionTests {
    @Test func errorfilesImportASectionsPagesUnderTheProxysOwn() throws {
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func page(_ name: String, _ status: String, _ body: String) throws -> String {
            let path = directory.appendingPathComponent(name).path
            try Data("HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
                .write(to: URL(fileURLWithPath: path))
            return path
        }
        let section503 = try page("503.http", "503 Service Unavailable", "section-503")
        let section403 = try page("s403.http", "403 Forbidden", "section-403")
        let own403 = try page("403.http", "403 Forbidden", "own-403")
        let port = TestSocket.freePort(), other = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 1s
                timeout client 5s
                timeout server 5s
            http-errors site
                errorfile 503 \(section503)
                errorfile 403 \(section403)
            frontend fe
                bind 127.0.0.1:\(port)
                errorfiles site
                errorfile 403 \(own403)
                http-request deny if { path /deny }
                default_backend down
            frontend fe2
                bind 127.0.0.1:\(other)
                errorfiles site 403
                http-request deny if { path /deny }
                default_backend down
            backend down
                server s 127.0.0.1:1 disabled
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        let unavailable = try #require(client.get("/"))
        #expect(unavailable.status == 503)
        #expect(unavailable.body == "section-503")
        let denied = try #require(TestHTTPClient(port: port)?.get("/deny"))
        #expect(denied.status == 403)
        #expect(denied.body == "own-403")
        // Only 403 imported: the 503 is HAProxy's own page.
        let second = try #require(TestHTTPClient(port: other))
        let builtin = try #require(second.get("/"))
        #expect(builtin.status == 503)
        #expect(builtin.body.contains("No server is available"), "\(builtin.body)")
        #expect(try #require(TestHTTPClient(port: other)?.get("/deny")).body == "section-403")
    }
}

/// `errorloc`, `errorloc302`, `errorloc303`: HAProxy's redirect in place of an error page.
@Suite(.serialized) struct HTTPErrorLocationTests {
    @Test func errorlocAnswersARedirectInsteadOfTheErrorPage() throws {
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 1s
                timeout client 5s
                timeout server 5s
                errorloc 503 http://maintenance.example/down
            frontend fe
                bind 127.0.0.1:\(port)
                errorloc303 403 /denied?from=strata
                http-request deny if { path /deny }
                default_backend down
            backend down
                server s 127.0.0.1:1 disabled
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        // HAProxy's message: a status line, Cache-Control, an empty body and the Location.
        let unavailable = runTool("curl", ["-sS", "-i", "http://127.0.0.1:\(port)/"])
        #expect(unavailable.stdout.hasPrefix("HTTP/1.1 302 Found\r\n"), "\(unavailable.stdout)")
        #expect(unavailable.stdout.contains("Location: http://maintenance.example/down\r\n"), "\(unavailable.stdout)")
        #expect(unavailable.stdout.contains("Cache-Control: no-cache\r\n"))
        let denied = runTool("curl", ["-sS", "-i", "http://127.0.0.1:\(port)/deny"])
        #expect(denied.stdout.hasPrefix("HTTP/1.1 303 See Other\r\n"), "\(denied.stdout)")
        #expect(denied.stdout.contains("Location: /denied?from=strata\r\n"), "\(denied.stdout)")
    }
}

/// `http-error status N …`: the error answers a proxy (or its defaults) defines in place.
@Suite(.serialized) struct HTTPErrorDirectiveTests {
    @Test func httpErrorDefinesTheAnswerForItsStatus() throws {
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let json = directory.appendingPathComponent("denied.json").path
        try Data(#"{"denied":true}"#.utf8).write(to: URL(fileURLWithPath: json))
        let section = directory.appendingPathComponent("503.http").path
        try Data("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nsection-503".utf8)
            .write(to: URL(fileURLWithPath: section))
        let own = directory.appendingPathComponent("own.http").path
        try Data("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 3\r\n\r\nown".utf8).write(to: URL(fileURLWithPath: own))
        let port = TestSocket.freePort(), other = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            http-errors site
                errorfile 503 \(section)
            defaults
                mode http
                timeout connect 1s
                timeout client 5s
                timeout server 5s
                http-error status 429 content-type text/plain string "slow down" hdr Retry-After 10
            frontend fe
                bind 127.0.0.1:\(port)
                http-error status 403 content-type application/json file \(json)
                http-error status 503 errorfiles site
                http-request deny deny_status 429 if { path /rate }
                http-request deny if { path /deny }
                default_backend down
            frontend fe2
                bind 127.0.0.1:\(other)
                errorfile 503 \(own)
                http-error status 503 default-errorfiles
                default_backend down
            backend down
                server s 127.0.0.1:1 disabled
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let rate = runTool("curl", ["-sS", "-i", "http://127.0.0.1:\(port)/rate"])
        #expect(rate.stdout.hasPrefix("HTTP/1.1 429 Too Many Requests\r\n"), "\(rate.stdout)")
        #expect(rate.stdout.lowercased().contains("retry-after: 10\r\n") && rate.stdout.hasSuffix("\r\n\r\nslow down"), "\(rate.stdout)")
        let denied = runTool("curl", ["-sS", "-i", "http://127.0.0.1:\(port)/deny"])
        #expect(denied.stdout.hasPrefix("HTTP/1.1 403 Forbidden\r\n"), "\(denied.stdout)")
        #expect(denied.stdout.contains("content-type: application/json\r\n") && denied.stdout.hasSuffix(#"{"denied":true}"#), "\(denied.stdout)")
        let unavailable = runTool("curl", ["-sS", "http://127.0.0.1:\(port)/"])
        #expect(unavailable.stdout == "section-503")
        // `default-errorfiles`: HAProxy's own page again, over the proxy's errorfile.
        let builtin = runTool("curl", ["-sS", "http://127.0.0.1:\(other)/"])
        #expect(builtin.stdout.contains("No server is available"), "\(builtin.stdout)")
    }
}

/// `http-request return … default-errorfiles | errorfiles NAME`: the proxy's error answer, or a
/// section's, as the returned answer.
@Suite(.serialized) struct HTTPReturnErrorFilesTests {
    @Test func returnTakesTheProxysOrASectionsErrorAnswer() throws {
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func page(_ name: String, _ status: String, _ body: String) throws -> String {
            let path = directory.appendingPathComponent(name).path
            try Data("HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
                .write(to: URL(fileURLWithPath: path))
            return path
        }
        let section503 = try page("503.http", "503 Service Unavailable", "section-503")
        let own403 = try page("403.http", "403 Forbidden", "own-403")
        let origin = try TestHTTPOrigin("app")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            http-errors site
                errorfile 503 \(section503)
            defaults
                mode http
                timeout connect 1s
                timeout client 5s
                timeout server 5s
            frontend fe
                bind 127.0.0.1:\(port)
                errorfile 403 \(own403)
                http-request return status 403 default-errorfiles if { path /own }
                http-request return status 503 errorfiles site if { path /section }
                http-request return status 404 errorfiles site if { path /fallback }
                http-response return status 503 errorfiles site if { res.hdr(x-origin) app }
                default_backend app
            backend app
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let own = runTool("curl", ["-sS", "-i", "http://127.0.0.1:\(port)/own"])
        #expect(own.stdout.hasPrefix("HTTP/1.1 403") && own.stdout.hasSuffix("own-403"), "\(own.stdout)")
        let section = runTool("curl", ["-sS", "-i", "http://127.0.0.1:\(port)/section"])
        #expect(section.stdout.hasPrefix("HTTP/1.1 503") && section.stdout.hasSuffix("section-503"), "\(section.stdout)")
        // The section has no 404: the proxy's own answer (HAProxy's page) stands in.
        let fallback = runTool("curl", ["-sS", "-i", "http://127.0.0.1:\(port)/fallback"])
        #expect(fallback.stdout.hasPrefix("HTTP/1.1 404"), "\(fallback.stdout)")
        // In place of the server's answer.
        let late = runTool("curl", ["-sS", "-i", "http://127.0.0.1:\(port)/late"])
        #expect(late.stdout.hasPrefix("HTTP/1.1 503") && late.stdout.hasSuffix("section-503"), "\(late.stdout)")
    }
}

/// `http-request tarpit`: the refusal comes after `timeout tarpit`, nothing reaches a server, the
/// connection closes, the log says PT.
@Suite(.serialized) struct HTTPTarpitTests {
    @Test func aTarpittedRequestWaitsItsTimeoutThenIsRefused() throws {
        let origin = try TestHTTPOrigin("app")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
                log stdout format raw local0
            defaults
                mode http
                log global
                option httplog
                timeout connect 3s
                timeout client 10s
                timeout server 10s
            frontend fe
                bind 127.0.0.1:\(port)
                timeout tarpit 1s
                http-request tarpit if { path_beg /bot }
                http-request tarpit deny_status 403 if { path_beg /scan }
                default_backend app
            backend app
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        let started = Date()
        let held = try #require(client.get("/bot/x"))
        let waited = Date().timeIntervalSince(started)
        #expect(held.status == 500)
        #expect(waited >= 0.9, "answered after \(waited) s")
        #expect(held.head.lowercased().contains("connection: close"))
        #expect(client.isClosedByPeer())
        #expect(try #require(TestHTTPClient(port: port)?.get("/scan")).status == 403)
        // Nothing of either reached the server; other requests do.
        #expect(try #require(TestHTTPClient(port: port)?.get("/ok")).status == 200)
        #expect(origin.heads.count == 1 && origin.heads.allSatisfy { !$0.contains("/bot") && !$0.contains("/scan") }, "\(origin.heads)")
        #expect(strata.waitForOutput(" PT-- "), "\(strata.output.joined(separator: "\n"))")
    }
}

/// `stats scope`, `stats show-node`, `stats show-desc` and `stats show-legends` on the page.
@Suite(.serialized) struct StatsPageOptionTests {
    @Test func scopeNodeDescriptionAndLegendsShapeThePage() throws {
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
                description the global one
            defaults
                mode http
                timeout connect 1s
                timeout client 5s
                timeout server 5s
            listen stats
                bind 127.0.0.1:\(port)
                stats enable
                stats uri /stats
                stats scope .
                stats scope shown
                stats show-node edge-7
                stats show-desc
                stats show-legends
            backend shown
                server s1 127.0.0.1:1 cookie c1
            backend hidden
                server s2 127.0.0.1:2
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let page = try #require(TestHTTPClient(port: port)?.get("/stats"))
        #expect(page.status == 200)
        #expect(page.body.contains("id=\"proxy-stats\""))
        #expect(page.body.contains("id=\"proxy-shown\""))
        #expect(!page.body.contains("id=\"proxy-hidden\""))
        #expect(page.body.contains("<th class=\"n\">node</th><td class=\"n\" colspan=\"3\">edge-7</td>"))
        #expect(page.body.contains("<td class=\"n\" colspan=\"3\">the global one</td>"))
        #expect(page.body.contains("title=\"id: 1, addr: 127.0.0.1:1, cookie: c1\""), "\(page.body)")
        #expect(page.body.contains("title=\"mode: http, id: "))
    }
}

/// `monitor-uri`: a load balancer's probe is answered 200 by the proxy, before any rule and
/// without a server; other targets go on as usual.
@Suite(.serialized) struct MonitorURITests {
    @Test func theMonitorURIIsAnsweredByTheProxy() throws {
        let origin = try TestHTTPOrigin("app")
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
                monitor-uri /haproxy_test
                http-request deny
                default_backend app
            backend app
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        let probe = try #require(client.get("/haproxy_test"))
        #expect(probe.status == 200)
        #expect(probe.body.contains("Service ready."), "\(probe.body)")
        // The connection stays usable, and anything else meets the rules.
        #expect(try #require(client.get("/haproxy_test?x")).status == 403)
        #expect(origin.heads.isEmpty)
    }
}
