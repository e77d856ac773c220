import HTTP1
import CLibEV
import ConfigModel
import Glibc

/// One TLS connection (`SSL *` on a non-blocking socket), either side. `read` and `write` answer
/// as recv/send do (a count, 0 at the end, or -1 with errno, EAGAIN when it would block), so a
/// session calls them where it would call the socket. What OpenSSL waits for is kept here:
/// `interest` turns the events a session wants into the ones the socket must be watched for
/// (a read may wait for the socket to be writable and the other way round), and `events` turns
/// what libev reported back into what the session may do now.
final class TLSConnection: @unchecked Sendable {
    enum HandshakeResult {
        case done
        case inProgress
        case failed
    }

    let ssl: OpaquePointer
    /// The context the connection was made from (TLSServerContext or TLSClientContext): holding
    /// it keeps its certificates and callbacks alive while the connection lives.
    private let context: AnyObject
    private(set) var isEstablished = false
    private(set) var failed = false
    /// The socket events the handshake waits for.
    private(set) var handshakeInterest = EV_READ_MASK
    /// The last read waited for the socket to become writable, or the last write for readable.
    private var readWantsWrite = false
    private var writeWantsRead = false
    /// The last read returned data, and OpenSSL may still hold some (read-ahead): read again
    /// without waiting for the socket.
    private var mayHaveInput = false
    private var shutdownSent = false
    /// `ssl_c_s_dn`/`ssl_c_i_dn` rendered once, kept for the connection's life.
    private var nameStorage: UnsafeMutableRawBufferPointer?

    private init(ssl: OpaquePointer, context: AnyObject, established: Bool = false) {
        self.ssl = ssl
        self.context = context
        _ = CLibEV_fetch_add(TLSConnection.figures + Figure.current.rawValue, 1)
        _ = CLibEV_fetch_add(TLSConnection.figures + Figure.cumulative.rawValue, 1)
    }

    /// `show info`'s TLS figures, process-wide: one atomic add when a TLS connection is made,
    /// ends or completes its handshake (never per byte or per request).
    enum Figure: Int, CaseIterable {
        /// CurrSslConns, CumSslConns (front and back).
        case current, cumulative
        /// Handshakes completed on frontends, of which resumed; full handshakes (new keys) to servers.
        case frontendHandshakes, frontendResumed, backendFullHandshakes
    }

    nonisolated(unsafe) static let figures: UnsafeMutablePointer<Int> = {
        let p = UnsafeMutablePointer<Int>.allocate(capacity: Figure.allCases.count)
        p.initialize(repeating: 0, count: Figure.allCases.count)
        return p
    }()

    static func figure(_ f: Figure) -> Int { CLibEV_load(figures + f.rawValue) }

    /// A server-side connection on an accepted socket; nil when OpenSSL cannot make one.
    convenience init?(accepted fd: Int32, context: TLSServerContext) {
        guard let ssl = context.makeSSL(fd: fd) else { return nil }
        self.init(ssl: ssl, context: context)
        handshakeInterest = EV_READ_MASK
    }

    /// A client-side connection on a connected socket towards a server.
    convenience init?(connected fd: Int32, context: TLSClientContext, serverName: String?) {
        guard let ssl = context.makeSSL(fd: fd, serverName: serverName) else { return nil }
        self.init(ssl: ssl, context: context)
        handshakeInterest = EV_WRITE_MASK
    }

    deinit {
        _ = CLibEV_fetch_add(TLSConnection.figures + Figure.current.rawValue, -1)
        SSL_free(ssl)
        nameStorage?.deallocate()
    }

    var serverContext: TLSServerContext? { context as? TLSServerContext }
    var clientContext: TLSClientContext? { context as? TLSClientContext }

    // MARK: handshake

    /// Advances the handshake as far as the socket allows.
    func handshake() -> HandshakeResult {
        let r = SSL_do_handshake(ssl)
        if r == 1 {
            isEstablished = true
            mayHaveInput = true
            let reused = SSL_session_reused(ssl) == 1
            if context is TLSServerContext {
                _ = CLibEV_fetch_add(TLSConnection.figures + Figure.frontendHandshakes.rawValue, 1)
                if reused { _ = CLibEV_fetch_add(TLSConnection.figures + Figure.frontendResumed.rawValue, 1) }
            } else if !reused {
                _ = CLibEV_fetch_add(TLSConnection.figures + Figure.backendFullHandshakes.rawValue, 1)
            }
            return .done
        }
        switch SSL_get_error(ssl, r) {
        case SSL_ERROR_WANT_READ:
            handshakeInterest = EV_READ_MASK
            return .inProgress
        case SSL_ERROR_WANT_WRITE:
            handshakeInterest = EV_WRITE_MASK
            return .inProgress
        default:
            failed = true
            ERR_clear_error()
            return .failed
        }
    }

    /// Why the handshake failed, for the log (and clears OpenSSL's queue).
    var verifyResult: Int { SSL_get_verify_result(ssl) }

    // MARK: data

    @inline(__always)
    func read(_ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        let n = SSL_read(ssl, buffer, Int32(truncatingIfNeeded: min(count, Int(Int32.max))))
        if n > 0 {
            mayHaveInput = true
            return Int(n)
        }
        return readFailed(n)
    }

    private func readFailed(_ n: Int32) -> Int {
        mayHaveInput = false
        switch SSL_get_error(ssl, n) {
        case SSL_ERROR_WANT_READ:
            errno = EAGAIN
            return -1
        case SSL_ERROR_WANT_WRITE:
            readWantsWrite = true
            errno = EAGAIN
            return -1
        case SSL_ERROR_ZERO_RETURN:
            return 0
        case SSL_ERROR_SYSCALL:
            ERR_clear_error()
            failed = true
            if errno == 0 || errno == EAGAIN { errno = ECONNRESET }
            return -1
        default:
            ERR_clear_error()
            failed = true
            errno = EPROTO
            return -1
        }
    }

    @inline(__always)
    func write(_ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        let n = SSL_write(ssl, bytes, Int32(truncatingIfNeeded: min(count, Int(Int32.max))))
        if n > 0 { return Int(n) }
        return writeFailed(n)
    }

    private func writeFailed(_ n: Int32) -> Int {
        switch SSL_get_error(ssl, n) {
        case SSL_ERROR_WANT_WRITE:
            errno = EAGAIN
            return -1
        case SSL_ERROR_WANT_READ:
            writeWantsRead = true
            errno = EAGAIN
            return -1
        case SSL_ERROR_SYSCALL:
            ERR_clear_error()
            failed = true
            if errno == 0 || errno == EAGAIN { errno = EPIPE }
            return -1
        default:
            ERR_clear_error()
            failed = true
            errno = EPROTO
            return -1
        }
    }

    /// Sends close_notify (once, best effort), then the socket's FIN.
    func shutdownWrite(fd: Int32) {
        sendCloseNotify()
        shutdown(fd, Int32(SHUT_WR))
    }

    /// close_notify before a clean close (not after an error: OpenSSL refuses then anyway).
    func sendCloseNotify() {
        guard isEstablished, !failed, !shutdownSent else { return }
        shutdownSent = true
        if SSL_shutdown(ssl) < 0 { ERR_clear_error() }
    }

    // MARK: events

    /// The socket events to watch for a session that wants `wanted` (read and/or write).
    @inline(__always)
    func interest(_ wanted: Int32) -> Int32 {
        guard isEstablished else { return handshakeInterest }
        var m = wanted
        if readWantsWrite && m & EV_READ_MASK != 0 { m |= EV_WRITE_MASK }
        if writeWantsRead && m & EV_WRITE_MASK != 0 { m |= EV_READ_MASK }
        return m
    }

    /// What the session may do after libev reported `revents`.
    @inline(__always)
    func events(_ revents: Int32) -> Int32 {
        var r = revents
        if readWantsWrite && revents & EV_WRITE_MASK != 0 {
            readWantsWrite = false
            r |= EV_READ_MASK
        }
        if writeWantsRead && revents & EV_READ_MASK != 0 {
            writeWantsRead = false
            r |= EV_WRITE_MASK
        }
        return r
    }

    /// Bytes may be waiting inside OpenSSL that no socket event will announce: a session that
    /// wants to read must read again without waiting.
    @inline(__always)
    var hasBufferedInput: Bool { mayHaveInput && SSL_has_pending(ssl) == 1 }

    // MARK: what fetches and logs read

    /// `ssl_fc_sni`: the name the client sent.
    var serverName: UnsafePointer<CChar>? { SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) }
    /// `ssl_fc_protocol`, `%sslv`: `TLSv1.3`, … (a static string).
    var protocolName: UnsafePointer<CChar>? { SSL_get_version(ssl) }
    /// `ssl_fc_cipher`, `%sslc`.
    var cipherName: UnsafePointer<CChar>? { CLibEV_SSL_get_cipher_name(ssl) }
    var sessionReused: Bool { SSL_session_reused(ssl) == 1 }
    /// ALPN chose HTTP/2.
    var selectedH2: Bool {
        guard let a = alpn else { return false }
        return a.count == 2 && a[0] == UInt8(ascii: "h") && a[1] == UInt8(ascii: "2")
    }
    /// `ssl_fc_alpn`.
    var alpn: UnsafeRawBufferPointer? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return UnsafeRawBufferPointer(start: data, count: Int(length))
    }
    /// `ssl_c_used`.
    var hasPeerCertificate: Bool { SSL_get0_peer_certificate(ssl) != nil }
    /// `ssl_c_verify`: X509_V_OK (0) or the verification error.
    var peerVerifyResult: Int { SSL_get_verify_result(ssl) }

    /// `ssl_c_s_dn` (`issuer` false) or `ssl_c_i_dn`, as `/C=…/CN=…`; bytes valid while the connection lives.
    func peerName(issuer: Bool) -> UnsafeRawBufferPointer? {
        guard let cert = SSL_get0_peer_certificate(ssl) else { return nil }
        let half = 1024
        if nameStorage == nil {
            let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * half, alignment: 1)
            let subject = storage.baseAddress!.assumingMemoryBound(to: CChar.self)
            let issuerText = (storage.baseAddress! + half).assumingMemoryBound(to: CChar.self)
            subject.pointee = 0
            issuerText.pointee = 0
            _ = X509_NAME_oneline(X509_get_subject_name(cert), subject, Int32(half))
            _ = X509_NAME_oneline(X509_get_issuer_name(cert), issuerText, Int32(half))
            nameStorage = storage
        }
        let start = nameStorage!.baseAddress! + (issuer ? half : 0)
        return UnsafeRawBufferPointer(start: start, count: strlen(start.assumingMemoryBound(to: CChar.self)))
    }
}

extension TLSConnection: Hashable {
    static func == (a: TLSConnection, b: TLSConnection) -> Bool { a === b }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
