import CLibEV
import ConfigModel
import Foundation
import Glibc
import Testing

@testable import Engine

/// Runs a command; returns its exit status and what it printed.
@discardableResult
func runTool(_ arguments: [String], input: String? = nil, timeout: Double = 20) -> (status: Int32, out: String, err: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let out = Pipe(), err = Pipe(), inp = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = inp
    do { try process.run() } catch { return (-1, "", "\(error)") }
    if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
    try? inp.fileHandleForWriting.close()
    // Read both pipes while the process runs (a full pipe would block it).
    let group = DispatchGroup()
    nonisolated(unsafe) var outData = Data(), errData = Data()
    group.enter()
    DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    group.wait()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// The TLS tests make their certificates and run their clients with the `openssl` command. CI
/// installs it (.ci/run): there, with `CI` set, its absence fails them; elsewhere they are
/// skipped with a message instead of stopping the whole run.
enum TLSTools {
    static let hasOpenSSL = runTool(["openssl", "version"]).status == 0
    static var available: Bool { hasOpenSSL || StatsTestSupport.inCI }
}

/// Certificates made with the `openssl` command for the TLS tests: a CA, server certificates for
/// several names (one with a wildcard), a client certificate signed by the CA and one that is not.
/// EC P-256 keys: quick to make and to use.
final class TLSTestPKI: @unchecked Sendable {
    let directory: String

    static let shared = TLSTestPKI()

    private init() {
        // The test clients write with write(): a server that closed must not kill the run.
        signal(SIGPIPE, SIG_IGN)
        directory = NSTemporaryDirectory() + "strata-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        makeCA("ca", subject: "/CN=strata test CA")
        makeCA("otherca", subject: "/CN=other CA")
        makeLeaf("default", subject: "/CN=default.test", names: ["default.test"])
        makeLeaf("a", subject: "/CN=a.test", names: ["a.test", "alt-a.test"])
        makeLeaf("wild", subject: "/CN=*.wild.test", names: ["*.wild.test"])
        makeLeaf("next", subject: "/CN=next.test", names: ["default.test", "next.test"])
        makeLeaf("origin", subject: "/CN=origin.test", names: ["origin.test", "localhost"])
        makeLeaf("client", subject: "/CN=client one/O=strata", names: [], client: true)
        makeLeaf("stranger", subject: "/CN=stranger", names: [], client: true, ca: "otherca")
    }

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    func bytes(_ name: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path(name)) ?? Data()) }

    private func openssl(_ args: [String]) {
        let r = runTool(["openssl"] + args)
        // Recorded in the test that first needs the certificates; the next ones fail on their own.
        if r.status != 0 { Issue.record("openssl \(args.joined(separator: " ")): \(r.err)") }
    }

    private func makeCA(_ name: String, subject: String) {
        openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
                 "-subj", subject, "-keyout", path("\(name).key"), "-out", path("\(name).pem"),
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    }

    private func makeLeaf(_ name: String, subject: String, names: [String], client: Bool = false, ca: String = "ca") {
        openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", subject,
                 "-keyout", path("\(name).key"), "-out", path("\(name).csr")])
        var ext = client ? "extendedKeyUsage=clientAuth\n" : "extendedKeyUsage=serverAuth\n"
        if !names.isEmpty { ext += "subjectAltName=" + names.map { "DNS:\($0)" }.joined(separator: ",") + "\n" }
        FileManager.default.createFile(atPath: path("\(name).ext"), contents: Data(ext.utf8))
        openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(ca).pem"), "-CAkey", path("\(ca).key"),
                 "-CAcreateserial", "-days", "30", "-extfile", path("\(name).ext"), "-out", path("\(name).crt")])
        // HAProxy's layout: certificate, then its key, in one PEM.
        let pem = bytes("\(name).crt") + bytes("\(name).key")
        FileManager.default.createFile(atPath: path("\(name).pem"), contents: Data(pem))
    }

    /// A `CertificateFile` as the Loader gives it (the whole PEM read).
    func certificate(_ name: String, line: Int = 1) -> CertificateFile {
        CertificateFile(path: path("\(name).pem"), location: SourceLocation(file: "test.cfg", line: line), pem: bytes("\(name).pem"), keyPEM: nil)
    }

    /// `bind … ssl crt …` settings with these certificates, the first the default.
    func bindTLS(_ names: [String], configure: (inout BindTLS) -> Void = { _ in }) -> BindTLS {
        var tls = BindTLS()
        tls.certificates = names.map { certificate($0) }
        configure(&tls)
        return tls
    }
}

/// What `openssl s_client` saw: the server certificate's subject, the protocol, ALPN, reuse.
struct HandshakeReport {
    var status: Int32
    var output: String

    var subject: String? {
        output.split(separator: "\n").first { $0.hasPrefix("subject=") }.map { String($0.dropFirst("subject=".count)) }
    }
    var reused: Bool { output.contains("Reused, ") }
    var alpn: String? {
        output.split(separator: "\n").first { $0.hasPrefix("ALPN protocol: ") }.map { String($0.dropFirst("ALPN protocol: ".count)) }
    }
    var completed: Bool { output.contains("Cipher is ") && !output.contains("Cipher is (NONE)") }
}

/// `openssl s_client` against 127.0.0.1:`port`, sending `request` once the handshake is done.
/// The default request asks the server to close, so s_client ends when the answer is complete
/// (after the TLS 1.3 session tickets, which `-sess_out` needs).
func sClient(port: UInt16, serverName: String? = nil, extra: [String] = [],
             request: String = "GET /tls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") -> HandshakeReport {
    var args = ["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-ign_eof"]
    if let serverName { args += ["-servername", serverName] } else { args += ["-noservername"] }
    args += extra
    let r = runTool(args, input: request)
    return HandshakeReport(status: r.status, output: r.out + r.err)
}

/// A blocking TLS client for tests that keep a connection open across a reload.
final class TLSTestClient {
    let fd: Int32
    private let ctx: OpaquePointer
    let ssl: OpaquePointer
    private var pending: [UInt8] = []

    /// Connects and completes the handshake; nil when it fails. `session`: resume it.
    init?(port: UInt16, serverName: String?, caFile: String? = nil, session: OpaquePointer? = nil, maxVersion: Int32? = nil) {
        fd = HTTPSessionTests.connect(port)
        ctx = SSL_CTX_new(TLS_client_method())
        if let maxVersion { _ = CLibEV_SSL_CTX_set_max_proto_version(ctx, maxVersion) }
        if let caFile {
            _ = SSL_CTX_load_verify_locations(ctx, caFile, nil)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        }
        ssl = SSL_new(ctx)
        _ = SSL_set_fd(ssl, fd)
        if let serverName { _ = CLibEV_SSL_set_tlsext_host_name(ssl, serverName) }
        if let session { _ = SSL_set_session(ssl, session) }
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

    /// The server certificate's subject (`/CN=…`).
    var peerSubject: String {
        guard let cert = SSL_get0_peer_certificate(ssl) else { return "" }
        return TLSCertificateInfo.oneLine(X509_get_subject_name(cert))
    }

    var reused: Bool { SSL_session_reused(ssl) == 1 }

    func send(_ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
    }

    /// One response (head and Content-Length body); nil when the connection ends first.
    func response() -> (head: String, body: String)? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        func fill() -> Bool {
            let n = SSL_read(ssl, &chunk, Int32(chunk.count))
            if n <= 0 { ERR_clear_error(); return false }
            pending += chunk[0..<Int(n)]
            return true
        }
        while !pending.containsSubsequence([13, 10, 13, 10]) { if !fill() { return nil } }
        let end = pending.indexOfSubsequence([13, 10, 13, 10])! + 4
        let head = String(decoding: pending[0..<end], as: UTF8.self)
        pending.removeFirst(end)
        var length = 0
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
        }
        while pending.count < length { if !fill() { return nil } }
        let body = String(decoding: pending[0..<length], as: UTF8.self)
        pending.removeFirst(length)
        return (head, body)
    }

    /// Sends a keep-alive GET and returns the answer's body.
    func get(_ path: String) -> String? {
        send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
        return response()?.body
    }

    /// The session to resume later (the caller frees it). Reads what the server sent after the
    /// handshake first, so a TLS 1.3 ticket is in.
    func session() -> OpaquePointer? { SSL_get1_session(ssl) }
}
