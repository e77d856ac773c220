import CLibEV
import Foundation
import Glibc
import StrataTestSupport
import Testing

/// TLS with the real binary: certificates made by the `openssl` command, clients `openssl
/// s_client`, curl and OpenSSL itself.
@Suite(.serialized, .enabled(if: TestTools.available(TestTools.hasOpenSSL), "openssl is not installed (apt-get install openssl)"))
struct TLSProxyTests {
    let pki = TLSTestPKI.shared

    /// One process: `fe` terminates TLS on `tls` (and listens in clear on `plain`), `origin_tls`
    /// terminates TLS in front of the test origin, and `be` talks TLS to `origin_tls`.
    func config(plain: UInt16, tls: UInt16, originTLS: UInt16, origin: UInt16, bindOptions: String = "",
                certificates: String? = nil) -> String {
        """
        global
            stats socket @ADMIN@ level admin
            log stdout format raw local0
            crt-base \(pki.directory)
            ca-base \(pki.directory)
            tune.ssl.cachesize 1000
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
            log global
        frontend fe
            bind 127.0.0.1:\(plain)
            bind 127.0.0.1:\(tls) ssl \(certificates ?? "crt default.pem crt a.pem crt wild.pem") \(bindOptions)
            log-format "%ci %ft %sslv %sslc %ST %{+Q}r %[ssl_fc_sni]"
            redirect scheme https if !{ ssl_fc }
            http-request set-header X-Forwarded-Proto https if { ssl_fc }
            http-request set-header X-SNI %[ssl_fc_sni]
            http-request set-header X-TLS "%[ssl_fc_protocol] %[ssl_fc_cipher] used=%[ssl_c_used] verify=%[ssl_c_verify]"
            http-request set-header X-Client-DN %[ssl_c_s_dn] if { ssl_c_used }
            http-request set-header X-Client-Issuer %[ssl_c_i_dn] if { ssl_c_used }
            default_backend be
        backend be
            server o 127.0.0.1:\(originTLS) ssl verify required ca-file ca.pem sni str(origin.test)
        listen origin_tls
            bind 127.0.0.1:\(originTLS) ssl crt origin.pem
            server o 127.0.0.1:\(origin)
        """
    }

    struct Setup {
        let strata: StrataProcess
        let origin: TestHTTPOrigin
        let plain: UInt16
        let tls: UInt16
        let originTLS: UInt16
    }

    func start(bindOptions: String = "", certificates: String? = nil) throws -> Setup {
        let origin = try TestHTTPOrigin("main")
        let plain = TestSocket.freePort(), tls = TestSocket.freePort(), originTLS = TestSocket.freePort()
        let strata = try StrataProcess(config: config(plain: plain, tls: tls, originTLS: originTLS, origin: origin.port,
                                                      bindOptions: bindOptions, certificates: certificates))
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        return Setup(strata: strata, origin: origin, plain: plain, tls: tls, originTLS: originTLS)
    }

    @Test func sniPicksTheCertificateAndTheFirstIsTheDefault() throws {
        let s = try start()
        #expect(sClient(port: s.tls).subject == "CN = default.test")
        #expect(sClient(port: s.tls, serverName: "a.test").subject == "CN = a.test")
        #expect(sClient(port: s.tls, serverName: "alt-a.test").subject == "CN = a.test")
        #expect(sClient(port: s.tls, serverName: "shop.wild.test").subject == "CN = *.wild.test")
        #expect(sClient(port: s.tls, serverName: "unknown.test").subject == "CN = default.test")
        let answer = sClient(port: s.tls, serverName: "a.test")
        #expect(answer.output.contains("origin=main"))
        #expect(answer.output.contains("h=X-SNI: a.test"))
        #expect(answer.output.contains("h=X-Forwarded-Proto: https"))
        #expect(answer.output.contains("h=X-TLS: TLSv1.3 TLS_AES_256_GCM_SHA384 used=0 verify=0"))
        // The log line names the protocol and cipher (%sslv %sslc) and the frontend with `~`.
        #expect(s.strata.waitForOutput("fe~ TLSv1.3 TLS_AES_256_GCM_SHA384 200 \"GET /tls HTTP/1.1\" a.test"),
                "\(s.strata.output.joined(separator: "\n"))")
    }

    /// `ssl-dh-param-file` gives DHE the file's group (3072 bits here, where OpenSSL's automatic
    /// choice for a 2048-bit RSA key is 2048); a certificate's own parameters would win.
    @Test func sslDHParamFileSetsTheDHEGroup() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-dh-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for args in [["genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe3072", "-out", "\(dir)/dh.pem"],
                     ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=dh.test",
                      "-keyout", "\(dir)/rsa.key", "-out", "\(dir)/rsa.crt"]] {
            let made = runTool("openssl", args)
            try #require(made.status == 0, "\(made.stderr)")
        }
        let pem = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/rsa.crt")) + Data(contentsOf: URL(fileURLWithPath: "\(dir)/rsa.key"))
        try pem.write(to: URL(fileURLWithPath: "\(dir)/rsa.pem"))
        let dhe = ["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256"]
        let options = "ssl-max-ver TLSv1.2 ciphers DHE-RSA-AES128-GCM-SHA256"

        func serve(global: String) throws -> (StrataProcess, UInt16) {
            let origin = try TestHTTPOrigin("dh")
            let tls = TestSocket.freePort()
            var config = self.config(plain: TestSocket.freePort(), tls: tls, originTLS: TestSocket.freePort(), origin: origin.port,
                                     bindOptions: options, certificates: "crt \(dir)/rsa.pem")
            config = config.replacingOccurrences(of: "global\n", with: "global\n" + global, options: .anchored)
            let strata = try StrataProcess(config: config)
            #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
            return (strata, tls)
        }
        let (automatic, autoPort) = try serve(global: "")
        let auto = sClient(port: autoPort, extra: dhe)
        #expect(auto.output.contains("Server Temp Key: DH, 2048 bits"), "\(auto.output)")
        automatic.stop()

        let (withFile, filePort) = try serve(global: "    ssl-dh-param-file \(dir)/dh.pem\n")
        let fromFile = sClient(port: filePort, extra: dhe)
        #expect(fromFile.output.contains("Server Temp Key: DH, 3072 bits"), "\(fromFile.output)")
        #expect(fromFile.output.contains("origin=dh"))
        withFile.stop()

        // A file without DH parameters is refused at its line.
        try Data("not parameters\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/bad.pem"))
        try Data("global\n    ssl-dh-param-file \(dir)/bad.pem\nlisten l\n    bind 127.0.0.1:1\n    server s 127.0.0.1:2\n".utf8)
            .write(to: URL(fileURLWithPath: "\(dir)/bad.cfg"))
        let check = runTool(StrataProcess.binary, ["-c", "-f", "\(dir)/bad.cfg"])
        #expect(check.status != 0)
        #expect((check.stdout + check.stderr).contains("bad.cfg:2: 'ssl-dh-param-file': '\(dir)/bad.pem' has no DH parameters"),
                "\(check.stdout + check.stderr)")
    }

    @Test func strictSNIRefusesAnUnknownName() throws {
        let s = try start(bindOptions: "strict-sni")
        #expect(sClient(port: s.tls, serverName: "a.test").output.contains("origin=main"))
        let unknown = sClient(port: s.tls, serverName: "unknown.test")
        #expect(!unknown.completed)
        #expect(!unknown.output.contains("origin=main"))
        #expect(!sClient(port: s.tls).completed)
    }

    @Test(.enabled(if: TestTools.available(TestTools.hasCurl), "curl is not installed"))
    func alpnOffersHTTP11() throws {
        let s = try start(bindOptions: "alpn http/1.1")
        #expect(sClient(port: s.tls, extra: ["-alpn", "h2,http/1.1"]).output.contains("ALPN protocol: http/1.1"))
        #expect(sClient(port: s.tls, extra: ["-alpn", "h2"]).output.contains("No ALPN negotiated"))
        let curl = curlGet(s.tls, name: "default.test", path: "/alpn")
        #expect(curl.status == 0)
        #expect(curl.stdout.contains("origin=main"))
    }

    @Test func clientCertificatesRequiredOptionalAndRefused() throws {
        let required = try start(bindOptions: "verify required ca-file ca.pem")
        let withCert = ["-cert", pki.path("client.crt"), "-key", pki.path("client.key")]
        let stranger = ["-cert", pki.path("stranger.crt"), "-key", pki.path("stranger.key")]
        #expect(!sClient(port: required.tls).output.contains("origin=main"))
        let trusted = sClient(port: required.tls, extra: withCert)
        #expect(trusted.output.contains("origin=main"))
        #expect(trusted.output.contains("h=X-TLS: TLSv1.3 TLS_AES_256_GCM_SHA384 used=1 verify=0"))
        #expect(trusted.output.contains("h=X-Client-DN: /CN=client one/O=strata"))
        #expect(trusted.output.contains("h=X-Client-Issuer: /CN=strata test CA"))
        #expect(!sClient(port: required.tls, extra: stranger).output.contains("origin=main"))
        required.strata.stop()

        let optional = try start(bindOptions: "verify optional ca-file ca.pem")
        #expect(sClient(port: optional.tls).output.contains("origin=main"))
        #expect(sClient(port: optional.tls, extra: withCert).output.contains("h=X-Client-DN: /CN=client one/O=strata"))
        #expect(!sClient(port: optional.tls, extra: stranger).output.contains("origin=main"))
    }

    /// `ca-verify-file`: its CAs verify client certificates without being named to clients (the
    /// handshake's list of acceptable CAs holds only `ca-file`'s).
    @Test func caVerifyFileVerifiesWithoutNamingItsCAs() throws {
        let s = try start(bindOptions: "verify required ca-verify-file ca.pem")
        let withCert = ["-cert", pki.path("client.crt"), "-key", pki.path("client.key")]
        let trusted = sClient(port: s.tls, extra: withCert)
        #expect(trusted.output.contains("origin=main"), "\(trusted.output)")
        #expect(trusted.output.contains("h=X-Client-DN: /CN=client one/O=strata"))
        #expect(trusted.output.contains("No client certificate CA names sent"), "\(trusted.output)")
        #expect(!sClient(port: s.tls).output.contains("origin=main"))
        let stranger = ["-cert", pki.path("stranger.crt"), "-key", pki.path("stranger.key")]
        #expect(!sClient(port: s.tls, extra: stranger).output.contains("origin=main"))
        s.strata.stop()

        // With `ca-file` beside it, the list names ca-file's CA.
        let both = try start(bindOptions: "verify required ca-file ca.pem ca-verify-file ca.pem")
        let named = sClient(port: both.tls, extra: withCert)
        #expect(named.output.contains("origin=main"))
        #expect(named.output.contains("Acceptable client certificate CA names"), "\(named.output)")
    }

    @Test(.enabled(if: TestTools.available(TestTools.hasCurl), "curl is not installed"))
    func httpOverTLSToTheClientAndToAVerifiedServer() throws {
        let s = try start()
        let curl = curlGet(s.tls, name: "a.test", path: "/both-ways")
        #expect(curl.status == 0, "\(curl.stderr)")
        #expect(curl.stdout.contains("origin=main"))
        #expect(curl.stdout.contains("line=GET /both-ways HTTP/1.1"))
        // Keep-alive over TLS, and a body larger than a record.
        let client = try #require(TLSTestClient(port: s.tls, serverName: "a.test"))
        for i in 0..<3 { #expect(client.get("/k\(i)")?.contains("line=GET /k\(i) HTTP/1.1") == true) }
        let body = String(repeating: "x", count: 100_000)
        client.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        #expect(client.response()?.body.contains("body=100000") == true)
    }

    @Test func aServerThatDoesNotVerifyIsRefused() throws {
        let origin = try TestHTTPOrigin("main")
        let front = TestSocket.freePort(), back = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
                retries 0
            frontend fe
                bind 127.0.0.1:\(front)
                default_backend be
            backend be
                server o 127.0.0.1:\(back) ssl verify required ca-file \(pki.path("otherca.pem"))
            listen origin_tls
                bind 127.0.0.1:\(back) ssl crt \(pki.path("origin.pem"))
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: front))
        #expect(client.get("/")?.status == 503)
        #expect(origin.heads.isEmpty)
    }

    @Test func redirectSchemeHTTPSUnlessTLS() throws {
        let s = try start()
        let client = try #require(TestHTTPClient(port: s.plain))
        let answer = try #require(client.get("/shop?x=1", host: "shop.test"))
        #expect(answer.status == 302)
        #expect(answer.head.lowercased().contains("location: https://shop.test/shop?x=1\r\n"))
        #expect(s.origin.heads.isEmpty)
    }

    @Test func aReloadServesTheNewCertificateWhileAnOpenConnectionKeepsWorking() throws {
        let live = pki.path("live.pem")
        try pki.copy("default.pem", to: "live.pem")
        let s = try start(certificates: "crt \(live)")
        let open = try #require(TLSTestClient(port: s.tls, serverName: "default.test"))
        #expect(open.peerSubject == "/CN=default.test")
        #expect(open.get("/before")?.contains("line=GET /before") == true)
        try pki.copy("next.pem", to: "live.pem")
        #expect(try s.strata.admin("reload").hasPrefix("Success=1"))
        #expect(sClient(port: s.tls, serverName: "default.test").subject == "CN = next.test")
        #expect(open.get("/after")?.contains("line=GET /after") == true)
        #expect(open.peerSubject == "/CN=default.test")
        let shown = try s.strata.admin("show ssl cert \(live)")
        #expect(shown.contains("Subject: /CN=next.test"), "\(shown)")
    }

    @Test func aReloadWithABrokenKeyFailsWithFileAndLineAndTheOldCertificateServes() throws {
        let live = pki.path("broken.pem")
        try pki.copy("default.pem", to: "broken.pem")
        let s = try start(certificates: "crt \(live)")
        #expect(sClient(port: s.tls).subject == "CN = default.test")
        // The certificate of one key with the key of another.
        try Data(pki.bytes("next.crt") + pki.bytes("default.key")).write(to: URL(fileURLWithPath: live))
        let answer = try s.strata.admin("reload")
        #expect(answer.hasPrefix("Success=0"), "\(answer)")
        #expect(answer.contains("\(s.strata.configPath):15: "), "\(answer)")
        #expect(answer.contains("inconsistencies between private key and certificate"), "\(answer)")
        #expect(sClient(port: s.tls).subject == "CN = default.test")
        #expect(try s.strata.generations().map(\.id) == [1])
    }

    @Test func aSessionSavedBeforeAReloadResumesAfterIt() throws {
        let s = try start()
        let session = pki.path("session-\(UUID().uuidString.prefix(8)).pem")
        #expect(sClient(port: s.tls, serverName: "a.test", extra: ["-sess_out", session]).output.contains("origin=main"))
        #expect(try s.strata.admin("reload").hasPrefix("Success=1"))
        let again = sClient(port: s.tls, serverName: "a.test", extra: ["-sess_in", session])
        #expect(again.output.contains("Reused, TLSv1.3"), "\(again.output)")
        #expect(again.output.contains("origin=main"))
        // TLS 1.2, session ticket and session ID.
        let twelve = pki.path("session12-\(UUID().uuidString.prefix(8)).pem")
        #expect(sClient(port: s.tls, serverName: "a.test", extra: ["-tls1_2", "-sess_out", twelve]).output.contains("origin=main"))
        #expect(try s.strata.admin("reload").hasPrefix("Success=1"))
        #expect(sClient(port: s.tls, serverName: "a.test", extra: ["-tls1_2", "-sess_in", twelve]).output.contains("Reused, TLSv1.2"))
        // `show info` counts the TLS endpoints (four connections, none open now) and, once the
        // sampler has seen them, the full handshakes among them.
        let info = try s.strata.admin("show info")
        let cumulative = info.split(separator: "\n").first { $0.hasPrefix("CumSslConns: ") }.flatMap { Int($0.dropFirst(13)) }
        #expect((cumulative ?? 0) >= 4, "\(info)")
        #expect(eventually(seconds: 5) { ((try? s.strata.admin("show info")) ?? "").contains("\nCurrSslConns: 0\n") })
    }

    @Test func tcpModeTerminatesTLS() throws {
        let origin = try TestHTTPOrigin("main")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode tcp
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            listen tcp_tls
                bind 127.0.0.1:\(port) ssl crt \(pki.path("default.pem"))
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin())
        let client = try #require(TLSTestClient(port: port, serverName: "default.test"))
        #expect(client.get("/over-tcp")?.contains("line=GET /over-tcp HTTP/1.1") == true)
        #expect(client.get("/again")?.contains("line=GET /again HTTP/1.1") == true)
    }
}

// MARK: helpers

/// `curl https://NAME:PORT/PATH` resolved to 127.0.0.1 and verified with the test CA.
func curlGet(_ port: UInt16, name: String, path: String) -> (status: Int32, stdout: String, stderr: String) {
    runTool("curl", ["-sS", "--max-time", "10", "--cacert", TLSTestPKI.shared.path("ca.pem"),
                     "--resolve", "\(name):\(port):127.0.0.1", "https://\(name):\(port)\(path)"])
}
