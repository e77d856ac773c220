import Foundation
import Glibc
import Testing

/// Certificates made once per test run with the `openssl` command: a CA, server certificates for
/// several names (one with a wildcard), a client certificate signed by the CA and one that is not.
/// EC P-256 keys: quick to make and to use. Each `NAME.pem` is HAProxy's layout (certificate,
/// then key); `NAME.crt` and `NAME.key` are the parts.
public final class TLSTestPKI: @unchecked Sendable {
    public let directory: String

    public static let shared = TLSTestPKI()

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

    public func path(_ name: String) -> String { "\(directory)/\(name)" }

    public func bytes(_ name: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path(name)) ?? Data()) }

    /// Copies file `name` to `target` in the same directory (a certificate a reload will replace).
    public func copy(_ name: String, to target: String) throws {
        try Data(bytes(name)).write(to: URL(fileURLWithPath: path(target)))
    }

    private func openssl(_ args: [String]) {
        let r = runTool("openssl", args)
        // Recorded in the test that first needs the certificates (in CI, where openssl must be);
        // the next ones fail on their own.
        if r.status != 0 { Issue.record("openssl \(args.joined(separator: " ")): \(r.stderr)") }
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
        _ = FileManager.default.createFile(atPath: path("\(name).ext"), contents: Data(ext.utf8))
        openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(ca).pem"), "-CAkey", path("\(ca).key"),
                 "-CAcreateserial", "-days", "30", "-extfile", path("\(name).ext"), "-out", path("\(name).crt")])
        let pem = bytes("\(name).crt") + bytes("\(name).key")
        _ = FileManager.default.createFile(atPath: path("\(name).pem"), contents: Data(pem))
    }
}
