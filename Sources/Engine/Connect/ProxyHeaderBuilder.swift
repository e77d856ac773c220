import ConfigModel
import Glibc
import TCPWire

/// What a server connection's PROXY header says about the stream it carries: the client's
/// address (`src`, as a PROXY header it received carried it), the address it reached (`dst`),
/// and its TLS for v2's SSL TLV and authority.
struct ProxyHeaderSource {
    var client: SocketEndpoint?
    var local: SocketEndpoint?
    var tls: TLSConnection?
}

/// The bytes `send-proxy`, `send-proxy-v2` and `proxy-v2-options` put before anything else on a
/// server connection (HAProxy's make_proxy_line). Without a source (a health check) v1 says
/// `UNKNOWN` and v2 `LOCAL`.
enum ProxyHeaderBuilder {
    static func header(_ send: SendProxy, source: ProxyHeaderSource?) -> [UInt8] {
        let src = source?.client.map(address)
        let dst = source?.local.map(address)
        let both = src != nil && dst != nil
        if send.version == 1 { return ProxyHeaderWriter.v1(source: both ? src : nil, destination: both ? dst : nil) }
        var tlvs: [ProxyHeaderWriter.TLV] = []
        guard let source, both else {
            return ProxyHeaderWriter.v2(source: nil, destination: nil, checksum: send.options.contains(.crc32c))
        }
        let tls = source.tls
        if send.options.contains(.authority), let name = tls?.serverName {
            tlvs.append(.init(type: ProxyHeaderWriter.TLV.authority, value: bytes(name)))
        }
        if send.options.contains(.ssl) {
            var client: UInt8 = 0
            var verify: UInt32 = 1
            var sub: [ProxyHeaderWriter.TLV] = []
            if let tls {
                client |= 0x01
                if let v = tls.protocolName { sub.append(.init(type: ProxyHeaderWriter.TLV.sslVersion, value: bytes(v))) }
                if tls.hasPeerCertificate {
                    client |= 0x02 | 0x04
                    verify = UInt32(truncatingIfNeeded: tls.peerVerifyResult)
                    if send.options.contains(.certCN), let dn = tls.peerName(issuer: false), let cn = commonName(dn) {
                        sub.append(.init(type: ProxyHeaderWriter.TLV.sslCN, value: cn))
                    }
                }
                if send.options.contains(.sslCipher), let c = tls.cipherName {
                    sub.append(.init(type: ProxyHeaderWriter.TLV.sslCipher, value: bytes(c)))
                }
            }
            tlvs.append(.ssl(client: client, verify: verify, sub))
        }
        return ProxyHeaderWriter.v2(source: src, destination: dst, tlvs: tlvs, checksum: send.options.contains(.crc32c))
    }

    static func address(_ e: SocketEndpoint) -> ProxyAddress {
        switch e.address {
        case .v4(let a):
            return ProxyAddress(bytes: [UInt8(a >> 24), UInt8(a >> 16 & 0xFF), UInt8(a >> 8 & 0xFF), UInt8(a & 0xFF)],
                                port: e.port)
        case .v6(let b):
            return ProxyAddress(bytes: b, port: e.port)
        }
    }

    private static func bytes(_ p: UnsafePointer<CChar>) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: p, count: strlen(p)))
    }

    /// The value of the last `CN=` of a `/C=…/CN=…` distinguished name.
    static func commonName(_ dn: UnsafeRawBufferPointer) -> [UInt8]? {
        let text = Array(dn)
        var found: [UInt8]?
        var i = 0
        while i + 3 < text.count {
            if text[i] == UInt8(ascii: "/"), text[i + 1] == UInt8(ascii: "C"), text[i + 2] == UInt8(ascii: "N"),
               text[i + 3] == UInt8(ascii: "=") {
                var j = i + 4
                while j < text.count, text[j] != UInt8(ascii: "/") { j += 1 }
                found = Array(text[(i + 4)..<j])
                i = j
                continue
            }
            i += 1
        }
        return found
    }
}
