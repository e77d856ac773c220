import ConfigModel
import Testing
@testable import Loader

/// The legacy process keywords real files still carry, as HAProxy 2.6 takes them (checked against
/// `haproxy -c` 2.6.12): an error where it refuses, its warning where it ignores, the keyword
/// implemented otherwise.
@Suite struct LegacyKeywordTests {
    @Test func nbprocIsRefusedAsHAProxy25AndLaterRefuseIt() {
        #expect(errors("global\n    nbproc 1\n" + minimalListen) == [
            "test.cfg:2: nbproc is not supported any more since HAProxy 2.5. Threads will automatically be used on multi-processor machines if available.",
        ])
    }

    @Test func ignoredLinesCarryHAProxysWarnings() throws {
        let loaded = try load("""
            global
                stats bind-process 1
            defaults
                mode tcp
                option prefer-last-server
                option contstats
            frontend f
                bind 127.0.0.1:8080 process 1
                bind-process 1
                default_backend b
            backend b
                bind-process all
                server s 127.0.0.1:1
            """)
        #expect(loaded.warnings.map(\.description) == [
            "test.cfg:2: 'stats bind-process' has no effect: strata is one process (its loops are threads: see 'nbthread').",
            "test.cfg:5: 'option prefer-last-server' ignored for backend 'b' as it requires HTTP mode.",
            "test.cfg:8: 'bind 127.0.0.1:8080' in section 'frontend' : 'process 1' on 'bind' lines is deprecated and will be removed in 2.7.",
            "test.cfg:9: 'bind-process' has no effect, is deprecated, and will be removed in version 2.7.",
            "test.cfg:12: 'bind-process' has no effect, is deprecated, and will be removed in version 2.7.",
        ])
        #expect(errors("frontend f\n    bind 127.0.0.1:8080 process 2\n    default_backend b\nbackend b\n    server s 127.0.0.1:1\n") == [
            "test.cfg:2: 'process 2' on bind is not supported yet (strata is one process; 'process 1' and 'process all' are accepted)",
        ])
    }

    @Test func zeroWarningMakesEveryWarningAnErrorAndQuietIsTaken() throws {
        let warned = """
            global
                zero-warning
                quiet
            defaults
                mode tcp
                option prefer-last-server
            listen l
                bind 127.0.0.1:8080
                server s 127.0.0.1:1
            """
        #expect(errors(warned) == [
            "test.cfg:6: 'option prefer-last-server' ignored for proxy 'l' as it requires HTTP mode. (an error: 'zero-warning' is set)",
        ])
        let clean = try load("global\n    zero-warning\n    quiet\n" + minimalListen)
        #expect(clean.config.global.zeroWarning && clean.config.global.quiet && clean.warnings.isEmpty)
        #expect(errors("global\n    quiet now\n" + minimalListen).first?.hasPrefix("test.cfg:2:") == true)
    }

    @Test func httpClientSettingsAreCheckedAndSaidToHaveNoEffect() throws {
        let loaded = try load("global\n    httpclient.ssl.verify none\n    httpclient.timeout.connect 2s\n" + minimalListen)
        #expect(loaded.warnings.map(\.description) == [
            "test.cfg:2: 'httpclient.ssl.verify' has no effect: it configures HAProxy's internal HTTP client (used by Lua scripts and the CLI's httpclient command), which strata does not have.",
            "test.cfg:3: 'httpclient.timeout.connect' has no effect: it configures HAProxy's internal HTTP client (used by Lua scripts and the CLI's httpclient command), which strata does not have.",
        ])
        #expect(errors("global\n    httpclient.ssl.verify maybe\n" + minimalListen).count == 1)
        #expect(errors("global\n    httpclient.nothing 1\n" + minimalListen).count == 1)
    }

    @Test func rateLimits() throws {
        let config = try load("""
            global
                maxconnrate 100
                maxsessrate 50
            defaults
                rate-limit sessions 10
            frontend f
                bind 127.0.0.1:8080
                default_backend b
            frontend g
                bind 127.0.0.1:8081
                rate-limit sessions 0
                default_backend b
            backend b
                server s 127.0.0.1:1
            """).config
        #expect(config.global.maxConnectionRate == 100 && config.global.maxSessionRate == 50)
        #expect(config.proxy(named: "f")?.sessionRateLimit == 10)
        #expect(config.proxy(named: "g")?.sessionRateLimit == nil)
        #expect(errors("frontend f\n    bind 127.0.0.1:8080\n    rate-limit connections 5\n    default_backend b\nbackend b\n    server s 127.0.0.1:1\n") == [
            "test.cfg:3: 'rate-limit' expects 'sessions' and a number (rate-limit sessions N)",
        ])
    }

    @Test func preferLastServerInModeHTTP() throws {
        let config = try load("""
            defaults
                mode http
                option prefer-last-server
            backend b
                server s 127.0.0.1:1
            backend c
                no option prefer-last-server
                server s 127.0.0.1:1
            """).config
        #expect(config.proxy(named: "b")?.http.preferLastServer == true)
        #expect(config.proxy(named: "c")?.http.preferLastServer == false)
    }

    @Test func spliceOptionsInModeTCPAndHTTP() throws {
        let loaded = try load("""
            defaults
                option splice-auto
            listen t
                mode tcp
                bind 127.0.0.1:8080
                option splice-request
                no option splice-auto
                server s 127.0.0.1:1
            listen h
                mode http
                bind 127.0.0.1:8081
                server s 127.0.0.1:1
            """)
        let t = try #require(loaded.config.proxy(named: "t"))
        #expect(t.tcp.spliceAuto == false && t.tcp.spliceRequest && !t.tcp.spliceResponse)
        #expect(loaded.warnings.map(\.description) == [
            "test.cfg:9: the 'option splice-*' of its defaults section have no effect on listen 'h': strata splices in mode tcp only",
        ])
        #expect(errors("listen h\n    mode http\n    bind 127.0.0.1:8081\n    option splice-response\n    server s 127.0.0.1:1\n") == [
            "test.cfg:4: 'option splice-response' is not supported yet in mode http (strata splices in mode tcp only)",
        ])
    }
}
