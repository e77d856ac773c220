import ConfigModel
import Testing
@testable import Loader

/// `bind ADDR:LOW-HIGH`: a listener per port of the range, as HAProxy.
@Suite struct BindPortRangeTests {
    @Test func aRangeIsOneListenerPerPort() throws {
        let config = try load("""
            frontend fe
                mode tcp
                bind 127.0.0.1:8000-8003,127.0.0.1:9000
                bind [::1]:7000-7001 accept-proxy
                default_backend be
            backend be
                mode tcp
                server s 127.0.0.1:1
            """).config
        let binds = config.proxies[0].binds
        #expect(binds.map(\.endpoint.port) == [8000, 8001, 8002, 8003, 9000, 7000, 7001])
        // The line's options are every port's.
        #expect(binds.suffix(2).allSatisfy { $0.acceptProxy })
        #expect(errors("frontend fe\n    mode tcp\n    bind 127.0.0.1:8003-8000\n    default_backend be\nbackend be\n    mode tcp\n    server s 127.0.0.1:1\n")
            == ["test.cfg:3: 'bind': port range '8003-8000' in '127.0.0.1:8003-8000' ends before it starts"])
        #expect(errors("frontend fe\n    mode tcp\n    bind 127.0.0.1:8000-70000\n    default_backend be\nbackend be\n    mode tcp\n    server s 127.0.0.1:1\n")
            == ["test.cfg:3: 'bind': invalid port range '8000-70000' in '127.0.0.1:8000-70000' (expected LOW-HIGH, each from 1 to 65535)"])
    }

    @Test func aStarServerIsTheAnyAddress() throws {
        let config = try load("listen l\n    mode tcp\n    bind 127.0.0.1:1\n    server a *:9900\n    server b 0.0.0.0\n").config
        #expect(config.proxies[0].servers.map { $0.address.isAny } == [true, true])
        #expect(config.proxies[0].servers.map(\.port) == [9900, nil])
    }

    @Test func tfoOnBind() throws {
        let config = try load("listen l\n    mode tcp\n    bind 127.0.0.1:1 tfo\n    bind 127.0.0.1:2\n    server a 127.0.0.1:3\n").config
        #expect(config.proxies[0].binds.map(\.fastOpen) == [true, false])
    }

    @Test func balanceRandom() throws {
        func balance(_ word: String) throws -> BalanceAlgorithm {
            try load("backend b\n    mode http\n    balance \(word)\n    server s 127.0.0.1:1\n").config.proxies[0].balance
        }
        #expect(try balance("random") == .random(draws: 2))
        #expect(try balance("random(5)") == .random(draws: 5))
        #expect(errors("backend b\n    mode http\n    balance random(0)\n    server s 127.0.0.1:1\n")
            == ["test.cfg:3: 'balance random' expects a number of draws from 1 up in parentheses, got 'random(0)'"])
    }

    @Test func sourceAddresses() throws {
        let config = try load("""
            defaults
                source 127.0.0.2
            backend b
                mode tcp
                server a 127.0.0.1:1 source 127.0.0.3:2000
                server c 127.0.0.1:1
            """).config
        #expect(config.proxies[0].source == SocketEndpoint(address: .v4(0x7F00_0002), port: 0))
        #expect(config.proxies[0].servers.map(\.options.source) == [SocketEndpoint(address: .v4(0x7F00_0003), port: 2000), nil])
        #expect(errors("backend b\n    mode tcp\n    source 127.0.0.2 usesrc clientip\n    server a 127.0.0.1:1\n")
            == ["test.cfg:3: 'source … usesrc' is not supported yet (strata binds the source address only)"])
        #expect(errors("backend b\n    mode tcp\n    server a 127.0.0.1:1 source name.example\n")
            == ["test.cfg:3: 'source' expects an address literal, got 'name.example'"])
    }
}
