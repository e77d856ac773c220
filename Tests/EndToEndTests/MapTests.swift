import Foundation
import Glibc
import StrataTestSupport
import Testing

/// Maps: the `map*` converters on files read at load, each match method seen end to end through
/// what the origin receives or which backend answers; `use_backend %[…]` on a map; the admin
/// socket's map commands changing routing live, kept across a reload while the file is unchanged.
@Suite(.serialized) struct MapTests {
    static let defaults = """
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
        """

    static func header(_ body: String, _ name: String) -> String? {
        body.split(separator: "\n").first { $0.hasPrefix("h=\(name): ") }.map { String($0.dropFirst(name.count + 4)) }
    }

    /// A directory holding `files` (name -> text).
    static func mapDirectory(_ files: [String: String]) throws -> String {
        let dir = StrataProcess.makeDirectory().path
        for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        return dir
    }

    @Test func eachMatchMethodLooksUpItsKind() throws {
        let dir = try Self.mapDirectory([
            "str.map": "# exact keys\nalpha one\nbeta  two words\n\nalpha shadowed\n",
            "beg.map": "/api v-api\n/api/v2 v-api2\n/ short\n",
            "sub.map": "zzz never\nadmin has-admin\nmin has-min\n",
            "dir.map": "images dir-images\n/static/ dir-static\n",
            "dom.map": "example.com dom-example\ntest dom-test\n",
            "end.map": ".jpg end-jpg\ng end-g\n",
            "reg.map": "^/user/[0-9]+$ reg-user\n^/user reg-any\n",
            "ip.map": "10.0.0.0/8 net8\n10.1.0.0/16 net16\n10.1.2.3 host\n::1 v6-local\n2001:db8::/32 v6-doc\n",
            "int.map": "42 answer\n100:199 hundreds\n7 seven\n",
            "num.map": "/x 5\n/b 10\n",
        ])
        let origin = try TestHTTPOrigin("app")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            \(Self.defaults)
            frontend fe
                bind 127.0.0.1:\(port)
                http-request set-header X-Str %[req.hdr(x-k),map(\(dir)/str.map,none)]
                http-request set-header X-Str2 %[req.hdr(x-k),map_str(\(dir)/str.map)]
                http-request set-header X-Beg %[path,map_beg(\(dir)/beg.map,none)]
                http-request set-header X-Sub %[path,map_sub(\(dir)/sub.map,none)]
                http-request set-header X-Dir %[path,map_dir(\(dir)/dir.map,none)]
                http-request set-header X-Dom %[req.hdr(host),map_dom(\(dir)/dom.map,none)]
                http-request set-header X-End %[path,map_end(\(dir)/end.map,none)]
                http-request set-header X-Reg %[path,map_reg(\(dir)/reg.map,none)]
                http-request set-header X-Ip %[req.hdr(x-ip),map_ip(\(dir)/ip.map,none)]
                http-request set-header X-Src %[src,map_ip(\(dir)/ip.map,none)]
                http-request set-header X-Int %[req.hdr(x-n),map_int(\(dir)/int.map,none)]
                http-request set-header X-Num %[path,map_beg_int(\(dir)/num.map,0),add(1)]
                default_backend app
            backend app
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        func ask(_ path: String, host: String = "test.local", _ headers: [String] = []) throws -> String {
            let answer = try #require(client.get(path, host: host, headers: headers))
            #expect(answer.status == 200)
            return answer.body
        }
        var b = try ask("/api/v2/users", host: "www.example.com", ["X-K: alpha", "X-Ip: 10.1.2.3", "X-N: 42"])
        #expect(Self.header(b, "X-Str") == "one", "\(b)")
        #expect(Self.header(b, "X-Str2") == "one")
        #expect(Self.header(b, "X-Beg") == "v-api2")
        #expect(Self.header(b, "X-Sub") == "none")
        #expect(Self.header(b, "X-Dir") == "none")
        #expect(Self.header(b, "X-Dom") == "dom-example")
        #expect(Self.header(b, "X-End") == "none")
        #expect(Self.header(b, "X-Reg") == "none")
        #expect(Self.header(b, "X-Ip") == "host")
        #expect(Self.header(b, "X-Src") == "none")
        #expect(Self.header(b, "X-Int") == "answer")
        #expect(Self.header(b, "X-Num") == "1")

        b = try ask("/apiary/administer/static/images/a.jpg", host: "test", ["X-K: beta", "X-Ip: 10.1.9.9", "X-N: 150"])
        #expect(Self.header(b, "X-Str") == "two words", "\(b)")
        #expect(Self.header(b, "X-Beg") == "v-api")
        #expect(Self.header(b, "X-Sub") == "has-admin")
        #expect(Self.header(b, "X-Dir") == "dir-images")
        #expect(Self.header(b, "X-Dom") == "dom-test")
        #expect(Self.header(b, "X-End") == "end-jpg")
        #expect(Self.header(b, "X-Ip") == "net16")
        #expect(Self.header(b, "X-Int") == "hundreds")

        b = try ask("/user/12", host: "notexample.com", ["X-K: gamma", "X-Ip: 10.200.0.1", "X-N: 7"])
        #expect(Self.header(b, "X-Str") == "none", "\(b)")
        #expect(Self.header(b, "X-Str2") == "")  // no default: the sample fails, the header is empty
        #expect(Self.header(b, "X-Beg") == "short")
        #expect(Self.header(b, "X-Dom") == "none")
        #expect(Self.header(b, "X-Reg") == "reg-user")
        #expect(Self.header(b, "X-Ip") == "net8")
        #expect(Self.header(b, "X-Int") == "seven")

        b = try ask("/b/static/x.png", ["X-Ip: 2001:db8:1::5", "X-N: 99"])
        #expect(Self.header(b, "X-Dir") == "dir-static", "\(b)")
        #expect(Self.header(b, "X-End") == "end-g")
        #expect(Self.header(b, "X-Reg") == "none")
        #expect(Self.header(b, "X-Ip") == "v6-doc")
        #expect(Self.header(b, "X-Int") == "none")
        #expect(Self.header(b, "X-Num") == "11")
    }

    @Test func mapIPTakesTheLongestPrefixWhateverTheOrder() throws {
        // Shorter networks first and last: the longest that holds the address wins, not the first.
        var lines = ["0.0.0.0/0 any"]
        for i in 0..<2000 { lines.append("172.\(16 + i % 16).\(100 + i / 16).0/24 net24-\(i)") }
        lines += ["172.16.0.0/12 net12", "172.16.5.0/24 five", "172.16.5.128/25 five-high", "172.16.5.200 host", "127.0.0.0/8 loop"]
        let dir = try Self.mapDirectory(["nets.map": lines.joined(separator: "\n") + "\n"])
        let origin = try TestHTTPOrigin("app")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            \(Self.defaults)
            frontend fe
                bind 127.0.0.1:\(port)
                http-request set-header X-Net %[req.hdr(x-ip),map_ip(\(dir)/nets.map)]
                http-request set-header X-Src %[src,map_ip(\(dir)/nets.map)]
                default_backend app
            backend app
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        for (address, expected) in [("172.16.5.200", "host"), ("172.16.5.201", "five-high"), ("172.16.5.1", "five"),
                                    ("172.31.255.1", "net12"), ("172.17.100.9", "net24-1"), ("8.8.8.8", "any")] {
            let answer = try #require(client.get("/", headers: ["X-IP: \(address)"]))
            #expect(Self.header(answer.body, "X-Net") == expected, "\(address): \(answer.body)")
            #expect(Self.header(answer.body, "X-Src") == "loop")
        }
    }

    @Test func aMissingOrWrongMapFileIsRefusedAtItsLine() throws {
        let dir = try Self.mapDirectory(["bad.map": "10.0.0.0/8 a\nnot-an-address b\n", "vals.map": "k notanumber\n"])
        let config = dir + "/strata.cfg"
        try """
            frontend fe
                mode http
                bind 127.0.0.1:1
                http-request set-header X-A %[path,map(\(dir)/missing.map,x)]
                http-request set-header X-B %[src,map_ip(\(dir)/bad.map)]
                http-request set-header X-C %[path,map_str_int(\(dir)/vals.map)]
                http-request set-header X-D %[path,map_regm(\(dir)/vals.map)]
                http-request set-header X-E %[path,map_foo(\(dir)/vals.map)]
                default_backend b
            backend b
                mode http
                server s 127.0.0.1:2
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let check = runTool(StrataProcess.binary, ["-c", "-f", config])
        #expect(check.status == 1)
        let out = check.stderr + check.stdout
        #expect(out.contains("\(config):4: "), "\(out)")
        #expect(out.contains("cannot read map file '\(dir)/missing.map': No such file or directory"), "\(out)")
        #expect(out.contains("\(config):5: ") && out.contains("line 2: invalid address 'not-an-address'"), "\(out)")
        #expect(out.contains("\(config):6: ") && out.contains("value 'notanumber' is not an integer"), "\(out)")
        #expect(out.contains("\(config):7: ") && out.contains("'map_regm' is not supported yet"), "\(out)")
        #expect(out.contains("\(config):8: ") && out.contains("'map_foo' is not supported"), "\(out)")
    }

    @Test func relativeMapPathsFollowDefaultPath() throws {
        let dir = try Self.mapDirectory(["hosts.map": "a.test be-a\n"])
        let origin = try TestHTTPOrigin("app")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
                default-path origin \(dir)
            \(Self.defaults)
            frontend fe
                bind 127.0.0.1:\(port)
                http-request set-header X-Be %[req.hdr(host),map(hosts.map,none)]
                default_backend app
            backend app
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        #expect(Self.header(try #require(client.get("/", host: "a.test")).body, "X-Be") == "be-a")
    }

    @Test func useBackendByMapFallsBackToTheDefaultAndFollowsAdminChangesAcrossReloads() throws {
        let dir = try Self.mapDirectory(["hosts.map": "a.test be_a\nb.test be_b\nghost.test be_missing\n"])
        let a = try TestHTTPOrigin("a"), b = try TestHTTPOrigin("b"), d = try TestHTTPOrigin("d")
        let port = TestSocket.freePort()
        let config = """
            global
                stats socket @ADMIN@ level admin
            \(Self.defaults)
            frontend fe
                bind 127.0.0.1:\(port)
                use_backend %[req.hdr(host),lower,map(\(dir)/hosts.map,be_default)]
                default_backend be_default
            backend be_a
                server o 127.0.0.1:\(a.port)
            backend be_b
                server o 127.0.0.1:\(b.port)
            backend be_default
                server o 127.0.0.1:\(d.port)
            """
        let strata = try StrataProcess(config: config)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        func origin(_ host: String) throws -> String {
            let client = try #require(TestHTTPClient(port: port))
            let answer = try #require(client.get("/", host: host))
            return answer.body.split(separator: "\n").first.map { String($0.dropFirst("origin=".count)) } ?? ""
        }
        #expect(try origin("a.test") == "a")
        #expect(try origin("B.Test") == "b")
        #expect(try origin("ghost.test") == "d")  // a name no backend has: the default backend
        #expect(try origin("other.test") == "d")

        let map = "\(dir)/hosts.map"
        let listing = try strata.admin("show map")
        #expect(listing.contains("0 (\(map)) pattern loaded from file '\(map)'") && listing.contains("entry_cnt=3"), "\(listing)")
        #expect(try strata.admin("add map \(map) c.test be_a") == "")
        #expect(try strata.admin("set map \(map) a.test be_b") == "")
        #expect(try strata.admin("del map \(map) b.test") == "")
        #expect(try strata.admin("del map \(map) b.test") == "Key not found.")
        #expect(try strata.admin("set map \(map) nope.test be_b") == "entry not found.")
        #expect(try strata.admin("show map nope") == "Unknown map identifier. Please use #<id> or <file>.")
        #expect(try origin("c.test") == "a")
        #expect(try origin("a.test") == "b")
        #expect(try origin("b.test") == "d")
        let entries = try strata.admin("show map #0")
        #expect(entries.contains(" a.test be_b") && entries.contains(" c.test be_a") && !entries.contains("b.test "), "\(entries)")
        #expect(try strata.admin("get map \(map) c.test").contains("found=yes, idx=tree, key=\"c.test\", value=\"be_a\""))

        // A reload with the file unchanged keeps the runtime changes.
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(try origin("c.test") == "a")
        #expect(try origin("a.test") == "b")
        #expect(try origin("b.test") == "d")

        // A changed file starts the map again from the file.
        #expect(try strata.admin("reload plan").contains("= no change"))
        try "a.test be_a\nb.test be_b\n".write(toFile: map, atomically: true, encoding: .utf8)
        let plan = try strata.admin("reload plan")
        #expect(plan.contains("~ map \(map): file changed (3 -> 2 entries; changes made at runtime are dropped)"), "\(plan)")
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(try origin("a.test") == "a")
        #expect(try origin("b.test") == "b")
        #expect(try origin("c.test") == "d")

        #expect(try strata.admin("clear map #0") == "")
        #expect(try origin("a.test") == "d")
        #expect(try strata.admin("show map #0") == "")

        // A reload whose map file is gone fails with the line that names it; nothing changes.
        #expect(try strata.admin("add map #0 a.test be_b") == "")
        try FileManager.default.removeItem(atPath: map)
        let failed = try strata.admin("reload")
        #expect(failed.hasPrefix("Success=0") && failed.contains("\(strata.configPath):10: 'use_backend': ")
                && failed.contains("cannot read map file '\(map)': No such file or directory"), "\(failed)")
        #expect(try origin("a.test") == "b")
    }

    @Test func runtimeMapChangesAreCheckedAgainstTheConvertersTypes() throws {
        let dir = try Self.mapDirectory(["nets.map": "10.0.0.0/8 1\n"])
        let origin = try TestHTTPOrigin("app")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            \(Self.defaults)
            frontend fe
                bind 127.0.0.1:\(port)
                http-request set-header X-N %[req.hdr(x-ip),map_ip_int(\(dir)/nets.map,0),add(100)]
                default_backend app
            backend app
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let map = "\(dir)/nets.map"
        #expect(try strata.admin("add map \(map) not-a-network 5").hasPrefix("'add map' failed"))
        #expect(try strata.admin("add map \(map) 10.1.0.0/16 notanumber").hasPrefix("'add map' failed"))
        #expect(try strata.admin("add map \(map) 10.1.0.0/16 7") == "")
        // A payload: every line in one change, or none when one is wrong.
        #expect(try strata.admin("add map \(map) <<\n10.3.0.0/16 30\nbad 1\n").hasPrefix("'add map' failed"))
        #expect(try strata.admin("add map \(map) <<\n10.3.0.0/16 30\n10.4.0.0/16 40\n") == "")
        let client = try #require(TestHTTPClient(port: port))
        #expect(Self.header(try #require(client.get("/", headers: ["X-IP: 10.1.2.3"])).body, "X-N") == "107")
        #expect(Self.header(try #require(client.get("/", headers: ["X-IP: 10.2.0.1"])).body, "X-N") == "101")
        #expect(Self.header(try #require(client.get("/", headers: ["X-IP: 192.0.2.1"])).body, "X-N") == "100")
        #expect(Self.header(try #require(client.get("/", headers: ["X-IP: 10.3.0.1"])).body, "X-N") == "130")
        #expect(Self.header(try #require(client.get("/", headers: ["X-IP: 10.4.0.1"])).body, "X-N") == "140")
        #expect(try strata.admin("show map #0").split(separator: "\n").count == 4)
    }

    /// Two loops read the map while the admin socket changes it: every loop sees each change
    /// (under ThreadSanitizer in CI, the sharing is checked too).
    @Test func mapChangesReachEveryLoopWhileTheyServe() throws {
        let dir = try Self.mapDirectory(["v.map": "k v0\n"])
        let origin = try TestHTTPOrigin("app")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                nbthread 2
                stats socket @ADMIN@ level admin
            \(Self.defaults)
            frontend fe
                bind 127.0.0.1:\(port)
                http-request return status 200 content-type text/plain lf-string "%[req.hdr(x-k),map(\(dir)/v.map,none)]"
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let map = "\(dir)/v.map"
        let failures = Guarded<[String]>([])
        let done = Guarded(false)
        let served = Guarded(0)
        // Readers on both loops for as long as the admin socket changes the map.
        let readers = (0..<4).map { _ in
            Thread {
                var n = 0
                while n < 20 || !done.withLock({ $0 }) {
                    n += 1
                    served.withLock { $0 += 1 }
                    guard let client = TestHTTPClient(port: port) else { failures.withLock { $0.append("connect") }; continue }
                    guard let answer = client.get("/", headers: ["X-K: k"]) else { failures.withLock { $0.append("no answer") }; continue }
                    if !answer.body.hasPrefix("v") && answer.body != "final" { failures.withLock { $0.append(answer.head + answer.body) } }
                }
            }
        }
        for t in readers { t.start() }
        for i in 1...30 {
            #expect(try strata.admin("set map \(map) k v\(i)") == "")
            #expect(try strata.admin("add map \(map) k\(i) x") == "")
        }
        #expect(try strata.admin("set map \(map) k final") == "")
        done.withLock { $0 = true }
        // Connections land on either loop: each one answers with the last value.
        for _ in 0..<20 {
            let client = try #require(TestHTTPClient(port: port))
            #expect(try #require(client.get("/", headers: ["X-K: k"])).body == "final")
        }
        #expect(eventually(seconds: 30) { readers.allSatisfy(\.isFinished) })
        let seen = failures.withLock { $0 }
        #expect(seen.isEmpty, "\(seen.count): \(seen.prefix(3))")
        #expect(served.withLock { $0 } >= 80)
    }

    /// Mode tcp: `use_backend %[src,map_ip(…)]`, each client address to its backend.
    @Test func useBackendByMapInModeTCP() throws {
        let dir = try Self.mapDirectory(["src.map": "127.0.0.2 be_a\n127.0.0.3/32 be_missing\n"])
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b")), d = try TestBackend(.name("d"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode tcp
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend fe
                bind 127.0.0.1:\(port)
                use_backend %[src,map_ip(\(dir)/src.map,be_b)]
                default_backend be_d
            backend be_a
                server o 127.0.0.1:\(a.port)
            backend be_b
                server o 127.0.0.1:\(b.port)
            backend be_d
                server o 127.0.0.1:\(d.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        func name(from source: String) throws -> String? {
            let fd = try #require(TestSocket.connect(port, from: source))
            defer { close(fd) }
            return TestSocket.readLine(fd)
        }
        #expect(try name(from: "127.0.0.2") == "a")
        #expect(try name(from: "127.0.0.3") == "d")  // a name no backend has: the default backend
        #expect(try name(from: "127.0.0.1") == "b")  // no key: the converter's default
        #expect(try strata.admin("set map \(dir)/src.map 127.0.0.3/32 be_a") == "")
        #expect(try name(from: "127.0.0.3") == "a")
    }

    /// `set-map(FILE)` and `del-map(FILE)` in `http-request` and `http-response` rules change the
    /// map the converters read, the same one the admin socket's `set map` changes, and a reload
    /// with the file unchanged keeps what they did.
    @Test func setMapAndDelMapRulesChangeTheSharedMap() throws {
        let dir = try Self.mapDirectory(["users.map": "alice bronze\n"])
        let origin = try TestHTTPOrigin("app")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            \(Self.defaults)
            frontend fe
                bind 127.0.0.1:\(port)
                http-request set-map(\(dir)/users.map) %[url_param(user)] %[url_param(tier)] if { path /learn }
                http-request del-map(\(dir)/users.map) %[url_param(user)] if { path /forget }
                http-request return status 200 content-type text/plain string done if { path /learn } || { path /forget }
                http-request set-header X-Tier %[url_param(user),map(\(dir)/users.map,unknown)]
                default_backend app
            backend app
                http-response set-map(\(dir)/users.map) origin-%[res.hdr(x-origin)] seen-%[status]
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        func tier(_ user: String) throws -> String? {
            let answer = try #require(client.get("/?user=\(user)", host: "test.local"))
            #expect(answer.status == 200)
            return Self.header(answer.body, "X-Tier")
        }
        func ask(_ path: String) throws {
            let answer = try #require(client.get(path, host: "test.local"))
            #expect(answer.status == 200 && answer.body == "done", "\(answer.body)")
        }
        #expect(try tier("bob") == "unknown")
        #expect(try tier("alice") == "bronze")
        try ask("/learn?user=bob&tier=gold")
        try ask("/learn?user=alice&tier=silver")
        #expect(try tier("bob") == "gold")
        // An existing key's value is replaced where it is, as `set map` does.
        #expect(try tier("alice") == "silver")
        let shown = try strata.admin("show map \(dir)/users.map")
        let entries = shown.split(separator: "\n").map { $0.split(separator: " ").dropFirst().joined(separator: " ") }
        #expect(entries == ["alice silver", "origin-app seen-200", "bob gold"], "\(shown)")

        // The admin socket and the rules change one map; a reload keeps it while the file is unchanged.
        #expect(try strata.admin("set map \(dir)/users.map bob platinum").isEmpty)
        #expect(try tier("bob") == "platinum")
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(try tier("bob") == "platinum")
        try ask("/forget?user=bob")
        #expect(try tier("bob") == "unknown")
        #expect(try !strata.admin("show map \(dir)/users.map").contains(" bob "))
    }
}
