import ConfigModel

/// A `server` line in one generation, bound to the state its identity carries.
final class BackendServer {
    /// The server line; `set server … addr` rewrites its address and port (the identity keeps
    /// the configured ones).
    var config: ConfigModel.Server
    unowned(unsafe) var backend: Backend!
    var state: ServerState
    /// `ssl`: connections to the server use TLS.
    var tls: TLSClientContext?
    /// Smooth weighted round-robin's running weight.
    var currentWeight = 0

    /// `carried`: the state of the same identity in the generation serving now; nil for a new one.
    init(config: ConfigModel.Server, backendName: String, carried: ServerState? = nil) {
        self.config = config
        if let carried {
            state = carried
        } else {
            state = ServerState(identity: ServerIdentity(backend: backendName, server: config))
            state.health = ServerHealth(options: config.options, now: MonotonicClock.now())
            if !config.hasAddress {
                // `init-addr none` (or no method found one): in maintenance until an address comes.
                state.hasAddress = false
                _ = state.health.enterResolutionMaintenance(reason: "no address", now: MonotonicClock.now())
            }
        }
    }

    var name: String { config.name }

    /// A session takes a slot on this server (HAProxy's scur, stot, smax).
    func takeSlot() {
        state.currentSessions += 1
        state.totalSessions += 1
        if state.currentSessions > state.maxSessions { state.maxSessions = state.currentSessions }
    }

    /// A session gives its slot back: the queues waiting for this server (its generation's and the
    /// newest one's) are served.
    func releaseSlot() {
        state.currentSessions -= 1
        backend.serveQueue()
        if let newest = state.newestBackend, newest !== backend { newest.serveQueue() }
    }
    /// The weight in effect (`set weight` changes it at runtime).
    var weight: Int { state.health.weight }
    /// UP (or starting), not in maintenance or drain, weight above 0.
    var isUsable: Bool { state.health.isUsable }
    /// A persistence cookie may still choose it (DRAIN and stopping servers included).
    var acceptsPersistentTraffic: Bool { state.health.acceptsPersistentTraffic }
    var isFull: Bool {
        guard let maxconn = config.options.maxconn, maxconn > 0 else { return false }
        return state.currentSessions >= maxconn
    }
}
