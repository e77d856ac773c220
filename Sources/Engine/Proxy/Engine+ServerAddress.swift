import ConfigModel

extension Engine {
    /// One server's new address, with the name that resolved to it (nil: not from DNS).
    struct AddressChange {
        var server: BackendServer
        var address: ServerAddress
        var name: String?
    }

    /// The one place a server's address changes at runtime, whoever changes it (`set server …
    /// addr`, the resolvers, an SRV record, the server-state file): every live generation's line
    /// of the server's identity moves, so new connections and checks go to `new` while sessions on
    /// the old address finish there; pooled connections to the old address close; resolution
    /// maintenance ends (the name resolves again: `name`); the change is logged with the
    /// generation, in HAProxy's words (`b/s changed its IP from A to B by UPDATER`). No reload, no
    /// new generation: the identity, its counters and health carry on.
    func setAddress(of s: BackendServer, to new: ServerAddress, by updater: String, resolved name: String? = nil) {
        setAddresses([AddressChange(server: s, address: new, name: name)], by: updater)
    }

    /// The same for the servers one answer moves at once (a template's hundred): each live
    /// generation's backend of their name is walked once, not once per server.
    func setAddresses(_ changes: [AddressChange], by updater: String) {
        var moved: [ObjectIdentifier: ServerAddress] = [:]
        var backends = Set<String>()
        for change in changes {
            let s = change.server, state = s.state, new = change.address
            let old = ServerAddress(address: s.config.address, port: s.config.port)
            guard old != new || !state.hasAddress else { continue }
            var line = "\(s.backend.name)/\(s.name) changed its IP from \(state.hasAddress ? "\(old.address)" : "(none)") to \(new.address)"
            if old.port != new.port { line += ", port from \(old.port.map(String.init) ?? "(none)") to \(new.port.map(String.init) ?? "(none)")" }
            report("\(line) by \(updater) (generation \(current?.id ?? s.backend.generation.id)).", level: .notice,
                   to: (state.newestBackend ?? s.backend).log)
            state.runtimeAddress = new
            moved[ObjectIdentifier(state)] = new
            backends.insert(s.backend.name)
        }
        if !moved.isEmpty {
            // A server's identity belongs to one backend name: only those backends hold its lines.
            for g in liveGenerations {
                for name in backends {
                    guard let b = g.backends[name] else { continue }
                    for line in b.servers {
                        guard let to = moved[ObjectIdentifier(line.state)] else { continue }
                        line.config.address = to.address
                        line.config.port = to.port
                    }
                }
            }
        }
        for change in changes {
            let state = change.server.state
            // Pooled connections go to the old address.
            if moved[ObjectIdentifier(state)] != nil { state.closeIdle() }
            state.hasAddress = true
            if state.health.inResolutionMaintenance {
                healthMonitor.change(change.server) { $0.leaveResolutionMaintenance(name: change.name, now: MonotonicClock.now()) }
            }
        }
    }

    /// The server has no address any more (no record left for it, an error past its `hold`):
    /// resolution maintenance, so no new session and no check goes to it; sessions already there
    /// finish. `reason` is HAProxy's (`DNS NX status`, `No IP for server`).
    func clearAddress(of s: BackendServer, reason: String) {
        let state = s.state
        guard state.hasAddress || !state.health.inResolutionMaintenance else { return }
        state.hasAddress = false
        healthMonitor.change(s) { $0.enterResolutionMaintenance(reason: reason, now: MonotonicClock.now()) }
        // Pooled connections go to the address the server no longer has.
        state.closeIdle()
    }
}
