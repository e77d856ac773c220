import CLibEV
import ConfigModel
import Foundation
import Glibc
import StrataTestSupport
import Testing

@testable import Engine

/// TLS termination and origination in process: generations built from configuration values,
/// certificates made by the `openssl` command, clients `openssl s_client` and OpenSSL itself.
@Suite(.serialized, .enabled(if: TestTools.available(TestTools.hasOpenSSL), "openssl is not installed (apt-get install openssl)"))
struct TLSSessionTests {
    let pki = TLSTestPKI.shared

    /// A TLS `listen` section in front of `origin`.
    func proxy(_ origin: TinyOrigin, certificates: [String] = ["default", "a", "wild"],
               configure: @escaping (inout BindTLS) -> Void = { _ in }, proxy more: (inout Proxy) -> Void = { _ in }) throws -> HTTPTestProxy {
        let tls = pki.bindTLS(certificates, configure: configure)
        return try HTTPTestProxy(origin: origin.port) {
            $0.binds[0].tls = tls
            more(&$0)
        }
    }

    @Test func sniPicksTheCertificateAndTheFirstIsTheDefault() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let p = try proxy(origin)
        defer { p.stop() }
        let none = sClient(port: p.port)
        #expect(none.subject == "CN = default.test")
        #expect(none.output.contains("saw GET /tls HTTP/1.1"))
        #expect(sClient(port: p.port, serverName: "a.test").subject == "CN = a.test")
        #expect(sClient(port: p.port, serverName: "ALT-A.test").subject == "CN = a.test")
        #expect(sClient(port: p.port, serverName: "x.wild.test").subject == "CN = *.wild.test")
        // A wildcard covers one label only.
        #expect(sClient(port: p.port, serverName: "y.x.wild.test").subject == "CN = default.test")
        #expect(sClient(port: p.port, serverName: "unknown.test").subject == "CN = default.test")
    }

    @Test func strictSNIRefusesAnUnknownName() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let p = try proxy(origin, configure: { $0.strictSNI = true })
        defer { p.stop() }
        let known = sClient(port: p.port, serverName: "a.test")
        #expect(known.subject == "CN = a.test")
        #expect(known.output.contains("saw GET /tls"))
        let unknown = sClient(port: p.port, serverName: "unknown.test")
        #expect(!unknown.completed)
        #expect(!unknown.output.contains("saw GET"))
        #expect(!sClient(port: p.port).completed)
    }

    @Test func alpnSelectsHTTP11() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let p = try proxy(origin, configure: { $0.alpn = ["http/1.1"] })
        defer { p.stop() }
        #expect(sClient(port: p.port, extra: ["-alpn", "h2,http/1.1"]).alpn == "http/1.1")
        let h2Only = sClient(port: p.port, extra: ["-alpn", "h2"])
        #expect(h2Only.alpn == nil)
        #expect(h2Only.output.contains("No ALPN negotiated"))
    }

    @Test func clientCertificateRequired() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let p = try proxy(origin, configure: {
            $0.verify = .required
            $0.caFile = self.pki.bytes("ca.pem")
            $0.caFilePath = self.pki.path("ca.pem")
        })
        defer { p.stop() }
        #expect(!sClient(port: p.port).output.contains("saw GET"))
        let trusted = sClient(port: p.port, extra: ["-cert", pki.path("client.crt"), "-key", pki.path("client.key")])
        #expect(trusted.output.contains("saw GET /tls"))
        let stranger = sClient(port: p.port, extra: ["-cert", pki.path("stranger.crt"), "-key", pki.path("stranger.key")])
        #expect(!stranger.output.contains("saw GET"))
    }

    @Test func clientCertificateOptional() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let p = try proxy(origin, configure: {
            $0.verify = .optional
            $0.caFile = self.pki.bytes("ca.pem")
        })
        defer { p.stop() }
        #expect(sClient(port: p.port).output.contains("saw GET /tls"))
        #expect(sClient(port: p.port, extra: ["-cert", pki.path("client.crt"), "-key", pki.path("client.key")]).output.contains("saw GET /tls"))
        #expect(!sClient(port: p.port, extra: ["-cert", pki.path("stranger.crt"), "-key", pki.path("stranger.key")]).output.contains("saw GET"))
    }

    @Test func keepAliveRequestsAndALargeBodyOverTLS() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let p = try proxy(origin)
        defer { p.stop() }
        let client = try #require(TLSTestClient(port: p.port, serverName: "a.test"))
        for i in 0..<5 {
            #expect(client.get("/k\(i)") == "saw GET /k\(i) HTTP/1.1 body 0\n")
        }
        let body = String(repeating: "b", count: 200_000)
        client.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        #expect(client.response()?.body == "saw POST /big HTTP/1.1 body 200000\n")
        // Pipelined requests in one TLS record.
        client.send((0..<4).map { "GET /p\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
        for i in 0..<4 { #expect(client.response()?.body == "saw GET /p\(i) HTTP/1.1 body 0\n") }
        #expect(origin.connections == 1)
    }

    @Test func aBrokenKeyFailsTheGenerationWithFileAndLine() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let p = try proxy(origin)
        defer { p.stop() }
        var broken = pki.certificate("a", line: 7)
        broken.pem = pki.bytes("a.crt") + pki.bytes("default.key")
        var garbage = pki.certificate("wild", line: 8)
        garbage.pem = Array("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".utf8)
        for (file, expected) in [(broken, "inconsistencies between private key and certificate"), (garbage, "unable to load SSL certificate")] {
            do {
                _ = try p.makeGeneration(origin: origin.port, port: p.port) { proxy in
                    var tls = self.pki.bindTLS(["default"])
                    tls.certificates.append(file)
                    proxy.binds[0].tls = tls
                }
                Issue.record("the generation was built")
            } catch let errors as ConfigErrors {
                let text = errors.description
                #expect(text.hasPrefix("test.cfg:\(file.location.line): bind 127.0.0.1:\(p.port): '\(file.path)': "), "\(text)")
                #expect(text.contains(expected), "\(text)")
            }
        }
        // Nothing changed: the running generation still serves its certificate.
        #expect(sClient(port: p.port, serverName: "a.test").subject == "CN = a.test")
    }

    @Test func aReloadServesTheNewCertificateWhileAnOpenConnectionKeepsWorking() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let p = try proxy(origin, certificates: ["default"])
        defer { p.stop() }
        let open = try #require(TLSTestClient(port: p.port, serverName: "default.test"))
        #expect(open.peerSubject == "/CN=default.test")
        #expect(open.get("/before") == "saw GET /before HTTP/1.1 body 0\n")
        try p.reload(origin: origin.port) { $0.binds[0].tls = self.pki.bindTLS(["next"]) }
        #expect(sClient(port: p.port, serverName: "default.test").subject == "CN = next.test")
        #expect(open.get("/after") == "saw GET /after HTTP/1.1 body 0\n")
        #expect(open.peerSubject == "/CN=default.test")
    }

    @Test(arguments: [TLS1_3_VERSION, TLS1_2_VERSION])
    func aSessionResumesAfterAReload(version: Int32) throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let p = try proxy(origin, certificates: ["default"])
        defer { p.stop() }
        let first = try #require(TLSTestClient(port: p.port, serverName: "default.test", maxVersion: version))
        #expect(first.get("/one") != nil)
        let session = try #require(first.session())
        defer { SSL_SESSION_free(session) }
        try p.reload(origin: origin.port) { $0.binds[0].tls = self.pki.bindTLS(["next"]) }
        let second = try #require(TLSTestClient(port: p.port, serverName: "default.test", session: session, maxVersion: version))
        #expect(second.reused)
        #expect(second.get("/two") != nil)
    }

    @Test func aSessionIDResumesAfterAReloadWithoutTickets() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let p = try proxy(origin, certificates: ["default"], configure: { $0.noTickets = true })
        defer { p.stop() }
        let first = try #require(TLSTestClient(port: p.port, serverName: "default.test", maxVersion: TLS1_2_VERSION))
        #expect(first.get("/one") != nil)
        let session = try #require(first.session())
        defer { SSL_SESSION_free(session) }
        try p.reload(origin: origin.port) { $0.binds[0].tls = self.pki.bindTLS(["default"]) { $0.noTickets = true } }
        let second = try #require(TLSTestClient(port: p.port, serverName: "default.test", session: session, maxVersion: TLS1_2_VERSION))
        #expect(second.reused)
    }

    @Test func sClientSessionFileResumesAfterAReload() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let p = try proxy(origin, certificates: ["default"])
        defer { p.stop() }
        let file = pki.path("session-\(UInt32.random(in: 0...UInt32.max)).pem")
        #expect(sClient(port: p.port, serverName: "default.test", extra: ["-sess_out", file]).output.contains("saw GET"))
        try p.reload(origin: origin.port) { $0.binds[0].tls = self.pki.bindTLS(["default"]) }
        let again = sClient(port: p.port, serverName: "default.test", extra: ["-sess_in", file])
        #expect(again.reused, "\(again.output)")
        #expect(again.output.contains("saw GET"))
    }

    @Test func redirectSchemeHTTPSUnlessTLSAndForwardedProto() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let notTLS = term(criterion(.sslFrontend, .boolean, .none), negated: true)
        let isTLS = term(criterion(.sslFrontend, .boolean, .none))
        let rules: (inout Proxy) -> Void = {
            $0.http.redirectRules = [RedirectRule(location: SourceLocation(file: "test.cfg", line: 3),
                                                  redirect: Redirect(kind: .scheme(text("https"))), condition: condition([notTLS]))]
            $0.http.requestRules = [requestRule(.setHeader(name: "X-Forwarded-Proto", value: text("https")), condition([isTLS]))]
        }
        let tls = pki.bindTLS(["default"])
        let secure = try HTTPTestProxy(origin: origin.port) {
            rules(&$0)
            $0.binds[0].tls = tls
        }
        defer { secure.stop() }
        let plain = try HTTPTestProxy(origin: origin.port, configure: rules)
        defer { plain.stop() }

        let fd = try #require(TestSocket.connect(plain.port))
        defer { close(fd) }
        TestSocket.sendAll(fd, "GET /page?x=1 HTTP/1.1\r\nHost: shop.test\r\n\r\n")
        let reader = HTTPTestReader(fd: fd)
        let redirect = try #require(reader.readResponse())
        #expect(redirect.head.hasPrefix("HTTP/1.1 302 "))
        #expect(redirect.head.contains("location: https://shop.test/page?x=1\r\n"))
        #expect(origin.receivedHeads.isEmpty)

        let answer = sClient(port: secure.port)
        #expect(answer.output.contains("saw GET /tls"))
        #expect(origin.receivedHeads.last?.contains("X-Forwarded-Proto: https\r\n") == true)
    }

    /// A proxy terminating TLS with the `origin` certificate (names origin.test, localhost) in
    /// front of a plain origin: the TLS server the origination tests talk to.
    func tlsOrigin(_ origin: TinyOrigin) throws -> HTTPTestProxy {
        let tls = pki.bindTLS(["origin"])
        return try HTTPTestProxy(origin: origin.port) { $0.binds[0].tls = tls }
    }

    func serverTLS(verify: TLSVerify = .required, ca: String = "ca.pem", sni: String? = "origin.test") -> ServerTLS {
        var tls = ServerTLS()
        tls.verify = verify
        tls.caFile = pki.bytes(ca)
        tls.caFilePath = pki.path(ca)
        tls.sni = sni.map { text($0) }
        return tls
    }

    func resumed(_ p: HTTPTestProxy) -> Int {
        let engine = p.engine
        return GenerationLifetimeTests.onLoop(engine) { engine.tlsStores.values.reduce(0) { $0 + $1.resumed } }
    }

    @Test func httpToATLSServerWithVerificationAndSessionReuse() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let b = try tlsOrigin(origin)
        defer { b.stop() }
        let tls = serverTLS()
        let a = try HTTPTestProxy(origin: b.port) {
            $0.servers[0].options.tls = tls
            // A new server connection per request: the second one resumes the first's session.
            $0.http.connectionMode = .serverClose
        }
        defer { a.stop() }
        let fd = try #require(TestSocket.connect(a.port))
        defer { close(fd) }
        let reader = HTTPTestReader(fd: fd)
        for i in 0..<3 {
            TestSocket.sendAll(fd, "GET /over-tls/\(i) HTTP/1.1\r\nHost: x\r\n\r\n")
            let response = try #require(reader.readResponse())
            #expect(response.body == "saw GET /over-tls/\(i) HTTP/1.1 body 0\n")
        }
        #expect(resumed(b) >= 2)
    }

    @Test func aServerCertificateThatDoesNotVerifyGives503() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let b = try tlsOrigin(origin)
        defer { b.stop() }
        for tls in [serverTLS(ca: "otherca.pem"), serverTLS(sni: "wrong-name.test")] {
            let a = try HTTPTestProxy(origin: b.port) {
                $0.servers[0].options.tls = tls
                $0.retries = 0
            }
            defer { a.stop() }
            let fd = try #require(TestSocket.connect(a.port))
            defer { close(fd) }
            TestSocket.sendAll(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            let reader = HTTPTestReader(fd: fd)
            let response = try #require(reader.readResponse())
            #expect(response.head.hasPrefix("HTTP/1.1 503 "))
        }
        #expect(origin.receivedHeads.isEmpty)
        // verify none accepts any certificate.
        let none = serverTLS(verify: .none, ca: "otherca.pem")
        let a = try HTTPTestProxy(origin: b.port) { $0.servers[0].options.tls = none }
        defer { a.stop() }
        let fd = try #require(TestSocket.connect(a.port))
        defer { close(fd) }
        TestSocket.sendAll(fd, "GET /any HTTP/1.1\r\nHost: x\r\n\r\n")
        let reader = HTTPTestReader(fd: fd)
        #expect(try #require(reader.readResponse()).body == "saw GET /any HTTP/1.1 body 0\n")
    }

    @Test func verifyRequiredWithoutACAFileIsAConfigurationError() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        var tls = ServerTLS()
        tls.verify = .required
        #expect(throws: ConfigErrors.self) {
            _ = try HTTPTestProxy(origin: origin.port) { $0.servers[0].options.tls = tls }
        }
    }

    @Test func tcpModeTerminatesAndOriginatesTLS() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let b = try tlsOrigin(origin)
        defer { b.stop() }
        let front = pki.bindTLS(["default"])
        let back = serverTLS()
        let a = try HTTPTestProxy(origin: b.port) {
            $0.mode = .tcp
            $0.binds[0].tls = front
            $0.servers[0].options.tls = back
        }
        defer { a.stop() }
        let client = try #require(TLSTestClient(port: a.port, serverName: "default.test"))
        #expect(client.peerSubject == "/CN=default.test")
        for i in 0..<3 { #expect(client.get("/tcp\(i)") == "saw GET /tcp\(i) HTTP/1.1 body 0\n") }
        let body = String(repeating: "z", count: 300_000)
        client.send("POST /bulk HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        #expect(client.response()?.body == "saw POST /bulk HTTP/1.1 body 300000\n")
    }

    @Test func ticketKeysFromAFileAreRotatedByAppending() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        func key() -> [UInt8] { (0..<80).map { _ in UInt8.random(in: 0...255) } }
        let k1 = key(), k2 = key(), k3 = key()
        let p = try proxy(origin, certificates: ["default"], configure: { $0.ticketKeys = [k1, k2] })
        defer { p.stop() }
        // Encrypted with the key before the last (k1); a file with k3 appended still decrypts it
        // and now encrypts with k2.
        let first = try #require(TLSTestClient(port: p.port, serverName: "default.test"))
        #expect(first.get("/a") != nil)
        let session = try #require(first.session())
        defer { SSL_SESSION_free(session) }
        try p.reload(origin: origin.port) { $0.binds[0].tls = self.pki.bindTLS(["default"]) { $0.ticketKeys = [k1, k2, k3] } }
        let second = try #require(TLSTestClient(port: p.port, serverName: "default.test", session: session))
        #expect(second.reused)
        // A file without k1 any more: the session cannot resume.
        try p.reload(origin: origin.port) { $0.binds[0].tls = self.pki.bindTLS(["default"]) { $0.ticketKeys = [key(), key(), key()] } }
        let third = try #require(TLSTestClient(port: p.port, serverName: "default.test", session: session))
        #expect(!third.reused)
    }

    @Test func showSSLCertListsTheCertificatesAndTheirGenerations() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let p = try proxy(origin, certificates: ["default", "a"])
        defer { p.stop() }
        let engine = p.engine
        let show = { (name: String?) in GenerationLifetimeTests.onLoop(engine) { engine.admin(["show", "ssl", "cert"] + (name.map { [$0] } ?? [])) } }
        #expect(show(nil) == "# filename\n\(pki.path("default.pem"))\n\(pki.path("a.pem"))")
        let a = show(pki.path("a.pem"))
        #expect(a.contains("Filename: \(pki.path("a.pem"))\n"))
        #expect(a.contains("Subject Alternative Name: DNS:a.test, DNS:alt-a.test\n"))
        #expect(a.contains("Subject: /CN=a.test\n"))
        #expect(a.contains("Issuer: /CN=strata test CA\n"))
        #expect(a.contains("notAfter: "))
        #expect(a.hasSuffix("Generations: 1"))
        // A request in flight holds generation 1 while 2 is current.
        let held = try #require(TLSTestClient(port: p.port, serverName: "a.test"))
        held.send("POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
        usleep(100_000)
        try p.reload(origin: origin.port) { $0.binds[0].tls = self.pki.bindTLS(["default"]) }
        #expect(show(pki.path("default.pem")).hasSuffix("Generations: 1 2"))
        #expect(show(pki.path("a.pem")).hasSuffix("Generations: 1"))
        held.send("cde")
        #expect(held.response()?.body == "saw POST /slow HTTP/1.1 body 5\n")
        // Generation 1 retires once its loop has ended the session and let it go, which may be a
        // moment after the client read the answer.
        #expect(eventually(seconds: 5) { show(pki.path("a.pem")) == "Can't display the certificate: Not found or the certificate is a bundle!" },
                "\(show(pki.path("a.pem")))")
    }

    /// A server-side `TLSConnection` whose handshake with an OpenSSL client completed over a
    /// socketpair (the client sends `serverName` and presents `clientCertificate`).
    func handshaken(_ context: TLSServerContext, serverName: String, clientCertificate: String? = nil) throws -> (TLSConnection, Int32) {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        _ = CLibEV_fcntl_setfl_nonblock(fds[0])
        let server = try #require(TLSConnection(accepted: fds[0], context: context))
        let clientFD = fds[1]
        let pki = self.pki
        let client = Thread {
            let ctx = SSL_CTX_new(TLS_client_method())
            if let clientCertificate {
                _ = SSL_CTX_use_certificate_chain_file(ctx, pki.path("\(clientCertificate).crt"))
                _ = SSL_CTX_use_PrivateKey_file(ctx, pki.path("\(clientCertificate).key"), SSL_FILETYPE_PEM)
            }
            let ssl = SSL_new(ctx)
            _ = SSL_set_fd(ssl, clientFD)
            _ = CLibEV_SSL_set_tlsext_host_name(ssl, serverName)
            _ = SSL_connect(ssl)
            var byte: UInt8 = 0
            _ = SSL_read(ssl, &byte, 1)  // until the server closes
            SSL_free(ssl)
            SSL_CTX_free(ctx)
        }
        client.start()
        let deadline = Date().addingTimeInterval(5)
        while server.handshake() == .inProgress && Date() < deadline { usleep(1000) }
        #expect(server.isEstablished)
        return (server, fds[0])
    }

    @Test func logFormatsAndSamplesReadTheClientTLS() throws {
        let here = SourceLocation(file: "test", line: 1)
        var bind = Bind(location: here, endpoint: SocketEndpoint(address: .v4(0x7f00_0001), port: 1))
        bind.tls = pki.bindTLS(["default", "a"]) {
            $0.verify = .optional
            $0.caFile = self.pki.bytes("ca.pem")
        }
        var proxy = Proxy(name: "web", kind: .listen, location: here, id: 1)
        proxy.mode = .http
        proxy.binds = [bind]
        let g = try testGeneration(ConfigGeneration(id: 3, hash: "h", config: Config(proxies: [proxy]), files: []))
        let context = try #require(g.tlsContexts.values.first)
        let (tls, fd) = try handshaken(context, serverName: "a.test", clientCertificate: "client")
        defer { close(fd) }
        var r = LogRecord(mode: .http, frontend: g.frontends["web"]!, generation: 3, acceptDate: 0)
        r.isTLS = true
        r.tls = tls
        let spec = try LogFormatSpec(parsing: "%ft %sslv %sslc %[ssl_fc] %[ssl_fc_sni] %[ssl_c_used] %[ssl_c_verify] %{+Q}[ssl_c_s_dn]") { text throws(ConfigError) in
            let fetch = TLSSampleFetch(rawValue: text).map { SampleFetch.tls($0) } ?? (text == "ssl_fc" ? .sslFrontend : .method)
            return SampleExpression(fetch: fetch)
        }
        #expect(LogFormatter(spec).format(r) == "web~ TLSv1.3 TLS_AES_256_GCM_SHA384 1 a.test 1 0 \"/CN=client one/O=strata\"")
        // On a plain connection: no protocol, booleans false.
        r.isTLS = false
        r.tls = nil
        #expect(LogFormatter(spec).format(r) == "web - - 0 - 0 - \"\"")
        withExtendedLifetime(tls) {}
    }

    @Test func serverNameFromTheRequestsHostIsSentAndVerified() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let b = try tlsOrigin(origin)
        defer { b.stop() }
        var tls = serverTLS(sni: nil)
        tls.sni = FormatString(parts: [.sample(SampleExpression(fetch: .header("host", occurrence: -1)))], source: "req.hdr(host)")
        let a = try HTTPTestProxy(origin: b.port) {
            $0.servers[0].options.tls = tls
            $0.retries = 0
        }
        defer { a.stop() }
        let fd = try #require(TestSocket.connect(a.port))
        defer { close(fd) }
        let reader = HTTPTestReader(fd: fd)
        TestSocket.sendAll(fd, "GET /named HTTP/1.1\r\nHost: origin.test\r\n\r\n")
        #expect(try #require(reader.readResponse()).body == "saw GET /named HTTP/1.1 body 0\n")
        // A name the server's certificate does not have fails verification.
        TestSocket.sendAll(fd, "GET /other HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n")
        #expect(try #require(reader.readResponse()).head.hasPrefix("HTTP/1.1 503 "))
        #expect(origin.receivedHeads.count == 1)
    }

    @Test func healthChecksOfATLSServerUseTLS() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let b = try tlsOrigin(origin)
        defer { b.stop() }
        let tls = serverTLS()
        // An HTTP check over TLS: passes (L7OK) where the same bytes in clear would not.
        let http = try HealthTestProxy(mode: .http, servers: [HealthTestProxy.server("s1", b.port) {
            HealthTestProxy.checked(&$0)
            $0.tls = tls
        }], configure: HealthCheckEngineTests.httpCheck([]))
        defer { http.stop() }
        #expect(http.wait { $0.health("s1").lastCheck.status == .layer7OK }, "\(http.health("s1").lastCheck)")
        #expect(origin.receivedHeads.contains { $0.hasPrefix("GET /health HTTP/1.1\r\n") })
        // A connect check completes the handshake: L6OK; a certificate that does not verify: L6RSP.
        let connect = try HealthTestProxy(mode: .http, servers: [HealthTestProxy.server("s1", b.port) {
            HealthTestProxy.checked(&$0)
            $0.tls = tls
        }])
        defer { connect.stop() }
        #expect(connect.wait { $0.health("s1").lastCheck.status == .layer6OK })
        let untrusted = serverTLS(ca: "otherca.pem")
        let refused = try HealthTestProxy(mode: .http, servers: [HealthTestProxy.server("s1", b.port) {
            HealthTestProxy.checked(&$0)
            $0.tls = untrusted
        }])
        defer { refused.stop() }
        #expect(refused.wait { $0.health("s1").lastCheck.status == .layer6Response })
        #expect(refused.health("s1").operational == .stopped)
        // `check-sni`: the check's name, verified against the certificate (origin.test's), in place
        // of the traffic's `sni`.
        for (name, expected) in [("origin.test", HealthCheckStatus.layer6OK), ("elsewhere.test", .layer6Response)] {
            var named = serverTLS(sni: nil)
            named.checkSNI = name
            let p = try HealthTestProxy(mode: .http, servers: [HealthTestProxy.server("s1", b.port) {
                HealthTestProxy.checked(&$0)
                $0.tls = named
            }])
            defer { p.stop() }
            #expect(p.wait { $0.health("s1").lastCheck.status == expected }, "\(name): \(p.health("s1").lastCheck)")
        }
    }

    @Test func aSlowHandshakeNeverBlocksTheLoopAndTimesOut() throws {
        let origin = try TinyOrigin()
        defer { origin.stop() }
        let p = try proxy(origin, certificates: ["default"], proxy: { $0.timeouts.httpRequest = 500 })
        defer { p.stop() }
        // A client that sends the first bytes of a ClientHello and stops.
        let slow = try #require(TestSocket.connect(p.port))
        defer { close(slow) }
        _ = [UInt8]([0x16, 0x03, 0x01, 0x02]).withUnsafeBytes { Glibc.send(slow, $0.baseAddress, $0.count, 0) }
        let started = Date()
        let client = try #require(TLSTestClient(port: p.port, serverName: "default.test"))
        #expect(client.get("/meanwhile") == "saw GET /meanwhile HTTP/1.1 body 0\n")
        #expect(Date().timeIntervalSince(started) < 0.4)
        // The slow one is closed once its time for a first request is up.
        var byte: UInt8 = 0
        #expect(recv(slow, &byte, 1, 0) <= 0)
        #expect(Date().timeIntervalSince(started) < 3)
    }
}
