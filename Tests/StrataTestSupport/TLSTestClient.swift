import CLibEV
import Glibc

/// A blocking TLS client connection (OpenSSL) for tests that keep it open across a reload or
/// resume its session later.
public final class TLSTestClient {
    public let fd: Int32
    private let ctx: OpaquePointer
    public let ssl: OpaquePointer
    private let reader: HTTPTestReader

    /// Connects and completes the handshake; nil when either fails. `caFile`: verify the server
    /// with it; `session`: resume it; `maxVersion`: the highest protocol to offer.
    /// `prefix`: bytes sent in clear before the handshake (a PROXY protocol header).
    public init?(port: UInt16, serverName: String?, caFile: String? = nil, session: OpaquePointer? = nil, maxVersion: Int32? = nil,
                 prefix: [UInt8] = []) {
        guard let fd = TestSocket.connect(port) else { return nil }
        if !prefix.isEmpty { TestSocket.sendAll(fd, prefix) }
        self.fd = fd
        ctx = SSL_CTX_new(TLS_client_method())
        if let maxVersion { _ = CLibEV_SSL_CTX_set_max_proto_version(ctx, maxVersion) }
        if let caFile {
            _ = SSL_CTX_load_verify_locations(ctx, caFile, nil)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        }
        let ssl = SSL_new(ctx)!
        self.ssl = ssl
        reader = HTTPTestReader { buffer in
            let n = SSL_read(ssl, buffer.baseAddress, Int32(buffer.count))
            if n <= 0 { ERR_clear_error() }
            return Int(n)
        }
        _ = SSL_set_fd(ssl, fd)
        if let serverName { _ = CLibEV_SSL_set_tlsext_host_name(ssl, serverName) }
        if let session { _ = SSL_set_session(ssl, session) }
        guard SSL_connect(ssl) == 1 else {
            ERR_clear_error()
            // Every property is set: deinit runs for the failed instance and frees them (freeing
            // here too was a double free, and a second close of a number another test may hold).
            return nil
        }
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(ctx)
        Glibc.close(fd)
    }

    /// The server certificate's subject (`/CN=…`).
    public var peerSubject: String {
        guard let cert = SSL_get0_peer_certificate(ssl) else { return "" }
        var buffer = [CChar](repeating: 0, count: 1024)
        return buffer.withUnsafeMutableBufferPointer { b in
            guard X509_NAME_oneline(X509_get_subject_name(cert), b.baseAddress, Int32(b.count)) != nil else { return "" }
            return String(cString: b.baseAddress!)
        }
    }

    public var reused: Bool { SSL_session_reused(ssl) == 1 }

    public func send(_ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
    }

    /// One response; nil when the connection ends first.
    public func response() -> (status: Int, head: String, body: String)? { reader.readResponse() }

    /// Sends a keep-alive GET and returns the answer's body.
    public func get(_ path: String) -> String? {
        send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
        return response()?.body
    }

    /// The session to resume later (the caller frees it).
    public func session() -> OpaquePointer? { SSL_get1_session(ssl) }
}
