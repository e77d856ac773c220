#if canImport(Glibc)
import Glibc
#endif
import ConfigModel

/// TLS (issue 7): `bind … ssl crt …` into `Bind.tls` and `server … ssl …` into
/// `ServerOptions.tls`. Every file is read now (certificates, keys, CA and CRL files, ticket
/// keys): their bytes belong to the generation, and a missing or wrong one is `file:line`.
extension KeywordReader {
    /// The options of `bind` that belong to TLS (a bind line with any of them goes through
    /// `bindTLSOption`).
    static let bindTLSOptions: Set<String> = [
        "ssl", "crt", "crt-list", "strict-sni", "alpn", "ciphers", "ciphersuites", "curves", "ssl-min-ver",
        "ssl-max-ver", "no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13", "verify", "ca-file",
        "ca-verify-file", "crl-file", "no-tls-tickets", "tls-ticket-keys",
    ]

    /// The options of `server` / `default-server` that belong to TLS.
    static let serverTLSOptions: Set<String> = [
        "ssl", "no-ssl", "verify", "ca-file", "sni", "alpn", "check-ssl", "no-check-ssl", "check-sni", "crt", "no-ssl-reuse",
        "ssl-reuse", "ciphers", "ciphersuites", "ssl-min-ver", "ssl-max-ver",
    ]

    static let tlsVersionNames = KeywordLine.list(TLSVersion.allCases.map(\.rawValue))

    /// A TLS option of a bind line at `args[i]`, into `tls` (made on first use). `i` ends on the
    /// option's last word. `ssl` sets `enabled`.
    func bindTLSOption(_ option: String, _ line: KeywordLine, at i: inout Int, tls: inout BindTLS, enabled: inout Bool)
        throws(ConfigError)
    {
        func value() throws(ConfigError) -> String {
            guard let v = line.optionalArgument(i + 1) else { throw line.error("'\(option)' on bind expects a value") }
            i += 1
            return v
        }
        switch option {
        case "ssl": enabled = true
        case "crt":
            let path = try value()
            tls.certificates += try certificates(path, line: line, what: "'crt'")
        case "crt-list":
            tls.certificates += try certificateList(try value(), line: line)
        case "strict-sni": tls.strictSNI = true
        case "alpn": tls.alpn = try alpn(try value(), line: line)
        case "ciphers": tls.ciphers = try cipherText(try value(), option: option, line: line)
        case "ciphersuites": tls.ciphersuites = try cipherText(try value(), option: option, line: line)
        case "curves": tls.curves = try cipherText(try value(), option: option, line: line)
        case "ssl-min-ver": tls.minVersion = try tlsVersion(try value(), option: option, line: line)
        case "ssl-max-ver": tls.maxVersion = try tlsVersion(try value(), option: option, line: line)
        case "no-sslv3": tls.disabledVersions.insert(.sslv3)
        case "no-tlsv10": tls.disabledVersions.insert(.tlsv10)
        case "no-tlsv11": tls.disabledVersions.insert(.tlsv11)
        case "no-tlsv12": tls.disabledVersions.insert(.tlsv12)
        case "no-tlsv13": tls.disabledVersions.insert(.tlsv13)
        case "verify":
            let text = try value()
            guard let verify = TLSVerify(rawValue: text) else {
                throw line.error("'verify' on bind expects none, optional or required, got '\(text)'")
            }
            tls.verify = verify
        case "ca-file":
            let path = try value()
            tls.caFile = try pemFile(path, base: globalTLSBases.ca, line: line, what: "'ca-file'", marker: "CERTIFICATE",
                                     missing: "no certificate")
            tls.caFilePath = path
        case "ca-verify-file":
            let path = try value()
            tls.caVerifyFile = try pemFile(path, base: globalTLSBases.ca, line: line, what: "'ca-verify-file'",
                                           marker: "CERTIFICATE", missing: "no certificate")
            tls.caVerifyFilePath = path
        case "crl-file":
            tls.crlFile = try pemFile(try value(), base: globalTLSBases.ca, line: line, what: "'crl-file'",
                                      marker: "X509 CRL", missing: "no CRL")
        case "no-tls-tickets": tls.noTickets = true
        case "tls-ticket-keys":
            tls.ticketKeys = try ticketKeys(try value(), line: line)
        default:
            throw line.error("'\(option)' is not a TLS option of bind")
        }
    }

    /// What a bind line's TLS options must agree on, once they are all read.
    func finishBindTLS(_ tls: BindTLS, enabled: Bool, line: KeywordLine) throws(ConfigError) {
        guard enabled else {
            throw line.error("TLS options on bind without 'ssl': the listener would not use TLS (add 'ssl')")
        }
        guard !tls.certificates.isEmpty else {
            throw line.error("'ssl' on bind needs a certificate ('crt PEM', 'crt DIR' or 'crt-list FILE')")
        }
        if tls.verify != .none && tls.caFile == nil && tls.caVerifyFile == nil {
            throw line.error("'verify \(tls.verify.rawValue)' on bind needs 'ca-file' (the CAs client certificates are checked against)")
        }
        if let min = tls.minVersion, let max = tls.maxVersion, min > max {
            throw line.error("'ssl-min-ver \(min.rawValue)' is above 'ssl-max-ver \(max.rawValue)'")
        }
    }

    /// A TLS option of a server line; `tls` starts from the default-server's settings.
    func serverTLSOption(_ option: String, _ line: KeywordLine, at i: inout Int, tls: inout ServerTLS,
                         enabled: inout Bool, verifySet: inout Bool) throws(ConfigError)
    {
        func value() throws(ConfigError) -> String {
            guard let v = line.optionalArgument(i + 1) else { throw line.error("'\(option)' on server expects a value") }
            i += 1
            return v
        }
        switch option {
        case "ssl": enabled = true
        case "no-ssl": enabled = false
        case "verify":
            let text = try value()
            guard text == "none" || text == "required" else {
                throw line.error("'verify' on server expects none or required, got '\(text)'")
            }
            tls.verify = TLSVerify(rawValue: text)!
            verifySet = true
        case "ca-file":
            let path = try value()
            tls.caFile = try pemFile(path, base: globalTLSBases.ca, line: line, what: "'ca-file'", marker: "CERTIFICATE",
                                     missing: "no certificate")
            tls.caFilePath = path
        case "sni":
            tls.sni = try sni(try value(), line: line)
        case "alpn": tls.alpn = try alpn(try value(), line: line)
        case "check-ssl": tls.checkSSL = true
        case "no-check-ssl": tls.checkSSL = false
        case "check-sni":
            let name = try value()
            guard !name.isEmpty, name.utf8.count <= 255, !name.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) else {
                throw line.error("'check-sni' expects a host name, got '\(name)'")
            }
            tls.checkSNI = name
        case "crt":
            let path = try value()
            let files = try certificates(path, line: line, what: "'crt'", allowDirectory: false)
            tls.certificate = files.first
        case "no-ssl-reuse": tls.noSessionReuse = true
        case "ssl-reuse": tls.noSessionReuse = false
        case "ciphers": tls.ciphers = try cipherText(try value(), option: option, line: line)
        case "ciphersuites": tls.ciphersuites = try cipherText(try value(), option: option, line: line)
        case "ssl-min-ver": tls.minVersion = try tlsVersion(try value(), option: option, line: line)
        case "ssl-max-ver": tls.maxVersion = try tlsVersion(try value(), option: option, line: line)
        default:
            throw line.error("'\(option)' is not a TLS option of server")
        }
    }

    // MARK: Files

    /// `crt-base` and `ca-base` as the global section set them: read through the shared paths
    /// state (the global section is normally first; a later one still applies to the lines after).
    var globalTLSBases: (crt: String?, ca: String?) { (paths.crtBase, paths.caBase) }

    /// `path` with a base directory (`crt-base`, `ca-base`) when relative, then `default-path`.
    private func resolve(_ path: String, base: String?, line: KeywordLine) -> String {
        let based = path.hasPrefix("/") ? path : (base.map { LoadPaths.join($0, path) } ?? path)
        return paths.resolve(based, from: line.location)
    }

    /// The certificate files `crt PATH` names: one PEM, or a directory's files in lexical order
    /// (without the reserved `.key`, `.issuer`, `.ocsp`, `.sctl` ones and dot files, HAProxy's rule).
    private func certificates(_ path: String, line: KeywordLine, what: String, allowDirectory: Bool = true)
        throws(ConfigError) -> [CertificateFile]
    {
        let resolved = resolve(path, base: globalTLSBases.crt, line: line)
        if allowDirectory, case .success(let names?) = paths.source.listDirectory(resolved) {
            let reserved = [".key", ".issuer", ".ocsp", ".sctl"]
            let files = names
                .filter { name in !name.hasPrefix(".") && !reserved.contains { name.hasSuffix($0) } }
                .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            var result: [CertificateFile] = []
            for name in files {
                result.append(try certificate(LoadPaths.join(path, name), resolved: LoadPaths.join(resolved, name),
                                              line: line, what: what))
            }
            guard !result.isEmpty else { throw line.error("\(what): directory '\(path)' has no certificate file") }
            return result
        }
        return [try certificate(path, resolved: resolved, line: line, what: what)]
    }

    /// One PEM file: certificate(s), chain and key, or the key in `PATH.key` beside it.
    private func certificate(_ path: String, resolved: String, line: KeywordLine, what: String) throws(ConfigError)
        -> CertificateFile
    {
        let pem: [UInt8]
        switch paths.read(resolved, .tls) {
        case .success(let bytes): pem = bytes
        case .failure(let reason): throw line.error("\(what): cannot read '\(path)': \(reason)")
        }
        guard KeywordReader.contains(pem, "-----BEGIN CERTIFICATE-----") || KeywordReader.contains(pem, "-----BEGIN TRUSTED CERTIFICATE-----") else {
            throw line.error("\(what): '\(path)' has no certificate (expected a PEM '-----BEGIN CERTIFICATE-----' block)")
        }
        var keyPEM: [UInt8]?
        if !KeywordReader.hasPrivateKey(pem) {
            switch paths.read(resolved + ".key", .tls) {
            case .success(let bytes):
                guard KeywordReader.hasPrivateKey(bytes) else {
                    throw line.error("\(what): '\(path).key' has no private key")
                }
                keyPEM = bytes
            case .failure(let problem) where problem.errno == ENOENT:
                throw line.error("\(what): '\(path)' has no private key (put it in the same file, or in '\(path).key')")
            case .failure(let problem):
                throw line.error("\(what): cannot read '\(path).key': \(problem)")
            }
        }
        return CertificateFile(path: path, location: line.location, pem: pem, keyPEM: keyPEM)
    }

    /// `crt-list FILE`: one certificate per line, `PEM [SNI-FILTER…]`; `#` comments and blank
    /// lines skipped. Per-certificate options in brackets are not supported yet.
    private func certificateList(_ path: String, line: KeywordLine) throws(ConfigError) -> [CertificateFile] {
        // The list itself is not under crt-base (HAProxy's rule); the certificates it names are.
        let resolved = resolve(path, base: nil, line: line)
        let text: [UInt8]
        switch paths.read(resolved, .tls) {
        case .success(let bytes): text = bytes
        case .failure(let reason): throw line.error("'crt-list': cannot read '\(path)': \(reason)")
        }
        var result: [CertificateFile] = []
        var number = 0
        for raw in text.split(separator: 0x0A, omittingEmptySubsequences: false) {
            number += 1
            var entry = String(decoding: raw, as: UTF8.self)
            if let hash = entry.firstIndex(of: "#") { entry = String(entry[..<hash]) }
            let words = entry.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            guard let file = words.first else { continue }
            if words.contains(where: { $0.hasPrefix("[") }) {
                throw line.error("'crt-list': '\(path)' line \(number): per-certificate options ('[…]') are not supported yet")
            }
            let what = "'crt-list' '\(path)' line \(number)"
            var certificate = try certificate(file, resolved: resolve(file, base: globalTLSBases.crt, line: line), line: line,
                                              what: what)
            certificate.sniFilters = Array(words.dropFirst())
            result.append(certificate)
        }
        guard !result.isEmpty else { throw line.error("'crt-list': '\(path)' lists no certificate") }
        return result
    }

    /// A CA or CRL file: PEM with at least one `-----BEGIN MARKER-----` block.
    private func pemFile(_ path: String, base: String?, line: KeywordLine, what: String, marker: String, missing: String)
        throws(ConfigError) -> [UInt8]
    {
        if path.hasPrefix("@") { throw line.error("\(what): '\(path)' is not supported yet (name a PEM file)") }
        switch paths.read(resolve(path, base: base, line: line), .tls) {
        case .success(let bytes):
            guard KeywordReader.contains(bytes, "-----BEGIN \(marker)-----") else {
                throw line.error("\(what): '\(path)' has \(missing) (expected a PEM '-----BEGIN \(marker)-----' block)")
            }
            return bytes
        case .failure(let reason):
            throw line.error("\(what): cannot read '\(path)': \(reason)")
        }
    }

    /// `tls-ticket-keys FILE`: base64 keys of 48 or 80 bytes, one per line, all the same size,
    /// at least 3 (HAProxy's rule: the last three decrypt, the one before the last encrypts).
    private func ticketKeys(_ path: String, line: KeywordLine) throws(ConfigError) -> [[UInt8]] {
        let text: [UInt8]
        switch paths.read(resolve(path, base: nil, line: line), .ticketKeys) {
        case .success(let bytes): text = bytes
        case .failure(let reason): throw line.error("'tls-ticket-keys': cannot read '\(path)': \(reason)")
        }
        var keys: [[UInt8]] = []
        var number = 0
        for raw in text.split(separator: 0x0A, omittingEmptySubsequences: false) {
            number += 1
            let trimmed = raw.filter { $0 != 0x0D && $0 != 0x20 && $0 != 0x09 }
            if trimmed.isEmpty || trimmed.first == UInt8(ascii: "#") { continue }
            guard let key = KeywordReader.base64(trimmed), key.count == 48 || key.count == 80 else {
                throw line.error("'tls-ticket-keys': '\(path)' line \(number) is not a base64 key of 48 or 80 bytes")
            }
            if let first = keys.first, first.count != key.count {
                throw line.error("'tls-ticket-keys': '\(path)' mixes keys of \(first.count) and \(key.count) bytes")
            }
            keys.append(key)
        }
        guard keys.count >= 3 else {
            throw line.error("'tls-ticket-keys': '\(path)' has \(keys.count) key\(keys.count == 1 ? "" : "s"), at least 3 are needed")
        }
        return keys
    }

    // MARK: Values

    private func alpn(_ text: String, line: KeywordLine) throws(ConfigError) -> [String] {
        let protocols = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard protocols.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 255 }) else {
            throw line.error("'alpn' expects protocol names separated by commas (for example h2,http/1.1), got '\(text)'")
        }
        return protocols
    }

    private func cipherText(_ text: String, option: String, line: KeywordLine) throws(ConfigError) -> String {
        guard KeywordReader.isOpenSSLList(text, cipherList: option == "ciphers") else {
            throw line.error("'\(option)' expects an OpenSSL list, got '\(text)'")
        }
        return text
    }

    /// A word OpenSSL may read as a list. A TLS 1.2 cipher list also separates its items with `;`
    /// and spaces (OpenSSL accepts `ECDHE+AESGCM;`, as HAProxy passes it on); TLS 1.3 suites and
    /// curves are split on `:` only, and refuse the others.
    static func isOpenSSLList(_ text: String, cipherList: Bool) -> Bool {
        let separators = cipherList ? "-_+:!@=,.; " : "-_+:!@=,."
        return !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || separators.contains($0)) }
    }

    private func tlsVersion(_ text: String, option: String, line: KeywordLine) throws(ConfigError) -> TLSVersion {
        guard let version = TLSVersion(rawValue: text) else {
            throw line.error("'\(option)' expects \(KeywordReader.tlsVersionNames), got '\(text)'")
        }
        return version
    }

    /// `sni EXPR`: `str(NAME)` is a constant name; a fetch is evaluated per request.
    private func sni(_ text: String, line: KeywordLine) throws(ConfigError) -> FormatString {
        if text.hasPrefix("str("), text.hasSuffix(")") {
            let name = String(text.dropFirst(4).dropLast())
            guard !name.isEmpty else { throw line.error("'sni' expects a name in str(NAME)") }
            return FormatString(parts: [.literal(name)], source: text)
        }
        do throws(ConfigError) {
            let expression = try SampleParser.sampleForFormat(text, context: .httpRequest)
            return FormatString(parts: [.sample(expression)], source: text)
        } catch {
            throw line.error("'sni': \(error.message)")
        }
    }

    // MARK: Bytes

    static func contains(_ bytes: [UInt8], _ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard bytes.count >= needle.count, let first = needle.first else { return false }
        var i = 0
        while i <= bytes.count - needle.count {
            if bytes[i] == first && bytes[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }

    /// `-----BEGIN … PRIVATE KEY-----` (PKCS#8, RSA, EC, DSA; an encrypted key cannot be loaded).
    static func hasPrivateKey(_ pem: [UInt8]) -> Bool {
        ["-----BEGIN PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----",
         "-----BEGIN DSA PRIVATE KEY-----"].contains { contains(pem, $0) }
    }

    static func base64(_ text: [UInt8]) -> [UInt8]? {
        func value(_ c: UInt8) -> UInt32? {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt32(c - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): 62
            case UInt8(ascii: "/"): 63
            default: nil
            }
        }
        var body = text[...]
        var padding = 0
        while body.last == UInt8(ascii: "=") { body = body.dropLast(); padding += 1 }
        guard padding <= 2, (body.count + padding) % 4 == 0 else { return nil }
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for c in body {
            guard let v = value(c) else { return nil }
            buffer = buffer << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return out
    }
}
