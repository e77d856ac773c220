/// What `openssl s_client` saw: the server certificate's subject, the protocol, ALPN, reuse.
public struct HandshakeReport {
    public var status: Int32
    /// Standard output, then standard error.
    public var output: String

    public var subject: String? {
        output.split(separator: "\n").first { $0.hasPrefix("subject=") }.map { String($0.dropFirst("subject=".count)) }
    }
    public var reused: Bool { output.contains("Reused, ") }
    public var alpn: String? {
        output.split(separator: "\n").first { $0.hasPrefix("ALPN protocol: ") }.map { String($0.dropFirst("ALPN protocol: ".count)) }
    }
    public var completed: Bool { output.contains("Cipher is ") && !output.contains("Cipher is (NONE)") }
}

/// `openssl s_client` against 127.0.0.1:`port`, sending `request` once the handshake is done.
/// The default request asks the server to close, so s_client ends when the answer is complete
/// (after the TLS 1.3 session tickets, which `-sess_out` needs).
public func sClient(port: UInt16, serverName: String? = nil, extra: [String] = [],
                    request: String = "GET /tls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") -> HandshakeReport {
    var args = ["s_client", "-connect", "127.0.0.1:\(port)", "-ign_eof"]
    if let serverName { args += ["-servername", serverName] } else { args += ["-noservername"] }
    args += extra
    let r = runTool("openssl", args, input: request, timeout: 20)
    return HandshakeReport(status: r.status, output: r.stdout + r.stderr)
}
