import ConfigModel
import Testing
@testable import Loader

/// `unique-id-format`, `unique-id-header`, the `unique-id` and `uuid` fetches and `option
/// forwarded`: good lines land in the model, bad ones fail at their file:line.
@Suite struct RequestIdentityKeywordTests {
    func proxy(_ text: String, _ name: String) throws -> Proxy {
        try #require(try load(text).config.proxy(named: name))
    }

    @Test func uniqueIDFormatAndHeaderFromDefaultsAndFrontends() throws {
        let text = """
            defaults
                mode http
                unique-id-format %{+X}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid
                unique-id-header X-Request-ID
            frontend web
                bind 127.0.0.1:8080
                http-request set-header X-Trace %[unique-id]
                log-format "%ID %[unique-id]"
                default_backend b
            frontend other
                bind 127.0.0.1:8081
                unique-id-format %[uuid]
                default_backend b
            backend b
                server s 127.0.0.1:9000
            """
        let web = try proxy(text, "web")
        let format = try #require(web.http.uniqueIDFormat)
        #expect(format.source == "%{+X}o %ci:%cp_%fi:%fp_%Ts_%rt:%pid")
        #expect(format.nodes.first { if case .variable = $0 { true } else { false } } == .variable("ci", [.hex]))
        #expect(web.http.uniqueIDHeader == "X-Request-ID")
        let other = try proxy(text, "other")
        #expect(other.http.uniqueIDFormat?.nodes == [.sample(SampleExpression(fetch: .uuid), [])])
        #expect(other.http.uniqueIDHeader == "X-Request-ID")
    }

    @Test func badUniqueIDLinesFailAtTheirLine() {
        #expect(errors("""
            frontend web
                mode http
                bind 127.0.0.1:8080
                default_backend minimal
                unique-id-format %ci_%ST
            """ + minimalListen).contains("test.cfg:5: 'unique-id-format': '%ST' is not known when the ID is made (it may use %H, %HM, %HP, %HQ, %HU, %HV, %Ts, %b, %ci, %cp, %f, %fi, %fp, %ft, %ms, %pid, %r or %rt)"))
        #expect(errors("""
            frontend web
                mode http
                bind 127.0.0.1:8080
                default_backend minimal
                unique-id-format %[unique-id]
            """ + minimalListen).contains("test.cfg:5: 'unique-id-format': the format cannot use the ID it makes ('unique-id')"))
        #expect(errors("""
            frontend web
                mode http
                bind 127.0.0.1:8080
                default_backend minimal
                unique-id-format a b
            """ + minimalListen).contains("test.cfg:5: 'unique-id-format' expects one argument: quote the format or escape its spaces"))
        #expect(errors("""
            backend b
                mode http
                unique-id-header X-ID
            """ + minimalListen).contains { $0.hasPrefix("test.cfg:3: 'unique-id-header' is not supported in section 'backend'") })
        #expect(errors("""
            frontend web
                mode http
                bind 127.0.0.1:8080
                default_backend minimal
                unique-id-format %[uuid(7)]
            """ + minimalListen).contains { $0.hasPrefix("test.cfg:5: 'unique-id-format': fetch 'uuid' makes version 4 UUIDs only") })
        #expect(errors("""
            frontend web
                mode http
                bind 127.0.0.1:8080
                default_backend minimal
                log-format "%rt"
            """ + minimalListen).contains("test.cfg:5: 'log-format': '%rt' is not supported yet in a log line (only in unique-id-format)"))
    }

    @Test func optionForwardedParameters() throws {
        let text = """
            defaults
                mode http
            backend plain
                option forwarded
                server s 127.0.0.1:9000
            backend all
                option forwarded proto host by by_port for for_port
                server s 127.0.0.1:9000
            listen off
                bind 127.0.0.1:8080
                option forwarded host
                no option forwarded
                server s 127.0.0.1:9000
            """
        var defaults = ForwardedOption()
        defaults.proto = true
        defaults.client = true
        #expect(try proxy(text, "plain").http.forwarded == defaults)
        let all = try #require(try proxy(text, "all").http.forwarded)
        #expect(all.proto && all.host && all.by && all.byPort && all.client && all.clientPort)
        #expect(try proxy(text, "off").http.forwarded == nil)
        let exprs = try #require(try proxy("""
            backend b
                mode http
                option forwarded host-expr req.hdr(x-host) for-expr req.hdr(x-client) for_port-expr req.hdr(x-port)
                server s 127.0.0.1:9000
            """, "b").http.forwarded)
        #expect(exprs.host && exprs.client && exprs.clientPort && !exprs.proto)
        #expect(exprs.hostExpression?.fetch == .header("x-host", occurrence: -1))
        #expect(exprs.clientExpression?.fetch == .header("x-client", occurrence: -1))
        #expect(exprs.clientPortExpression != nil)
    }

    @Test func badOptionForwardedLinesFailAtTheirLine() throws {
        #expect(errors("""
            backend b
                mode http
                option forwarded for-expr nosuchfetch
                server s 127.0.0.1:9000
            """).contains { $0.hasPrefix("test.cfg:3: 'option forwarded for-expr': ") })
        #expect(errors("""
            backend b
                mode http
                option forwarded host-expr
                server s 127.0.0.1:9000
            """).contains("test.cfg:3: 'option forwarded host-expr' expects a sample expression"))
        #expect(errors("""
            backend b
                mode http
                option forwarded for_port
                server s 127.0.0.1:9000
            """).contains("test.cfg:3: 'option forwarded': 'for_port' needs 'for' or 'for-expr'"))
        #expect(errors("""
            backend b
                mode http
                option forwarded sideways
                server s 127.0.0.1:9000
            """).contains("test.cfg:3: unexpected argument 'sideways' to 'option forwarded' (expected proto, host, host-expr, by, by-expr, by_port, by_port-expr, for, for-expr, for_port or for_port-expr)"))
        // HAProxy's warning for a backend option in a frontend, and nothing applied.
        let frontend = """
            frontend f
                mode http
                bind 127.0.0.1:8080
                option forwarded
                http-request deny
            """ + minimalListen
        #expect(errors(frontend).isEmpty)
        #expect(try #require(try? load(frontend).config.proxy(named: "f")).http.forwarded == nil)
    }
}
