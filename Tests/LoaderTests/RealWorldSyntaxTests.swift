import ConfigModel
import Testing
@testable import Loader

/// Forms real configurations use that HAProxy accepts: `$VAR` in unquoted addresses, `OR` in
/// capitals.
@Suite struct RealWorldSyntaxTests {
    @Test func environmentVariablesInUnquotedAddresses() throws {
        let config = try load("""
            frontend web
                mode http
                bind *:$FRONTEND_PORT
                bind ${LISTEN_ADDR}:9${SUFFIX}
                default_backend app
            backend app
                mode http
                server s1 $APP_HOST:${APP_PORT}
            """, environment: ["FRONTEND_PORT": "8080", "LISTEN_ADDR": "127.0.0.2", "SUFFIX": "90", "APP_HOST": "127.0.0.9", "APP_PORT": "3000"]).config
        let web = try #require(config.proxies.first { $0.name == "web" })
        #expect(web.binds.map(\.endpoint.port) == [8080, 990])
        #expect(web.binds[1].endpoint.address == IPAddress("127.0.0.2"))
        let server = try #require(config.proxies.first { $0.name == "app" }?.servers.first)
        #expect(server.address == IPAddress("127.0.0.9") && server.port == 3000)
        // An unset variable is empty, as in HAProxy: here that leaves no port.
        #expect(errors("frontend f\n    bind 127.0.0.1:$NOPE\n").contains("test.cfg:2: 'bind': missing port after ':' in '127.0.0.1:'"))
    }

    @Test func orIsReadWithoutCase() throws {
        let config = try load("""
            frontend web
                mode http
                bind 127.0.0.1:8080
                acl a path /a
                acl b path /b
                http-request deny if a OR b
                http-request deny if a Or b || a
                default_backend app
            backend app
                mode http
                server s1 127.0.0.1:3000
            """).config
        #expect(config.proxies.first { $0.name == "web" }?.http.requestRules.count == 2)
    }
}
