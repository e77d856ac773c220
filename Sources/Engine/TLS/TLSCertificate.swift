import CLibEV
import ConfigModel
import Glibc

/// A certificate with its chain and private key, decoded from the PEM bytes the Loader read
/// (HAProxy's layout: the certificate first, then its chain, the key in the same file or in a
/// `.key` file beside it, optionally DH parameters). Owned by a generation; a reload decodes the
/// files again.
final class TLSCertificate {
    let file: CertificateFile
    /// `X509 *` of the leaf, its chain (leaf excluded) and `EVP_PKEY *` of the key.
    let leaf: OpaquePointer
    let chain: [OpaquePointer]
    let key: OpaquePointer
    /// `DH PARAMETERS` found in the PEM (`EVP_PKEY *`), used for DHE ciphers.
    let dhParameters: OpaquePointer?
    /// The names SNI selects this certificate by, lowercased: the crt-list's filters when it gives
    /// some, else the subject alternative DNS names and the common name. `*.` prefixes wildcards.
    let names: [String]
    let info: TLSCertificateInfo

    /// Decodes `file`; `context` starts messages (`bind 127.0.0.1:443` or `server web/s1`).
    init(_ file: CertificateFile, context: String) throws(ConfigError) {
        self.file = file
        let what = "\(context): '\(file.path)'"
        var chain: [OpaquePointer] = []
        var leaf: OpaquePointer?
        var key: OpaquePointer?
        var dh: OpaquePointer?
        func fail(_ message: String) -> ConfigError {
            if let leaf { X509_free(leaf) }
            for c in chain { X509_free(c) }
            if let key { EVP_PKEY_free(key) }
            if let dh { EVP_PKEY_free(dh) }
            return ConfigError(file.location, message)
        }
        file.pem.withUnsafeBytes { pem in
            guard let bio = BIO_new_mem_buf(pem.baseAddress, Int32(pem.count)) else { return }
            defer { BIO_free(bio) }
            leaf = PEM_read_bio_X509_AUX(bio, nil, nil, nil)
            guard leaf != nil else { return }
            while let c = PEM_read_bio_X509(bio, nil, nil, nil) { chain.append(c) }
            ERR_clear_error()
        }
        guard let leafCert = leaf else {
            throw fail("\(what): unable to load SSL certificate from PEM file (\(TLSError.drain() ?? "no certificate found"))")
        }
        (file.keyPEM ?? file.pem).withUnsafeBytes { pem in
            guard let bio = BIO_new_mem_buf(pem.baseAddress, Int32(pem.count)) else { return }
            defer { BIO_free(bio) }
            key = PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let privateKey = key else {
            let source = file.keyPEM == nil ? "PEM file" : "key file '\(file.path).key'"
            throw fail("\(what): unable to load SSL private key from \(source) (\(TLSError.drain() ?? "no private key found"))")
        }
        ERR_clear_error()
        guard X509_check_private_key(leafCert, privateKey) == 1 else {
            TLSError.discard()
            throw fail("\(what): inconsistencies between private key and certificate loaded from PEM file")
        }
        dh = file.pem.withUnsafeBytes { CLibEV_read_dh_params($0.baseAddress, Int32($0.count)) }
        self.leaf = leafCert
        self.chain = chain
        self.key = privateKey
        self.dhParameters = dh
        let info = TLSCertificateInfo(path: file.path, leaf: leafCert)
        self.info = info
        if file.sniFilters.isEmpty {
            var names = info.dnsNames.map { $0.lowercased() }
            if let cn = info.commonName?.lowercased(), !names.contains(cn) { names.append(cn) }
            self.names = names
        } else {
            // crt-list: positive filters name the certificate, `!name` excludes a name it has.
            let excluded = Set(file.sniFilters.filter { $0.hasPrefix("!") }.map { String($0.dropFirst()).lowercased() })
            self.names = file.sniFilters.filter { !$0.hasPrefix("!") }.map { $0.lowercased() }.filter { !excluded.contains($0) }
        }
    }

    deinit {
        X509_free(leaf)
        for c in chain { X509_free(c) }
        EVP_PKEY_free(key)
        if let dhParameters { EVP_PKEY_free(dhParameters) }
    }

    /// Installs the certificate, its chain and its key in `ctx` (`SSL_CTX *`).
    func install(in ctx: OpaquePointer, context: String) throws(ConfigError) {
        let what = "\(context): '\(file.path)'"
        guard SSL_CTX_use_certificate(ctx, leaf) == 1 else {
            throw ConfigError(file.location, "\(what): unable to use SSL certificate (\(TLSError.drain() ?? "unknown error"))")
        }
        for c in chain where CLibEV_SSL_CTX_add1_chain_cert(ctx, c) != 1 {
            throw ConfigError(file.location, "\(what): unable to add the chain certificate (\(TLSError.drain() ?? "unknown error"))")
        }
        guard SSL_CTX_use_PrivateKey(ctx, key) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
            TLSError.discard()
            throw ConfigError(file.location, "\(what): inconsistencies between private key and certificate loaded from PEM file")
        }
        if let dhParameters {
            EVP_PKEY_up_ref(dhParameters)
            if CLibEV_SSL_CTX_set0_tmp_dh_pkey(ctx, dhParameters) != 1 {
                EVP_PKEY_free(dhParameters)
                TLSError.discard()
            }
        }
    }
}

/// What `show ssl cert` prints about a certificate, read once when it is decoded.
struct TLSCertificateInfo: Sendable, Hashable {
    var path: String
    /// `/CN=…` (OpenSSL's one-line form, as HAProxy prints it).
    var subject: String
    var issuer: String
    var commonName: String?
    var dnsNames: [String]
    var notBefore: String
    var notAfter: String
    var serial: String
    /// Which live generations use this certificate (filled by `inUse`).
    var generations: [Int] = []

    init(path: String, leaf: OpaquePointer) {
        self.path = path
        subject = TLSCertificateInfo.oneLine(X509_get_subject_name(leaf))
        issuer = TLSCertificateInfo.oneLine(X509_get_issuer_name(leaf))
        commonName = TLSCertificateInfo.commonName(leaf)
        dnsNames = TLSCertificateInfo.dnsNames(leaf)
        notBefore = TLSCertificateInfo.time(X509_get0_notBefore(leaf))
        notAfter = TLSCertificateInfo.time(X509_get0_notAfter(leaf))
        serial = TLSCertificateInfo.serial(leaf)
    }

    /// `X509_NAME *` as `/C=FR/CN=…`.
    static func oneLine(_ name: OpaquePointer?) -> String {
        guard let name else { return "" }
        var buffer = [CChar](repeating: 0, count: 1024)
        return buffer.withUnsafeMutableBufferPointer { b in
            guard X509_NAME_oneline(name, b.baseAddress, Int32(b.count)) != nil else { return "" }
            return String(cString: b.baseAddress!)
        }
    }

    static func commonName(_ x509: OpaquePointer) -> String? {
        guard let name = X509_get_subject_name(x509) else { return nil }
        let index = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index), let data = X509_NAME_ENTRY_get_data(entry) else { return nil }
        return string(data)
    }

    static func dnsNames(_ x509: OpaquePointer) -> [String] {
        guard let raw = X509_get_ext_d2i(x509, NID_subject_alt_name, nil, nil) else { return [] }
        let stack = OpaquePointer(raw)
        defer { GENERAL_NAMES_free(stack) }
        var names: [String] = []
        for i in 0..<OPENSSL_sk_num(stack) {
            guard let item = OPENSSL_sk_value(stack, i) else { continue }
            let general = item.assumingMemoryBound(to: GENERAL_NAME.self)
            guard general.pointee.type == GEN_DNS, let ia5 = general.pointee.d.dNSName else { continue }
            names.append(string(ia5))
        }
        return names
    }

    static func string(_ asn1: UnsafeMutablePointer<ASN1_STRING>) -> String {
        guard let data = ASN1_STRING_get0_data(asn1) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(asn1))), as: UTF8.self)
    }

    /// `Jan  2 03:04:05 2030 GMT`, as `openssl x509 -enddate` and HAProxy print it.
    static func time(_ t: UnsafePointer<ASN1_TIME>?) -> String {
        guard let t, let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard ASN1_TIME_print(bio, t) == 1 else { return "" }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = BIO_read(bio, &buffer, Int32(buffer.count))
        return n > 0 ? String(decoding: buffer[0..<Int(n)], as: UTF8.self) : ""
    }

    static func serial(_ x509: OpaquePointer) -> String {
        guard let integer = X509_get_serialNumber(x509), let bn = ASN1_INTEGER_to_BN(integer, nil) else { return "" }
        defer { BN_free(bn) }
        guard let hex = BN_bn2hex(bn) else { return "" }
        defer { CLibEV_OPENSSL_free(hex) }
        return String(cString: hex)
    }
}

/// OpenSSL's error queue as a message.
enum TLSError {
    /// The reason of the oldest error queued (`key values mismatch`), the queue then emptied.
    static func drain() -> String? {
        let code = ERR_get_error()
        defer { ERR_clear_error() }
        guard code != 0 else { return nil }
        if let reason = ERR_reason_error_string(code) { return String(cString: reason) }
        var buffer = [CChar](repeating: 0, count: 256)
        return buffer.withUnsafeMutableBufferPointer { b in
            ERR_error_string_n(code, b.baseAddress, b.count)
            return String(cString: b.baseAddress!)
        }
    }

    static func discard() { ERR_clear_error() }
}

extension TLSCertificateInfo {
    /// HAProxy's ssl_ckch.c command, an operator's.
    static let adminCommands = [
        AdminCommand(["show", "ssl", "cert"],
                     usage: ("show ssl cert [<certfile>]", "display the SSL certificates used in memory, or the details of a file's"),
                     level: .operator_) { c in
            switch c.arguments.count {
            case 0: .text(show(c.engine, nil))
            case 1: .text(show(c.engine, c.arguments.first))
            default: .unknown
            }
        },
    ]

    /// The certificates of the live generations (NAME: only the ones whose path is NAME), each
    /// with the generations using it, newest generation's first. Loop thread.
    static func inUse(_ engine: Engine, named name: String? = nil) -> [TLSCertificateInfo] {
        var byPath: [String: TLSCertificateInfo] = [:]
        var order: [String] = []
        for g in engine.liveGenerations.reversed() {
            var contexts = Array(g.tlsContexts.values).map { $0.certificates }
            for b in g.backends.values {
                for s in b.servers {
                    if let c = s.tls?.certificate { contexts.append([c]) }
                }
            }
            for certificate in contexts.joined() {
                let path = certificate.info.path
                if let name, name != path { continue }
                if byPath[path] == nil {
                    byPath[path] = certificate.info
                    order.append(path)
                }
                if !byPath[path]!.generations.contains(g.id) { byPath[path]!.generations.insert(g.id, at: 0) }
            }
        }
        return order.map { byPath[$0]! }
    }

    /// `show ssl cert [NAME]`: without NAME the certificate files of the live generations
    /// (HAProxy's list); with NAME its subject, names, validity and the generations using it.
    static func show(_ engine: Engine, _ name: String?) -> String {
        guard let name else {
            return (["# filename"] + inUse(engine).map(\.path)).joined(separator: "\n")
        }
        guard let c = inUse(engine, named: name).first else {
            return "Can't display the certificate: Not found or the certificate is a bundle!"
        }
        var lines = [
            "Filename: \(c.path)",
            "Status: Used",
            "Serial: \(c.serial)",
            "notBefore: \(c.notBefore)",
            "notAfter: \(c.notAfter)",
        ]
        if !c.dnsNames.isEmpty { lines.append("Subject Alternative Name: " + c.dnsNames.map { "DNS:\($0)" }.joined(separator: ", ")) }
        lines.append("Subject: \(c.subject)")
        lines.append("Issuer: \(c.issuer)")
        lines.append("Generations: " + c.generations.map(String.init).joined(separator: " "))
        return lines.joined(separator: "\n")
    }
}
