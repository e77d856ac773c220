import ConfigModel
import Testing
@testable import Loader

/// Health-check keywords land where the checkers read them (fixtures/valid/checks.cfg and snippets).
@Suite struct CheckKeywordTests {
    static let fixture = "fixtures/valid/checks.cfg"

    func backend(_ name: String) throws -> Proxy {
        try #require(try loadFixture(CheckKeywordTests.fixture).config.backend(named: name))
    }

    @Test func globalSettings() throws {
        let global = try loadFixture(CheckKeywordTests.fixture).config.global
        #expect(global.spreadChecks == 5)
        #expect(global.serverStateFile == "/var/lib/strata/state")
        #expect(global.serverStateBase == "/var/lib/strata")
    }

    @Test func serverCheckOptions() throws {
        let servers = try backend("web").servers
        try #require(servers.count == 3)
        // `default-server inter 3s fall 2` from defaults.
        var first = ServerCheck()
        first.enabled = true
        first.interval = 3000
        first.fall = 2
        #expect(servers[0].options.check == first)

        var second = ServerCheck()
        second.enabled = true
        second.interval = 1000
        second.fastInterval = 500
        second.downInterval = 10_000
        second.rise = 3
        second.fall = 5
        second.port = 9102
        second.address = .v4(0x7f00_0002)
        #expect(servers[1].options.check == second)

        let third = servers[2].options.check
        #expect(third.observe == .layer7 && third.errorLimit == 5 && third.onError == .markDown)
        #expect(third.shutdownSessionsOnDown)

        let api = try backend("api").servers
        #expect(api[0].options.check.onError == .suddenDeath && api[0].options.check.observe == .layer4)
        #expect(api[1].options.check.enabled == false)  // `check no-check`
        #expect(try backend("redis").servers[0].options.check.onError == .fastInterval)
    }

    @Test func httpchkOldFormAndExpect() throws {
        let web = try backend("web")
        guard case .http(let check) = web.checks.kind else { Issue.record("\(web.checks.kind)"); return }
        #expect(check.method == "GET" && check.uri == "/health" && check.version == "HTTP/1.1")
        #expect(check.headerList == [.init(name: "Host", value: "www.example.com")])
        #expect(check.expectations == [HTTPCheckExpectation(kind: .status, pattern: "200-399", negated: false)])
        #expect(web.checks.timeout == 3000)  // from defaults
    }

    @Test func httpCheckSend() throws {
        let api = try backend("api")
        guard case .http(let check) = api.checks.kind else { Issue.record("\(api.checks.kind)"); return }
        #expect(check.method == "HEAD" && check.uri == "/ping" && check.version == "HTTP/1.1")
        #expect(check.headerList == [.init(name: "Host", value: "api.example.com"), .init(name: "X-Check", value: "strata")])
        #expect(check.body == nil)
        #expect(check.expectations == [
            HTTPCheckExpectation(kind: .stringRegex, pattern: "^ERR", negated: true),
            HTTPCheckExpectation(kind: .string, pattern: "OK", negated: false),
        ])
        #expect(api.checks.timeout == 1000)
    }

    @Test func tcpCheckRulesInOrder() throws {
        let redis = try backend("redis")
        #expect(redis.checks.kind == .tcpCheck([
            .connect(port: 6379),
            .send(Array("PING\r\n".utf8)),
            .expectString("+PONG", negated: false),
            .sendBinary([0x0d, 0x0a]),
            .expectBinary([0x2b, 0x4f, 0x4b], negated: false),
            .expectRegex("^-ERR", negated: true),
        ]))
    }

    @Test func backupsAndServerState() throws {
        let pool = try backend("pool")
        #expect(pool.checks.allBackups)
        #expect(pool.checks.kind == .connect)
        #expect(pool.serverStateFile == .local)
        #expect(pool.serverStateFileName == "pool")
        let named = try backend("named")
        #expect(!named.checks.allBackups)
        #expect(named.serverStateFile == ServerStateFileMode.none)
        #expect(named.serverStateFileName == "pool-state")
        #expect(try backend("web").serverStateFile == .global)  // from defaults
    }

    @Test func checkRulesFromDefaultsAndTheirReplacement() throws {
        let loaded = try load("""
            defaults
                option tcp-check
                tcp-check send PING
                tcp-check expect string PONG
            backend inherits
                server s 127.0.0.1:1 check
            backend own
                tcp-check send HELLO
                server s 127.0.0.1:2 check
            backend http
                option httpchk GET /
                server s 127.0.0.1:3 check
            """)
        let proxies = loaded.config.proxies
        #expect(proxies[0].checks.kind == .tcpCheck([.send(Array("PING".utf8)), .expectString("PONG", negated: false)]))
        #expect(proxies[1].checks.kind == .tcpCheck([.send(Array("HELLO".utf8))]))
        guard case .http(let check) = proxies[2].checks.kind else { Issue.record("\(proxies[2].checks.kind)"); return }
        #expect(check.method == "GET" && check.uri == "/" && check.version == "HTTP/1.0")
    }

    @Test func httpCheckLinesBeforeTheOption() throws {
        let loaded = try load("""
            backend b
                http-check expect status 204
                option httpchk /ready
                server s 127.0.0.1:1 check
            """)
        guard case .http(let check) = loaded.config.proxies[0].checks.kind else { Issue.record("not http"); return }
        #expect(check.method == "OPTIONS" && check.uri == "/ready")
        #expect(check.expectations == [HTTPCheckExpectation(kind: .status, pattern: "204", negated: false)])
    }

    @Test func httpCheckConnectFirstNamesThePort() throws {
        let loaded = try load("backend b\n    option httpchk\n    http-check connect default port 9200\n    http-check send meth GET uri /\n    server s 127.0.0.1:2 check\n")
        guard case .http(let check) = try #require(loaded.config.proxies.first).checks.kind else {
            Issue.record("not an HTTP check"); return
        }
        #expect(check.connectPort == 9200 && check.method == "GET")
        #expect(errors("backend b\n    option httpchk\n    http-check send meth GET\n    http-check connect port 1\n    server s 127.0.0.1:2 check\n") == [
            "test.cfg:4: 'http-check connect' after other http-check rules is not supported yet (strata has one connect, first)",
        ])
        #expect(errors("backend b\n    option httpchk\n    http-check connect ssl\n    server s 127.0.0.1:2 check\n") == [
            "test.cfg:3: 'http-check connect': 'ssl' is not supported yet (strata has 'default' and 'port')",
        ])
    }

    @Test func disableOn404IsAnHTTPCheckSetting() throws {
        let loaded = try load("backend b\n    option httpchk GET /health\n    http-check disable-on-404\n    server s 127.0.0.1:2 check\n")
        guard case .http(let check) = try #require(loaded.config.proxies.first).checks.kind else {
            Issue.record("not an HTTP check"); return
        }
        #expect(check.disableOn404 && check.uri == "/health")
        #expect(errors("backend b\n    option httpchk\n    http-check disable-on-404 now\n    server s 127.0.0.1:2 check\n").count == 1)
    }

    @Test func checkKeywordsBelongToTheBackendSide() {
        // HAProxy ignores it in a frontend with a warning; so does strata.
        let loaded = try? load("frontend f\n    bind 127.0.0.1:1\n    option httpchk\n    default_backend b\nbackend b\n    server s 127.0.0.1:2\n")
        #expect(loaded?.warnings.map(\.description) == ["test.cfg:3: 'option httpchk' ignored because frontend 'f' has no backend capability"])
        #expect(errors("frontend f\n    bind 127.0.0.1:1\n    balance roundrobin\n    default_backend b\nbackend b\n    server s 127.0.0.1:2\n")
            == ["test.cfg:3: 'balance' is not supported in section 'frontend' (only in defaults, listen, backend)"])
        #expect(errors("global\n    spread-checks 5x\n") == ["test.cfg:2: 'spread-checks' expects an integer, got '5x'"])
    }

    @Test func logHealthChecksFromDefaultsAndTurnedOff() throws {
        let loaded = try load("""
            defaults
                option log-health-checks
            backend inherits
                server s 127.0.0.1:1 check
            listen off
                bind 127.0.0.1:2
                no option log-health-checks
                server s 127.0.0.1:1 check
            backend own
                no option log-health-checks
                option log-health-checks
            frontend f
                bind 127.0.0.1:3
                option log-health-checks
                default_backend own
            """)
        // (A frontend takes no check settings from its defaults.)
        #expect(loaded.config.proxies.map(\.checks.logHealthChecks) == [true, false, true, false])
        // A frontend has no server to check: HAProxy ignores the option there with a warning.
        #expect(loaded.warnings.map(\.description) == ["test.cfg:14: 'option log-health-checks' ignored because frontend 'f' has no backend capability"])
        #expect(errors("backend b\n    option log-health-checks now\n").count == 1)
        #expect(!(try load("backend b\n    server s 127.0.0.1:1 check\n").config.proxies[0].checks.logHealthChecks))
    }

    @Test func protocolChecksAndTheirOptions() throws {
        let loaded = try load("""
            defaults
                option redis-check
            backend inherits
                server s 127.0.0.1:1 check
            backend tls
                option ssl-hello-chk
                server s 127.0.0.1:2 check
            backend mail
                option smtpchk EHLO mail.example.com
                server s 127.0.0.1:3 check
            backend mail-default
                option smtpchk
                server s 127.0.0.1:4 check
            backend pg
                option pgsql-check user haproxy
                server s 127.0.0.1:5 check
            backend my
                option mysql-check user haproxy
                server s 127.0.0.1:6 check
            backend my-old
                option mysql-check user check pre-41
                server s 127.0.0.1:7 check
            backend my-anonymous
                option mysql-check
                server s 127.0.0.1:8 check
            backend directory
                option ldap-check
                server s 127.0.0.1:9 check
            backend replaced
                option ldap-check
                option httpchk GET /
                server s 127.0.0.1:10 check
            """)
        let kinds = loaded.config.proxies.map(\.checks.kind)
        #expect(kinds[0] == .protocolCheck(.redis))
        #expect(kinds[1] == .protocolCheck(.sslHello))
        #expect(kinds[2] == .protocolCheck(.smtp(command: "EHLO mail.example.com")))
        #expect(kinds[3] == .protocolCheck(.smtp(command: "HELO localhost")))
        #expect(kinds[4] == .protocolCheck(.pgsql(user: "haproxy")))
        #expect(kinds[5] == .protocolCheck(.mysql(user: "haproxy", post41: true)))
        #expect(kinds[6] == .protocolCheck(.mysql(user: "check", post41: false)))
        #expect(kinds[7] == .protocolCheck(.mysql(user: nil, post41: true)))
        #expect(kinds[8] == .protocolCheck(.ldap))
        guard case .http = kinds[9] else { Issue.record("\(kinds[9])"); return }
        #expect(loaded.warnings.isEmpty)
    }

    @Test func protocolCheckErrorsCarryTheirLine() throws {
        func first(_ option: String) -> [String] {
            errors("backend b\n    \(option)\n    server s 127.0.0.1:1 check\n")
        }
        #expect(first("option pgsql-check") == ["test.cfg:2: 'option pgsql-check' expects 'user <username>' as argument"])
        #expect(first("option pgsql-check login bob") == ["test.cfg:2: 'option pgsql-check' only supports optional values: 'user' (got 'login')"])
        #expect(first("option mysql-check login bob") == ["test.cfg:2: 'option mysql-check' only supports optional values: 'user' (got 'login')"])
        #expect(first("option mysql-check user") == ["test.cfg:2: 'option mysql-check user' expects <username> as argument"])
        #expect(first("option mysql-check user bob post-50") == ["test.cfg:2: 'option mysql-check user' only supports 'post-41' and 'pre-41' (got 'post-50')"])
        #expect(first("option redis-check now") == ["test.cfg:2: unexpected argument 'now' to 'option redis-check'"])
        #expect(first("option smtpchk EHLO a.example b") == ["test.cfg:2: unexpected argument 'b' to 'option smtpchk' (expected [HELO|EHLO DOMAIN])"])
        #expect(first("option spop-check").first?.hasPrefix("test.cfg:2: 'option spop-check' is not supported") == true)
        #expect(first("option external-check").first?.hasPrefix("test.cfg:2: 'option external-check' is not supported") == true)
        #expect(first("external-check command /bin/true").first?.hasPrefix("test.cfg:2: 'external-check' is not supported") == true)
        // HAProxy sends `HELO localhost` for anything but HELO or EHLO with a domain: said, not refused.
        let loaded = try load("backend b\n    option smtpchk QUIT\n    server s 127.0.0.1:1 check\n")
        #expect(loaded.config.proxies[0].checks.kind == .protocolCheck(.smtp(command: "HELO localhost")))
        #expect(loaded.warnings.map(\.description) == ["test.cfg:2: 'option smtpchk' expects HELO or EHLO and a domain: it sends 'HELO localhost' (as HAProxy)"])
    }

    @Test func checkSendProxyIsACheckOption() throws {
        let loaded = try load("""
            backend b
                default-server check-send-proxy
                server s1 127.0.0.1:1 check
                server s2 127.0.0.1:2 check no-check-send-proxy
            """)
        #expect(loaded.config.proxies[0].servers.map(\.options.check.sendProxy) == [true, false])
    }

    @Test func agentCheckOptions() throws {
        let loaded = try load("""
            backend b
                default-server agent-check agent-port 9999 agent-inter 500ms
                server s1 127.0.0.1:1
                server s2 127.0.0.1:2 agent-addr 127.0.0.9 agent-port 7000 agent-send "backend b\\n"
                server s3 127.0.0.1:3 no-agent-check
                server s4 127.0.0.1:4 check port 8000 addr 127.0.0.4 agent-check no-agent-check
            """)
        let agents = loaded.config.proxies[0].servers.map(\.options.check.agent)
        var first = AgentCheck()
        first.enabled = true
        first.port = 9999
        first.interval = 500
        #expect(agents[0] == first)
        var second = first
        second.address = .v4(0x7f00_0009)
        second.port = 7000
        second.send = Array("backend b\n".utf8)
        #expect(agents[1] == second)
        #expect(!agents[2].enabled)
        #expect(loaded.config.proxies[0].servers.count == 4)
    }

    @Test func agentCheckErrors() throws {
        func first(_ line: String) -> [String] { errors("backend b\n    \(line)\n") }
        // HAProxy refuses an agent with no port to reach it at; the check's `port` serves as one.
        #expect(first("server s 127.0.0.1:1 agent-check") == ["test.cfg:2: server 's' has 'agent-check' but no agent port (set 'agent-port', or the check's 'port')"])
        #expect(try load("backend b\n    server s 127.0.0.1:1 check port 81 agent-check\n").config.proxies[0].servers[0].options.check.agent.enabled)
        #expect(first("server s 127.0.0.1:1 agent-check agent-port 70000").first?.hasPrefix("test.cfg:2: 'agent-port'") == true)
        #expect(first("server s 127.0.0.1:1 agent-check agent-port 1 agent-inter 0").first?.hasPrefix("test.cfg:2: 'agent-inter' expects a time greater than 0") == true)
        #expect(first("server s 127.0.0.1:1 agent-check agent-port 1 agent-addr nowhere.invalid").first?.hasPrefix("test.cfg:2: 'agent-addr':") == true)
        #expect(first("server s 127.0.0.1:1 agent-check agent-port 1 agent-send").first == "test.cfg:2: 'agent-send' expects a string")
    }
}
