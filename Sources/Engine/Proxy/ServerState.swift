import CLibEV
import ConfigModel
import Synchronization

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

/// Per-server state shared by every generation that has the same server identity, and by every
/// event loop. What the loops share is few and deliberate:
/// - the sessions on the server now (`currentSessions`, with `maxSessions`): one gauge every loop
///   changes with an atomic read-modify-write, so that `maxconn` holds across loops and
///   leastconn sees every loop's sessions;
/// - what the balancer reads of the health (usable, weight, persistence), published by the
///   control loop that owns `health` (checks and admin commands run there) and read with relaxed
///   loads;
/// - the runtime address (`set server … addr`, DNS), behind a lock taken once per new connection.
/// Traffic counters are per loop (`counters`), and so are the idle connection pools.
final class ServerState: @unchecked Sendable {
    let identity: ServerIdentity
    /// Per-loop traffic counters (stot, bin, bout, econ, wretr, wredis, lbtot, hrsp_*, eresp,
    /// aborts, times, lastsess).
    let counters: CounterSet
    /// HTTP connections to this server waiting for a next request, one pool per loop (a
    /// connection belongs to the loop that opened it).
    let pools: [IdlePool]
    /// currentSessions and maxSessions, written by every loop per session; on the next cache line
    /// the published health (usable, weight, persistence), read by every loop per pick and written
    /// only when health changes — apart, so that the slot writes do not evict what picks read.
    private let shared: UnsafeMutablePointer<Int>
    private static let health = LoopLocalInts.perLine
    private static let epoch = health + 4

    /// Operational and admin state (UP/DOWN with the rise/fall counter, MAINT, DRAIN), runtime
    /// weight and last check: owned by the control loop; what the balancer needs of it is
    /// published to the other loops at every change.
    var health = ServerHealth(options: ServerOptions()) {
        didSet { publishHealth() }
    }
    var adminMaintenance: Bool { health.inMaintenance }
    /// `set server … addr`, the resolver, an SRV record's port: where the server was moved at
    /// runtime (the identity keeps the configured address or name, so the move survives reloads
    /// that leave the server unchanged). Set by the control loop, read by every loop's new
    /// connections (`BackendServer.address`), hence the lock.
    var runtimeAddress: ServerAddress? {
        get { address.withLock { $0 } }
        set {
            address.withLock {
                guard $0 != newValue else { return }
                $0 = newValue
                CLibEV_store(shared + Self.epoch, CLibEV_load(shared + Self.epoch) + 1)
            }
        }
    }
    private let address = Locked<ServerAddress?>(nil)

    /// The runtime address with its epoch, read together (a new connection's).
    func runtimeAddressAndEpoch() -> (address: ServerAddress?, epoch: Int) {
        address.withLock { ($0, CLibEV_load(shared + Self.epoch)) }
    }

    /// Counts the runtime address's changes: a connection made before the latest one goes to an
    /// address the server no longer has, and is closed rather than pooled when its session ends
    /// (`ServerConnection.park`). Closing the pools on every loop (`Engine.closeIdle(of:)`) is not
    /// enough alone: a session in flight at the old address may end, and park its connection,
    /// after its loop closed its pool. Written by the control loop inside the address's lock,
    /// read with a relaxed load per park, on the health's line (written as rarely).
    var addressEpoch: Int { CLibEV_load(shared + Self.epoch) }
    /// False while the server has no address (resolution maintenance): what `show servers state`
    /// and the stats show instead of an address. The data loops never read it: what keeps them
    /// off a server without address is its health (resolution maintenance), published with it.
    /// Owned by the control loop, as the resolvers, the admin commands and the stats are.
    var hasAddress = true
    /// `set server … fqdn`, an SRV record's target: the name the resolver follows instead of the
    /// configured one (nil: the configured one). The control loop's, as `hasAddress`.
    var runtimeFQDN: String?
    /// The address epoch at which the server, offered h2 and HTTP/1.1 by ALPN, chose HTTP/1.1
    /// (-1: never): its connections are HTTP/1.1 from then on, as HAProxy follows ALPN's choice.
    let chosenHTTP1 = Atomic<Int>(-1)
    /// The one checker running for this identity, whatever generation it checks for.
    weak var checker: HealthChecker?
    /// The one agent checker running for this identity (`agent-check`).
    weak var agent: HealthChecker?

    init(identity: ServerIdentity, loops: Int = 1) {
        self.identity = identity
        counters = CounterSet(loops: loops)
        pools = (0..<max(loops, 1)).map { _ in IdlePool() }
        shared = LoopLocalInts.allocate(Self.epoch + 1)
        publishHealth()
    }

    deinit { LoopLocalInts.deallocate(shared) }

    /// scur: across every generation and loop, what the server sees.
    var currentSessions: Int { CLibEV_load(shared) }
    var maxSessions: Int { CLibEV_load(shared + 1) }

    /// Takes a slot: true unless `limit` (maxconn) sessions are on the server already, every loop
    /// counted.
    @inline(__always)
    func takeSlot(limit: Int?) -> Bool {
        var current = CLibEV_load(shared)
        if let limit, limit > 0 {
            while true {
                guard current < limit else { return false }
                if CLibEV_compare_exchange(shared, current, current + 1) != 0 { break }
                current = CLibEV_load(shared)
            }
            current += 1
        } else {
            current = CLibEV_fetch_add(shared, 1) + 1
        }
        var max = CLibEV_load(shared + 1)
        while current > max {
            if CLibEV_compare_exchange(shared + 1, max, current) != 0 { break }
            max = CLibEV_load(shared + 1)
        }
        return true
    }

    @inline(__always)
    func releaseSlot() { _ = CLibEV_fetch_add(shared, -1) }

    /// Whether every slot is taken (`limit`: the server's maxconn).
    @inline(__always)
    func isFull(limit: Int?) -> Bool {
        guard let limit, limit > 0 else { return false }
        return CLibEV_load(shared) >= limit
    }

    /// What the balancer reads, from any loop.
    var isUsable: Bool { CLibEV_load(shared + Self.health) != 0 }
    var weight: Int { CLibEV_load(shared + Self.health + 1) }
    var acceptsPersistentTraffic: Bool { CLibEV_load(shared + Self.health + 2) == 2 }
    /// `option persist`: a DOWN server not in maintenance too.
    func acceptsPersistentTraffic(forced: Bool) -> Bool {
        CLibEV_load(shared + Self.health + 2) >= (forced ? 1 : 2)
    }
    /// The maxconn an agent set (`maxconn:N`), else `configured`: published with the health
    /// (stored plus one, 0 meaning none set).
    @inline(__always)
    func maxconn(configured: Int?) -> Int? {
        let set = CLibEV_load(shared + Self.health + 3)
        return set == 0 ? configured : set - 1
    }

    private func publishHealth() {
        let usable = health.isUsable ? 1 : 0, weight = health.effectiveWeight, persistent = health.acceptsPersistentTraffic ? 2 : health.acceptsForcedPersistence ? 1 : 0
        let maxconn = health.runtimeMaxconn.map { max($0, 0) + 1 } ?? 0
        guard usable != CLibEV_load(shared + Self.health) || weight != CLibEV_load(shared + Self.health + 1)
            || persistent != CLibEV_load(shared + Self.health + 2) || maxconn != CLibEV_load(shared + Self.health + 3) else { return }
        CLibEV_store(shared + Self.health, usable)
        CLibEV_store(shared + Self.health + 1, weight)
        CLibEV_store(shared + Self.health + 2, persistent)
        CLibEV_store(shared + Self.health + 3, maxconn)
        ServerState.bumpHealthVersion()
    }

    /// Bumped after any server's published health changed (release: a loop that reads the new
    /// number reads the new health). A loop's balancing cache (`BackendShard.refresh`) is valid
    /// while the number it was built at is current: the picks of a steady farm read one integer
    /// instead of every server's health.
    nonisolated(unsafe) private static let healthVersion = LoopLocalInts.allocate(1)
    static func bumpHealthVersion() { _ = CLibEV_fetch_add_release(healthVersion, 1) }
    @inline(__always) static var currentHealthVersion: Int { CLibEV_load_acquire(healthVersion) }

    // Every loop's traffic, for readers (the statistics, the exporter).
    var totalSessions: Int { counters.totalSessions }
    var bytesIn: UInt64 { counters.bytesIn }
    var bytesOut: UInt64 { counters.bytesOut }
    var connectionErrors: Int { counters.connectionErrors }
    var responseErrors: Int { counters.responseErrors }
    var retries: Int { counters.retries }
    var redispatches: Int { counters.redispatches }
    var selected: Int { counters.selected }
    var clientAborts: Int { counters.clientAborts }
    var serverAborts: Int { counters.serverAborts }
    var queueMax: Int { counters.queueMax }
    var lastSession: Double { counters.lastSession }
    var responsesByClass: [Int] { counters.responsesByClass }
    var times: StatsTimes { counters.times }
    var idleConnections: Int { pools.reduce(0) { $0 + $1.count } }

    /// `clear counters`: maxima only.
    func clearMaxima() {
        CLibEV_store(shared + 1, currentSessions)
        counters.clearMaxima()
    }

    /// `clear counters all`: every counter but the gauges.
    func clearAll() {
        clearMaxima()
        counters.clearAll()
    }
}

/// One loop's idle connections to a server (oldest first). Touched by that loop alone; its size
/// is published for readers on other threads (srv_icur).
final class IdlePool: @unchecked Sendable {
    @exclusivity(unchecked) var connections: [ServerConnection] = [] {
        didSet { CLibEV_store(published, connections.count) }
    }
    /// HTTP/2 connections to the server (idle or carrying streams), shared by this loop's streams.
    @exclusivity(unchecked) var h2: [H2ServerConnection] = []
    private let published = LoopLocalInts.allocate(1)

    deinit { LoopLocalInts.deallocate(published) }

    /// The pool's size, from any thread.
    var count: Int { CLibEV_load(published) }
}
