import ConfigModel
import Testing
@testable import Loader

/// TLS settings land in `Bind.tls` and `ServerOptions.tls` with the files' bytes
/// (fixtures/valid/tls.cfg and snippets).
@Suite struct TLSKeywordTests {
    static let fixture = "fixtures/valid/tls.cfg"

    func config() throws -> Config { try loadFixture(TLSKeywordTests.fixture).config }

    func file(_ path: String) throws -> [UInt8] {
        guard case .success(let bytes) = FileReader.read(packageRoot + "/fixtures/certs/" + path, .tls) else {
            throw ConfigError(nil, "cannot read \(path)")
        }
        return bytes
    }

    @Test func globalTuning() throws {
        let global = try config().global
        #expect(global.sslCacheSize == 50000)
        #expect(global.sslLifetime == 600_000)  // a bare number is seconds
        #expect(GlobalSettings().sslCacheSize == 20000 && GlobalSettings().sslLifetime == 300_000)
    }

    @Test func bindWithCertificatesInOneFileAndBesideTheirKey() throws {
        let www = try #require(try config().proxy(named: "www"))
        try #require(www.binds.count == 4)
        let tls = try #require(www.binds[0].tls)
        #expect(tls.certificates.map(\.path) == ["site.pem", "split.pem"])
        let site = try file("site.pem")
        #expect(tls.certificates[0].pem == site && tls.certificates[0].keyPEM == nil)
        #expect(tls.certificates[1].pem == (try file("split.pem")))
        #expect(tls.certificates[1].keyPEM == (try file("split.pem.key")))
        #expect(tls.certificates[0].location.line == 22)
        #expect(tls.strictSNI)
        #expect(tls.alpn == ["http/1.1", "http/1.0"])
        #expect(tls.curves == "X25519:P-256")
        #expect(tls.maxVersion == .tlsv13)
        #expect(tls.ticketKeys?.count == 3 && tls.ticketKeys?.allSatisfy { $0.count == 48 } == true)
        // The global defaults fill what the line leaves out.
        #expect(tls.ciphers == "ECDHE+AESGCM")
        #expect(tls.minVersion == .tlsv12)
        #expect(tls.noTickets)
        #expect(tls.verify == .none && tls.caFile == nil)
        #expect(www.binds[3].tls == nil)
    }

    @Test func bindWithADirectoryACrtListAndClientVerification() throws {
        let www = try #require(try config().proxy(named: "www"))
        // `bind a,b`: one Bind per address, the same TLS settings.
        #expect(www.binds[1].tls == www.binds[2].tls)
        let tls = try #require(www.binds[1].tls)
        // The directory's files in lexical order (no dot files, no .key), then the list's.
        #expect(tls.certificates.map(\.path) == ["site.d/10-a.pem", "site.d/20-b.pem", "site.pem", "split.pem"])
        #expect(tls.certificates[1].keyPEM == (try file("site.d/20-b.pem.key")))
        #expect(tls.certificates.map(\.sniFilters) == [[], [], ["www.example.com"], ["api.example.com", "!old.example.com"]])
        #expect(tls.verify == .optional)
        let ca = try file("ca.pem")
        #expect(tls.caFile == ca && tls.caFilePath == "ca.pem")
        #expect(tls.crlFile == (try file("crl.pem")))
        #expect(tls.ciphers == "ECDHE-ECDSA-AES256-GCM-SHA384")
        #expect(tls.ciphersuites == "TLS_AES_256_GCM_SHA384")
        #expect(tls.minVersion == .tlsv13)  // the line's, over ssl-default-bind-options
    }

    @Test func serversWithDefaultServerSettings() throws {
        let app = try #require(try config().backend(named: "app"))
        let a1 = try #require(app.servers[0].options.tls)
        #expect(a1.verify == .required)  // ssl-server-verify
        let ca = try file("ca.pem")
        #expect(a1.caFile == ca && a1.caFilePath == "ca.pem")
        #expect(a1.alpn == ["http/1.1"])
        #expect(a1.sni == FormatString(parts: [.literal("app.internal")], source: "str(app.internal)"))
        let client = try file("client.pem")
        #expect(a1.certificate?.path == "client.pem" && a1.certificate?.pem == client)
        #expect(a1.noSessionReuse && a1.checkSSL && a1.checkSNI == "health.app.internal")
        #expect(a1.ciphersuites == "TLS_AES_128_GCM_SHA256")  // ssl-default-server-ciphersuites
        #expect(app.servers[0].options.check.enabled)

        let a2 = try #require(app.servers[1].options.tls)
        #expect(a2.verify == .none)
        #expect(a2.sni == FormatString(parts: [.sample(SampleExpression(fetch: .header("host", occurrence: -1)))], source: "req.hdr(host)"))
        #expect(a2.minVersion == .tlsv13 && a2.ciphers == "ECDHE+CHACHA20")
        #expect(app.servers[2].options.tls == nil)  // no-ssl

        // Settings without `ssl` on default-server wait for a server line that turns it on.
        let plain = try #require(try config().backend(named: "plain"))
        #expect(plain.servers[0].options.tls == nil)
        #expect(plain.servers[1].options.tls?.verify == TLSVerify.none)
        #expect(plain.servers[1].options.tls?.caFilePath == "ca.pem")
    }

    @Test func sslServerVerifyMayComeAfterTheProxies() throws {
        let loaded = try load("""
            backend b
                server s 127.0.0.1:1 ssl
            global
                ssl-server-verify none
            """)
        #expect(loaded.config.proxies[0].servers[0].options.tls?.verify == TLSVerify.none)
    }

    @Test func bindSSLWithoutCertificateIsRefused() {
        #expect(errors("listen l\n    bind 127.0.0.1:1 ssl\n    server s 127.0.0.1:2\n")
            == ["test.cfg:2: 'ssl' on bind needs a certificate ('crt PEM', 'crt DIR' or 'crt-list FILE')"])
    }

    @Test func cipherListsMayEndWithASemicolon() throws {
        // OpenSSL separates a TLS 1.2 cipher list with ':', ';', ',' or spaces; TLS 1.3 suites
        // with ':' alone (it refuses `TLS_AES_128_GCM_SHA256;`).
        let loaded = try load("""
            global
                ssl-default-bind-ciphers ECDHE+AESGCM:ECDHE+CHACHA20;
                ssl-default-server-ciphers "ECDHE+AESGCM ECDHE+CHACHA20"
            backend b
                server s 127.0.0.1:1 ssl verify none ciphers ECDHE+AESGCM;
            """)
        #expect(loaded.config.global.tls.bindCiphers == "ECDHE+AESGCM:ECDHE+CHACHA20;")
        #expect(loaded.config.global.tls.serverCiphers == "ECDHE+AESGCM ECDHE+CHACHA20")
        #expect(loaded.config.proxies[0].servers[0].options.tls?.ciphers == "ECDHE+AESGCM;")
        #expect(errors("global\n    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256;\n")
            == ["test.cfg:2: 'ssl-default-bind-ciphersuites' expects an OpenSSL cipher list, got 'TLS_AES_128_GCM_SHA256;'"])
    }

    @Test func base64() {
        #expect(KeywordReader.base64(Array("aGVsbG8=".utf8)) == Array("hello".utf8))
        #expect(KeywordReader.base64(Array("aGVsbG8".utf8)) == nil)
        #expect(KeywordReader.base64(Array("a$==".utf8)) == nil)
    }
}
