/// A `resolvers NAME` section: the nameservers a server's name is asked of at runtime, and how
/// often, how long answers and errors count (HAProxy's configuration.txt §5.3.2). Times are ms.
public struct ResolversSection: Hashable, Sendable {
    public struct Nameserver: Hashable, Sendable {
        /// `nameserver ID ADDR:PORT`: the ID names it in `show resolvers` and the metrics.
        public var id: String
        public var endpoint: SocketEndpoint
        /// `tcp@ADDR:PORT`: queries go over TCP (UDP otherwise).
        public var tcp: Bool
        /// Its line, or `/etc/resolv.conf:N` for one `parse-resolv-conf` added.
        public var location: SourceLocation

        public init(id: String, endpoint: SocketEndpoint, tcp: Bool, location: SourceLocation) {
            self.id = id
            self.endpoint = endpoint
            self.tcp = tcp
            self.location = location
        }
    }

    /// `hold STATUS PERIOD`: how long a valid answer outweighs an error of that kind (`nx`,
    /// `refused`, `timeout`, `other`), how long a valid answer is reused for a new requester
    /// (`valid`), how long a record missing from the answers is still used (`obsolete`).
    public struct Hold: Hashable, Sendable {
        public var nx = 30_000
        public var refused = 30_000
        public var timeout = 30_000
        public var other = 30_000
        public var valid = 10_000
        public var obsolete = 0
        public init() {}
    }

    public var name: String
    public var location: SourceLocation
    public var nameservers: [Nameserver] = []
    /// `accepted_payload_size N`: the EDNS0 UDP payload announced (512 to 65535).
    public var acceptedPayloadSize = 512
    /// `resolve_retries N`: queries sent for one resolution before it gives up.
    public var resolveRetries = 3
    /// `timeout resolve`: between two resolutions of a name; `timeout retry`: between two
    /// queries of a resolution without a valid answer.
    public var timeoutResolve = 1000
    public var timeoutRetry = 1000
    public var hold = Hold()

    public init(name: String, location: SourceLocation) {
        self.name = name
        self.location = location
    }
}

/// `init-addr` methods, tried in order when a server's name is first resolved.
public enum InitAddrMethod: Hashable, Sendable, CustomStringConvertible {
    /// The address the server-state file saved (`load-server-state-from-file`).
    case last
    /// The system's resolver (getaddrinfo), at load.
    case libc
    /// No address: the server starts in resolution maintenance until one is found.
    case none
    /// This address.
    case address(IPAddress)

    public var description: String {
        switch self {
        case .last: "last"
        case .libc: "libc"
        case .none: "none"
        case .address(let a): "\(a)"
        }
    }
}

public enum AddressFamily: String, Hashable, Sendable {
    case ipv4
    case ipv6
}

/// How a server's name is resolved: `resolvers`, `resolve-prefer`, `resolve-net`, `resolve-opts`
/// and `init-addr` (server lines and `default-server`).
public struct ServerResolution: Hashable, Sendable {
    /// `resolvers NAME`: the section that resolves the server's name at runtime.
    public var resolvers: String?
    /// `resolve-prefer`: the family asked first and chosen when both answer (HAProxy: ipv6).
    public var prefer: AddressFamily = .ipv6
    /// `resolve-net`: addresses in these networks are chosen first.
    public var networks: [IPNetwork] = []
    /// `resolve-opts allow-dup-ip`: two servers of a backend may take one address.
    public var allowDuplicateAddress = false
    /// `resolve-opts ignore-weight`: an SRV record's weight does not set the server's.
    public var ignoreWeight = false
    /// `init-addr`: nil is HAProxy's default (`last,libc`, and `none` after them with `resolvers`).
    public var initAddr: [InitAddrMethod]?

    public init() {}

    /// The methods tried at load, in order.
    public var initAddrMethods: [InitAddrMethod] {
        initAddr ?? (resolvers == nil ? [.last, .libc] : [.last, .libc, .none])
    }
}

/// `server-template PREFIX NUM|FIRST-LAST FQDN[:PORT]`: the servers of one template line.
public struct ServerTemplate: Hashable, Sendable {
    public var prefix: String
    public var first: Int
    public var last: Int
    public var location: SourceLocation

    public init(prefix: String, first: Int, last: Int, location: SourceLocation) {
        self.prefix = prefix
        self.first = first
        self.last = last
        self.location = location
    }
}

extension IPNetwork {
    /// Whether `address` is in this network (never across families).
    public func contains(_ address: IPAddress) -> Bool {
        switch (self.address, address) {
        case (.v4(let n), .v4(let a)):
            guard prefixLength > 0 else { return true }
            let mask: UInt32 = prefixLength >= 32 ? .max : ~(UInt32.max >> UInt32(prefixLength))
            return n & mask == a & mask
        case (.v6(let n), .v6(let a)):
            var bits = prefixLength
            for i in 0..<16 where bits > 0 {
                let mask: UInt8 = bits >= 8 ? 0xff : ~(0xff >> UInt8(bits))
                if n[i] & mask != a[i] & mask { return false }
                bits -= 8
            }
            return true
        default:
            return false
        }
    }
}
