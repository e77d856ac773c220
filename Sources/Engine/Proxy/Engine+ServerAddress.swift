import ConfigModel

extension Engine {
    /// One server's new address, with the name that resolved to it (nil: not from DNS).
    struct AddressChange {
        var server: BackendServer
        var address: ServerAddress
        var name: String?
    }

    /// The one place a server's address changes at runtime, whoever changes it (`set server …
    /// addr`, the resolvers, an SRV record, the server-state file): the server's state moves
    /// (`runtimeAddress`, which every generation's line of the identity and every loop reads
    /// through `BackendServer.address`), so new connections and checks go to `new` while sessions
    /// on the old address finish there; pooled connections to the old address close on every
    /// loop; resolution maintenance ends (the name resolves again: `name`); the change is logged
    /// with the generation, in HAProxy's words (`b/s changed its IP from A to B by UPDATER`). No
    /// reload, no new generation: the identity, its counters and health carry on.
    func setAddress(of s: BackendServer, to new: ServerAddress, by updater: String, resolved name: String? = nil) {
        setAddresses([AddressChange(server: s, address: new, name: name)], by: updater)
    }

    /// The same for the servers one answer moves at once (a template's hundred).
    func setAddresses(_ changes: [AddressChange], by updater: String) {
        for change in changes {
            let s = change.server, state = s.state, new = change.address
            let old = s.address
            if old != new || !state.hasAddress {
                var line = "\(s.backend.name)/\(s.name) changed its IP from \(state.hasAddress ? "\(old.address)" : "(none)") to \(new.address)"
                if old.port != new.port { line += ", port from \(old.port.map(String.init) ?? "(none)") to \(new.port.map(String.init) ?? "(none)")" }
                report("\(line) by \(updater) (generation \(current?.id ?? s.backend.generation.id)).", level: .notice,
                       to: newestBackend(of: s).log)
                // Published before the server becomes usable again below: a loop that picks it
                // connects to `new`.
                state.runtimeAddress = new
                // Pooled connections go to the old address.
                if old != new { closeIdle(of: state) }
            }
            state.hasAddress = true
            if state.health.inResolutionMaintenance {
                healthMonitor.change(s) { $0.leaveResolutionMaintenance(name: change.name, now: MonotonicClock.now()) }
            }
        }
    }

    /// The server has no address any more (no record left for it, an error past its `hold`):
    /// resolution maintenance, so no new session and no check goes to it (the health publishes
    /// it to every loop: no loop picks the server any more); sessions already there finish. The
    /// last address stays in `runtimeAddress`, unused, until one comes. `reason` is HAProxy's (`DNS NX status`, `No IP for server`).
    func clearAddress(of s: BackendServer, reason: String) {
        let state = s.state
        guard state.hasAddress || !state.health.inResolutionMaintenance else { return }
        state.hasAddress = false
        healthMonitor.change(s) { $0.enterResolutionMaintenance(reason: reason, now: MonotonicClock.now()) }
        // Pooled connections go to the address the server no longer has, on every loop.
        closeIdle(of: state)
    }
}
