import Glibc

extension SocketEndpoint {
    /// The endpoint as a `sockaddr_in`/`sockaddr_in6` inside a `sockaddr_storage`, and its length.
    public var sockaddr: (storage: sockaddr_storage, length: socklen_t) {
        var storage = sockaddr_storage()
        switch address {
        case .v4(let a):
            withUnsafeMutableBytes(of: &storage) { raw in
                let sin = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
                sin.pointee.sin_family = sa_family_t(AF_INET)
                sin.pointee.sin_port = port.bigEndian
                sin.pointee.sin_addr.s_addr = a.bigEndian
            }
            return (storage, socklen_t(MemoryLayout<sockaddr_in>.size))
        case .v6(let b):
            withUnsafeMutableBytes(of: &storage) { raw in
                let sin6 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
                sin6.pointee.sin6_family = sa_family_t(AF_INET6)
                sin6.pointee.sin6_port = port.bigEndian
                withUnsafeMutableBytes(of: &sin6.pointee.sin6_addr) { dst in
                    for i in 0..<16 { dst[i] = b[i] }
                }
            }
            return (storage, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
    }

    /// Reads an AF_INET or AF_INET6 address; nil for any other family.
    public init?(_ storage: sockaddr_storage) {
        var storage = storage
        let parsed: SocketEndpoint? = withUnsafeBytes(of: &storage) { raw in
            switch Int32(raw.load(as: sa_family_t.self)) {
            case AF_INET:
                let sin = raw.load(as: sockaddr_in.self)
                return SocketEndpoint(address: .v4(UInt32(bigEndian: sin.sin_addr.s_addr)),
                                      port: UInt16(bigEndian: sin.sin_port))
            case AF_INET6:
                let sin6 = raw.load(as: sockaddr_in6.self)
                let bytes = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
                // An IPv4-mapped peer on a dual-stack socket is shown as IPv4, as HAProxy logs it.
                if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
                    let a = UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15])
                    return SocketEndpoint(address: .v4(a), port: UInt16(bigEndian: sin6.sin6_port))
                }
                return SocketEndpoint(address: .v6(bytes), port: UInt16(bigEndian: sin6.sin6_port))
            default:
                return nil
            }
        }
        guard let parsed else { return nil }
        self = parsed
    }
}
