import ConfigModel
import Testing
@testable import Loader

/// Every supported keyword lands where it should in the model (from the valid fixtures).
@Suite struct KeywordTests {
    @Test func globalSection() throws {
        let loaded = try loadFixture("fixtures/valid/global.cfg")
        let global = loaded.config.global
        #expect(global.maxconn == 4096)
        #expect(global.daemon)
        #expect(global.pidfile == "/run/strata.pid")
        #expect(global.nbthread == 1)
        #expect(global.description == "edge proxy of the lab")
        #expect(global.uid == 0)
        #expect(global.gid == 0)
        #expect(global.hardStopAfter == 120_000)
        #expect(global.maxGenerations == 4)
        #expect(global.statsTimeout == 30_000)
        #expect(global.noReusePort)

        let tls = global.tls
        #expect(tls.bindCiphers == "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")
        #expect(tls.bindCiphersuites == "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384")
        #expect(tls.bindOptions == ["ssl-min-ver TLSv1.2", "no-tls-tickets", "prefer-client-ciphers"])
        #expect(tls.serverCiphers == "ECDHE+AESGCM:!aNULL")
        #expect(tls.serverCiphersuites == "TLS_CHACHA20_POLY1305_SHA256")
        #expect(tls.serverOptions == ["no-sslv3", "no-tlsv10", "ssl-max-ver TLSv1.3"])
        #expect(tls.serverVerify == "none")
        #expect(tls.defaultDHParam == 2048)
        #expect(tls.crtBase == "/etc/strata/certs")
        #expect(tls.caBase == "/etc/strata/ca")

        let sockets = global.statsSockets
        try #require(sockets.count == 3)
        #expect(sockets[0].address == .unix(path: "/run/strata/admin.sock"))
        #expect(sockets[0].mode == 0o660)
        #expect(sockets[0].level == .admin)
        #expect(sockets[1].address == .tcp(SocketEndpoint(address: .v4(0x7f00_0001), port: 9999)))
        #expect(sockets[1].mode == nil)
        #expect(sockets[1].level == .operator_)
        #expect(sockets[1].connectionLimit == 3)
        // Without `maxconn`, HAProxy's limit of its stats frontend.
        #expect(sockets[0].maxconn == 0 && sockets[0].connectionLimit == 10)
        #expect(sockets[2].address == .tcp(SocketEndpoint(address: IPAddress("::1")!, port: 9998)))
        #expect(sockets[2].level == .user)

        let logs = global.logTargets
        try #require(logs.count == 6)
        #expect(logs[0].destination == .stdout)
        #expect(logs[0].format == .raw)
        #expect(logs[0].facility == 3)  // daemon
        #expect(logs[1].destination == .stderr)
        #expect(logs[1].maxLength == 2048)
        #expect(logs[1].format == .short)
        #expect(logs[1].facility == 17)  // local1
        #expect(logs[1].level == 3)  // err
        #expect(logs[2].destination == .udp(SocketEndpoint(address: .v4(0x7f00_0001), port: 514)))
        #expect(logs[2].format == .rfc3164)
        #expect(logs[2].facility == 16)
        #expect(logs[2].level == 7)
        #expect(logs[2].minLevel == 0)
        #expect(logs[3].destination == .udp(SocketEndpoint(address: .v4(0x7f00_0001), port: 5514)))
        #expect(logs[3].format == .rfc5424)
        #expect(logs[3].level == 5)  // notice
        #expect(logs[3].minLevel == 7)  // debug
        #expect(logs[4].destination == .udp(SocketEndpoint(address: IPAddress("::1")!, port: 1514)))
        #expect(logs[5].destination == .unixDatagram(path: "/dev/log"))
        #expect(logs[5].location == SourceLocation(file: packageRoot + "/fixtures/valid/global.cfg", line: 11))

        #expect(global.locations["maxconn"]?.line == 3)
        #expect(global.locations["stats socket"]?.line == 32)
        #expect(global.locations["tune.ssl.default-dh-param"]?.line == 25)
        #expect(global.locations["noreuseport"]?.line == 34)

        // The global `noreuseport` reaches every bind.
        let binds = loaded.config.proxies.flatMap(\.binds)
        #expect(!binds.isEmpty && binds.allSatisfy { !$0.reusePort })
    }

    @Test func proxySections() throws {
        let loaded = try loadFixture("fixtures/valid/proxies.cfg")
        let config = loaded.config
        #expect(config.proxies.map(\.name) == ["www", "pool", "static", "first", "hashed", "back-on"])
        #expect(config.proxies.map(\.kind) == [.frontend, .backend, .backend, .backend, .listen, .listen])
        // Explicit ids stand; the others take the lowest free ones in order.
        #expect(config.proxies.map(\.id) == [10, 1, 2, 3, 4, 5])

        let www = try #require(config.proxy(named: "www"))
        #expect(www.description == "public entry")
        #expect(www.mode == .tcp)
        #expect(www.maxconn == 2000)
        #expect(www.defaultBackend == "pool")
        #expect(www.defaultBackendLocation?.line == 39)
        #expect(www.tcpKeepAlive.client == false)  // `option tcpka` from defaults, then `no option clitcpka`
        #expect(www.log.format == .tcplog)
        #expect(www.log.dontLogNull == false)
        #expect(www.log.targets.map(\.destination) == [.udp(SocketEndpoint(address: .v4(0x7f00_0001), port: 514))])
        #expect(www.timeouts.client == 30_000)
        #expect(www.timeouts.clientFin == 5000)
        #expect(www.timeouts.connect == nil)  // a frontend takes no backend settings from defaults
        #expect(www.retries == 3)

        let binds = www.binds
        try #require(binds.count == 5)
        #expect(binds[0].endpoint == SocketEndpoint(address: .v4(0x7f00_0001), port: 8443))
        #expect(binds[1].endpoint == SocketEndpoint(address: IPAddress("::1")!, port: 8443))
        #expect(binds[0].name == "www" && binds[1].name == "www")
        #expect(binds[0].backlog == 512 && binds[1].backlog == 512)
        #expect(binds[0].location == binds[1].location)
        #expect(binds[2].endpoint == SocketEndpoint(address: .anyV6, port: 9443))
        #expect(binds[2].v6only)
        #expect(binds[3].endpoint == SocketEndpoint(address: .anyV4, port: 9444))
        #expect(!binds[3].v6only)
        #expect(binds[3].interface == "lo")
        #expect(binds[4].endpoint == SocketEndpoint(address: .anyV4, port: 9445))
        #expect(binds.allSatisfy { $0.reusePort })

        let pool = try #require(config.backend(named: "pool"))
        #expect(pool.balance == .roundRobin)
        #expect(pool.fullconn == 500)
        #expect(pool.retries == 5)
        #expect(pool.redispatch == 2)
        #expect(pool.tcpKeepAlive.server)
        #expect(pool.maxconn == nil)  // frontend-side setting, not copied to a backend
        #expect(pool.timeouts.connect == 4000)
        #expect(pool.timeouts.queue == 10_000)
        #expect(pool.timeouts.tunnel == 3_600_000)
        #expect(pool.timeouts.serverFin == 5000)
        #expect(pool.timeouts.client == nil)
        let servers = pool.servers
        try #require(servers.count == 5)
        #expect(servers.map(\.name) == ["a", "b", "c", "d", "e"])
        #expect(servers.map(\.id) == [1, 2, 3, 4, 5])
        #expect(servers[0].address == .v4(0x7f00_0001) && servers[0].port == 9001)
        #expect(servers[0].options.weight == 10 && servers[0].options.maxconn == 50)  // default-server
        #expect(servers[1].options.weight == 0 && servers[1].options.maxconn == 10)
        #expect(servers[2].address == IPAddress("::1") && servers[2].options.backup)
        #expect(servers[3].port == nil && servers[3].options.disabled)
        #expect(servers[4].host == "localhost" && servers[4].address == .v4(0x7f00_0001))
        #expect(servers[4].options.weight == 256)

        let staticBackend = try #require(config.backend(named: "static"))
        #expect(staticBackend.balance == .staticRoundRobin)
        #expect(staticBackend.redispatch == nil)  // `no option redispatch` in `short`
        #expect(staticBackend.timeouts.server == 500)
        #expect(staticBackend.log.targets.map(\.destination) == [.stderr])  // `no log` then its own

        let first = try #require(config.backend(named: "first"))
        #expect(first.balance == .first)
        #expect(first.retries == 3)
        #expect(first.log.targets.isEmpty)
        #expect(first.servers[0].options.weight == 1)

        let hashed = try #require(config.proxy(named: "hashed"))
        #expect(hashed.balance == .source)
        #expect(hashed.disabled)
        #expect(hashed.redispatch == nil)

        let backOn = try #require(config.proxy(named: "back-on"))
        #expect(!backOn.disabled)
        #expect(backOn.defaultBackend == "pool")
    }

    @Test func quickstart() throws {
        let loaded = try loadFixture("fixtures/quickstart.cfg")
        let web = try #require(loaded.config.proxy(named: "web"))
        #expect(web.kind == .frontend && web.mode == .http)
        #expect(web.binds.map(\.endpoint) == [SocketEndpoint(address: .v4(0x7f00_0001), port: 8080)])
        #expect(web.defaultBackend == nil)
        #expect(web.http.backendRules.map(\.backend) == ["api"])
        #expect(web.http.requestRules.count == 2)
        // The backend routes to the listen inside strata, which answers itself.
        let api = try #require(loaded.config.backend(named: "api"))
        #expect(api.servers.map(\.port) == [8081])
        let server = try #require(loaded.config.proxy(named: "api-server"))
        #expect(server.binds.map(\.endpoint) == [SocketEndpoint(address: .v4(0x7f00_0001), port: 8081)])
        #expect(server.servers.isEmpty && server.http.requestRules.count == 1)
        #expect(loaded.config.global.statsSockets.first?.address == .unix(path: "/tmp/strata-quickstart.sock"))
    }

    @Test func redispatchDefaultsToTheLastRetry() throws {
        let loaded = try load("""
            backend b
                option redispatch
                server s 127.0.0.1:1
            backend c
                option redispatch -2
            """)
        #expect(loaded.config.backend(named: "b")?.redispatch == -1)
        #expect(loaded.config.backend(named: "c")?.redispatch == -2)
    }

    @Test func logGlobalCopiesGlobalTargetsWhereverGlobalIs() throws {
        // `global` after the proxy still counts: `log global` expands once everything is read.
        let loaded = try load("""
            listen l
                bind 127.0.0.1:1
                log global
                log stderr local0
                server s 127.0.0.1:2
            global
                log stdout local1
                log /dev/log local2
            """)
        let targets = try #require(loaded.config.proxy(named: "l")).log.targets
        #expect(targets.map(\.destination) == [.stdout, .unixDatagram(path: "/dev/log"), .stderr])
    }

    @Test func serverHostNamesResolveThroughTheResolver() throws {
        let loaded = try load("""
            backend b
                server a app.internal:80
                server b v6.internal
                server c ipv6@[2001:db8::7]:81
            """)
        let servers = try #require(loaded.config.backend(named: "b")).servers
        #expect(servers[0].host == "app.internal" && servers[0].address == .v4(0x0a00_0005) && servers[0].port == 80)
        #expect(servers[1].address == IPAddress("2001:db8::5") && servers[1].port == nil)
        #expect(servers[2].address == IPAddress("2001:db8::7") && servers[2].port == 81)
        #expect(errors("backend b\n    server a nowhere.internal:80\n")
            == ["test.cfg:2: 'server a': could not resolve host name 'nowhere.internal'"])
    }

    @Test func serverLineReportsEveryErrorBesidesAnUnresolvedName() {
        // The name that does not resolve used to be the only error of its line.
        #expect(errors("backend b\n    server a nowhere.internal:80 wieght 2\n") == [
            "test.cfg:2: 'server a': could not resolve host name 'nowhere.internal'",
            "test.cfg:2: 'wieght' is not a server option (did you mean 'weight'?)",
        ])
        #expect(errors("backend b\n    server a/b nowhere.internal:80 inter 0\n") == [
            "test.cfg:2: character '/' is not permitted in server name 'a/b'",
            "test.cfg:2: 'server a/b': could not resolve host name 'nowhere.internal'",
            "test.cfg:2: 'inter' expects a time greater than 0, got '0'",
        ])
        // Nothing else wrong: the one error.
        #expect(errors("backend b\n    server a nowhere.internal:80 weight 2\n")
            == ["test.cfg:2: 'server a': could not resolve host name 'nowhere.internal'"])
    }

    @Test func bareBalanceIsRoundRobin() throws {
        // HAProxy: `balance` without an algorithm is roundrobin, also over a defaults section's.
        let loaded = try load("""
            defaults
                balance leastconn
            backend b
                balance
                server s 127.0.0.1:1
            """)
        #expect(loaded.config.backend(named: "b")?.balance == .roundRobin)
    }

    @Test func systemResolverPrefersIPv4() {
        #expect(HostResolver.system.resolve("localhost") == .v4(0x7f00_0001))
        #expect(HostResolver.system.resolve("name.example.invalid") == nil)
    }

    @Test(arguments: [
        ("127.0.0.1:80", SocketEndpoint(address: .v4(0x7f00_0001), port: 80)),
        (":80", SocketEndpoint(address: .anyV4, port: 80)),
        ("*:80", SocketEndpoint(address: .anyV4, port: 80)),
        (":::80", SocketEndpoint(address: .anyV6, port: 80)),
        ("[::1]:80", SocketEndpoint(address: IPAddress("::1")!, port: 80)),
        ("[127.0.0.1]:80", SocketEndpoint(address: .v4(0x7f00_0001), port: 80)),
        ("::1:80", SocketEndpoint(address: IPAddress("::1")!, port: 80)),
        ("ipv6@:80", SocketEndpoint(address: .anyV6, port: 80)),
        ("ipv4@127.0.0.1:80", SocketEndpoint(address: .v4(0x7f00_0001), port: 80)),
        ("localhost:80", SocketEndpoint(address: .v4(0x7f00_0001), port: 80)),
    ])
    func bindAddresses(_ text: String, _ endpoint: SocketEndpoint) throws {
        let loaded = try load("listen l\n    bind \(text)\n    server s 127.0.0.1:1\n")
        #expect(loaded.config.proxies.first?.binds.map(\.endpoint) == [endpoint])
    }

    @Test func environmentExpandsInDoubleQuotes() throws {
        let loaded = try load("""
            listen l
                bind "${ADDR}:${PORT}"
                server s "$BACKEND"
            """, environment: ["ADDR": "127.0.0.1", "PORT": "8443", "BACKEND": "127.0.0.1:9000"])
        let proxy = try #require(loaded.config.proxies.first)
        #expect(proxy.binds.first?.endpoint == SocketEndpoint(address: .v4(0x7f00_0001), port: 8443))
        #expect(proxy.servers.first?.port == 9000)
    }
}
