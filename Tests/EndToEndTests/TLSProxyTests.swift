import CLibEV
import Foundation
import Glibc
import Testing

/// TLS with the real binary: certificates made by the `openssl` command, clients `openssl
/// s_client`, curl and OpenSSL itself.
@Suite(.serialized, .enabled(if: ObservabilityTools.available(TLSTools.hasOpenSSL), "openssl is not installed (apt-get install openssl)"))
struct TLSProxyTests {
    let pki = TLSCertificates.shared

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
        #expect(sClient(s.tls).subject == "CN = default.test")
        #expect(sClient(s.tls, name: "a.test").subject == "CN = a.test")
        #expect(sClient(s.tls, name: "alt-a.test").subject == "CN = a.test")
        #expect(sClient(s.tls, name: "shop.wild.test").subject == "CN = *.wild.test")
        #expect(sClient(s.tls, name: "unknown.test").subject == "CN = default.test")
        let answer = sClient(s.tls, name: "a.test")
        #expect(answer.output.contains("origin=main"))
        #expect(answer.output.contains("h=X-SNI: a.test"))
        #expect(answer.output.contains("h=X-Forwarded-Proto: https"))
        #expect(answer.output.contains("h=X-TLS: TLSv1.3 TLS_AES_256_GCM_SHA384 used=0 verify=0"))
        // The log line names the protocol and cipher (%sslv %sslc) and the frontend with `~`.
        #expect(s.strata.waitForOutput("fe~ TLSv1.3 TLS_AES_256_GCM_SHA384 200 \"GET /tls HTTP/1.1\" a.test"),
                "\(s.strata.output.joined(separator: "\n"))")
    }

    @Test func strictSNIRefusesAnUnknownName() throws {
        let s = try start(bindOptions: "strict-sni")
        #expect(sClient(s.tls, name: "a.test").output.contains("origin=main"))
        let unknown = sClient(s.tls, name: "unknown.test")
        #expect(!unknown.handshakeCompleted)
        #expect(!unknown.output.contains("origin=main"))
        #expect(!sClient(s.tls).handshakeCompleted)
    }

    @Test(.enabled(if: ObservabilityTools.available(TLSTools.hasCurl), "curl is not installed"))
    func alpnOffersHTTP11() throws {
        let s = try start(bindOptions: "alpn http/1.1")
        #expect(sClient(s.tls, extra: ["-alpn", "h2,http/1.1"]).output.contains("ALPN protocol: http/1.1"))
        #expect(sClient(s.tls, extra: ["-alpn", "h2"]).output.contains("No ALPN negotiated"))
        let curl = curlGet(s.tls, name: "default.test", path: "/alpn")
        #expect(curl.status == 0)
        #expect(curl.stdout.contains("origin=main"))
    }

    @Test func clientCertificatesRequiredOptionalAndRefused() throws {
        let required = try start(bindOptions: "verify required ca-file ca.pem")
        let withCert = ["-cert", pki.path("client.crt"), "-key", pki.path("client.key")]
        let stranger = ["-cert", pki.path("stranger.crt"), "-key", pki.path("stranger.key")]
        #expect(!sClient(required.tls).output.contains("origin=main"))
        let trusted = sClient(required.tls, extra: withCert)
        #expect(trusted.output.contains("origin=main"))
        #expect(trusted.output.contains("h=X-TLS: TLSv1.3 TLS_AES_256_GCM_SHA384 used=1 verify=0"))
        #expect(trusted.output.contains("h=X-Client-DN: /CN=client one/O=strata"))
        #expect(trusted.output.contains("h=X-Client-Issuer: /CN=strata test CA"))
        #expect(!sClient(required.tls, extra: stranger).output.contains("origin=main"))
        required.strata.stop()

        let optional = try start(bindOptions: "verify optional ca-file ca.pem")
        #expect(sClient(optional.tls).output.contains("origin=main"))
        #expect(sClient(optional.tls, extra: withCert).output.contains("h=X-Client-DN: /CN=client one/O=strata"))
        #expect(!sClient(optional.tls, extra: stranger).output.contains("origin=main"))
    }

    @Test(.enabled(if: ObservabilityTools.available(TLSTools.hasCurl), "curl is not installed"))
    func httpOverTLSToTheClientAndToAVerifiedServer() throws {
        let s = try start()
        let curl = curlGet(s.tls, name: "a.test", path: "/both-ways")
        #expect(curl.status == 0, "\(curl.stderr)")
        #expect(curl.stdout.contains("origin=main"))
        #expect(curl.stdout.contains("line=GET /both-ways HTTP/1.1"))
        // Keep-alive over TLS, and a body larger than a record.
        let client = try #require(TLSClient(port: s.tls, name: "a.test"))
        for i in 0..<3 { #expect(client.get("/k\(i)")?.contains("line=GET /k\(i) HTTP/1.1") == true) }
        let body = String(repeating: "x", count: 100_000)
        client.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        #expect(client.response()?.contains("body=100000") == true)
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
        let open = try #require(TLSClient(port: s.tls, name: "default.test"))
        #expect(open.peerSubject == "/CN=default.test")
        #expect(open.get("/before")?.contains("line=GET /before") == true)
        try pki.copy("next.pem", to: "live.pem")
        #expect(try s.strata.admin("reload").hasPrefix("Success=1"))
        #expect(sClient(s.tls, name: "default.test").subject == "CN = next.test")
        #expect(open.get("/after")?.contains("line=GET /after") == true)
        #expect(open.peerSubject == "/CN=default.test")
        let shown = try s.strata.admin("show ssl cert \(live)")
        #expect(shown.contains("Subject: /CN=next.test"), "\(shown)")
    }

    @Test func aReloadWithABrokenKeyFailsWithFileAndLineAndTheOldCertificateServes() throws {
        let live = pki.path("broken.pem")
        try pki.copy("default.pem", to: "broken.pem")
        let s = try start(certificates: "crt \(live)")
        #expect(sClient(s.tls).subject == "CN = default.test")
        // The certificate of one key with the key of another.
        try Data(pki.bytes("next.crt") + pki.bytes("default.key")).write(to: URL(fileURLWithPath: live))
        let answer = try s.strata.admin("reload")
        #expect(answer.hasPrefix("Success=0"), "\(answer)")
        #expect(answer.contains("\(s.strata.configPath):15: "), "\(answer)")
        #expect(answer.contains("inconsistencies between private key and certificate"), "\(answer)")
        #expect(sClient(s.tls).subject == "CN = default.test")
        #expect(try s.strata.generations().map(\.id) == [1])
    }

    @Test func aSessionSavedBeforeAReloadResumesAfterIt() throws {
        let s = try start()
        let session = pki.path("session-\(UUID().uuidString.prefix(8)).pem")
        #expect(sClient(s.tls, name: "a.test", extra: ["-sess_out", session]).output.contains("origin=main"))
        #expect(try s.strata.admin("reload").hasPrefix("Success=1"))
        let again = sClient(s.tls, name: "a.test", extra: ["-sess_in", session])
        #expect(again.output.contains("Reused, TLSv1.3"), "\(again.output)")
        #expect(again.output.contains("origin=main"))
        // TLS 1.2, session ticket and session ID.
        let twelve = pki.path("session12-\(UUID().uuidString.prefix(8)).pem")
        #expect(sClient(s.tls, name: "a.test", extra: ["-tls1_2", "-sess_out", twelve]).output.contains("origin=main"))
        #expect(try s.strata.admin("reload").hasPrefix("Success=1"))
        #expect(sClient(s.tls, name: "a.test", extra: ["-tls1_2", "-sess_in", twelve]).output.contains("Reused, TLSv1.2"))
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
        let client = try #require(TLSClient(port: port, name: "default.test"))
        #expect(client.get("/over-tcp")?.contains("line=GET /over-tcp HTTP/1.1") == true)
        #expect(client.get("/again")?.contains("line=GET /again HTTP/1.1") == true)
    }
}

// MARK: helpers

/// The command-line tools the TLS tests run (CI installs them: see .ci/run and ObservabilityTools).
enum TLSTools {
    static let hasOpenSSL = FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")
    static let hasCurl = FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")
}

/// Certificates made once per test run with the `openssl` command: a CA, server certificates
/// (one with a wildcard), a client certificate signed by the CA and one that is not.
final class TLSCertificates: @unchecked Sendable {
    let directory: String
    static let shared = TLSCertificates()

    private init() {
        signal(SIGPIPE, SIG_IGN)
        directory = NSTemporaryDirectory() + "strata-e2e-tls-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        ca("ca", "/CN=strata test CA")
        ca("otherca", "/CN=other CA")
        leaf("default", "/CN=default.test", ["default.test"])
        leaf("a", "/CN=a.test", ["a.test", "alt-a.test"])
        leaf("wild", "/CN=*.wild.test", ["*.wild.test"])
        leaf("next", "/CN=next.test", ["default.test", "next.test"])
        leaf("origin", "/CN=origin.test", ["origin.test"])
        leaf("client", "/CN=client one/O=strata", [], client: true)
        leaf("stranger", "/CN=stranger", [], client: true, ca: "otherca")
    }

    func path(_ name: String) -> String { "\(directory)/\(name)" }
    func bytes(_ name: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path(name)) ?? Data()) }

    func copy(_ name: String, to target: String) throws {
        try Data(bytes(name)).write(to: URL(fileURLWithPath: path(target)))
    }

    private func openssl(_ args: [String]) {
        let r = runTool("/usr/bin/openssl", args)
        // Recorded in the test that first needs the certificates (in CI, where openssl must be).
        if r.status != 0 { Issue.record("openssl \(args.joined(separator: " ")): \(r.stderr)") }
    }

    private func ca(_ name: String, _ subject: String) {
        openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", subject,
                 "-keyout", path("\(name).key"), "-out", path("\(name).pem"),
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    }

    private func leaf(_ name: String, _ subject: String, _ names: [String], client: Bool = false, ca: String = "ca") {
        openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", subject,
                 "-keyout", path("\(name).key"), "-out", path("\(name).csr")])
        var ext = client ? "extendedKeyUsage=clientAuth\n" : "extendedKeyUsage=serverAuth\n"
        if !names.isEmpty { ext += "subjectAltName=" + names.map { "DNS:\($0)" }.joined(separator: ",") + "\n" }
        FileManager.default.createFile(atPath: path("\(name).ext"), contents: Data(ext.utf8))
        openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(ca).pem"), "-CAkey", path("\(ca).key"),
                 "-CAcreateserial", "-days", "30", "-extfile", path("\(name).ext"), "-out", path("\(name).crt")])
        FileManager.default.createFile(atPath: path("\(name).pem"), contents: Data(bytes("\(name).crt") + bytes("\(name).key")))
    }
}

/// What `openssl s_client` printed.
struct SClientResult {
    var output: String
    var subject: String? {
        output.split(separator: "\n").first { $0.hasPrefix("subject=") }.map { String($0.dropFirst("subject=".count)) }
    }
    var handshakeCompleted: Bool { output.contains("Cipher is ") && !output.contains("Cipher is (NONE)") }
}

/// `openssl s_client` to 127.0.0.1:`port` sending one request with `Connection: close` (so it ends
/// when the answer does, after the session tickets `-sess_out` needs).
func sClient(_ port: UInt16, name: String? = nil, extra: [String] = [],
             request: String = "GET /tls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") -> SClientResult {
    var args = ["s_client", "-connect", "127.0.0.1:\(port)", "-ign_eof"]
    args += name.map { ["-servername", $0] } ?? ["-noservername"]
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    p.arguments = args + extra
    let input = Pipe(), output = Pipe()
    p.standardInput = input
    p.standardOutput = output
    p.standardError = output
    do { try p.run() } catch { return SClientResult(output: "\(error)") }
    input.fileHandleForWriting.write(Data(request.utf8))
    try? input.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return SClientResult(output: String(decoding: data, as: UTF8.self))
}

/// `curl https://NAME:PORT/PATH` resolved to 127.0.0.1 and verified with the test CA.
func curlGet(_ port: UInt16, name: String, path: String) -> (status: Int32, stdout: String, stderr: String) {
    runTool("/usr/bin/curl", ["-sS", "--max-time", "10", "--cacert", TLSCertificates.shared.path("ca.pem"),
                              "--resolve", "\(name):\(port):127.0.0.1", "https://\(name):\(port)\(path)"])
}

/// A blocking TLS client connection (OpenSSL) that stays open across reloads.
final class TLSClient {
    private let fd: Int32
    private let ctx: OpaquePointer
    private let ssl: OpaquePointer
    private var pending: [UInt8] = []

    init?(port: UInt16, name: String) {
        guard let fd = TestSocket.connect(port) else { return nil }
        self.fd = fd
        ctx = SSL_CTX_new(TLS_client_method())
        ssl = SSL_new(ctx)
        _ = SSL_set_fd(ssl, fd)
        _ = CLibEV_SSL_set_tlsext_host_name(ssl, name)
        guard SSL_connect(ssl) == 1 else {
            ERR_clear_error()
            SSL_free(ssl)
            SSL_CTX_free(ctx)
            Glibc.close(fd)
            return nil
        }
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(ctx)
        Glibc.close(fd)
    }

    var peerSubject: String {
        guard let cert = SSL_get0_peer_certificate(ssl) else { return "" }
        var buffer = [CChar](repeating: 0, count: 256)
        return buffer.withUnsafeMutableBufferPointer { b in
            _ = X509_NAME_oneline(X509_get_subject_name(cert), b.baseAddress, Int32(b.count))
            return String(cString: b.baseAddress!)
        }
    }

    func send(_ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
    }

    /// One response's body (Content-Length framing); nil when the connection ends first.
    func response() -> String? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        func fill() -> Bool {
            let n = SSL_read(ssl, &chunk, Int32(chunk.count))
            if n <= 0 { ERR_clear_error(); return false }
            pending += chunk[0..<Int(n)]
            return true
        }
        func headEnd() -> Int? {
            guard pending.count >= 4 else { return nil }
            for i in 0...(pending.count - 4) where pending[i] == 13 && pending[i + 1] == 10 && pending[i + 2] == 13 && pending[i + 3] == 10 { return i + 4 }
            return nil
        }
        while headEnd() == nil { if !fill() { return nil } }
        let end = headEnd()!
        let head = String(decoding: pending[0..<end], as: UTF8.self)
        pending.removeFirst(end)
        var length = 0
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
        }
        while pending.count < length { if !fill() { return nil } }
        let body = String(decoding: pending[0..<length], as: UTF8.self)
        pending.removeFirst(length)
        return body
    }

    func get(_ path: String) -> String? {
        send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
        return response()
    }
}
