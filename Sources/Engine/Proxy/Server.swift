import ConfigModel

/// A `server` line in one generation, bound to the state its identity carries (shared by every
/// generation and every loop that has the identity: see `ServerState`).
final class BackendServer: @unchecked Sendable {
    /// The server line, as the configuration (or `add server`) gave it, never changed once the
    /// loops have it. Where the server is now is `address`: a runtime move (`set server … addr`,
    /// DNS) goes to the state, never here, so every loop reads the line without a lock.
    var config: ConfigModel.Server
    unowned(unsafe) var backend: Backend!
    var state: ServerState
    /// `ssl`: connections to the server use TLS.
    var tls: TLSClientContext?
    /// Its place in its backend's `servers` (the balancers keep per-server state by it).
    var index = 0

    /// `carried`: the state of the same identity in the generation serving now; nil for a new one.
    init(config: ConfigModel.Server, backendName: String, carried: ServerState? = nil, loops: Int = 1) {
        self.config = config
        if let carried {
            state = carried
        } else {
            state = ServerState(identity: ServerIdentity(backend: backendName, server: config), loops: loops)
            state.health = ServerHealth(options: config.options, now: MonotonicClock.now())
            if !config.hasAddress {
                // `init-addr none` (or no method found one): in maintenance until an address comes.
                state.hasAddress = false
                _ = state.health.enterResolutionMaintenance(reason: "no address", now: MonotonicClock.now())
            }
        }
    }

    var name: String { config.name }

    /// Where the server is now: the address and port `set server … addr` (or a saved state) moved
    /// it to, else its line's. Read by any loop (one lock, per new connection).
    var address: ServerAddress { state.runtimeAddress ?? ServerAddress(address: config.address, port: config.port) }

    /// `address` with the epoch of the runtime address it was read at (see `ServerState.addressEpoch`).
    var addressAndEpoch: (address: ServerAddress, epoch: Int) {
        let (moved, epoch) = state.runtimeAddressAndEpoch()
        return (moved ?? ServerAddress(address: config.address, port: config.port), epoch)
    }

    /// A session takes a slot on this server (HAProxy's scur, stot, smax): false when the server
    /// is at its maxconn (another loop took the last slot first).
    @inline(__always)
    func takeSlot(on loop: EventLoop) -> Bool {
        guard state.takeSlot(limit: maxconn) else { return false }
        state.counters[loop].totalSessions += 1
        return true
    }

    /// A session gives its slot back: the queues waiting for this server (its generation's and the
    /// one `worker` serves now, on every loop) are served.
    func releaseSlot(on worker: Worker) {
        state.releaseSlot()
        backend.slotFreed(on: worker.loop)
        // A slot of a draining generation frees room for the current one's queue too.
        if let current = worker.current, current !== backend.generation, let newest = current.backends[backend.name] {
            newest.slotFreed(on: worker.loop)
        }
    }
    /// The weight in effect (`set weight` changes it at runtime).
    @inline(__always) var weight: Int { state.weight }
    /// UP (or starting), not in maintenance or drain, weight above 0.
    @inline(__always) var isUsable: Bool { state.isUsable }
    /// A persistence cookie may still choose it (DRAIN and stopping servers included).
    @inline(__always) var acceptsPersistentTraffic: Bool { state.acceptsPersistentTraffic }
    /// The same under the backend's `option persist` (a DOWN server too, not one in maintenance).
    @inline(__always) func acceptsPersistentTraffic(forced: Bool) -> Bool { state.acceptsPersistentTraffic(forced: forced) }
    @inline(__always) var isFull: Bool { state.isFull(limit: maxconn) }
    /// The server's maxconn now: its line's, or what its agent said since (`maxconn:N`).
    @inline(__always) var maxconn: Int? { state.maxconn(configured: config.options.maxconn) }
}
