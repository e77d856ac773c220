import ConfigModel
import StrataTestSupport

extension TLSTestPKI {
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
