import ConfigModel
import Testing
@testable import Loader

/// The stats page and the log formats land where the engine reads them
/// (fixtures/valid/observability.cfg and snippets).
@Suite struct ObservabilityKeywordTests {
    static let fixture = "fixtures/valid/observability.cfg"

    func proxy(_ name: String) throws -> Proxy {
        try #require(try loadFixture(ObservabilityKeywordTests.fixture).config.proxy(named: name))
    }

    @Test func statsPage() throws {
        let www = try proxy("www")
        let page = try #require(www.stats)
        #expect(page.uri == "/admin?stats")
        #expect(page.refresh == 10_000)  // a bare number is seconds here
        #expect(page.credentials == [.init(user: "admin", password: "secret"), .init(user: "ops", password: "with:colons")])
        #expect(page.realm == "Strata Admin")
        #expect(page.hideVersion)
        #expect(page.location.line == 17)
        let admin = try #require(page.admin)
        #expect(!admin.inverted)
        #expect(admin.alternatives.first?.first?.name == "internal")
        #expect(admin.alternatives.first?.first?.criteria.first?.patterns
            == .networks([IPNetwork(address: .v4(0x7f00_0000), prefixLength: 8)]))

        // `stats uri` alone enables the page, with HAProxy's defaults; no default_backend needed.
        let stats = try #require(try proxy("stats").stats)
        #expect(stats.uri == "/" && stats.realm == "HAProxy Statistics" && stats.credentials.isEmpty && !stats.hideVersion)
        #expect(stats.refresh == nil && stats.admin == nil)
        #expect(try proxy("app").stats == nil)
    }

    @Test func logFormats() throws {
        let www = try proxy("www")
        guard case .custom(let spec) = www.log.format else { Issue.record("\(www.log.format)"); return }
        #expect(spec.source == "%ci:%cp [%tr] %ft %b/%s %ST %B %{+Q}r %[src] %[method,lower]")
        #expect(spec.nodes.contains(.variable("r", .quote)))
        #expect(spec.nodes.contains(.sample(SampleExpression(fetch: .method, converters: [.lower]), [])))
        #expect(www.log.structuredDataFormat?.source == "[exampleSDID@32473 iut=\"3\" client=\"%ci\"]")
        #expect(www.log.errorFormat?.nodes.first == .variable("ci", []))
        #expect(www.log.separateErrors && www.log.logAsap && www.log.dontLogNormal)

        let stats = try proxy("stats")
        #expect(!stats.log.separateErrors && !stats.log.logAsap && !stats.log.dontLogNormal)
        // `option httplog` after the inherited log-format: httplog wins.
        #expect(stats.log.format == .connect && stats.http.httpLog)
    }

    @Test func statsFromDefaultsReachEveryProxy() throws {
        let loaded = try load("""
            defaults
                mode http
                stats enable
                stats auth a:b
            frontend f
                bind 127.0.0.1:1
            backend b
                server s 127.0.0.1:2
            """)
        #expect(loaded.config.proxies.allSatisfy { $0.stats?.credentials == [.init(user: "a", password: "b")] })
    }

    @Test func logFormatSamplesAreTheOnesALineHas() {
        #expect(errors("frontend f\n    bind 127.0.0.1:1\n    log-format \"%[req.hdr(host)]\"\n    default_backend b\nbackend b\n    server s 127.0.0.1:2\n")
            == ["test.cfg:3: 'req.hdr' cannot be logged (a log line has src, src_port, dst, dst_port, method, path, url, query, req.ver, status, unique-id, capture.req.hdr, capture.res.hdr, fc_err, var and the ssl_* ones)"])
        #expect(errors("listen l\n    bind 127.0.0.1:1\n    no option logasap\n    option dontlog-normal\n    server s 127.0.0.1:2\n").isEmpty)
    }
}
