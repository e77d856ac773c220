import Foundation
import Glibc
import StrataTestSupport
import Testing

/// Service discovery against a real DNS server (dnsmasq, started by each test): servers that
/// follow a name, a template filled from A and SRV records, names that come and go, servers added
/// and deleted at runtime; all of it without a reload and without a new generation.
@Suite struct ServiceDiscoveryTests {
    static var hasDNS: Bool { TestDNSServer.binary != nil }

    /// `resolvers dns` asking `dns`, quick to follow changes; an HTTP frontend on `port` with the
    /// exporter on /metrics; `backend` is the `backend app` section's body.
    static func config(dns: TestDNSServer, port: UInt16, backend: String, hold: String = "", tcp: Bool = false, threads: Int? = nil) -> String {
        """
        global
            stats socket @ADMIN@ level admin
        \(threads.map { "    nbthread \($0)" } ?? "")
        resolvers dns
            nameserver ns1 \(tcp ? "tcp@" : "")127.0.0.1:\(dns.port)
            timeout resolve 200ms
            timeout retry 200ms
            hold valid 1s
        \(hold)
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
        frontend web
            bind 127.0.0.1:\(port)
            http-request use-service prometheus-exporter if { path /metrics }
            default_backend app
        backend app
        \(backend)
        """
    }

    /// `show servers state` rows by server name: (address, admin state, port, fqdn, srvrecord, weight).
    static func servers(_ strata: StrataProcess) throws -> [String: (address: String, admin: Int, port: String, fqdn: String, srv: String, weight: Int)] {
        var out: [String: (address: String, admin: Int, port: String, fqdn: String, srv: String, weight: Int)] = [:]
        for line in try strata.admin("show servers state app").split(separator: "\n").dropFirst(2) {
            let f = line.split(separator: " ").map(String.init)
            out[f[3]] = (f[4], Int(f[6]) ?? -1, f[18], f[17], f[19], Int(f[7]) ?? -1)
        }
        return out
    }

    /// The bodies of `count` requests through strata (each names the address that answered).
    static func answers(_ port: UInt16, count: Int) -> [String] {
        guard let client = TestHTTPClient(port: port) else { return [] }
        return (0..<count).compactMap { _ in client.get("/").map { $0.status == 200 ? $0.body : "status \($0.status)" } }
    }

    static func showInfo(_ strata: StrataProcess, _ field: String) throws -> String? {
        try strata.admin("show info").split(separator: "\n").first { $0.hasPrefix(field + ": ") }.map { String($0.dropFirst(field.count + 2)) }
    }

    @Test(.enabled(if: TestTools.available(hasDNS), "dnsmasq is not installed"))
    func templateIsFilledFromDNSAndFollowsAChangeWithoutReload() throws {
        try TestTools.require(Self.hasDNS, "dnsmasq")
        let dns = try TestDNSServer(hosts: [("127.0.0.11", "app.strata.test"), ("127.0.0.12", "app.strata.test")])
        let origin = try AddressOrigin()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(dns: dns, port: port, backend: """
                server-template web 3 app.strata.test:\(origin.port) resolvers dns init-addr none resolve-prefer ipv4
            """))
        #expect(strata.waitForAdmin())
        // Two addresses for three servers: the third waits in resolution maintenance (RMAINT, 0x20).
        #expect(eventually(seconds: 10) {
            let s = (try? Self.servers(strata)) ?? [:]
            return Set([s["web1"]?.address, s["web2"]?.address]) == ["127.0.0.11", "127.0.0.12"] && s["web3"]?.address == "-"
        })
        // The stats show it as HAProxy does, without an address.
        let web3 = try strata.admin("show stat").split(separator: "\n").first { $0.hasPrefix("app,web3,") }
        #expect(web3?.contains(",MAINT (resolution),") == true, "\(web3 ?? "")")
        let before = try Self.servers(strata)
        #expect(before["web3"]?.admin == 0x20 && before["web1"]?.admin == 0 && before["web1"]?.fqdn == "app.strata.test")
        #expect(Set(Self.answers(port, count: 8)) == ["127.0.0.11", "127.0.0.12"])
        let keeper = try #require(before.first { $0.value.address == "127.0.0.12" }?.key)
        let statBefore = try strata.admin("show stat")

        // One address goes, another comes: followed within `hold valid` and a retry, in place.
        let changed = Date()
        try dns.setHosts([("127.0.0.12", "app.strata.test"), ("127.0.0.13", "app.strata.test")])
        #expect(eventually(seconds: 10) {
            let s = (try? Self.servers(strata)) ?? [:]
            return Set(["web1", "web2", "web3"].compactMap { s[$0]?.address }.filter { $0 != "-" }) == ["127.0.0.12", "127.0.0.13"]
        })
        #expect(Date().timeIntervalSince(changed) < 1.0 + 0.2 + 2.0)
        let after = try Self.servers(strata)
        // The server that had the address kept it, and its counters: its identity is its name.
        #expect(after[keeper]?.address == "127.0.0.12")
        #expect(Set(Self.answers(port, count: 8)) == ["127.0.0.12", "127.0.0.13"])
        func sessions(_ stat: String, _ server: String) -> Int {
            let rows = stat.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
            guard let header = rows.first, let column = header.firstIndex(of: "stot") else { return -1 }
            return rows.first { $0.count > 1 && $0[0] == "app" && $0[1] == Substring(server) }.map { Int($0[column]) ?? -1 } ?? -1
        }
        #expect(sessions(try strata.admin("show stat"), keeper) > sessions(statBefore, keeper))
        // No reload, no new generation.
        #expect(try Self.showInfo(strata, "Reloads") == "0")
        #expect(try strata.generations().map(\.id) == [1])
        #expect(strata.output.contains { $0.contains("changed its IP from 127.0.0.11 to 127.0.0.13 by dns/ns1 (generation 1)") })

        // The nameserver's counters, on the socket and in the exporter.
        let resolvers = try strata.admin("show resolvers")
        #expect(resolvers.hasPrefix("Resolvers section dns\n nameserver ns1:\n  sent:        "))
        let valid = resolvers.split(separator: "\n").first { $0.hasPrefix("  valid:") }.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        #expect(valid >= 2)
        #expect(resolvers.contains("\n  update:      3"))
        let client = try #require(TestHTTPClient(port: port))
        let exported = try #require(client.get("/metrics")).body
        #expect(exported.contains("strata_resolver_valid{resolver=\"dns\",nameserver=\"ns1\"} "))
        #expect(exported.contains("strata_resolver_update{resolver=\"dns\",nameserver=\"ns1\"} 3"))

        // A reload keeps what DNS gave each server (identified by its name, not its address):
        // no server goes back to resolution maintenance, no counter starts again.
        let statBeforeReload = try strata.admin("show stat")
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(try Self.servers(strata).mapValues(\.address) == after.mapValues(\.address))
        #expect(sessions(try strata.admin("show stat"), keeper) >= sessions(statBeforeReload, keeper))
        #expect(Set(Self.answers(port, count: 4)) == ["127.0.0.12", "127.0.0.13"])
    }

    @Test(.enabled(if: TestTools.available(hasDNS), "dnsmasq is not installed"))
    /// Over TCP (`tcp@`) this time.
    func aNameThatAppearsAfterStartBringsItsServerUp() throws {
        try TestTools.require(Self.hasDNS, "dnsmasq")
        let dns = try TestDNSServer()
        let origin = try AddressOrigin()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(dns: dns, port: port, backend: """
                server s1 late.strata.test:\(origin.port) resolvers dns init-addr none resolve-prefer ipv4
            """, tcp: true))
        #expect(strata.waitForAdmin())
        // No address yet: in maintenance, no traffic.
        #expect(try Self.servers(strata)["s1"]?.admin == 0x20)
        #expect(Self.answers(port, count: 1) == ["status 503"])
        try dns.setHosts([("127.0.0.21", "late.strata.test")])
        #expect(eventually(seconds: 10) { (try? Self.servers(strata))?["s1"]?.admin == 0 })
        #expect(try Self.servers(strata)["s1"]?.address == "127.0.0.21")
        #expect(Self.answers(port, count: 2) == ["127.0.0.21", "127.0.0.21"])
        #expect(strata.waitForOutput("Server app/s1 ('late.strata.test') is UP/READY (resolves again)."))
    }

    @Test(.enabled(if: TestTools.available(hasDNS), "dnsmasq is not installed"))
    func srvRecordsFillATemplateWithTheirTargetsPortsAndWeights() throws {
        try TestTools.require(Self.hasDNS, "dnsmasq")
        let first = try AddressOrigin(), second = try AddressOrigin()
        let dns = try TestDNSServer(
            srv: [("_http._tcp.svc.strata.test", "a.strata.test", first.port, 256),
                  ("_http._tcp.svc.strata.test", "b.strata.test", second.port, 768)],
            records: [("a.strata.test", "127.0.0.31"), ("b.strata.test", "127.0.0.32")])
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(dns: dns, port: port, backend: """
                server-template srv 3 _http._tcp.svc.strata.test resolvers dns init-addr none resolve-prefer ipv4
            """))
        #expect(strata.waitForAdmin())
        #expect(eventually(seconds: 10) {
            let s = (try? Self.servers(strata)) ?? [:]
            return ["srv1", "srv2"].allSatisfy { s[$0]?.admin == 0 && s[$0]?.address != "-" }
        })
        let s = try Self.servers(strata)
        // Each SRV record's target, port and weight (HAProxy's mapping: (w + 255) / 256).
        let filled = Set(["srv1", "srv2"].compactMap { s[$0] }.map { "\($0.fqdn) \($0.address):\($0.port) w\($0.weight)" })
        #expect(filled == ["a.strata.test 127.0.0.31:\(first.port) w1", "b.strata.test 127.0.0.32:\(second.port) w3"])
        #expect(s["srv1"]?.srv == "_http._tcp.svc.strata.test")
        // The free slot stays in resolution maintenance, without a name or an address.
        #expect(s["srv3"]?.admin == 0x20 && s["srv3"]?.address == "-" && s["srv3"]?.fqdn == "-")
        let answered = Self.answers(port, count: 8)
        #expect(answered.count == 8 && Set(answered) == ["127.0.0.31", "127.0.0.32"])
        #expect(first.requests["127.0.0.31", default: 0] + second.requests["127.0.0.32", default: 0] == 8)
        #expect(first.requests["127.0.0.31", default: 0] == 2 && second.requests["127.0.0.32", default: 0] == 6)
    }

    @Test(.enabled(if: TestTools.available(hasDNS), "dnsmasq is not installed"))
    func nxdomainPutsTheServerInMaintenanceOnceItsHoldIsOver() throws {
        try TestTools.require(Self.hasDNS, "dnsmasq")
        let dns = try TestDNSServer(hosts: [("127.0.0.41", "gone.strata.test")])
        let origin = try AddressOrigin()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(dns: dns, port: port, backend: """
                server s1 gone.strata.test:\(origin.port) resolvers dns init-addr none resolve-prefer ipv4
            """, hold: "    hold nx 2s"))
        #expect(strata.waitForAdmin())
        #expect(eventually(seconds: 10) { (try? Self.servers(strata))?["s1"]?.admin == 0 })
        // `hold nx` counts from the last valid answer: at most a `timeout resolve` (0.2 s) before this.
        let gone = Date()
        try dns.restart(hosts: [])
        // NXDOMAIN from now on: the server keeps its address for `hold nx`, then goes.
        usleep(700_000)
        #expect(try Self.servers(strata)["s1"]?.admin == 0)
        #expect(Self.answers(port, count: 1) == ["127.0.0.41"])
        #expect(eventually(seconds: 10) { (try? Self.servers(strata))?["s1"]?.admin == 0x20 })
        #expect(Date().timeIntervalSince(gone) >= 2 - 0.2 - 0.1)
        #expect(try Self.servers(strata)["s1"]?.address == "-")
        #expect(strata.waitForOutput("Server app/s1 is going DOWN for maintenance (DNS NX status)."))
        #expect(Self.answers(port, count: 1) == ["status 503"])
        let nx = try strata.admin("show resolvers dns").split(separator: "\n").first { $0.hasPrefix("  nx:") }
        #expect((nx.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0) > 0)
        // It resolves again: back in service.
        try dns.restart(hosts: [("127.0.0.42", "gone.strata.test")])
        #expect(eventually(seconds: 10) { (try? Self.servers(strata))?["s1"]?.admin == 0 })
        #expect(Self.answers(port, count: 1) == ["127.0.0.42"])
    }

    /// `count` new connections held open together, one request each: the kernel spreads them
    /// over the data loops' sockets. The bodies (the address that answered), and each loop's
    /// connections while they were open (`show threads`).
    static func spread(_ strata: StrataProcess, _ port: UInt16, count: Int) throws -> (answers: [String], perLoop: [Int]) {
        var held: [TestHTTPClient] = []
        var answers: [String] = []
        for _ in 0..<count {
            let client = try #require(TestHTTPClient(port: port))
            answers.append(client.get("/").map { $0.status == 200 ? $0.body : "status \($0.status)" } ?? "no answer")
            held.append(client)
        }
        let perLoop = try strata.admin("show threads").split(separator: "\n").compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("conns=") }.flatMap { Int($0.dropFirst(6)) }
        }
        return (answers, perLoop)
    }

    /// `show servers conn app` rows by server name: (address, idle connections on each loop).
    static func connections(_ strata: StrataProcess) throws -> [String: (address: String, idlePerLoop: [Int])] {
        var out: [String: (address: String, idlePerLoop: [Int])] = [:]
        for line in try strata.admin("show servers conn app").split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ").map(String.init)
            // HAProxy's columns: … used_cur used_max need_est unsafe_nb safe_nb idle_lim idle_cur idle_per_thr[N].
            guard f.count > 13, let slash = f[0].firstIndex(of: "/") else { continue }
            out[String(f[0][f[0].index(after: slash)...])] = (f[2], f[13...].compactMap { Int($0) })
        }
        return out
    }

    /// With two data loops, a DNS change and a server added at runtime reach both: every loop's
    /// new connections go to the new address (its pooled connections to the old one closed, each
    /// on its loop), and every loop's balancer picks the new server. No reload, no new generation.
    @Test(.enabled(if: TestTools.available(hasDNS), "dnsmasq is not installed"))
    func everyLoopFollowsADNSChangeAndAServerAddedAtRuntime() throws {
        try TestTools.require(Self.hasDNS, "dnsmasq")
        let dns = try TestDNSServer(hosts: [("127.0.0.71", "loops.strata.test")])
        let origin = try AddressOrigin()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(dns: dns, port: port, backend: """
                http-reuse always
                server s1 loops.strata.test:\(origin.port) resolvers dns init-addr none resolve-prefer ipv4
            """, threads: 2))
        #expect(strata.waitForAdmin())
        #expect(try strata.admin("show info").contains("Nbthread: 2\n"))
        #expect(eventually(seconds: 10) { (try? Self.servers(strata))?["s1"].map { $0.address == "127.0.0.71" && $0.admin == 0 } == true })

        // Forty connections over both loops, each served at the first address; each loop keeps
        // its server connection in its own pool (`http-reuse always`: a first request rides it).
        let first = try Self.spread(strata, port, count: 40)
        #expect(first.answers == Array(repeating: "127.0.0.71", count: 40))
        #expect(first.perLoop.count == 2 && first.perLoop.allSatisfy { $0 >= 2 }, "\(first.perLoop)")
        #expect(eventually(seconds: 5) { (try? Self.connections(strata))?["s1"]?.idlePerLoop.allSatisfy { $0 > 0 } == true },
                "\((try? strata.admin("show servers conn app")) ?? "")")
        let stotBefore = Self.stat(try strata.admin("show stat"), "s1", "stot") ?? -1

        // The name moves: the resolver (on the control loop) sets the address every loop reads,
        // and each loop closes its pooled connections to the old one.
        try dns.setHosts([("127.0.0.72", "loops.strata.test")])
        #expect(eventually(seconds: 10) { (try? Self.servers(strata))?["s1"]?.address == "127.0.0.72" })
        #expect(eventually(seconds: 5) { (try? Self.connections(strata))?["s1"]?.idlePerLoop == [0, 0] },
                "\((try? strata.admin("show servers conn app")) ?? "")")
        let second = try Self.spread(strata, port, count: 40)
        #expect(second.answers == Array(repeating: "127.0.0.72", count: 40))
        #expect(second.perLoop.count == 2 && second.perLoop.allSatisfy { $0 >= 2 }, "\(second.perLoop)")
        #expect(origin.requests["127.0.0.72"] == 40)
        // The same server, its counters carried on; the stats show the new address.
        let stat = try strata.admin("show stat")
        #expect(Self.stat(stat, "s1", "stot") == stotBefore + 40)
        #expect(Self.field(stat, "s1", "addr") == "127.0.0.72:\(origin.port)")
        let row = try Self.connections(strata)["s1"]
        #expect(row?.address == "127.0.0.72" && row?.idlePerLoop.allSatisfy { $0 > 0 } == true)

        // A server added at runtime and enabled: every loop's balancer has it.
        #expect(try strata.admin("add server app/dyn 127.0.0.73:\(origin.port)") == "New server registered.")
        #expect(try strata.admin("enable server app/dyn") == "")
        let third = try Self.spread(strata, port, count: 40)
        #expect(third.perLoop.count == 2 && third.perLoop.allSatisfy { $0 >= 2 }, "\(third.perLoop)")
        #expect(Set(third.answers) == ["127.0.0.72", "127.0.0.73"], "\(third.answers)")
        // Round robin on each loop alternates over both servers: half each, give or take one a loop.
        #expect(abs(third.answers.filter { $0 == "127.0.0.73" }.count - 20) <= 1, "\(third.answers)")
        #expect(origin.requests["127.0.0.73"] == third.answers.filter { $0 == "127.0.0.73" }.count)
        // Each loop connected to it (and pooled the connection in its own pool).
        #expect(eventually(seconds: 5) { (try? Self.connections(strata))?["dyn"]?.idlePerLoop.allSatisfy { $0 > 0 } == true },
                "\((try? strata.admin("show servers conn app")) ?? "")")
        let withDyn = try strata.admin("show stat")
        #expect(Self.field(withDyn, "dyn", "addr") == "127.0.0.73:\(origin.port)")
        #expect(Self.stat(withDyn, "dyn", "stot") == third.answers.filter { $0 == "127.0.0.73" }.count)
        #expect(try Self.servers(strata)["dyn"].map { $0.address == "127.0.0.73" && $0.admin == 0 } == true)

        // Deleted: no loop picks it any more.
        #expect(try strata.admin("disable server app/dyn") == "")
        #expect(try strata.admin("del server app/dyn") == "Server deleted.")
        let fourth = try Self.spread(strata, port, count: 20)
        #expect(fourth.answers == Array(repeating: "127.0.0.72", count: 20))
        #expect(try Self.connections(strata)["dyn"] == nil)
        #expect(try Self.showInfo(strata, "Reloads") == "0")
        #expect(try strata.generations().map(\.id) == [1])
    }

    /// A request in flight when its server's address changes finishes at the old address, and
    /// its server connection is not pooled for the next request (which goes to the new one), even
    /// though it ends after every loop closed its pooled connections to the old address.
    @Test(.enabled(if: TestTools.available(hasDNS), "dnsmasq is not installed"))
    func aSessionInFlightFinishesAtTheOldAddressAndItsConnectionIsNotReused() throws {
        try TestTools.require(Self.hasDNS, "dnsmasq")
        let dns = try TestDNSServer(hosts: [("127.0.0.81", "flight.strata.test")])
        let origin = try AddressOrigin()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(dns: dns, port: port, backend: """
                http-reuse always
                server s1 flight.strata.test:\(origin.port) resolvers dns init-addr none resolve-prefer ipv4
            """, threads: 2))
        #expect(strata.waitForAdmin())
        #expect(eventually(seconds: 10) { (try? Self.servers(strata))?["s1"].map { $0.address == "127.0.0.81" && $0.admin == 0 } == true })
        let client = try #require(TestHTTPClient(port: port))
        client.send("GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(eventually(seconds: 5) { (try? Self.servers(strata))?["s1"] != nil && (try? strata.admin("show servers conn app"))?.contains(" 1 1 0 ") == true },
                "\((try? strata.admin("show servers conn app")) ?? "")")
        try dns.setHosts([("127.0.0.82", "flight.strata.test")])
        #expect(eventually(seconds: 10) { (try? Self.servers(strata))?["s1"]?.address == "127.0.0.82" })
        // The loops have closed their pools to .81 by now; the held request ends after that.
        origin.releaseHeld()
        #expect(client.readResponse()?.body == "127.0.0.81")
        // Its next request, on the same loop (a reused connection would be the one to .81).
        #expect(client.get("/")?.body == "127.0.0.82")
        #expect(client.get("/")?.body == "127.0.0.82")
        #expect(origin.requests["127.0.0.81"] == 1)
    }

    /// One field of a server's `show stat` row, by column name.
    static func field(_ stat: String, _ server: String, _ column: String) -> String? {
        let rows = stat.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        guard let header = rows.first, let i = header.firstIndex(of: Substring(column)) else { return nil }
        return rows.first { $0.count > i && $0[0] == "app" && $0[1] == Substring(server) }.map { String($0[i]) }
    }

    static func stat(_ stat: String, _ server: String, _ column: String) -> Int? {
        field(stat, server, column).flatMap { Int($0) }
    }

    @Test func serverAddedAtRuntimeTakesTrafficIsKeptAcrossAReloadThenIsDeleted() throws {
        let origin = try AddressOrigin()
        let port = TestSocket.freePort()
        let config = """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend web
                bind 127.0.0.1:\(port)
                default_backend app
            backend app
                server s1 127.0.0.51:\(origin.port)
            """
        let strata = try StrataProcess(config: config)
        #expect(strata.waitForAdmin())
        #expect(try strata.admin("add server app/dyn 127.0.0.52:\(origin.port) weight 3") == "New server registered.")
        #expect(try strata.admin("add server app/dyn 127.0.0.53:\(origin.port)") == "Already exists a server with the same name in backend.")
        #expect(try strata.admin("add server nope/dyn 127.0.0.53:\(origin.port)") == "No such backend.")
        #expect(try strata.admin("add server app/x 127.0.0.53:1 cookie c") == "'cookie' option is not accepted for dynamic server")
        // It starts in maintenance (HAProxy's rule): no traffic until it is enabled.
        #expect(Set(Self.answers(port, count: 4)) == ["127.0.0.51"])
        #expect(try strata.admin("enable server app/dyn") == "")
        let served = Self.answers(port, count: 8)
        #expect(served.filter { $0 == "127.0.0.52" }.count == 6 && served.filter { $0 == "127.0.0.51" }.count == 2)

        // A reload keeps it, with its state and counters (HAProxy would lose it).
        let reload = try strata.admin("reload")
        #expect(reload.hasPrefix("Success=1"), "\(reload)")
        let row = try #require(try Self.servers(strata)["dyn"])
        #expect(row.address == "127.0.0.52" && row.admin == 0 && row.weight == 3)
        #expect(Set(Self.answers(port, count: 8)) == ["127.0.0.51", "127.0.0.52"])
        #expect(try strata.admin("show servers conn app").contains("\napp/dyn 2/2 127.0.0.52 \(origin.port) - "))

        // Deleted only in maintenance; then gone, and gone after a reload too.
        #expect(try strata.admin("del server app/dyn") == "Only servers in maintenance mode can be deleted.")
        #expect(try strata.admin("del server app/s1") .hasPrefix("Only servers added at runtime can be deleted"))
        #expect(try strata.admin("disable server app/dyn") == "")
        #expect(try strata.admin("del server app/dyn") == "Server deleted.")
        #expect(try Self.servers(strata)["dyn"] == nil)
        #expect(Set(Self.answers(port, count: 4)) == ["127.0.0.51"])
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(try Self.servers(strata)["dyn"] == nil)

        // The file wins over a runtime server of the same name.
        #expect(try strata.admin("add server app/s2 127.0.0.54:\(origin.port)") == "New server registered.")
        try strata.write(config + "\n    server s2 127.0.0.55:\(origin.port)\n")
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(try Self.servers(strata)["s2"]?.address == "127.0.0.55")
        #expect(strata.waitForOutput("server app/s2 added at runtime is not kept: the configuration defines a server of that name"))
    }

    @Test func dashDRStartsAServerWhoseNameDoesNotResolveInMaintenance() throws {
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("strata.cfg").path
        let port = TestSocket.freePort()
        let config = """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend web
                bind 127.0.0.1:\(port)
                default_backend app
            backend app
                server s1 db.example.invalid:5432
            """
        try config.replacingOccurrences(of: "@ADMIN@", with: directory.appendingPathComponent("a.sock").path)
            .write(toFile: path, atomically: true, encoding: .utf8)
        // Without -dr the name is an error; with it, a warning, and the file is valid.
        let refused = runTool(StrataProcess.binary, ["-c", "-f", path])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("strata.cfg:12: 'server s1': could not resolve host name 'db.example.invalid'"), "\(refused.stderr)")
        for arguments in [["-c", "-dr", "-f", path], ["check", "-dr", "-f", path]] {
            let checked = runTool(StrataProcess.binary, arguments)
            #expect(checked.status == 0, "\(checked.stderr)")
            #expect(checked.stderr.contains("[WARNING] \(path):12: 'server s1': could not resolve address 'db.example.invalid', disabling server"),
                    "\(checked.stderr)")
        }
        // It starts, the server in resolution maintenance, without address.
        let strata = try StrataProcess(config: config, arguments: ["-dr"])
        #expect(strata.waitForAdmin())
        #expect(strata.output.contains { $0.contains("could not resolve address 'db.example.invalid', disabling server") })
        let s1 = try #require(try Self.servers(strata)["s1"])
        #expect(s1.admin == 0x20 && s1.address == "-" && s1.fqdn == "db.example.invalid")
        #expect(Self.answers(port, count: 1) == ["status 503"])
        // `set server … addr` gives it one (and ends the resolution maintenance, as HAProxy).
        let origin = try AddressOrigin()
        #expect(try strata.admin("set server app/s1 addr 127.0.0.61 port \(origin.port)").hasPrefix("IP changed from"))
        #expect(try Self.servers(strata)["s1"]?.admin == 0)
        #expect(Self.answers(port, count: 1) == ["127.0.0.61"])
    }
}
