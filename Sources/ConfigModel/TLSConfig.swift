/// TLS on `bind … ssl` (termination) and `server … ssl` (origination). The Loader reads the
/// certificate and key files when it loads the configuration: their bytes belong to the generation,
/// so a reload reads them again and an open connection keeps the ones it started with.

/// TLS protocol versions, as HAProxy names them (`ssl-min-ver TLSv1.2`).
public enum TLSVersion: String, Hashable, Sendable, Comparable, CaseIterable {
    case sslv3 = "SSLv3"
    case tlsv10 = "TLSv1.0"
    case tlsv11 = "TLSv1.1"
    case tlsv12 = "TLSv1.2"
    case tlsv13 = "TLSv1.3"

    public static func < (a: TLSVersion, b: TLSVersion) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// A certificate with its chain and key as read from disk (HAProxy's layout: all in one PEM, or
/// the key in a `.key` file beside it).
public struct CertificateFile: Hashable, Sendable {
    /// The path as written (or found in a directory or a crt-list), for messages and `show ssl cert`.
    public var path: String
    public var location: SourceLocation
    /// PEM bytes: certificate(s) and, unless `keyPEM` is set, the private key.
    public var pem: [UInt8]
    /// The `.key` file's PEM bytes when the key is beside the certificate.
    public var keyPEM: [UInt8]?
    /// SNI names a crt-list line restricts the certificate to (empty: the certificate's own names).
    public var sniFilters: [String] = []

    public init(path: String, location: SourceLocation, pem: [UInt8], keyPEM: [UInt8]?) {
        self.path = path
        self.location = location
        self.pem = pem
        self.keyPEM = keyPEM
    }
}

public enum TLSVerify: String, Hashable, Sendable {
    case none
    case optional
    case required
}

/// The TLS side of a `bind … ssl` line.
public struct BindTLS: Hashable, Sendable {
    /// In order: the first is the default certificate.
    public var certificates: [CertificateFile] = []
    public var strictSNI = false
    /// `alpn h2,http/1.1`: protocols offered, in order.
    public var alpn: [String] = []
    public var ciphers: String?
    public var ciphersuites: String?
    public var curves: String?
    public var minVersion: TLSVersion?
    public var maxVersion: TLSVersion?
    /// `no-tlsv10` and friends.
    public var disabledVersions: Set<TLSVersion> = []
    public var verify: TLSVerify = .none
    public var caFile: [UInt8]?
    public var caFilePath: String?
    /// `ca-verify-file`: CAs client certificates are also checked against, not named to clients
    /// in the handshake's list of acceptable CAs (as `ca-file`'s are).
    public var caVerifyFile: [UInt8]?
    public var caVerifyFilePath: String?
    public var crlFile: [UInt8]?
    /// `no-tls-tickets`.
    public var noTickets = false
    /// `tls-ticket-keys FILE`: 48- or 80-byte keys, base64, one per line (HAProxy's format), newest last.
    public var ticketKeys: [[UInt8]]?

    public init() {}
}

/// The TLS side of a `server … ssl` line.
public struct ServerTLS: Hashable, Sendable {
    public var verify: TLSVerify = .required
    public var caFile: [UInt8]?
    public var caFilePath: String?
    /// `sni EXPR`: the server name sent (a sample expression, usually `req.hdr(host)` or a string).
    public var sni: FormatString?
    public var alpn: [String] = []
    /// `crt FILE`: a client certificate presented to the server.
    public var certificate: CertificateFile?
    public var ciphers: String?
    public var ciphersuites: String?
    public var minVersion: TLSVersion?
    public var maxVersion: TLSVersion?
    /// `check-ssl`: health checks use TLS too.
    public var checkSSL = false
    /// `check-sni NAME`: the server name health checks send over TLS (the `sni` expression is
    /// for traffic only, as HAProxy: without it a check sends none).
    public var checkSNI: String?
    /// `no-ssl-reuse`: no session resumption towards the server.
    public var noSessionReuse = false

    public init() {}
}
