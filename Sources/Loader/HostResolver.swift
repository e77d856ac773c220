#if canImport(Glibc)
import Glibc
#endif
import ConfigModel

/// Turns a host name into an address at load time (HAProxy's default `init-addr last,libc`:
/// the libc resolver, once, when the configuration is read). Injectable so that tests need no DNS.
public struct HostResolver: Sendable {
    /// nil when the name does not resolve.
    public var resolve: @Sendable (String) -> IPAddress?

    public init(resolve: @escaping @Sendable (String) -> IPAddress?) {
        self.resolve = resolve
    }

    /// getaddrinfo. An IPv4 answer is preferred when there is one, because HAProxy's libc path asks
    /// gethostbyname (IPv4) first: `localhost` is then 127.0.0.1 in both, not ::1.
    public static let system = HostResolver { name in
        // RFC 6761: resolvers should answer names under .invalid negatively at once, so a check
        // never waits on DNS for them (the fixtures use such names).
        let lowered = name.lowercased()
        if lowered == "invalid" || lowered.hasSuffix(".invalid") || lowered.hasSuffix(".invalid.") { return nil }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(list) }
        var v6: IPAddress?
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            if let sa = info.pointee.ai_addr {
                if info.pointee.ai_family == AF_INET {
                    let sin = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in.self)
                    return .v4(UInt32(bigEndian: sin.sin_addr.s_addr))
                }
                if info.pointee.ai_family == AF_INET6, v6 == nil {
                    let sin6 = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in6.self)
                    v6 = .v6(withUnsafeBytes(of: sin6.sin6_addr) { Array($0) })
                }
            }
            entry = info.pointee.ai_next
        }
        return v6
    }

    /// Answers from a table only: for tests.
    public static func table(_ entries: [String: IPAddress]) -> HostResolver {
        HostResolver { entries[$0] }
    }
}
