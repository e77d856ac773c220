import ConfigModel
import Testing
@testable import Loader

/// `defaults` sections: anonymous and named, `from`, and which one a proxy takes.
@Suite struct DefaultsTests {
    @Test func aProxyTakesTheLatestDefaultsBeforeIt() throws {
        let loaded = try load("""
            defaults
                retries 1
                timeout connect 1s
            backend a
            defaults
                retries 2
            backend b
            """)
        #expect(loaded.config.backend(named: "a")?.retries == 1)
        #expect(loaded.config.backend(named: "a")?.timeouts.connect == 1000)
        // A new defaults section starts afresh: nothing of the first one carries over.
        #expect(loaded.config.backend(named: "b")?.retries == 2)
        #expect(loaded.config.backend(named: "b")?.timeouts.connect == nil)
    }

    @Test func fromNamesADefaultsSection() throws {
        let loaded = try load("""
            defaults slow
                timeout server 1m
            defaults fast
                timeout server 1s
            backend a from slow
            backend b from fast
            """)
        #expect(loaded.config.backend(named: "a")?.timeouts.server == 60_000)
        #expect(loaded.config.backend(named: "b")?.timeouts.server == 1000)
    }

    @Test func defaultsInheritFromDefaults() throws {
        let loaded = try load("""
            defaults base
                retries 7
                timeout server 1m
            defaults child from base
                timeout server 2s
            backend a from child
            """)
        let a = try #require(loaded.config.backend(named: "a"))
        #expect(a.retries == 7)
        #expect(a.timeouts.server == 2000)
    }

    @Test func onlyWhatTheCapabilityUsesIsCopied() throws {
        let loaded = try load("""
            defaults
                maxconn 10
                fullconn 20
                default_backend b
                balance leastconn
                timeout client 1s
                timeout server 2s
            frontend f
                bind 127.0.0.1:1
            backend b
            """)
        let f = try #require(loaded.config.proxy(named: "f"))
        let b = try #require(loaded.config.backend(named: "b"))
        #expect(f.maxconn == 10 && f.defaultBackend == "b" && f.timeouts.client == 1000)
        #expect(f.fullconn == nil && f.balance == .roundRobin && f.timeouts.server == nil)
        #expect(b.maxconn == nil && b.defaultBackend == nil && b.timeouts.client == nil)
        #expect(b.fullconn == 20 && b.balance == .leastConnections && b.timeouts.server == 2000)
    }

    @Test func defaultServerAppliesToLaterServers() throws {
        let loaded = try load("""
            defaults
                default-server weight 5
            backend b
                server a 127.0.0.1:1
                default-server maxconn 9
                server c 127.0.0.1:3 weight 2
            """)
        let servers = try #require(loaded.config.backend(named: "b")).servers
        #expect(servers[0].options.weight == 5 && servers[0].options.maxconn == nil)
        #expect(servers[1].options.weight == 2 && servers[1].options.maxconn == 9)
    }

    @Test func defaultBackendFromDefaultsPointsAtItsLine() {
        #expect(errors("""
            defaults
                default_backend nowhere
            frontend f
                bind 127.0.0.1:1
            """) == ["test.cfg:2: frontend 'f': unable to find required default_backend: 'nowhere'"])
    }

    @Test func modelDefaults() throws {
        let loaded = try load("backend b\n    server s 127.0.0.1:1\n")
        let b = try #require(loaded.config.backend(named: "b"))
        #expect(b.retries == 3)
        #expect(b.redispatch == nil)
        #expect(b.balance == .roundRobin)
        #expect(b.servers[0].options.weight == 1)
        #expect(loaded.config.global.maxGenerations == 8)
    }

    @Test func aWrongLineIsNotReportedAgainAsAnAbsence() {
        // The refused bind and default_backend lines are the only errors: no "has no bind".
        #expect(errors("""
            frontend f
                bind 127.0.0.1:99999
                default_backend
            """) == [
                "test.cfg:2: 'bind': invalid port '99999' in '127.0.0.1:99999' (expected 1 to 65535)",
                "test.cfg:3: 'default_backend' expects a backend name",
            ])
    }
}
