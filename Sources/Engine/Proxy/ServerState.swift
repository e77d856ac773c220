import ConfigModel

/// The server behind a name: backend name, server name, what it points at and port. What a
/// reload keeps for an unchanged identity: its counters, and (with health checks) its states.
struct ServerIdentity: Hashable, Sendable {
    /// A server given by address is that address; a server known by name (`Server.fqdn`: it
    /// resolves at runtime, may start without an address, or comes from a template) is its
    /// name, so that the address DNS gives it at runtime is not part of what it is.
    enum Target: Hashable, Sendable {
        case address(IPAddress)
        case name(String)
    }

    var backend: String
    var server: String
    var target: Target
    var port: UInt16?

    /// The one place an identity is derived from a server line.
    init(backend: String, server: ConfigModel.Server) {
        self.backend = backend
        self.server = server.name
        target = server.fqdn.map(Target.name) ?? .address(server.address)
        port = server.port
    }

    /// Whether the line `server` of this identity's backend has this identity (the same as
    /// comparing with `init(backend:server:)`'s, without making one: a reload asks it of every
    /// server).
    func matches(_ server: borrowing ConfigModel.Server) -> Bool {
        guard port == server.port, self.server == server.name else { return false }
        switch target {
        case .address(let a): return server.fqdn == nil && a == server.address
        case .name(let n): return server.fqdn == n
        }
    }
}

/// Per-server state shared by every generation that has the same server identity.
final class ServerState {
    let identity: ServerIdentity
    var currentSessions = 0  // scur: across every generation, what the server sees
    var maxSessions = 0
    var totalSessions = 0
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0
    var connectionErrors = 0
    var retries = 0
    var redispatches = 0
    var queueMax = 0
    /// Times this server was chosen by the load balancer (lbtot).
    var selected = 0
    /// HTTP responses by status class (hrsp_1xx … hrsp_5xx, hrsp_other), invalid responses
    /// (eresp), and sessions cut by the client or the server in their data phase.
    var responsesByClass = [Int](repeating: 0, count: 6)
    var responseErrors = 0
    var clientAborts = 0
    var serverAborts = 0
    /// qtime/ctime/rtime/ttime averages and maxima (`Engine.account`).
    var times = StatsTimes()
    /// Loop seconds (`loop.now`) of the last session that ended on this server (lastsess); 0: none.
    var lastSession = 0.0
    /// Operational and admin state (UP/DOWN with the rise/fall counter, MAINT, DRAIN), runtime
    /// weight and last check: what the balancer reads and what a reload carries.
    var health = ServerHealth(options: ServerOptions())
    var adminMaintenance: Bool { health.inMaintenance }
    /// `set server … addr`, the resolver: where the server was moved at runtime (the identity
    /// keeps the configured address or name, so the move survives reloads that leave the server
    /// unchanged).
    var runtimeAddress: ServerAddress?
    /// False while the server has no address (resolution maintenance): what `show servers state`
    /// and the stats show instead of an address.
    var hasAddress = true
    /// `set server … fqdn`, an SRV record's target: the name the resolver follows instead of the
    /// configured one (nil: the configured one).
    var runtimeFQDN: String?
    /// The one checker running for this identity, whatever generation it checks for.
    weak var checker: HealthChecker?
    /// The backend of the newest generation using this server: freed slots wake its queue too.
    weak var newestBackend: Backend?
    /// HTTP connections to this server waiting for a next request (oldest first).
    var idleConnections: [ServerConnection] = []

    init(identity: ServerIdentity) { self.identity = identity }

    /// Connect and response times of one session on this server (ms, -1: not reached).
    @inline(__always)
    func recordTimes(queue: Int, connect: Int, response: Int, total: Int) {
        times.add(queue: queue, connect: connect, response: response, total: total)
    }

    /// `clear counters`: maxima only.
    func clearMaxima() {
        maxSessions = currentSessions
        queueMax = 0
        times.clearMaxima()
    }

    /// `clear counters all`: every counter but the gauges.
    func clearAll() {
        clearMaxima()
        totalSessions = 0; bytesIn = 0; bytesOut = 0
        connectionErrors = 0; retries = 0; redispatches = 0; selected = 0
        responsesByClass = [Int](repeating: 0, count: 6)
        responseErrors = 0; clientAborts = 0; serverAborts = 0
        times = StatsTimes()
    }
}
