import ConfigModel

/// The server behind a name: backend name, server name, address and port. What a reload keeps
/// for an unchanged identity: its counters, and (with health checks) its states.
struct ServerIdentity: Hashable, Sendable {
    var backend: String
    var server: String
    var address: IPAddress
    var port: UInt16?
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
    /// `set server … addr`: where the admin socket moved the server (the identity keeps the
    /// configured address, so the move survives reloads that leave the server unchanged).
    var runtimeAddress: ServerAddress?
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
