import ConfigModel
import Testing
@testable import Loader

/// `tune.h2.*`, `bind … proto` and `alpn h2` as HAProxy reads them.
@Suite struct HTTP2KeywordTests {
    @Test func tuneH2SettingsAndTheirBounds() throws {
        let global = try load("""
            global
                tune.h2.header-table-size 8192
                tune.h2.initial-window-size 1048576
                tune.h2.fe.max-concurrent-streams 50
                tune.h2.max-frame-size 32768
            """).config.global
        #expect(global.h2.headerTableSize == 8192)
        #expect(global.h2.initialWindowSize == 1_048_576)
        #expect(global.h2.maxConcurrentStreams == 50)
        #expect(global.h2.maxFrameSize == 32768)
        #expect(try load("global\n").config.global.h2 == HTTP2Settings())
        #expect(errors("global\n    tune.h2.max-frame-size 1000\n").first?.hasPrefix("test.cfg:2:") == true)
        #expect(errors("global\n    tune.h2.header-table-size 70000\n").first?.hasPrefix("test.cfg:2:") == true)
        #expect(errors("global\n    tune.h2.max-concurrent-streams 0\n").first?.hasPrefix("test.cfg:2:") == true)
    }

    @Test func bindProtoAndALPN() throws {
        let config = try load("""
            frontend fe
                mode http
                bind 127.0.0.1:8080 proto h2
                bind 127.0.0.1:8081 proto h1
                bind 127.0.0.1:8443 ssl crt \(packageRoot)/fixtures/certs/site.pem alpn h2,http/1.1
                default_backend be
            backend be
                mode http
                server s 127.0.0.1:9000
            """).config
        let binds = config.proxies[0].binds
        #expect(binds.map(\.forcesH2) == [true, false, false])
        // `alpn` without `ssl`: HAProxy ignores it; strata too, with a warning.
        let clear = try load("frontend fe\n    mode http\n    bind 127.0.0.1:8080 alpn h2,http/1.1\n    default_backend be\nbackend be\n    mode http\n    server s 127.0.0.1:9000\n")
        #expect(clear.config.proxies[0].binds[0].tls == nil)
        #expect(clear.warnings.map(\.description) == ["test.cfg:3: 'alpn' on a bind without 'ssl' has no effect (clear-text HTTP/2 is recognised by its preface, or forced with 'proto h2')"])
        #expect(binds[2].tls?.alpn == ["h2", "http/1.1"])
        #expect(errors("frontend fe\n    mode http\n    bind 127.0.0.1:8080 proto h3\n")
            .contains("test.cfg:3: 'proto h3' on bind is not supported (strata's listeners speak h1 or h2)"))
        #expect(errors("frontend fe\n    mode tcp\n    bind 127.0.0.1:8080 proto h2\n    default_backend be\nbackend be\n    mode tcp\n    server s 127.0.0.1:1\n")
            == ["test.cfg:3: 'proto h2' needs mode http (frontend 'fe' is in mode tcp)"])
    }

    @Test func serverProtoAndALPN() throws {
        let config = try load("""
            backend be
                mode http
                server a 127.0.0.1:9000 proto h2
                server b 127.0.0.1:9001 ssl verify none alpn h2,http/1.1
                server c 127.0.0.1:9002 ssl verify none alpn http/1.1
                server d 127.0.0.1:9003 proto h1
            """).config
        #expect(config.proxies[0].servers.map(\.options.speaksH2) == [true, true, false, false])
        #expect(config.proxies[0].servers.map(\.options.forcesH2) == [true, false, false, false])
        #expect(errors("backend be\n    mode http\n    server a 127.0.0.1:9000 proto fcgi\n")
            == ["test.cfg:3: 'proto fcgi' on server is not supported (strata speaks 'h2' and 'h1')"])
        #expect(errors("backend be\n    mode tcp\n    server a 127.0.0.1:9000 proto h2\n")
            == ["test.cfg:3: server 'be/a': 'proto h2' needs mode http"])
        #expect(errors("backend be\n    mode http\n    server a 127.0.0.1:9000 proto h2 send-proxy\n")
            == ["test.cfg:3: server 'be/a': 'send-proxy' on an HTTP/2 server is not supported yet (its connections carry many clients' streams)"])
        #expect(errors("backend be\n    mode http\n    server a 127.0.0.1:9000 ssl verify none alpn h2 sni req.hdr(host)\n")
            == ["test.cfg:3: server 'be/a': 'sni' from a fetch on an HTTP/2 server is not supported yet (its connections carry many requests)"])
        // A TCP backend's `alpn h2` is its TLS's business: bytes pass as they are.
        #expect(errors("backend be\n    mode tcp\n    server a 127.0.0.1:9000 ssl verify none alpn h2\n").isEmpty)
    }
}

/// HTTP rules and `option forwardfor|originalto` in a TCP proxy: HAProxy 2.6 ignores them with a
/// warning, and so does strata; other HTTP keywords stay refused.
@Suite struct HTTPInTCPModeTests {
    @Test func rulesAndForwardforAreIgnoredWithHAProxysWarning() throws {
        let loaded = try load("""
            frontend db
                mode tcp
                bind 127.0.0.1:5432
                http-request deny if { src 10.0.0.0/8 }
                http-request set-header X-A b
                option forwardfor
                default_backend pg
            backend pg
                mode tcp
                server p 127.0.0.1:5433
            """)
        #expect(loaded.warnings.map(\.description) == [
            "test.cfg:4: 'http-request' rules ignored for frontend 'db' as they require HTTP mode.",
            "test.cfg:6: 'option forwardfor' ignored for frontend 'db' as it requires HTTP mode.",
        ])
        #expect(errors("frontend db\n    mode tcp\n    bind 127.0.0.1:5432\n    balance uri\n    default_backend pg\nbackend pg\n    mode tcp\n    server p 127.0.0.1:5433\n")
            .contains { $0.contains("needs 'mode http'") || $0.contains("not supported in section 'frontend'") })
    }
}

/// `tune.rcvbuf.*` and `tune.sndbuf.*`: sizes in bytes for each side.
@Suite struct SocketBufferKeywordTests {
    @Test func sizesPerSide() throws {
        let sizes = try load("""
            global
                tune.rcvbuf.client 65536
                tune.sndbuf.client 131072
                tune.rcvbuf.server 32768
                tune.sndbuf.server 16384
            """).config.global.socketBuffers
        #expect(sizes.clientReceive == 65536 && sizes.clientSend == 131072)
        #expect(sizes.serverReceive == 32768 && sizes.serverSend == 16384)
        #expect(try load("global\n").config.global.socketBuffers == SocketBufferSizes())
        #expect(errors("global\n    tune.rcvbuf.client 0\n").first?.hasPrefix("test.cfg:2:") == true)
        #expect(errors("global\n    tune.sndbuf.server big\n").first?.hasPrefix("test.cfg:2:") == true)
    }
}
