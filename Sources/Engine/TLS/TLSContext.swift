import HTTP1
import CLibEV
import ConfigModel
import Glibc
import Synchronization

/// Settings both sides of TLS share: versions, ciphers, groups.
private struct TLSProtocolSettings {
    var minVersion: TLSVersion?
    var maxVersion: TLSVersion?
    var disabled: Set<TLSVersion> = []
    var ciphers: String?
    var ciphersuites: String?
    var curves: String?
    var noTickets = false

    /// Reads `ssl-default-bind-options` / `ssl-default-server-options` words.
    mutating func apply(options: [String]) {
        for option in options {
            let words = option.split(separator: " ").map(String.init)
            switch words.first {
            case "no-sslv3": disabled.insert(.sslv3)
            case "no-tlsv10": disabled.insert(.tlsv10)
            case "no-tlsv11": disabled.insert(.tlsv11)
            case "no-tlsv12": disabled.insert(.tlsv12)
            case "no-tlsv13": disabled.insert(.tlsv13)
            case "no-tls-tickets": noTickets = true
            case "ssl-min-ver": if words.count > 1 { minVersion = TLSVersion(rawValue: words[1]) }
            case "ssl-max-ver": if words.count > 1 { maxVersion = TLSVersion(rawValue: words[1]) }
            default: break
            }
        }
    }

    static func wire(_ v: TLSVersion) -> Int32 {
        switch v {
        case .sslv3: SSL3_VERSION
        case .tlsv10: TLS1_VERSION
        case .tlsv11: TLS1_1_VERSION
        case .tlsv12: TLS1_2_VERSION
        case .tlsv13: TLS1_3_VERSION
        }
    }

    static func option(_ v: TLSVersion) -> UInt64 {
        switch v {
        case .sslv3: CLibEV_SSL_OP_NO_SSLv3
        case .tlsv10: CLibEV_SSL_OP_NO_TLSv1
        case .tlsv11: CLibEV_SSL_OP_NO_TLSv1_1
        case .tlsv12: CLibEV_SSL_OP_NO_TLSv1_2
        case .tlsv13: CLibEV_SSL_OP_NO_TLSv1_3
        }
    }

    /// Applies the settings to `ctx`; throws with `location` and `context` on what OpenSSL refuses.
    func install(in ctx: OpaquePointer, location: SourceLocation, context: String, defaultMin: TLSVersion?) throws(ConfigError) {
        var options = CLibEV_SSL_OP_ALL | CLibEV_SSL_OP_NO_COMPRESSION | CLibEV_SSL_OP_NO_RENEGOTIATION
            | CLibEV_SSL_OP_IGNORE_UNEXPECTED_EOF
        for v in disabled { options |= Self.option(v) }
        if noTickets { options |= CLibEV_SSL_OP_NO_TICKET }
        SSL_CTX_set_options(ctx, options)
        if let min = minVersion ?? defaultMin { _ = CLibEV_SSL_CTX_set_min_proto_version(ctx, Self.wire(min)) }
        if let max = maxVersion { _ = CLibEV_SSL_CTX_set_max_proto_version(ctx, Self.wire(max)) }
        if let ciphers, SSL_CTX_set_cipher_list(ctx, ciphers) != 1 {
            throw ConfigError(location, "\(context): unable to set SSL cipher list to '\(ciphers)' (\(TLSError.drain() ?? "no cipher match"))")
        }
        if let ciphersuites, SSL_CTX_set_ciphersuites(ctx, ciphersuites) != 1 {
            throw ConfigError(location, "\(context): unable to set TLS 1.3 cipher suites to '\(ciphersuites)' (\(TLSError.drain() ?? "no cipher match"))")
        }
        if let curves, CLibEV_SSL_CTX_set1_groups_list(ctx, curves) != 1 {
            throw ConfigError(location, "\(context): unable to set SSL curves list to '\(curves)' (\(TLSError.drain() ?? "unknown curve"))")
        }
    }
}

/// `SSL_CTX *` made with `method`, or a ConfigError.
private func makeSSLContext(_ method: OpaquePointer?, location: SourceLocation, context: String) throws(ConfigError) -> OpaquePointer {
    guard let ctx = SSL_CTX_new(method) else {
        throw ConfigError(location, "\(context): unable to allocate SSL context (\(TLSError.drain() ?? "out of memory"))")
    }
    // Partial writes and moving buffers: a session retries a write with what it has then, from
    // wherever its buffer is (HAProxy's modes too). Released buffers: an idle connection holds
    // none of OpenSSL's (2 x 16 KB otherwise), as it holds none of the loop's. No
    // SSL_MODE_AUTO_RETRY: the loop retries.
    _ = CLibEV_SSL_CTX_set_mode(ctx, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
        | SSL_MODE_RELEASE_BUFFERS))
    _ = CLibEV_SSL_CTX_clear_mode(ctx, Int(SSL_MODE_AUTO_RETRY))
    return ctx
}

/// Encodes `["h2", "http/1.1"]` as ALPN's wire format (length-prefixed names).
func alpnWireFormat(_ protocols: [String]) -> [UInt8] {
    var wire: [UInt8] = []
    for p in protocols where !p.isEmpty && p.utf8.count < 256 {
        wire.append(UInt8(p.utf8.count))
        wire.append(contentsOf: p.utf8)
    }
    return wire
}

// MARK: termination (bind … ssl)

/// The TLS side of one `bind … ssl` line in one generation: an `SSL_CTX` per certificate (the
/// first is the default, and every handshake starts on it), the SNI table, client certificate
/// verification, ALPN. Connections hold it strongly: one accepted before a reload keeps the
/// certificates it started with when the generation is gone.
final class TLSServerContext {
    let bind: Bind
    let settings: BindTLS
    let certificates: [TLSCertificate]
    /// `SSL_CTX *`, one per certificate, in the bind's order.
    private let contexts: [OpaquePointer]
    private var exactNames: [String: Int] = [:]
    /// `*.example.com` is found under `example.com`.
    private var wildcardNames: [String: Int] = [:]
    let strictSNI: Bool
    private let alpn: [UInt8]
    /// The listener's session ticket keys and session cache: replaced by the carried one when the
    /// generation activates, so every generation serving a listener shares them.
    var store: TLSSessionStore
    /// Loop seconds, for the session cache's expiry (the engine sets it; wall time is fine too).
    var clock: () -> Double = { Double(time(nil)) }

    /// Full handshakes and resumptions done on this context, for tests and `show ssl`.
    var handshakes = 0

    init(bind: Bind, proxy: Proxy, global: GlobalSettings) throws(ConfigError) {
        self.bind = bind
        guard let tls = bind.tls else { throw ConfigError(bind.location, "bind \(bind.endpoint): no TLS settings") }
        settings = tls
        let context = "bind \(bind.endpoint)"
        guard !tls.certificates.isEmpty else {
            throw ConfigError(bind.location, "\(context): 'ssl' needs at least one certificate ('crt')")
        }
        var certificates: [TLSCertificate] = []
        for file in tls.certificates { certificates.append(try TLSCertificate(file, context: context)) }
        self.certificates = certificates
        strictSNI = tls.strictSNI
        alpn = alpnWireFormat(tls.alpn)
        store = TLSSessionStore(capacity: global.sslCacheSize, lifetimeMS: global.sslLifetime)
        store.configure(ticketKeys: tls.ticketKeys, capacity: global.sslCacheSize, lifetimeMS: global.sslLifetime)

        var proto = TLSProtocolSettings()
        proto.apply(options: global.tls.bindOptions)
        proto.ciphers = tls.ciphers ?? global.tls.bindCiphers
        proto.ciphersuites = tls.ciphersuites ?? global.tls.bindCiphersuites
        proto.curves = tls.curves
        if let v = tls.minVersion { proto.minVersion = v }
        if let v = tls.maxVersion { proto.maxVersion = v }
        proto.disabled.formUnion(tls.disabledVersions)
        if tls.noTickets { proto.noTickets = true }

        // The CA bundle and CRL for client certificates, decoded once and shared by every SSL_CTX.
        var caCerts: [OpaquePointer] = []
        // `ca-verify-file`: trusted for verification, not named to clients.
        var verifyCerts: [OpaquePointer] = []
        var crls: [OpaquePointer] = []
        defer {
            for c in caCerts { X509_free(c) }
            for c in verifyCerts { X509_free(c) }
            for c in crls { X509_CRL_free(c) }
        }
        if tls.verify != .none {
            guard tls.caFile != nil || tls.caVerifyFile != nil else {
                throw ConfigError(bind.location, "\(context): verify is enabled but no CA file specified ('ca-file')")
            }
            if let ca = tls.caFile {
                caCerts = TLSServerContext.certificates(in: ca)
                if caCerts.isEmpty {
                    throw ConfigError(bind.location, "\(context): unable to load CA file '\(tls.caFilePath ?? "")' (no certificate found)")
                }
            }
            if let ca = tls.caVerifyFile {
                verifyCerts = TLSServerContext.certificates(in: ca)
                if verifyCerts.isEmpty {
                    throw ConfigError(bind.location, "\(context): unable to load CA file '\(tls.caVerifyFilePath ?? "")' (no certificate found)")
                }
            }
            if let crl = tls.crlFile {
                crls = TLSServerContext.crls(in: crl)
                if crls.isEmpty { throw ConfigError(bind.location, "\(context): unable to load CRL file (no CRL found)") }
            }
        }

        var made: [OpaquePointer] = []
        do throws(ConfigError) {
            for cert in certificates {
                let ctx = try makeSSLContext(TLS_server_method(), location: bind.location, context: context)
                made.append(ctx)
                try proto.install(in: ctx, location: bind.location, context: context, defaultMin: .tlsv12)
                try cert.install(in: ctx, context: context)
                if cert.dhParameters == nil {
                    if let file = global.tls.dhParamFile {
                        // ssl-dh-param-file: for every certificate without parameters of its own.
                        guard let dh = file.contents.withUnsafeBytes({ CLibEV_read_dh_params($0.baseAddress, Int32($0.count)) })
                        else { throw ConfigError(file.location, "'ssl-dh-param-file': unable to load DH parameters from '\(file.path)'") }
                        if CLibEV_SSL_CTX_set0_tmp_dh_pkey(ctx, dh) != 1 {
                            EVP_PKEY_free(dh)
                            throw ConfigError(file.location, "'ssl-dh-param-file': unable to use DH parameters from '\(file.path)' (\(TLSError.drain() ?? "rejected"))")
                        }
                    } else if let bits = global.tls.defaultDHParam {
                        if CLibEV_SSL_CTX_set_ffdhe(ctx, Int32(bits)) != 1 { _ = CLibEV_SSL_CTX_set_dh_auto(ctx, 1) }
                    } else {
                        _ = CLibEV_SSL_CTX_set_dh_auto(ctx, 1)
                    }
                }
                // Reads as much as the socket has in one call (fewer recv calls per record).
                CLibEV_SSL_CTX_set_read_ahead(ctx, 1)
                // The same on every generation and certificate, so sessions resume across both.
                _ = SSL_CTX_set_session_id_context(ctx, TLSServerContext.sessionContext, UInt32(TLSServerContext.sessionContext.count))
                _ = CLibEV_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL | SSL_SESS_CACHE_NO_AUTO_CLEAR))
                SSL_CTX_set_timeout(ctx, Int(global.sslLifetime / 1000))
                if tls.verify != .none {
                    let store = SSL_CTX_get_cert_store(ctx)
                    for ca in caCerts {
                        _ = X509_STORE_add_cert(store, ca)
                        _ = SSL_CTX_add_client_CA(ctx, ca)
                    }
                    for ca in verifyCerts { _ = X509_STORE_add_cert(store, ca) }
                    if !crls.isEmpty {
                        for crl in crls { _ = X509_STORE_add_crl(store, crl) }
                        _ = X509_STORE_set_flags(store, UInt(X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL))
                    }
                    let mode = SSL_VERIFY_PEER | (tls.verify == .required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0)
                    SSL_CTX_set_verify(ctx, mode, nil)
                }
                TLSError.discard()
            }
        } catch {
            for ctx in made { SSL_CTX_free(ctx) }
            throw error
        }
        contexts = made
        for (index, cert) in certificates.enumerated() {
            for name in cert.names {
                if name.hasPrefix("*.") {
                    let suffix = String(name.dropFirst(2))
                    if wildcardNames[suffix] == nil { wildcardNames[suffix] = index }
                } else if exactNames[name] == nil {
                    exactNames[name] = index
                }
            }
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        for ctx in contexts {
            _ = SSL_CTX_set_ex_data(ctx, 0, me)
            _ = CLibEV_SSL_CTX_set_servername_callback(ctx, serverNameCallback, me)
            _ = CLibEV_SSL_CTX_set_ticket_key_cb(ctx, ticketKeyCallback)
            SSL_CTX_sess_set_new_cb(ctx, newSessionCallback)
            SSL_CTX_sess_set_get_cb(ctx, getSessionCallback)
            SSL_CTX_sess_set_remove_cb(ctx, removeSessionCallback)
            if !alpn.isEmpty { SSL_CTX_set_alpn_select_cb(ctx, alpnSelectCallback, me) }
        }
    }

    deinit {
        for ctx in contexts { SSL_CTX_free(ctx) }
    }

    static let sessionContext: [UInt8] = Array("strata".utf8)

    /// The `SSL_CTX *` every handshake starts on: the default certificate's.
    var initial: OpaquePointer { contexts[0] }

    /// A new server-side `SSL *` on `fd`, or nil (out of memory).
    func makeSSL(fd: Int32) -> OpaquePointer? {
        guard let ssl = SSL_new(contexts[0]) else {
            TLSError.discard()
            return nil
        }
        SSL_set_accept_state(ssl)
        guard CLibEV_SSL_set_socket(ssl, fd) == 1 else {
            SSL_free(ssl)
            TLSError.discard()
            return nil
        }
        return ssl
    }

    /// The certificate for a server name: an exact name first, then a wildcard one level up.
    /// nil: no certificate has this name.
    func certificateIndex(for serverName: String) -> Int? {
        let name = serverName.lowercased()
        if let i = exactNames[name] { return i }
        if let dot = name.firstIndex(of: ".") {
            return wildcardNames[String(name[name.index(after: dot)...])]
        }
        return nil
    }

    /// The servername callback: picks the certificate (`SSL_set_SSL_CTX`), refuses with
    /// `strict-sni` when none matches.
    fileprivate func selectCertificate(_ ssl: OpaquePointer, alert: UnsafeMutablePointer<Int32>?) -> Int32 {
        guard let raw = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else {
            if strictSNI {
                alert?.pointee = 112  // unrecognized_name
                return SSL_TLSEXT_ERR_ALERT_FATAL
            }
            return SSL_TLSEXT_ERR_OK
        }
        let index = certificateIndex(for: String(cString: raw))
        guard let index else {
            if strictSNI {
                alert?.pointee = 112
                return SSL_TLSEXT_ERR_ALERT_FATAL
            }
            return SSL_TLSEXT_ERR_OK
        }
        if index != 0 { _ = SSL_set_SSL_CTX(ssl, contexts[index]) }
        return SSL_TLSEXT_ERR_OK
    }

    fileprivate func selectProtocol(_ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, _ outLength: UnsafeMutablePointer<UInt8>?,
                                    _ offered: UnsafePointer<UInt8>?, _ offeredLength: UInt32) -> Int32 {
        alpn.withUnsafeBufferPointer { ours in
            var selected: UnsafeMutablePointer<UInt8>?
            var length: UInt8 = 0
            let r = SSL_select_next_proto(&selected, &length, ours.baseAddress, UInt32(ours.count), offered, offeredLength)
            guard r == OPENSSL_NPN_NEGOTIATED, let selected else { return SSL_TLSEXT_ERR_NOACK }
            // `selected` points into `offered`, which outlives the callback.
            out?.pointee = UnsafePointer(selected)
            outLength?.pointee = length
            return SSL_TLSEXT_ERR_OK
        }
    }

    // MARK: decoding CA and CRL bundles

    static func certificates(in pem: [UInt8]) -> [OpaquePointer] {
        pem.withUnsafeBytes { bytes -> [OpaquePointer] in
            guard let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count)) else { return [] }
            defer { BIO_free(bio) }
            var out: [OpaquePointer] = []
            while let c = PEM_read_bio_X509(bio, nil, nil, nil) { out.append(c) }
            ERR_clear_error()
            return out
        }
    }

    static func crls(in pem: [UInt8]) -> [OpaquePointer] {
        pem.withUnsafeBytes { bytes -> [OpaquePointer] in
            guard let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count)) else { return [] }
            defer { BIO_free(bio) }
            var out: [OpaquePointer] = []
            while let c = PEM_read_bio_X509_CRL(bio, nil, nil, nil) { out.append(c) }
            ERR_clear_error()
            return out
        }
    }
}

/// The context of the `SSL_CTX` a handshake runs on (or started on: SNI keeps the same object).
@inline(__always)
private func serverContext(_ ssl: OpaquePointer?) -> TLSServerContext? {
    guard let ssl, let ctx = SSL_get_SSL_CTX(ssl), let data = SSL_CTX_get_ex_data(ctx, 0) else { return nil }
    return Unmanaged<TLSServerContext>.fromOpaque(data).takeUnretainedValue()
}

private let serverNameCallback: CLibEV_servername_cb = { ssl, alert, arg in
    guard let ssl, let arg else { return SSL_TLSEXT_ERR_OK }
    return Unmanaged<TLSServerContext>.fromOpaque(arg).takeUnretainedValue().selectCertificate(ssl, alert: alert)
}

private let alpnSelectCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
                                                  UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?) -> Int32 = { _, out, outLength, offered, offeredLength, arg in
    guard let arg else { return SSL_TLSEXT_ERR_NOACK }
    return Unmanaged<TLSServerContext>.fromOpaque(arg).takeUnretainedValue().selectProtocol(out, outLength, offered, offeredLength)
}

private let ticketKeyCallback: CLibEV_ticket_key_cb = { ssl, name, iv, cipher, mac, enc in
    guard let context = serverContext(ssl), let name, let iv, let cipher, let mac else { return -1 }
    return context.store.ticketKey(name: name, iv: iv, cipher: cipher, mac: mac, encrypt: enc == 1,
                                   renew: SSL_version(ssl) == TLS1_3_VERSION)
}

private let newSessionCallback: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32 = { ssl, session in
    guard let ssl, let session, let context = serverContext(ssl) else { return 0 }
    // TLS 1.3 with tickets: the ticket carries the session, its ID is a placeholder.
    if SSL_version(ssl) == TLS1_3_VERSION && SSL_get_options(ssl) & CLibEV_SSL_OP_NO_TICKET == 0 { return 0 }
    context.store.add(session, now: context.clock())
    return 0
}

private let getSessionCallback: @convention(c) (OpaquePointer?, UnsafePointer<UInt8>?, Int32, UnsafeMutablePointer<Int32>?) -> OpaquePointer? = { ssl, id, length, copy in
    guard let context = serverContext(ssl), let id, length > 0 else { return nil }
    copy?.pointee = 0
    return context.store.find(UnsafeRawBufferPointer(start: id, count: Int(length)), now: context.clock())
}

private let removeSessionCallback: @convention(c) (OpaquePointer?, OpaquePointer?) -> Void = { ctx, session in
    guard let ctx, let session, let data = SSL_CTX_get_ex_data(ctx, 0) else { return }
    Unmanaged<TLSServerContext>.fromOpaque(data).takeUnretainedValue().store.remove(session)
}

// MARK: origination (server … ssl)

/// The TLS side of one `server … ssl` line in one generation: verification of the server's
/// certificate, SNI, ALPN, an optional client certificate, and the last session for resumption.
final class TLSClientContext {
    let settings: ServerTLS
    let ctx: OpaquePointer
    private let alpn: [UInt8]
    /// The SNI name when `sni` is a constant string (the common case); otherwise the session
    /// renders the expression per connection.
    let constantSNI: String?
    /// The last session the server gave, DER-encoded, offered on the next connection. Kept as
    /// bytes (HAProxy does the same): OpenSSL marks a TLS 1.3 session object used once as not
    /// resumable, while a server that does not renew its ticket accepts it again.
    /// The server name it was made under: it is offered only under the same name (a resumption
    /// skips certificate verification, so another name must not ride it). Every data loop offers
    /// and renews it: a lock guards the pair.
    private let lastSession = Locked<(der: [UInt8], name: String?)?>(nil)
    /// Identifies the settings: a pooled connection is reused only under equal settings.
    let fingerprint: Int
    /// `crt FILE`: the client certificate presented to the server.
    private(set) var certificate: TLSCertificate?

    init(server: ConfigModel.Server, backend: String, global: GlobalSettings) throws(ConfigError) {
        guard let tls = server.options.tls else { throw ConfigError(server.location, "server \(backend)/\(server.name): no TLS settings") }
        settings = tls
        fingerprint = tls.hashValue
        let context = "server \(backend)/\(server.name)"
        let ctx = try makeSSLContext(TLS_client_method(), location: server.location, context: context)
        var proto = TLSProtocolSettings()
        proto.apply(options: global.tls.serverOptions)
        proto.ciphers = tls.ciphers ?? global.tls.serverCiphers
        proto.ciphersuites = tls.ciphersuites ?? global.tls.serverCiphersuites
        if let v = tls.minVersion { proto.minVersion = v }
        if let v = tls.maxVersion { proto.maxVersion = v }
        do throws(ConfigError) {
            try proto.install(in: ctx, location: server.location, context: context, defaultMin: .tlsv12)
            let verify = tls.verify
            if verify == .required {
                guard let ca = tls.caFile else {
                    throw ConfigError(server.location, "\(context): verify is enabled by default but no CA file specified. If you're running on a LAN where you're certain to trust the server's certificate, please set an explicit 'verify none' statement on the 'server' line, or use 'ssl-server-verify none' in the global section to disable server-side verifications by default.")
                }
                let cas = TLSServerContext.certificates(in: ca)
                defer { for c in cas { X509_free(c) } }
                guard !cas.isEmpty else {
                    throw ConfigError(server.location, "\(context): unable to load CA file '\(tls.caFilePath ?? "")' (no certificate found)")
                }
                let store = SSL_CTX_get_cert_store(ctx)
                for c in cas { _ = X509_STORE_add_cert(store, c) }
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            } else {
                SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
            }
            if let file = tls.certificate {
                let cert = try TLSCertificate(file, context: context)
                try cert.install(in: ctx, context: context)
                certificate = cert
            }
            if !tls.noSessionReuse {
                _ = CLibEV_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE))
                SSL_CTX_sess_set_new_cb(ctx, clientNewSessionCallback)
            } else {
                _ = CLibEV_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
            }
            CLibEV_SSL_CTX_set_read_ahead(ctx, 1)
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
        TLSError.discard()
        self.ctx = ctx
        alpn = alpnWireFormat(tls.alpn)
        if let sni = tls.sni, sni.isLiteral {
            constantSNI = sni.parts.map { if case .literal(let s) = $0 { s } else { "" } }.joined()
        } else {
            constantSNI = nil
        }
        _ = SSL_CTX_set_ex_data(ctx, 0, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        SSL_CTX_free(ctx)
    }

    /// A new client-side `SSL *` on `fd`, with the SNI name, ALPN and the last session.
    func makeSSL(fd: Int32, serverName: String?) -> OpaquePointer? {
        guard let ssl = SSL_new(ctx) else {
            TLSError.discard()
            return nil
        }
        SSL_set_connect_state(ssl)
        guard CLibEV_SSL_set_socket(ssl, fd) == 1 else {
            SSL_free(ssl)
            TLSError.discard()
            return nil
        }
        if let name = serverName ?? constantSNI, !name.isEmpty {
            _ = CLibEV_SSL_set_tlsext_host_name(ssl, name)
            // With verification, the certificate must also be the name's.
            if settings.verify == .required { _ = SSL_set1_host(ssl, name) }
        }
        if !alpn.isEmpty { _ = alpn.withUnsafeBufferPointer { SSL_set_alpn_protos(ssl, $0.baseAddress, UInt32($0.count)) } }
        if let (session, name) = lastSession.withLock({ $0 }), name == (serverName ?? constantSNI) {
            let decoded = session.withUnsafeBufferPointer { buffer -> OpaquePointer? in
                var p: UnsafePointer<UInt8>? = buffer.baseAddress
                return d2i_SSL_SESSION(nil, &p, buffer.count)
            }
            if let decoded {
                _ = SSL_set_session(ssl, decoded)
                SSL_SESSION_free(decoded)
            }
        }
        TLSError.discard()
        return ssl
    }

    fileprivate func remember(_ new: OpaquePointer, serverName: UnsafePointer<CChar>?) {
        let size = i2d_SSL_SESSION(new, nil)
        guard size > 0 else { return }
        var der = [UInt8](repeating: 0, count: Int(size))
        der.withUnsafeMutableBufferPointer { buffer in
            var p: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            _ = i2d_SSL_SESSION(new, &p)
        }
        let name = serverName.map { String(cString: $0) }
        lastSession.withLock { $0 = (der, name) }
    }

    /// Forgets the session (a handshake failed: it must not be offered again).
    func forgetSession() { lastSession.withLock { $0 = nil } }
}

private let clientNewSessionCallback: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32 = { ssl, session in
    guard let ssl, let session, let ctx = SSL_get_SSL_CTX(ssl), let data = SSL_CTX_get_ex_data(ctx, 0) else { return 0 }
    guard SSL_SESSION_is_resumable(session) == 1 else { return 0 }
    Unmanaged<TLSClientContext>.fromOpaque(data).takeUnretainedValue()
        .remember(session, serverName: SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name))
    return 0
}
