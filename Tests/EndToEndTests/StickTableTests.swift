import Foundation
import Glibc
import StrataTestSupport
import Testing

/// Stick tables with the real binary over real sockets (issue 13): the classic rate limit,
/// concurrent connections in mode tcp, tables kept across reloads (and emptied when their
/// definition changes), expiry, the admin socket's table commands and the exporter's families.
@Suite(.serialized) struct StickTableTests {
    static func config(port: UInt16, table: String = "type ip size 1m expire 30s store http_req_rate(30s),http_req_cnt,conn_cur,gpc0,gpt0,http_err_cnt",
                       extra: String = "", global: String = "") -> String {
        """
        global
            stats socket @ADMIN@ level admin
            \(global)
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
        frontend fe
            bind 127.0.0.1:\(port)
            stick-table \(table)
            http-request track-sc0 src
            http-request deny deny_status 429 if { sc_http_req_rate(0) gt 3 }
            http-request sc-inc-gpc0(0) if { path /inc }
            http-request sc-set-gpt0(0) 42 if { path /inc }
            http-request use-service prometheus-exporter if { path /metrics }
            \(extra)
            http-request return status 200 content-type text/plain lf-string "gpc0=%[sc0_get_gpc0] src=%[src_http_req_cnt] conv=%[src,table_http_req_cnt(fe)] trackers=%[sc0_trackers] gpt0=%[sc_get_gpt0(0)] tracked=%[sc1_tracked]"
        """
    }

    /// The entry lines of `show table NAME`.
    static func entries(_ strata: StrataProcess, _ table: String) throws -> [String] {
        try strata.admin("show table \(table)").split(separator: "\n").dropFirst().map(String.init)
    }

    static func status(_ port: UInt16, _ path: String = "/") -> Int? {
        TestHTTPClient(port: port)?.get(path)?.status
    }

    @Test func trackSc0AndHTTPRequestRateAnswer429AfterNAndKeepLimitingAfterAReload() throws {
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port))
        #expect(strata.waitForAdmin())
        // The classic: 3 requests in the window pass, the 4th is refused, as in HAProxy (the
        // request is counted when tracked, before the deny rule reads the rate).
        #expect((0..<3).map { _ in Self.status(port) } == [200, 200, 200])
        #expect(Self.status(port) == 429)
        // The request's end (just after its answer) counts its error and lets the entry go.
        #expect(eventually { (try? Self.entries(strata, "fe").first?.contains(" use=0 ")) == true })
        let before = try Self.entries(strata, "fe")
        #expect(before.count == 1)
        #expect(before.first?.contains("key=127.0.0.1 use=0 ") == true, "\(before)")
        #expect(before.first?.contains(" http_req_cnt=4 ") == true, "\(before)")
        #expect(before.first?.contains(" http_req_rate(30000)=4") == true, "\(before)")
        #expect(before.first?.contains(" http_err_cnt=1") == true, "\(before)")

        // A reload that leaves the table as it is keeps its entries: still limited.
        try strata.write(Self.config(port: port, extra: "http-request set-header X-Reloaded 1"))
        let kept = try strata.admin("reload")
        #expect(kept.hasPrefix("Success=1") && kept.contains("\nstick-table 'fe' kept with its entries"), "\(kept)")
        #expect(strata.waitForOutput("stick-table 'fe' kept with its entries"))
        let after = try Self.entries(strata, "fe")
        #expect(after.first?.contains(" http_req_cnt=4 ") == true, "\(after)")
        #expect(Self.status(port) == 429)
        #expect(try Self.entries(strata, "fe").first?.contains(" http_req_cnt=5 ") == true)

        // A table whose definition changes starts empty, and the reload says so.
        try strata.write(Self.config(port: port, table: "type ip size 2m expire 30s store http_req_rate(30s),http_req_cnt,conn_cur,gpc0,gpt0,http_err_cnt"))
        let changed = try strata.admin("reload")
        #expect(changed.hasPrefix("Success=1") && changed.contains("\nstick-table 'fe' changed (type, key length, size or stored data): it starts empty"), "\(changed)")
        #expect(strata.waitForOutput("stick-table 'fe' changed (type, key length, size or stored data): it starts empty"))
        #expect(try strata.admin("show table fe") == "# table: fe, type: ip, size:2097152, used:0")
        #expect(Self.status(port) == 200)
        #expect(try Self.entries(strata, "fe").first?.contains(" http_req_cnt=1 ") == true)
    }

    /// Every loop tracks into the same table: concurrent clients over two loops lose no count,
    /// and every request's end lets the entry go (the ThreadSanitizer run checks the lock).
    @Test func countsFromEveryLoopAddUp() throws {
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
                nbthread 2
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend fe
                bind 127.0.0.1:\(port)
                stick-table type ip size 10 store http_req_cnt,http_req_rate(1m),conn_cur,conn_cnt,gpc0
                http-request track-sc0 src
                http-request track-sc1 src table other if { path /both }
                http-request sc-inc-gpc0(0)
                http-request return status 200 content-type text/plain lf-string "%[sc0_http_req_cnt]"
            backend other
                stick-table type ip size 10 store http_req_cnt
            """)
        #expect(strata.waitForAdmin())
        let ok = Guarded(0)
        let threads = (0..<4).map { _ in
            Thread {
                for i in 0..<10 {
                    // A new connection each time: the kernel spreads them over both loops.
                    if TestHTTPClient(port: port)?.get(i % 2 == 0 ? "/" : "/both")?.status == 200 { ok.withLock { $0 += 1 } }
                }
            }
        }
        threads.forEach { $0.start() }
        #expect(eventually(seconds: 30) { ok.withLock { $0 } == 40 })
        #expect(eventually { (try? Self.entries(strata, "fe").first?.contains(" use=0 ")) == true })
        let line = try #require(try Self.entries(strata, "fe").first)
        #expect(line.contains(" gpc0=40 conn_cnt=40 conn_cur=0 http_req_cnt=40 http_req_rate(60000)=40"), "\(line)")
        #expect(try Self.entries(strata, "other").first?.contains(" http_req_cnt=20") == true)
    }

    @Test func countersActionsFetchesAndConverters() throws {
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        let first = try #require(client.get("/inc"))
        // Tracked by this request (trackers 1), counted once; sc1 is not tracked.
        #expect(first.body == "gpc0=1 src=1 conv=1 trackers=1 gpt0=42 tracked=0", "\(first.body)")
        let second = try #require(client.get("/inc"))
        #expect(second.body == "gpc0=2 src=2 conv=2 trackers=1 gpt0=42 tracked=0", "\(second.body)")
        // Between requests nobody tracks the entry (the request ends just after its answer).
        #expect(eventually { (try? Self.entries(strata, "fe").first?.contains(" use=0 ")) == true })
        #expect(try Self.entries(strata, "fe").first?.contains(" gpt0=42 gpc0=2 ") == true)
    }

    @Test func connCurCountsConcurrentConnectionsInModeTCP() throws {
        let backend = try TestBackend(.echo)
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode tcp
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            listen l
                bind 127.0.0.1:\(port)
                stick-table type ip size 100 store conn_cur,conn_cnt,conn_rate(30s),sess_cnt,bytes_in_cnt,bytes_out_cnt
                tcp-request connection track-sc0 src
                tcp-request connection reject if { sc0_conn_cur gt 2 }
                server s 127.0.0.1:\(backend.port)
            """)
        #expect(strata.waitForAdmin())
        func echoed(_ fd: Int32) -> Bool {
            _ = TestSocket.sendAll(fd, "ping\n")
            return TestSocket.readLine(fd) == "ping"
        }
        let a = try #require(TestSocket.connect(port))
        let b = try #require(TestSocket.connect(port))
        #expect(echoed(a) && echoed(b))
        #expect(try Self.entries(strata, "l").first?.contains(" use=2 ") == true)
        #expect(try Self.entries(strata, "l").first?.contains(" conn_cnt=2 conn_rate(30000)=2 conn_cur=2 ") == true, "\((try? Self.entries(strata, "l")) ?? [])")
        // A third at once is one too many: rejected at accept (closed, nothing echoed).
        let c = try #require(TestSocket.connect(port))
        #expect(!echoed(c))
        close(c)
        close(a)
        close(b)
        // Each session's end drops conn_cur; what they carried is counted.
        #expect(eventually { (try? Self.entries(strata, "l").first?.contains(" conn_cnt=3 conn_rate(30000)=3 conn_cur=0 ")) == true },
                "\((try? Self.entries(strata, "l")) ?? [])")
        let line = try #require(try Self.entries(strata, "l").first)
        #expect(line.contains(" use=0 ") && line.contains(" sess_cnt=2 ") && line.contains(" bytes_in_cnt=10 ")
                && line.contains(" bytes_out_cnt=10"), "\(line)")
    }

    /// Content rules that wait for more bytes resume where they stopped: an action before the
    /// waiting rule runs once, however many reads the inspection takes.
    @Test func contentRulesWaitingForBytesRunTheirActionsOnce() throws {
        let backend = try TestBackend(.echo)
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode tcp
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            listen l
                bind 127.0.0.1:\(port)
                stick-table type ip size 10 store gpc0
                tcp-request inspect-delay 5s
                tcp-request connection track-sc0 src
                tcp-request content sc-inc-gpc0(0)
                tcp-request content accept if { req.payload(0,4) -m bin 61626364 }
                server s 127.0.0.1:\(backend.port)
            """)
        #expect(strata.waitForAdmin())
        let fd = try #require(TestSocket.connect(port))
        defer { close(fd) }
        _ = TestSocket.sendAll(fd, "ab")
        usleep(300_000)
        _ = TestSocket.sendAll(fd, "cd\n")
        #expect(TestSocket.readLine(fd) == "abcd")
        #expect(try Self.entries(strata, "l").first?.hasSuffix(" gpc0=1") == true, "\((try? strata.admin("show table l")) ?? "")")
    }

    @Test func anEntryExpiresWhenUnusedAndNotWhileTracked() throws {
        let backend = try TestBackend(.echo)
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode tcp
                timeout connect 2s
                timeout client 30s
                timeout server 30s
            listen l
                bind 127.0.0.1:\(port)
                stick-table type ip size 100 expire 1s store conn_cur
                tcp-request connection track-sc1 src
                server s 127.0.0.1:\(backend.port)
            """)
        #expect(strata.waitForAdmin())
        let a = try #require(TestSocket.connect(port))
        _ = TestSocket.sendAll(a, "x\n")
        #expect(TestSocket.readLine(a) == "x")
        // Tracked for longer than its expiry: it stays.
        usleep(1_500_000)
        #expect(try strata.admin("show table l").contains("used:1"))
        #expect(try Self.entries(strata, "l").first?.contains(" use=1 ") == true)
        close(a)
        // Let go: it expires a second later (the timer or the next look removes it).
        #expect(eventually { (try? strata.admin("show table l")) == "# table: l, type: ip, size:100, used:0" })
    }

    @Test func adminShowClearSetTableAndExporterFamilies() throws {
        let port = TestSocket.freePort()
        let user = "/tmp/strata-sticktable-\(port)-user.sock", operatorSocket = "/tmp/strata-sticktable-\(port)-operator.sock"
        defer { unlink(user); unlink(operatorSocket) }
        let strata = try StrataProcess(config: Self.config(port: port, global: "stats socket \(user) level user\n    stats socket \(operatorSocket) level operator") + """

            backend users
                stick-table type string len 8 size 10 store gpc0,http_req_rate(10s)
            """)
        #expect(strata.waitForAdmin())
        #expect(try strata.admin("show table") == """
            # table: fe, type: ip, size:1048576, used:0
            # table: users, type: string, size:10, used:0
            """)
        #expect(try strata.admin("set table users key alice data.gpc0 5 data.http_req_rate 3") == "")
        #expect(try strata.admin("set table users key bob data.gpc0 1") == "")
        // String keys are cut to the table's length.
        #expect(try strata.admin("set table users key carolinexyz data.gpc0 9") == "")
        let all = try Self.entries(strata, "users")
        #expect(all.count == 3)
        #expect(all.allSatisfy { $0.hasPrefix("0x") && $0.contains(" use=0 exp=0 ") })
        #expect(all.contains { $0.hasSuffix(": key=alice use=0 exp=0 gpc0=5 http_req_rate(10000)=3") }, "\(all)")
        #expect(all.contains { $0.contains("key=caroline ") })
        let filtered = try Self.entries(strata, "users data.gpc0 gt 4")
        #expect(filtered.count == 2 && !filtered.contains { $0.contains("key=bob") }, "\(filtered)")
        #expect(try Self.entries(strata, "users key bob").map { $0.contains("key=bob") } == [true])
        #expect(try strata.admin("show table users data.gpc1 gt 1") == "Filter entry #1: Data type not stored in this table")
        #expect(try strata.admin("show table users data.nope gt 1") == "Filter entry #1: Unknown data type")
        #expect(try strata.admin("show table nope") == "No such table")
        #expect(try strata.admin("set table users key bob data.gpc0 x") == "Require a valid integer value to store")
        #expect(try strata.admin("clear table users key bob") == "")
        #expect(try Self.entries(strata, "users").count == 2)

        // The exporter: each table's size and entries, HAProxy's families.
        #expect(Self.status(port) == 200)
        let metrics = try #require(TestHTTPClient(port: port)?.get("/metrics")).body
        #expect(metrics.contains("# TYPE haproxy_sticktable_size gauge"))
        #expect(metrics.contains("haproxy_sticktable_size{name=\"fe\"} 1048576"))
        #expect(metrics.contains("haproxy_sticktable_size{name=\"users\"} 10"))
        #expect(metrics.contains("haproxy_sticktable_used{name=\"fe\"} 1"), "\(metrics)")
        #expect(metrics.contains("haproxy_sticktable_used{name=\"users\"} 2"))

        // HAProxy 2.6's levels: entries from operator on, set and clear at operator.
        #expect(try strata.admin("show table users", socket: user) == """
            # table: users, type: string, size:10, used:2
            # contents not dumped due to insufficient privileges
            """)
        #expect(try strata.admin("set table users key x data.gpc0 1", socket: user) == "Permission denied")
        #expect(try strata.admin("set table users key x data.gpc0 1", socket: operatorSocket) == "")
        #expect(try strata.admin("show table users key x", socket: operatorSocket).hasSuffix(": key=x use=0 exp=0 gpc0=1 http_req_rate(10000)=0"))
        #expect(try strata.admin("clear table users", socket: user) == "Permission denied")
        #expect(try strata.admin("clear table users") == "")
        #expect(try strata.admin("show table users") == "# table: users, type: string, size:10, used:0")
    }

    /// `stick on src`: a client stays on the server it first got (round robin would alternate),
    /// the table holds that server's id, and an entry set from the socket moves the client.
    @Test func stickOnSourceKeepsAClientOnItsServerInModeTCPAndHTTP() throws {
        let a = try TestBackend(.name("a")), b = try TestBackend(.name("b"))
        let web1 = try TestHTTPOrigin("web1"), web2 = try TestHTTPOrigin("web2")
        let tcpPort = TestSocket.freePort(), httpPort = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            listen l
                mode tcp
                bind 127.0.0.1:\(tcpPort)
                balance roundrobin
                stick-table type ip size 10 expire 1m
                stick on src
                server a 127.0.0.1:\(a.port)
                server b 127.0.0.1:\(b.port)
            frontend fe
                mode http
                bind 127.0.0.1:\(httpPort)
                default_backend web
            backend web
                mode http
                balance roundrobin
                stick match req.hdr(x-user) table users
                stick store-request req.hdr(x-user) table users
                server web1 127.0.0.1:\(web1.port)
                server web2 127.0.0.1:\(web2.port)
            backend users
                stick-table type string len 16 size 10 store gpc0
            """)
        #expect(strata.waitForAdmin())
        func served() -> String? {
            guard let fd = TestSocket.connect(tcpPort) else { return nil }
            defer { close(fd) }
            return TestSocket.readLine(fd)
        }
        let first = try #require(served())
        #expect((0..<5).map { _ in served() } == Array(repeating: first, count: 5))
        let id = first == "a" ? 1 : 2
        #expect(try Self.entries(strata, "l").first?.hasSuffix(" server_id=\(id)") == true, "\((try? strata.admin("show table l")) ?? "")")
        #expect(try strata.admin("set table l key 127.0.0.1 data.server_id \(3 - id)") == "")
        #expect((0..<3).map { _ in served() } == Array(repeating: first == "a" ? "b" : "a", count: 3))

        // HTTP: the user's first server, whatever round robin says for the others; a client
        // without the header is balanced (no key, nothing stored).
        func origin(_ user: String?) -> String? {
            let body = TestHTTPClient(port: httpPort)?.get("/", headers: user.map { ["X-User: \($0)"] } ?? [])?.body
            return body?.split(separator: "\n").first.map(String.init)
        }
        let alice = try #require(origin("alice"))
        for _ in 0..<4 {
            #expect(origin("alice") == alice)
            _ = origin(nil)
        }
        // The table declared without server_id has it (HAProxy adds it for stick rules).
        let users = try Self.entries(strata, "users")
        #expect(users.count == 1 && users[0].contains("key=alice ") && users[0].contains(" server_id=\(alice.hasSuffix("web1") ? 1 : 2) gpc0=0"), "\(users)")
    }

    /// `stick store-response`: the key comes from the server's answer as it came (before the
    /// http-response rules rewrite it), stored with the server that gave it; `stick match` on the
    /// request then sends a client naming that key to that server.
    @Test func stickStoreResponseKeepsWhatTheServerAnswered() throws {
        let web1 = try TestHTTPOrigin("web1"), web2 = try TestHTTPOrigin("web2")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                nbthread 1
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            listen web
                bind 127.0.0.1:\(port)
                balance roundrobin
                stick-table type string len 16 size 10
                stick match req.hdr(x-pin)
                stick store-response res.hdr(x-origin) if { status 200 }
                http-response set-header X-Origin rewritten
                server web1 127.0.0.1:\(web1.port)
                server web2 127.0.0.1:\(web2.port)
            """)
        #expect(strata.waitForAdmin())
        func origin(_ pin: String?) -> String? {
            let body = TestHTTPClient(port: port)?.get("/", headers: pin.map { ["X-Pin: \($0)"] } ?? [])?.body
            return body?.split(separator: "\n").first.map(String.init)
        }
        #expect(try Self.entries(strata, "web").isEmpty)
        // Nothing stored yet: a pin is no match, round robin decides (one loop: one rotation).
        let first = try #require(origin("web2"))
        let second = try #require(origin(nil))
        #expect(first != second)
        // Sorted by key (each line starts with the entry's address, which orders nothing).
        let entries = try Self.entries(strata, "web").map { String($0.drop(while: { $0 != " " }).dropFirst()) }.sorted()
        #expect(entries.count == 2 && entries[0].contains("key=web1 ") && entries[0].hasSuffix(" server_id=1")
                && entries[1].contains("key=web2 ") && entries[1].hasSuffix(" server_id=2"), "\(entries)")
        // Round robin would alternate: the pinned client stays.
        for _ in 0..<4 {
            #expect(origin("web2")?.hasSuffix("web2") == true)
            _ = origin(nil)
        }
        // The entry decides, not the name: moved from the socket, the pin follows it, and web1's
        // answers store only their own key.
        #expect(try strata.admin("set table web key web2 data.server_id 1") == "")
        #expect(origin("web2")?.hasSuffix("web1") == true)
        #expect(try Self.entries(strata, "web").filter { $0.contains("key=web2 ") }.first?.hasSuffix(" server_id=1") == true)
    }

    /// A request's `store-request` key and its answer's `store-response` key go to the same table
    /// side by side (HAProxy 2.6.12 keeps both: one of each per table and request).
    @Test func stickStoreResponseStoresBesideTheRequestsKey() throws {
        let web1 = try TestHTTPOrigin("web1"), web2 = try TestHTTPOrigin("web2")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                nbthread 1
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            listen web
                bind 127.0.0.1:\(port)
                balance roundrobin
                stick-table type string len 16 size 10
                stick store-request req.hdr(x-user)
                stick store-response res.hdr(x-origin)
                server web1 127.0.0.1:\(web1.port)
                server web2 127.0.0.1:\(web2.port)
            """)
        #expect(strata.waitForAdmin())
        #expect(TestHTTPClient(port: port)?.get("/", headers: ["X-User: alice"])?.status == 200)
        #expect(TestHTTPClient(port: port)?.get("/")?.status == 200)
        let keys = try Self.entries(strata, "web").compactMap { $0.split(separator: " ").first { $0.hasPrefix("key=") } }.sorted()
        #expect(keys == ["key=alice", "key=web1", "key=web2"])
    }

    @Test func checkRefusesBadTablesWithFileAndLine() throws {
        let dir = StrataProcess.makeDirectory()
        let path = dir.appendingPathComponent("bad.cfg").path
        try """
            frontend fe
                mode http
                bind 127.0.0.1:1
                stick-table type ip size 1 store http_req_rate
                http-request track-sc0 src table nowhere
                http-request return status 200
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = runTool(StrataProcess.binary, ["-c", "-f", path])
        let output = result.stdout + result.stderr
        #expect(result.status == 1)
        #expect(output.contains("\(path):4: stick-table: missing argument to store option 'http_req_rate' (a period: http_req_rate(10s))"), "\(output)")
        #expect(output.contains("\(path):5: proxy 'fe': unable to find table 'nowhere' referenced by track-sc0"), "\(output)")
        // `-L NAME` names this host in peers sections, as HAProxy's -L.
        let peers = dir.appendingPathComponent("peers.cfg").path
        try """
            peers mine
                peer edge-1 127.0.0.1:10000
            frontend fe
                mode http
                bind 127.0.0.1:1
                stick-table type ip size 1 peers mine
                http-request return status 200
            """.write(toFile: peers, atomically: true, encoding: .utf8)
        #expect(runTool(StrataProcess.binary, ["-c", "-f", peers]).status == 1)
        let named = runTool(StrataProcess.binary, ["-c", "-L", "edge-1", "-f", peers])
        #expect(named.status == 0, "\(named.stderr)")
        #expect(named.stderr.contains("\(peers):1: peers section 'mine' is accepted and does nothing"), "\(named.stderr)")
    }
}
