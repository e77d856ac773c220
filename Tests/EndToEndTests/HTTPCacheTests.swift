import Foundation
import Glibc
import StrataTestSupport
import Testing

/// An origin for the cache tests that counts the requests of each path, so a test knows whether
/// an answer came from strata's cache or from it. Each answer's body names its path and count.
final class CacheOrigin: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    private let counts = Guarded<[String: Int]>([:])

    init() throws {
        (fd, port) = try TestSocket.listen(what: "cache origin")
        TestSocket.acceptLoop(fd, timeout: 120) { [self] c in
            Thread { [self] in self.serve(c) }.start()
            return true
        }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    /// Requests the origin saw for `path` (its query included).
    func count(_ path: String) -> Int { counts.withLock { $0[path] ?? 0 } }

    private func serve(_ c: Int32) {
        defer { close(c) }
        let reader = HTTPTestReader(fd: c)
        while let head = reader.readHead() {
            let lines = head.split(separator: "\r\n").map(String.init)
            let words = (lines.first ?? "").split(separator: " ").map(String.init)
            let method = words.first ?? "GET", target = words.count > 1 ? words[1] : "/"
            let fields = HTTPTestReader.fields(lines)
            if let length = fields["content-length"].flatMap({ Int($0) }), length > 0 { _ = reader.read(count: length) }
            let n = counts.withLock { counts -> Int in
                counts[target, default: 0] += 1
                return counts[target]!
            }
            let path = String(target.split(separator: "?").first ?? "")
            var extra = "Cache-Control: max-age=60\r\n"
            var body = "\(target) #\(n)\n"
            var chunked = false
            switch path {
            case "/cookie": extra += "Set-Cookie: session=\(n)\r\n"
            case "/cookie-nocache": extra = "Cache-Control: max-age=60, no-cache=\"set-cookie\"\r\nSet-Cookie: session=\(n)\r\n"
            case "/nostore": extra = "Cache-Control: no-store\r\n"
            case "/private": extra = "Cache-Control: private, max-age=60\r\n"
            case "/nofreshness": extra = ""
            case "/etag": extra += "ETag: \"v1\"\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            case "/vary": extra += "Vary: Origin\r\n"; body = "\(target) #\(n) for \(fields["origin"] ?? "-")\n"
            case "/ae":
                extra += "Vary: Accept-Encoding\r\n"
                if fields["accept-encoding"]?.contains("gzip") == true { extra += "Content-Encoding: gzip\r\n"; body = "gzip #\(n)\n" }
            case "/short": extra = "Cache-Control: max-age=1\r\n"
            case "/big": body = String(repeating: "x", count: 3000) + " #\(n)\n"
            case "/chunked": chunked = true
            default: break
            }
            var answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\(extra)"
            if chunked {
                answer += "Transfer-Encoding: chunked\r\n\r\n"
                for piece in [String(body.prefix(3)), String(body.dropFirst(3))] {
                    answer += String(piece.utf8.count, radix: 16) + "\r\n" + piece + "\r\n"
                }
                answer += "0\r\n\r\n"
            } else {
                answer += "Content-Length: \(body.utf8.count)\r\n\r\n"
                if method != "HEAD" { answer += body }
            }
            guard TestSocket.sendAll(c, answer) else { return }
        }
    }
}

/// `cache`, `http-request cache-use`, `http-response cache-store`: what HAProxy's small object
/// cache stores and serves, against an origin that counts what reaches it.
@Suite(.serialized) struct HTTPCacheTests {
    static func config(_ port: UInt16, _ noVary: UInt16, origin: UInt16, maxAge: Int = 60) -> String {
        """
        global
            stats socket @ADMIN@ level admin
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
        cache small
            total-max-size 4
            max-age \(maxAge)
            max-object-size 2048
            process-vary on
        cache plain
            total-max-size 1
        frontend web
            bind 127.0.0.1:\(port)
            filter cache small
            http-request cache-use small
            http-response cache-store small
            default_backend app
        frontend novary
            bind 127.0.0.1:\(noVary)
            default_backend app2
        backend app
            cookie SRV insert
            server s 127.0.0.1:\(origin) cookie s1
        backend app2
            http-request cache-use plain
            http-response cache-store plain
            server s 127.0.0.1:\(origin)
        """
    }

    /// One request on a new connection; the answer's head lowercased.
    static func get(_ port: UInt16, _ path: String, method: String = "GET", headers: [String] = []) throws -> (status: Int, head: String, body: String) {
        let client = try #require(TestHTTPClient(port: port))
        client.send("\(method) \(path) HTTP/1.1\r\nHost: test.local\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
        let answer = try #require(client.reader.readResponse(head: method))
        return (answer.status, answer.head.lowercased(), answer.body)
    }

    static func start(_ origin: CacheOrigin, maxAge: Int = 60) throws -> (StrataProcess, UInt16, UInt16) {
        let (port, noVary) = (TestSocket.freePort(), TestSocket.freePort())
        let strata = try StrataProcess(config: config(port, noVary, origin: origin.port, maxAge: maxAge))
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        return (strata, port, noVary)
    }

    @Test func aSecondGetIsAHitWithAgeAndTheOriginSeesOneRequest() throws {
        let origin = try CacheOrigin()
        let (strata, port, _) = try HTTPCacheTests.start(origin)
        defer { strata.stop() }
        let first = try HTTPCacheTests.get(port, "/plain")
        #expect(first.status == 200 && first.body == "/plain #1\n")
        #expect(!first.head.contains("\r\nage:"), "\(first.head)")
        let second = try HTTPCacheTests.get(port, "/plain")
        #expect(second.status == 200 && second.body == "/plain #1\n", "\(second)")
        #expect(second.head.contains("\r\nage: "), "\(second.head)")
        #expect(second.head.contains("cache-control: max-age=60"))
        // The persistence cookie is inserted after cache-store ran: the first answer has it, the
        // stored one does not (as HAProxy).
        #expect(first.head.contains("set-cookie: srv=s1"), "\(first.head)")
        #expect(!second.head.contains("srv=s1"), "\(second.head)")
        #expect(origin.count("/plain") == 1)
        // Keep-alive: hits on one connection, the connection stays usable.
        let client = try #require(TestHTTPClient(port: port))
        for _ in 0..<3 {
            let answer = try #require(client.get("/plain"))
            #expect(answer.body == "/plain #1\n")
        }
        #expect(origin.count("/plain") == 1)
        // HEAD is served from the stored GET, without its body.
        let head = try HTTPCacheTests.get(port, "/plain", method: "HEAD")
        #expect(head.status == 200 && head.body.isEmpty && head.head.contains("\r\nage: "), "\(head)")
        #expect(origin.count("/plain") == 1)
        // A chunked answer is stored and served whole.
        _ = try HTTPCacheTests.get(port, "/chunked")
        let chunked = try HTTPCacheTests.get(port, "/chunked")
        #expect(chunked.body == "/chunked #1\n" && chunked.head.contains("\r\nage: "), "\(chunked)")
        #expect(origin.count("/chunked") == 1)
        // Another query is another key.
        _ = try HTTPCacheTests.get(port, "/plain?x=1")
        #expect(origin.count("/plain?x=1") == 1)
        // Counted by the frontend whose rule looked up (HAProxy's cache_lookups, cache_hits).
        let stat = try strata.admin("show stat")
        let header = stat.split(separator: "\n")[0].dropFirst(2).split(separator: ",", omittingEmptySubsequences: false)
        let row = try #require(stat.split(separator: "\n").first { $0.hasPrefix("web,FRONTEND,") })
            .split(separator: ",", omittingEmptySubsequences: false)
        let lookups = try #require(header.firstIndex(of: "cache_lookups")), hits = try #require(header.firstIndex(of: "cache_hits"))
        #expect(Int(row[lookups]) == 9 && Int(row[hits]) == 6, "\(row)")
    }

    @Test func conditionalRequestsAreAnswered304FromTheCache() throws {
        let origin = try CacheOrigin()
        let (strata, port, _) = try HTTPCacheTests.start(origin)
        defer { strata.stop() }
        _ = try HTTPCacheTests.get(port, "/etag")
        let match = try HTTPCacheTests.get(port, "/etag", headers: ["If-None-Match: \"v1\""])
        #expect(match.status == 304 && match.body.isEmpty, "\(match)")
        #expect(match.head.contains("etag: \"v1\""))
        let other = try HTTPCacheTests.get(port, "/etag", headers: ["If-None-Match: \"v2\""])
        #expect(other.status == 200 && other.body == "/etag #1\n", "\(other)")
        let since = try HTTPCacheTests.get(port, "/etag", headers: ["If-Modified-Since: Mon, 07 Nov 1994 08:49:37 GMT"])
        #expect(since.status == 304, "\(since)")
        let before = try HTTPCacheTests.get(port, "/etag", headers: ["If-Modified-Since: Sat, 05 Nov 1994 08:49:37 GMT"])
        #expect(before.status == 200)
        #expect(origin.count("/etag") == 1)
    }

    /// HAProxy's rules: no-store, private, an Authorization request, a cookie its answer says is
    /// not to be cached, an answer without freshness or validator, one above max-object-size, a
    /// POST. A Set-Cookie alone does not stop HAProxy 2.6 from storing (checked against it).
    @Test func whatHAProxyDoesNotStoreIsFetchedEachTime() throws {
        let origin = try CacheOrigin()
        let (strata, port, _) = try HTTPCacheTests.start(origin)
        defer { strata.stop() }
        for path in ["/nostore", "/private", "/cookie-nocache", "/nofreshness", "/big"] {
            let a = try HTTPCacheTests.get(port, path)
            let b = try HTTPCacheTests.get(port, path)
            #expect(a.status == 200 && b.status == 200)
            #expect(!b.head.contains("\r\nage:"), "\(path): \(b.head)")
            #expect(origin.count(path) == 2, "\(path)")
        }
        _ = try HTTPCacheTests.get(port, "/auth", headers: ["Authorization: Basic dTpw"])
        _ = try HTTPCacheTests.get(port, "/auth", headers: ["Authorization: Basic dTpw"])
        #expect(origin.count("/auth") == 2)
        // Nor stored for another request: a request without Authorization is a miss.
        _ = try HTTPCacheTests.get(port, "/auth")
        #expect(origin.count("/auth") == 3)
        _ = try HTTPCacheTests.get(port, "/post", method: "POST", headers: ["Content-Length: 0"])
        _ = try HTTPCacheTests.get(port, "/post", method: "POST", headers: ["Content-Length: 0"])
        #expect(origin.count("/post") == 2)
        // A successful POST drops the entry of its URI.
        _ = try HTTPCacheTests.get(port, "/post")
        _ = try HTTPCacheTests.get(port, "/post")
        #expect(origin.count("/post") == 3)
        _ = try HTTPCacheTests.get(port, "/post", method: "POST", headers: ["Content-Length: 0"])
        _ = try HTTPCacheTests.get(port, "/post")
        #expect(origin.count("/post") == 5)
        // Cache-Control: no-cache on the request: not served from the cache.
        _ = try HTTPCacheTests.get(port, "/plain")
        _ = try HTTPCacheTests.get(port, "/plain", headers: ["Cache-Control: no-cache"])
        #expect(origin.count("/plain") == 2)
        // Set-Cookie alone: stored, as HAProxy does.
        _ = try HTTPCacheTests.get(port, "/cookie")
        let cookie = try HTTPCacheTests.get(port, "/cookie")
        #expect(cookie.head.contains("\r\nage: ") && cookie.head.contains("set-cookie: session=1"), "\(cookie.head)")
        #expect(origin.count("/cookie") == 1)
    }

    /// `process-vary on`: one variant per Origin; off: an answer with Vary is not stored.
    @Test func varyGivesVariantsWithProcessVaryAndNothingWithout() throws {
        let origin = try CacheOrigin()
        let (strata, port, noVary) = try HTTPCacheTests.start(origin)
        defer { strata.stop() }
        let a = try HTTPCacheTests.get(port, "/vary", headers: ["Origin: https://a.example"])
        let b = try HTTPCacheTests.get(port, "/vary", headers: ["Origin: https://b.example"])
        let a2 = try HTTPCacheTests.get(port, "/vary", headers: ["Origin: https://a.example"])
        let b2 = try HTTPCacheTests.get(port, "/vary", headers: ["Origin: https://b.example"])
        #expect(a.body == "/vary #1 for https://a.example\n" && a2.body == a.body, "\(a2)")
        #expect(b.body == "/vary #2 for https://b.example\n" && b2.body == b.body, "\(b2)")
        #expect(a2.head.contains("\r\nage: ") && b2.head.contains("\r\nage: "))
        #expect(origin.count("/vary") == 2)
        let listed = try strata.admin("show cache")
        #expect(listed.split(separator: "\n").filter { $0.contains(" hash:") }.count == 2, "\(listed)")

        // Accept-Encoding: the stored answer serves the requests that accept its coding.
        _ = try HTTPCacheTests.get(port, "/ae", headers: ["Accept-Encoding: gzip, br"])
        #expect(try HTTPCacheTests.get(port, "/ae", headers: ["Accept-Encoding: br, gzip"]).body == "gzip #1\n")
        #expect(try HTTPCacheTests.get(port, "/ae").body == "gzip #1\n")
        #expect(origin.count("/ae") == 1)
        #expect(try HTTPCacheTests.get(port, "/ae", headers: ["Accept-Encoding: identity"]).body == "/ae #2\n")
        #expect(try HTTPCacheTests.get(port, "/ae", headers: ["Accept-Encoding: gzip;q=0"]).body == "/ae #2\n")
        #expect(origin.count("/ae") == 2)

        _ = try HTTPCacheTests.get(noVary, "/vary?off", headers: ["Origin: https://a.example"])
        let again = try HTTPCacheTests.get(noVary, "/vary?off", headers: ["Origin: https://a.example"])
        #expect(!again.head.contains("\r\nage:"))
        #expect(origin.count("/vary?off") == 2)
        // The section without process-vary stores what does not vary.
        _ = try HTTPCacheTests.get(noVary, "/plain?b")
        #expect(try HTTPCacheTests.get(noVary, "/plain?b").head.contains("\r\nage: "))
        #expect(origin.count("/plain?b") == 1)
    }

    /// An entry is served while fresh: `max-age=1` from the origin, then the origin again.
    @Test func anEntryExpiresWithItsMaxAge() throws {
        let origin = try CacheOrigin()
        let (strata, port, _) = try HTTPCacheTests.start(origin)
        defer { strata.stop() }
        _ = try HTTPCacheTests.get(port, "/short")
        // Served from the cache within its second (or fetched again if the second passed).
        _ = try HTTPCacheTests.get(port, "/short")
        #expect((1...2).contains(origin.count("/short")))
        let before = origin.count("/short")
        usleep(2_500_000)
        let late = try HTTPCacheTests.get(port, "/short")
        #expect(late.body == "/short #\(before + 1)\n", "\(late)")
        #expect(origin.count("/short") == before + 1)
    }

    /// The entries survive a reload that keeps the `cache` section, and a changed section starts
    /// empty; `show cache` lists what is stored in HAProxy's format.
    @Test func theCacheSurvivesAReloadWhileItsSectionIsUnchanged() throws {
        let origin = try CacheOrigin()
        let (strata, port, noVary) = try HTTPCacheTests.start(origin)
        defer { strata.stop() }
        _ = try HTTPCacheTests.get(port, "/plain")
        let listed = try strata.admin("show cache")
        let lines = listed.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("0x") && $0.contains(": small (shctx:0x") && $0.contains("available blocks:") }, "\(listed)")
        #expect(lines.contains { $0.contains(" hash:") && $0.contains(" vary:0x") && $0.contains(" size:") && $0.contains("expire:") }, "\(listed)")
        #expect(lines.contains { $0.contains(": plain (shctx:0x") })

        // The same sections (a proxy changed): kept.
        try strata.write(HTTPCacheTests.config(port, noVary, origin: origin.port).replacingOccurrences(of: "timeout server 10s", with: "timeout server 11s"))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        let kept = try HTTPCacheTests.get(port, "/plain")
        #expect(kept.head.contains("\r\nage: ") && kept.body == "/plain #1\n", "\(kept)")
        #expect(origin.count("/plain") == 1)

        // The section changed: its store starts empty.
        try strata.write(HTTPCacheTests.config(port, noVary, origin: origin.port, maxAge: 61))
        let reload = try strata.admin("reload")
        #expect(reload.hasPrefix("Success=1"), "\(reload)")
        #expect(reload.contains("cache 'small' changed: it starts empty"), "\(reload)")
        let fresh = try HTTPCacheTests.get(port, "/plain")
        #expect(!fresh.head.contains("\r\nage:") && fresh.body == "/plain #2\n", "\(fresh)")
        #expect(origin.count("/plain") == 2)
    }

    @Test func checkRefusesABadCacheConfiguration() throws {
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("strata.cfg").path
        try """
            cache nosize
                max-age 10
            cache c
                total-max-size 1
                max-object-size 900000
            cache c
                total-max-size 1
            cache d
                total-max-size 5000
                max-age soon
                process-vary maybe
                max-size 1
            frontend f
                mode http
                bind 127.0.0.1:1
                http-request cache-use missing
                http-response cache-store d
                filter cache elsewhere
                http-request cache-use if TRUE
                default_backend b
            backend b
                mode http
                server s 127.0.0.1:2
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let check = runTool(StrataProcess.binary, ["-c", "-f", config])
        #expect(check.status == 1)
        for expected in [
            "strata.cfg:1: cache 'nosize': size not specified ('total-max-size MEGABYTES' is required)",
            "strata.cfg:3: cache 'c': 'max-object-size' is limited to half of 'total-max-size' (524288 bytes)",
            "strata.cfg:6: cache 'c' has the same name as another cache section declared at",
            "strata.cfg:9: 'total-max-size' expects an integer from 1 to 4095, got '5000'",
            "strata.cfg:10: 'max-age' expects an integer, got 'soon'",
            "strata.cfg:11: 'process-vary' expects on or off, got 'maybe'",
            "strata.cfg:12: 'max-size' is not a cache keyword",
            "strata.cfg:16: 'http-request cache-use': unable to find cache 'missing'",
            "strata.cfg:18: 'filter cache': unable to find cache 'elsewhere'",
            "strata.cfg:19: 'http-request cache-use' expects a cache name",
        ] {
            #expect(check.stderr.contains(expected), "\(expected)\n\(check.stderr)")
        }
    }
}
