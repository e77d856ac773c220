/// A parsed, validated and resolved configuration: the value a generation is built from.
/// Times are milliseconds, sizes bytes.
public struct Config: Hashable, Sendable {
    public var global: GlobalSettings
    /// Every `frontend`, `backend` and `listen` section, in file order.
    public var proxies: [Proxy]
    /// Every `resolvers` section, in file order.
    public var resolvers: [ResolversSection]
    /// The map files the `map*` converters name, by the path they were read at.
    public var maps: [String: MapFile] = [:]
    /// Every `cache` section, in file order.
    public var caches: [CacheSection] = []

    public init(global: GlobalSettings = GlobalSettings(), proxies: [Proxy] = [], resolvers: [ResolversSection] = []) {
        self.global = global
        self.proxies = proxies
        self.resolvers = resolvers
    }

    public func resolvers(named name: String) -> ResolversSection? { resolvers.first { $0.name == name } }
    public func cache(named name: String) -> CacheSection? { caches.first { $0.name == name } }

    public var frontends: [Proxy] { proxies.filter(\.isFrontend) }
    public var backends: [Proxy] { proxies.filter(\.isBackend) }

    public func proxy(named name: String) -> Proxy? { proxies.first { $0.name == name } }
    public func backend(named name: String) -> Proxy? { proxies.first { $0.isBackend && $0.name == name } }
}

public enum ProxyMode: String, Hashable, Sendable {
    case tcp
    case http
}

/// `frontend`, `backend` or `listen` (both at once), HAProxy's proxy capabilities.
public enum ProxyKind: String, Hashable, Sendable {
    case frontend
    case backend
    case listen
}

public struct Proxy: Hashable, Sendable {
    public var name: String
    public var kind: ProxyKind
    public var location: SourceLocation
    /// HAProxy's proxy id (`id` keyword, else position among proxies from 1).
    public var id: Int
    public var mode: ProxyMode = .tcp
    public var description: String?
    public var disabled = false

    // Frontend side.
    public var binds: [Bind] = []
    public var defaultBackend: String?
    public var defaultBackendLocation: SourceLocation?
    public var maxconn: Int?
    /// `rate-limit sessions N`: new sessions per second this frontend accepts at most.
    public var sessionRateLimit: Int?

    // Backend side.
    public var servers: [Server] = []
    public var balance: BalanceAlgorithm = .roundRobin
    public var fullconn: Int?
    public var retries = 3
    /// `option redispatch [interval]`: nil when off; -1 (HAProxy's default) redispatches on the last retry.
    public var redispatch: Int?
    /// `option persist`: a cookie (or stick table) still sends to its server while it is DOWN
    /// (not in maintenance); `option redispatch` takes over when the connect fails.
    public var persist = false
    /// `source ADDR[:PORT]`: the address the backend's connections to its servers leave from
    /// (a server's own `source` wins).
    public var source: SocketEndpoint?

    public var timeouts = Timeouts()
    public var tcpKeepAlive = TCPKeepAlive()
    public var log = ProxyLog()
    /// `mode http`: routing, rules and options (empty in TCP mode); in TCP mode its ACLs and
    /// `use_backend` rules too.
    public var http = HTTPSettings()
    /// `tcp-request` and `tcp-response` rules.
    public var tcp = TCPRules()
    /// Health checks of the backend side.
    public var checks = BackendChecks()
    /// `load-server-state-from-file` in a backend (or from `defaults`).
    public var serverStateFile: ServerStateFileMode?
    /// `server-state-file NAME` in a backend (for `local`).
    public var serverStateFileName: String?
    /// `stats enable` and friends: the stats page this proxy serves.
    public var stats: StatsPage?
    /// `server-template` lines, in order (their servers are in `servers`, at the line's location).
    public var serverTemplates: [ServerTemplate] = []
    /// `stick-table …`: the table this proxy declares (named after it).
    public var stickTable: StickTableConfig?
    /// `stick on|match|store-request` rules, in order.
    public var stickRules: [StickRule] = []

    public init(name: String, kind: ProxyKind, location: SourceLocation, id: Int) {
        self.name = name
        self.kind = kind
        self.location = location
        self.id = id
    }

    public var isFrontend: Bool { kind != .backend }
    public var isBackend: Bool { kind != .frontend }
}

public struct TCPKeepAlive: Hashable, Sendable {
    /// `option clitcpka` (or `option tcpka`): SO_KEEPALIVE on client connections.
    public var client = false
    /// `option srvtcpka` (or `option tcpka`): SO_KEEPALIVE on server connections.
    public var server = false
    public init() {}
}

public struct Timeouts: Hashable, Sendable {
    public var connect: Int?
    public var client: Int?
    public var server: Int?
    public var queue: Int?
    public var tunnel: Int?
    public var clientFin: Int?
    public var serverFin: Int?
    /// `timeout http-request`: the whole request head must arrive within it.
    public var httpRequest: Int?
    /// `timeout http-keep-alive`: how long an idle keep-alive client connection waits for the
    /// next request (`timeout http-request`, then `timeout client`, when unset).
    public var httpKeepAlive: Int?
    /// `timeout tarpit`: how long `http-request tarpit` holds a request (`timeout connect` when unset).
    public var tarpit: Int?
    public init() {}
}

public enum BalanceAlgorithm: Hashable, Sendable, CustomStringConvertible {
    case roundRobin
    case staticRoundRobin
    case leastConnections
    case first
    case source
    /// `balance uri [whole]`: a hash of the path (or the whole URI).
    case uri(whole: Bool)
    /// `balance url_param NAME`: a hash of a query parameter; round robin without it.
    case urlParameter(String)
    /// `balance hdr(NAME)`: a hash of a header's value; round robin without it.
    case header(String)
    /// `balance random[(N)]`: N servers drawn at random by weight, the least loaded of them
    /// taken (HAProxy's default N is 2, the "power of two choices").
    case random(draws: Int)
    /// `balance hash EXPR`: a hash of the sample's value (mode http; round robin when it has none).
    case hash(SampleExpression, source: String)

    /// A hash of the request or the source chooses the server (HAProxy's "hash" kind): the same
    /// key always goes to the same server while the farm is unchanged.
    public var isHash: Bool {
        switch self {
        case .source, .uri, .urlParameter, .header, .hash: true
        case .roundRobin, .staticRoundRobin, .leastConnections, .first, .random: false
        }
    }

    public var description: String {
        switch self {
        case .roundRobin: "roundrobin"
        case .staticRoundRobin: "static-rr"
        case .leastConnections: "leastconn"
        case .first: "first"
        case .source: "source"
        case .uri(let whole): whole ? "uri whole" : "uri"
        case .urlParameter(let name): "url_param \(name)"
        case .header(let name): "hdr(\(name))"
        case .random(let draws): draws == 2 ? "random" : "random(\(draws))"
        case .hash(_, let source): "hash \(source)"
        }
    }
}

/// One address a frontend listens on. `bind a:1,b:2 opts` gives one `Bind` per address.
public struct Bind: Hashable, Sendable {
    public var location: SourceLocation
    public var endpoint: SocketEndpoint
    /// `v6only`: the IPv6 socket refuses IPv4-mapped connections; `v4v6` forces dual stack.
    public var v6only = false
    public var backlog: Int?
    public var name: String?
    public var interface: String?
    /// False with the global `noreuseport`.
    public var reusePort = true
    /// `ssl crt …`: the listener terminates TLS.
    public var tls: BindTLS?
    /// `accept-proxy`: every connection starts with a PROXY protocol header (v1 or v2).
    public var acceptProxy = false
    /// `tfo`: TCP Fast Open accepted on the listener (a queue of the bind's backlog).
    public var fastOpen = false
    /// `proto h2`: every connection speaks HTTP/2 from its first byte (h2c with prior knowledge,
    /// or h2 over TLS whatever ALPN chose).
    public var forcesH2 = false

    public init(location: SourceLocation, endpoint: SocketEndpoint) {
        self.location = location
        self.endpoint = endpoint
    }
}

/// The options a `server` line (and `default-server`) may carry.
public struct ServerOptions: Hashable, Sendable {
    public var weight = 1
    /// `slowstart T` (ms): the weight grows back over T after the server comes UP again.
    public var slowstart: Int?
    /// `maxqueue N`: HAProxy's bound on a server's own queue. strata keeps no queue per server (a
    /// session waits in its backend's queue for any server, and one persistent to a full server is
    /// balanced at once, as HAProxy does when the bound is reached): shown as `qlimit`.
    public var maxqueue: Int?
    public var maxconn: Int?
    public var backup = false
    public var disabled = false
    /// `cookie VALUE`: the value cookie persistence gives this server.
    public var cookie: String?
    /// `check`, `inter`, `rise`, `fall`, … (health checks).
    public var check = ServerCheck()
    /// `ssl …`: connections to the server use TLS.
    public var tls: ServerTLS?
    /// `resolvers`, `resolve-*`, `init-addr`: how the server's name is resolved.
    public var resolution: ServerResolution {
        get { resolutionStorage.first ?? ServerResolution() }
        set { resolutionStorage = newValue == ServerResolution() ? [] : [newValue] }
    }
    /// Zero or one element: 8 bytes in every server line (copied several times per server on
    /// each reload) rather than the whole value, which most servers never set.
    private var resolutionStorage: [ServerResolution] = []
    /// `resolvers NAME`, read without making the default resolution (checks of every server).
    public var resolvers: String? { resolutionStorage.first?.resolvers }
    /// `send-proxy*`: each connection starts with a PROXY protocol header.
    public var sendProxy: SendProxy?
    /// `proto h2`: HTTP/2 to the server whatever ALPN says (h2c on a clear connection).
    public var forcesH2 = false
    /// `source ADDR[:PORT]` on the server line: where its connections leave from (port 0: any).
    public var source: SocketEndpoint?
    /// HTTP/2 to the server: `proto h2`, or `ssl … alpn` offering h2 (strata then needs the server
    /// to choose it).
    public var speaksH2: Bool { forcesH2 || (tls?.alpn.contains("h2") ?? false) }
    public init() {}
}

public struct Server: Hashable, Sendable {
    public var name: String
    public var location: SourceLocation
    /// HAProxy's server id: position in its backend from 1.
    public var id: Int
    /// The address as written (a host name stays readable in logs and `show servers state`).
    public var host: String
    public var address: IPAddress
    /// nil when the line gives no port: the connection goes to the client's destination port.
    public var port: UInt16?
    public var options: ServerOptions
    /// The name the server follows when it is known by name rather than by address: it resolves
    /// at runtime (`resolvers`), may start without an address (`init-addr`, `-dr`), or comes from
    /// a template. An SRV label (`_http._tcp.app`) for a template filled from SRV records. nil
    /// for a server given by address, or by a name resolved once at load.
    public var fqdn: String?
    /// False when no `init-addr` method found an address: the server starts in resolution
    /// maintenance and `address` means nothing until the resolver or the admin socket gives one.
    public var hasAddress = true

    public init(name: String, location: SourceLocation, id: Int, host: String, address: IPAddress, port: UInt16?,
                options: ServerOptions) {
        self.name = name
        self.location = location
        self.id = id
        self.host = host
        self.address = address
        self.port = port
        self.options = options
    }
}

/// What a proxy logs and where.
public struct ProxyLog: Hashable, Sendable {
    public enum Format: Hashable, Sendable {
        /// No `option tcplog`: HAProxy's short "Connect from … to …" line.
        case connect
        case tcplog
        /// `log-format FORMAT` (the last of `log-format`, `option tcplog` and `option httplog`
        /// wins, as in HAProxy; `option httplog` is `HTTPSettings.httpLog`).
        case custom(LogFormatSpec)
    }
    public var format: Format = .connect
    public var targets: [LogTarget] = []
    public var dontLogNull = false
    /// `log-format-sd FORMAT`: the structured-data part of an RFC 5424 line.
    public var structuredDataFormat: LogFormatSpec?
    /// `error-log-format FORMAT`: the line of a connection that failed before carrying a request
    /// (handshake errors); the proxy's format otherwise.
    public var errorFormat: LogFormatSpec?
    /// `option log-separate-errors`: a session with an error logs at `err` instead of `info`.
    public var separateErrors = false
    /// `option logasap`: log when the response starts (HTTP) or the connection is established
    /// (TCP), timers and byte counts then prefixed with `+`.
    public var logAsap = false
    /// `option dontlog-normal`: only sessions with an error are logged.
    public var dontLogNormal = false
    /// `log-tag TAG`: the syslog tag of the proxy's lines (the Loader fills in the global one
    /// when the proxy has none); nil: strata's name.
    public var tag: String?
    public init() {}
}

/// `log TARGET [len N] [format F] FACILITY [LEVEL [MINLEVEL]]`.
public struct LogTarget: Hashable, Sendable {
    public enum Destination: Hashable, Sendable {
        case stdout
        case stderr
        case udp(SocketEndpoint)
        case unixDatagram(path: String)
    }
    public enum Format: String, Hashable, Sendable {
        case raw
        case rfc3164
        case rfc5424
        case short
    }
    public var location: SourceLocation
    public var destination: Destination
    public var maxLength = 1024
    public var format: Format = .rfc3164
    /// Syslog facility number (local0 = 16).
    public var facility: Int
    /// The most verbose level sent (syslog numbering: emerg 0 … debug 7).
    public var level = 7
    public var minLevel = 0

    public init(location: SourceLocation, destination: Destination, facility: Int) {
        self.location = location
        self.destination = destination
        self.facility = facility
    }
}

public enum AccessLevel: Int, Hashable, Sendable, Comparable, CustomStringConvertible {
    case user = 0
    case operator_ = 1
    case admin = 2

    public static func < (a: AccessLevel, b: AccessLevel) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .user: "user"
        case .operator_: "operator"
        case .admin: "admin"
        }
    }
}

/// `stats socket PATH|ipv4@ADDR:PORT [mode OCTAL] [level L] [maxconn N]`.
public struct StatsSocket: Hashable, Sendable {
    public enum Address: Hashable, Sendable {
        case unix(path: String)
        case tcp(SocketEndpoint)
    }
    public var location: SourceLocation
    public var address: Address
    public var mode: UInt32?
    public var level: AccessLevel = .operator_
    /// `maxconn N`: connections served at once; 0 or unset is HAProxy's limit of its stats
    /// frontend, 10. Past it the socket stops accepting until one closes.
    public var maxconn = 0
    /// `user`/`uid` and `group`/`gid`: the socket file's owner and group (a UNIX socket).
    public var owner: UInt32?
    public var group: UInt32?
    /// `expose-fd listeners`: `_getsocks` hands every listening socket to a new strata (`-x`).
    public var exposeListeners = false

    /// HAProxy's `maxconn` of the frontend that serves its stats sockets.
    public static let defaultMaxconn = 10

    public var connectionLimit: Int { maxconn > 0 ? maxconn : StatsSocket.defaultMaxconn }

    public init(location: SourceLocation, address: Address) {
        self.location = location
        self.address = address
    }
}

public struct GlobalSettings: Hashable, Sendable {
    public var maxconn: Int?
    /// `localpeer NAME`: this host's name in `peers` sections (default: the host name).
    public var localPeer: String?
    /// `maxconnrate N` and `maxsessrate N`: connections and sessions per second the process accepts at most.
    public var maxConnectionRate: Int?
    public var maxSessionRate: Int?
    /// `ulimit-n N`: the file descriptor limit strata raises its soft limit to (never lowers it).
    public var fileLimit: Int?
    public var daemon = false
    public var pidfile: String?
    public var logTargets: [LogTarget] = []
    /// `log-tag TAG`: the syslog tag of the process's lines and of every proxy without its own.
    public var logTag: String?
    /// `nbthread N`: event loops (threads). Nil: one per CPU the process may run on.
    public var nbthread: Int?
    /// `cpu-map` lines, in order: which CPUs each loop may run on.
    public var cpuMaps: [CPUMap] = []
    public var description: String?
    public var uid: UInt32?
    public var gid: UInt32?
    /// `chroot DIR`: the serving process's root once its privileges are dropped.
    public var chroot: String?
    /// `set-dumpable`: the process may dump core after it changed uid (PR_SET_DUMPABLE), with
    /// the core size raised to its hard limit.
    public var setDumpable = false
    /// `quiet`: no warning printed at start or by `-c` (HAProxy's `-q`).
    public var quiet = false
    /// `zero-warning`: a configuration that gives a warning is refused, at start and at reloads.
    public var zeroWarning = false
    public var hardStopAfter: Int?
    /// strata's own: how many generations may be alive at once (default 8).
    public var maxGenerations = 8
    public var statsSockets: [StatsSocket] = []
    /// `stats timeout`: idle admin connections are closed after it (HAProxy's default 10s).
    public var statsTimeout = 10_000
    public var noReusePort = false
    public var tls = GlobalTLS()
    /// `tune.bufsize`: the size of an I/O buffer, and so the largest request or response head.
    public var bufferSize = 16384
    /// `tune.maxrewrite N`: room kept in a buffer for rewrites, so a request head may take
    /// `bufferSize` minus this (HAProxy caps it at half the buffer). nil: no room kept.
    public var maxRewrite: Int?
    /// The largest request head a client may send.
    public var requestHeadLimit: Int { bufferSize - min(maxRewrite ?? 0, bufferSize / 2) }
    /// HTTP compression: `tune.comp.maxlevel` (zlib's level, HAProxy's default 1),
    /// `tune.zlib.memlevel`, `tune.zlib.windowsize`, `maxcompcpuusage` (percent, 100: no limit).
    public var compressionLevel = 1
    public var zlibMemLevel = 8
    public var zlibWindowSize = 15
    public var maxCompressionCPUUsage = 100
    /// `tune.http.maxhdr`: the most header lines a message may have.
    public var maxHeaders = 101
    /// `tune.h2.*`: what strata's HTTP/2 listeners announce in their SETTINGS.
    public var h2 = HTTP2Settings()
    /// `tune.rcvbuf.client|server`, `tune.sndbuf.client|server`: the kernel's socket buffer sizes
    /// (bytes) forced on client and server connections (nil: the kernel's own sizing).
    public var socketBuffers = SocketBufferSizes()
    /// `spread-checks N`: a random ±N% on check intervals (0-50).
    public var spreadChecks = 0
    /// `server-state-file PATH` and `server-state-base DIR` (global).
    public var serverStateFile: String?
    public var serverStateBase: String?
    /// `tune.ssl.cachesize` (sessions) and `tune.ssl.lifetime` (ms).
    public var sslCacheSize = 20000
    public var sslLifetime = 300_000
    /// Where each global keyword was written, for "cannot change on reload" errors.
    public var locations: [String: SourceLocation] = [:]

    public init() {}
}

public struct DHParamFile: Hashable, Sendable {
    public var path: String
    public var contents: [UInt8]
    public var location: SourceLocation
    public init(path: String, contents: [UInt8], location: SourceLocation) {
        self.path = path
        self.contents = contents
        self.location = location
    }
}

/// Global TLS defaults, parsed and validated now, used by the TLS issue.
public struct GlobalTLS: Hashable, Sendable {
    public var bindCiphers: String?
    public var bindCiphersuites: String?
    public var bindOptions: [String] = []
    public var serverCiphers: String?
    public var serverCiphersuites: String?
    public var serverOptions: [String] = []
    public var serverVerify: String?
    public var defaultDHParam: Int?
    /// `ssl-dh-param-file`: DH parameters for every bind whose certificate has none of its own
    /// (read when the configuration loads: the bytes belong to the generation).
    public var dhParamFile: DHParamFile?
    public var crtBase: String?
    public var caBase: String?
    public init() {}
}

/// What identifies a listening socket: everything the kernel cannot change on a live socket.
/// Two binds with equal keys share one socket across generations; any difference binds anew.
public struct ListenerKey: Hashable, Sendable, CustomStringConvertible {
    public var endpoint: SocketEndpoint
    public var v6only: Bool
    public var interface: String?
    public var backlog: Int
    public var reusePort: Bool

    public init(endpoint: SocketEndpoint, v6only: Bool, interface: String?, backlog: Int, reusePort: Bool) {
        self.endpoint = endpoint
        self.v6only = v6only
        self.interface = interface
        self.backlog = backlog
        self.reusePort = reusePort
    }

    /// A listener's backlog when its `bind` names none (HAProxy's default is maxconn; strata
    /// uses a fixed one so that changing maxconn does not rebind every socket).
    public static let defaultBacklog = 1024

    /// The key of a `bind` line: the one place it is derived, so the reload builder, the engine and
    /// the rollback agree on it (keys that differ would rebind every socket on every reload).
    public init(_ bind: Bind) {
        self.init(endpoint: bind.endpoint, v6only: bind.v6only, interface: bind.interface,
                  backlog: bind.backlog ?? ListenerKey.defaultBacklog, reusePort: bind.reusePort)
    }

    public var description: String {
        var s = endpoint.description
        if v6only { s += " v6only" }
        if let interface { s += " interface \(interface)" }
        s += " backlog \(backlog)"
        if !reusePort { s += " noreuseport" }
        return s
    }
}

/// `cpu-map [auto:]PROCESS[/THREADS] CPUS…` (HAProxy's): pins event loops to CPUs. strata is one
/// process, so the process set is 1 (or all/odd/even, which contain it).
public struct CPUMap: Hashable, Sendable {
    /// A set of thread (loop) numbers, counted from 1.
    public enum ThreadSet: Hashable, Sendable {
        case all, odd, even
        case ranges([ClosedRange<Int>])

        public func contains(_ thread: Int) -> Bool {
            switch self {
            case .all: true
            case .odd: thread % 2 == 1
            case .even: thread % 2 == 0
            case .ranges(let r): r.contains { $0.contains(thread) }
            }
        }
    }

    public var location: SourceLocation
    /// `auto:`: the threads and the CPUs are paired one to one, in order.
    public var auto: Bool
    public var threads: ThreadSet
    /// The CPU numbers, in order.
    public var cpus: [Int]

    public init(location: SourceLocation, auto: Bool, threads: ThreadSet, cpus: [Int]) {
        self.location = location
        self.auto = auto
        self.threads = threads
        self.cpus = cpus
    }

    /// The CPUs each of `threads` loops may run on (empty: not pinned), the later lines winning
    /// for a thread as in HAProxy; or the first line that pairs a different number of threads
    /// and CPUs with `auto:`.
    public static func cpuSets(_ maps: [CPUMap], threads: Int) -> Result<[[Int]], CPUMapError> {
        var sets = [[Int]](repeating: [], count: threads)
        for map in maps {
            let chosen = (1...max(threads, 1)).filter { $0 <= threads && map.threads.contains($0) }
            if map.auto {
                guard chosen.count == map.cpus.count else {
                    return .failure(CPUMapError(location: map.location, threads: chosen.count, cpus: map.cpus.count))
                }
                for (t, cpu) in zip(chosen, map.cpus) { sets[t - 1] = [cpu] }
            } else {
                for t in chosen { sets[t - 1] = map.cpus }
            }
        }
        return .success(sets)
    }
}

public struct CPUMapError: Error, Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var threads: Int
    public var cpus: Int

    public var description: String {
        "\(location): 'cpu-map auto:' pairs threads and CPUs one to one, but it names \(threads) thread\(threads == 1 ? "" : "s") and \(cpus) CPU\(cpus == 1 ? "" : "s")"
    }
}

/// HAProxy's `tune.h2.*` for the client side: the SETTINGS a listener announces, and the limits
/// strata holds each HTTP/2 connection to.
public struct HTTP2Settings: Hashable, Sendable {
    /// `tune.h2.header-table-size` (HPACK dynamic table, bytes; at most 65536 as HAProxy).
    public var headerTableSize = 4096
    /// `tune.h2.initial-window-size` (bytes a client may send on a stream before a WINDOW_UPDATE).
    public var initialWindowSize = 65535
    /// `tune.h2.max-concurrent-streams`.
    public var maxConcurrentStreams = 100
    /// `tune.h2.max-frame-size` (16384 to 16777215).
    public var maxFrameSize = 16384
    public init() {}
}

/// `tune.rcvbuf.*` and `tune.sndbuf.*` (SO_RCVBUF, SO_SNDBUF).
public struct SocketBufferSizes: Hashable, Sendable {
    public var clientReceive: Int?
    public var clientSend: Int?
    public var serverReceive: Int?
    public var serverSend: Int?
    public init() {}
}
