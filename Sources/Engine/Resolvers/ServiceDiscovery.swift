import ConfigModel

/// Servers whose address, or whose existence, changes at runtime without a reload: the ones
/// that follow a name through a `resolvers` section (a name, or an SRV label filling a
/// template's servers), and the ones added and deleted with `add server` / `del server`.
///
/// It runs on the control loop, and changes a server only through the engine's address entry
/// points (`Engine.setAddress`, `clearAddress`), which move the server's state (every live
/// generation and every loop reads the address through it) and its health (published to every
/// loop): no reload, no new generation, the server's identity, counters and health carry on.
/// `add server` and `del server` hand each data loop its backend's new list of servers
/// (`Backend.add`, `remove`).
final class ServiceDiscovery {
    unowned(unsafe) let engine: Engine
    /// Runtime `resolvers` sections by name, and their names in configuration order.
    private(set) var sections: [String: ResolverSection] = [:]
    private(set) var sectionOrder: [String] = []
    var runtimeServers = RuntimeServers()

    init(engine: Engine) { self.engine = engine }

    // MARK: generations

    /// Before `generation`'s counters and states are adopted: the servers added at runtime join
    /// it (see RuntimeServers).
    func prepare(_ generation: Generation) {
        guard !runtimeServers.isEmpty else { return }
        for (backend, server) in runtimeServers.join(generation) {
            engine.report("server \(backend)/\(server) added at runtime is not kept: \(generation.backends[backend] == nil ? "its backend is gone" : "the configuration defines a server of that name")")
        }
    }

    /// `generation` became current (`previous` was): the sections follow its configuration, the
    /// servers known by name keep the address the runtime gave them, and each name is asked of
    /// its section for the servers that follow it now.
    func activate(_ generation: Generation, previous: Generation?) {
        let config = generation.config.config
        guard !config.resolvers.isEmpty || !sections.isEmpty || generation.hasNamedServers || !runtimeServers.isEmpty else { return }
        var wanted = Set<String>()
        for section in config.resolvers {
            wanted.insert(section.name)
            if let existing = sections[section.name] {
                existing.update(section)
            } else {
                sections[section.name] = ResolverSection(config: section, loop: engine.loop, discovery: self)
            }
        }
        for (name, section) in sections where !wanted.contains(name) {
            section.close()
            sections[name] = nil
        }
        sectionOrder = config.resolvers.map(\.name)
        if let previous { carryAddresses(generation, from: previous) }
        refreshRequesters()
    }


    /// A reload kept these servers' identities. The address the runtime gave one (the resolver,
    /// the socket: `runtimeAddress`) was applied with its state; when nothing at runtime moved
    /// it, a server that follows its name keeps the address it had, and one that does not takes
    /// what its `init-addr` found at this load (leaving resolution maintenance if it was in it),
    /// or keeps its address when this load found none.
    private func carryAddresses(_ generation: Generation, from previous: Generation) {
        var before: [ObjectIdentifier: BackendServer] = [:]
        for b in previous.backends.values { for s in b.servers where s.config.fqdn != nil { before[ObjectIdentifier(s.state)] = s } }
        for b in generation.backends.values {
            for s in b.servers where s.config.fqdn != nil && s.state.runtimeAddress == nil {
                guard let old = before[ObjectIdentifier(s.state)] else {
                    // A server this reload adds without an address (`init-addr none`, `-dr`): said
                    // once, as the start's warnings say it.
                    if !s.state.hasAddress && s.config.options.resolution.resolvers == nil {
                        engine.report("Server \(b.name)/\(s.name) starts in maintenance: no address for '\(s.config.fqdn!)'",
                                      level: .warning, to: b.log)
                    }
                    continue
                }
                let follows = s.config.options.resolution.resolvers != nil
                let had = old.address
                if s.state.hasAddress {
                    if follows || !s.config.hasAddress, had != s.address {
                        engine.move(s, to: had)
                    }
                } else if s.config.hasAddress && !follows {
                    engine.setAddress(of: s, to: ServerAddress(address: s.config.address, port: s.config.port), by: "init-addr",
                                      resolved: s.config.fqdn)
                }
            }
        }
    }

    /// Which servers of the current generation follow which name, section by section: a server
    /// with `resolvers` follows its name (or the one `set server … fqdn` gave it); a template's
    /// server of an SRV label follows the label, and the target of the SRV record it holds.
    /// Resolutions nobody follows any more stop; new ones start at once; a new follower of a name
    /// answered less than `hold valid` ago takes its records at once.
    func refreshRequesters() {
        var wanted: [String: [Resolution.Key: [BackendServer]]] = [:]
        if let current = engine.current {
            for proxy in current.config.config.proxies where proxy.isBackend {
                guard let backend = current.backends[proxy.name] else { continue }
                for s in backend.servers {
                    guard let fqdn = s.config.fqdn, let name = s.config.options.resolution.resolvers, sections[name] != nil else { continue }
                    let family: DNSQueryType = s.config.options.resolution.prefer == .ipv4 ? .a : .aaaa
                    if fqdn.hasPrefix("_") {
                        wanted[name, default: [:]][Resolution.Key(name: fqdn.lowercased(), type: .srv), default: []].append(s)
                        if let target = s.state.runtimeFQDN {
                            wanted[name, default: [:]][Resolution.Key(name: target, type: family), default: []].append(s)
                        }
                    } else {
                        let followed = (s.state.runtimeFQDN ?? fqdn).lowercased()
                        wanted[name, default: [:]][Resolution.Key(name: followed, type: family), default: []].append(s)
                    }
                }
            }
        }
        for (name, section) in sections {
            let keys = wanted[name] ?? [:]
            for (key, resolution) in section.resolutions where keys[key] == nil {
                resolution.close()
                section.resolutions[key] = nil
            }
            for (key, requesters) in keys {
                if let resolution = section.resolutions[key] {
                    let before = Set(resolution.requesters.map { ObjectIdentifier($0) })
                    resolution.requesters = requesters
                    let followers = Set(requesters.map { ObjectIdentifier($0.state) })
                    resolution.heldAddresses = resolution.heldAddresses.filter { followers.contains($0.key) }
                    resolution.heldServices = resolution.heldServices.filter { followers.contains($0.key) }
                    guard requesters.contains(where: { !before.contains(ObjectIdentifier($0)) }) else { continue }
                    if resolution.isFresh {
                        apply(resolution, by: nil)
                    } else {
                        resolution.start()
                    }
                } else {
                    let resolution = Resolution(key: key, section: section)
                    resolution.requesters = requesters
                    section.resolutions[key] = resolution
                    resolution.start()
                }
            }
        }
    }

    // MARK: answers

    /// A valid answer from `channel`.
    func resolved(_ resolution: Resolution, by channel: NameserverChannel) {
        apply(resolution, by: channel)
    }

    private func apply(_ resolution: Resolution, by channel: NameserverChannel?) {
        let updater = resolution.answeredBy.isEmpty ? "DNS cache" : resolution.answeredBy
        if resolution.isSRV {
            if applyServices(resolution) { refreshRequesters() }
            return
        }
        for group in byBackend(resolution.requesters) {
            let servers = group.map { s in
                AddressAssignment.Server(
                    current: s.state.hasAddress ? s.address.address : nil,
                    held: resolution.heldAddresses[ObjectIdentifier(s.state)],
                    prefer: s.config.options.resolution.prefer, networks: s.config.options.resolution.networks,
                    // Two SRV records may name one host on two ports: each is a server.
                    allowDuplicate: s.config.options.resolution.allowDuplicateAddress || s.state.runtimeFQDN != nil && s.config.fqdn?.hasPrefix("_") == true)
            }
            var changes: [Engine.AddressChange] = []
            for (s, choice) in zip(group, AddressAssignment.assign(records: resolution.addresses, servers: servers)) {
                let id = ObjectIdentifier(s.state)
                switch choice {
                case .keep(let address), .take(let address):
                    resolution.heldAddresses[id] = address
                    let now = s.address
                    if !s.state.hasAddress || now.address != address {
                        changes.append(Engine.AddressChange(server: s, address: ServerAddress(address: address, port: now.port),
                                                            name: resolution.key.name))
                        channel?.counters.update += 1
                    }
                case .none:
                    resolution.heldAddresses[id] = nil
                    engine.clearAddress(of: s, reason: "No IP for server")
                }
            }
            if !changes.isEmpty { engine.setAddresses(changes, by: updater) }
        }
    }

    /// An SRV answer: each server of a template holds a record (its target, port and weight) or
    /// is free. Returns whether a server's target changed (the names followed change).
    private func applyServices(_ resolution: Resolution) -> Bool {
        var changed = false
        for group in byBackend(resolution.requesters) {
            let held = group.map { resolution.heldServices[ObjectIdentifier($0.state)] }
            for (s, choice) in zip(group, ServiceAssignment.assign(records: resolution.services, held: held)) {
                let id = ObjectIdentifier(s.state)
                switch choice {
                case .keep(let record):
                    resolution.heldServices[id] = record
                    applyWeight(record, to: s)
                case .take(let record):
                    resolution.heldServices[id] = record
                    let old = s.state.runtimeFQDN
                    if s.state.hasAddress && old != record.target { engine.clearAddress(of: s, reason: "entry removed from SRV record") }
                    s.state.runtimeFQDN = record.target
                    engine.report("\(s.backend.name)/\(s.name) changed its FQDN from \(old ?? "(null)") to \(record.target) by 'SRV record'",
                                  level: .notice, to: engine.newestBackend(of: s).log)
                    let now = s.address
                    if now.port != record.port {
                        engine.move(s, to: ServerAddress(address: now.address, port: record.port))
                    }
                    applyWeight(record, to: s)
                    changed = true
                case .release:
                    resolution.heldServices[id] = nil
                    s.state.runtimeFQDN = nil
                    engine.clearAddress(of: s, reason: "entry removed from SRV record")
                    changed = true
                case .free:
                    break
                }
            }
        }
        return changed
    }

    /// HAProxy maps an SRV weight (0-65535) to a server weight (0-256) so that 0 stays 0.
    private func applyWeight(_ record: SRVRecord, to s: BackendServer) {
        guard !s.config.options.resolution.ignoreWeight else { return }
        let weight = (Int(record.weight) + 255) / 256
        guard s.state.health.weight != weight else { return }
        engine.healthMonitor.change(s) { h in
            h.setWeight(weight)
            return nil
        }
    }

    /// Every nameserver failed: past the error's `hold`, the servers following the name lose the
    /// address it gave them (resolution maintenance), and a template's servers their SRV records.
    func failed(_ resolution: Resolution) {
        guard resolution.holdExpired else { return }
        let reason = resolution.status.maintenanceReason
        var changed = false
        for s in resolution.requesters {
            if resolution.isSRV {
                guard s.state.runtimeFQDN != nil else { continue }
                s.state.runtimeFQDN = nil
                changed = true
            }
            engine.clearAddress(of: s, reason: reason)
        }
        resolution.forgetRecords()
        if changed { refreshRequesters() }
    }

    /// `servers` grouped by backend, each group in order (a duplicate address is a matter within
    /// one backend).
    private func byBackend(_ servers: [BackendServer]) -> [[BackendServer]] {
        var order: [ObjectIdentifier] = []
        var groups: [ObjectIdentifier: [BackendServer]] = [:]
        for s in servers {
            let id = ObjectIdentifier(s.backend)
            if groups[id] == nil { order.append(id) }
            groups[id, default: []].append(s)
        }
        return order.map { groups[$0]! }
    }

    // MARK: runtime commands

    /// `set server B/S fqdn NAME`: the server follows another name (HAProxy's rules: only a
    /// server with `resolvers`, not one filled from SRV records).
    func setFQDN(_ s: BackendServer, to name: String) -> Result<String, ServerAdminError> {
        guard s.config.options.resolution.resolvers != nil, s.config.fqdn != nil else {
            return .failure(ServerAdminError("set server <b>/<s> fqdn failed because no resolution is configured."))
        }
        if s.config.fqdn?.hasPrefix("_") == true {
            return .failure(ServerAdminError("set server <b>/<s> fqdn failed because SRV resolution is configured."))
        }
        let current = s.state.runtimeFQDN ?? s.config.fqdn ?? ""
        let by = " by 'stats socket command'"
        if name.lowercased() == current.lowercased() { return .success("no need to change the FDQN" + by) }
        guard name.utf8.count <= 255, !name.isEmpty, name.utf8.allSatisfy(ServiceDiscovery.isDomainByte) else {
            return .failure(ServerAdminError("invalid fqdn '\(name)'" + by))
        }
        s.state.runtimeFQDN = name
        let line = "\(s.backend.name)/\(s.name) changed its FQDN from \(current) to \(name)"
        engine.report(line + by, level: .notice, to: engine.newestBackend(of: s).log)
        refreshRequesters()
        return .success(line + by)
    }

    static func isDomainByte(_ b: UInt8) -> Bool {
        (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 45 || b == 46 || b == 95
    }

    /// `add server B/S …` with the server its words describe (the daemon reads them as a server
    /// line, without `default-server`). HAProxy 2.6's rules and answers: a backend with a dynamic
    /// algorithm, a name not in use; the server starts in maintenance, its checks disabled.
    func addServer(_ config: ConfigModel.Server, backend name: String) -> Result<String, ServerAdminError> {
        guard let backend = engine.current?.backends[name] else { return .failure(ServerAdminError("No such backend.")) }
        switch (backend.proxy.balance, backend.proxy.http.hashType) {
        case (.roundRobin, _), (.leastConnections, _), (.first, _), (.random, _): break
        case (let b, .consistent) where b.isHash: break
        default:
            return .failure(ServerAdminError("Backend must use a dynamic load balancing to support dynamic servers."))
        }
        guard !backend.servers.contains(where: { $0.name == config.name }) else {
            return .failure(ServerAdminError("Already exists a server with the same name in backend."))
        }
        var config = config
        if config.id == 0 { config.id = RuntimeServers.freeID(in: backend) }
        let server = BackendServer(config: config, backendName: name, loops: engine.workerLoops.count)
        // HAProxy starts a dynamic server in maintenance, its checks off until `enable health`,
        // its agent off until `enable agent`.
        _ = server.state.health.enterMaintenance(now: MonotonicClock.now())
        server.state.health.setChecksEnabled(false)
        server.state.health.setAgentEnabled(false)
        backend.add(server, engine: engine)
        engine.serverStates[server.state.identity] = server.state
        runtimeServers.add(config, state: server.state, backend: name)
        if config.options.check.enabled || config.options.check.agent.enabled, let current = engine.current {
            engine.healthMonitor.startChecking(server, for: current)
        }
        engine.report("New server \(name)/\(config.name) registered.", level: .notice, to: backend.log)
        if config.fqdn != nil { refreshRequesters() }
        return .success("New server registered.")
    }

    /// `del server B/S`: only a server added at runtime (a configuration server goes with a reload
    /// that drops its line), in maintenance, with no session, queued request or idle connection.
    func deleteServer(_ s: BackendServer) -> Result<String, ServerAdminError> {
        let backend = s.backend!
        guard runtimeServers.contains(s.name, backend: backend.name) else {
            return .failure(ServerAdminError("Only servers added at runtime can be deleted (a server of the configuration goes with a reload that removes its line)."))
        }
        guard s.state.health.inMaintenance else {
            return .failure(ServerAdminError("Only servers in maintenance mode can be deleted."))
        }
        // Each loop's own count of its pooled connections, read on its thread: the ones the
        // maintenance closed (posted to every loop before this command) are gone by then.
        let state = UncheckedSendable(s.state)
        let idle = engine.onEveryLoop { worker in state.value.pools[worker.index].connections.count }.reduce(0, +)
        guard s.state.currentSessions == 0, idle == 0 else {
            return .failure(ServerAdminError("Server still has connections attached to it, cannot remove it."))
        }
        engine.healthMonitor.stopChecking(s.state.identity)
        backend.remove(s, engine: engine)
        runtimeServers.remove(s.name, backend: backend.name)
        if engine.serverStates[s.state.identity] === s.state { engine.serverStates[s.state.identity] = nil }
        if s.config.fqdn != nil { refreshRequesters() }
        engine.report("Server \(backend.name)/\(s.name) deleted.", level: .notice, to: backend.log)
        return .success("Server deleted.")
    }
}

extension Engine {
    /// `add server BACKEND/NAME …` once the daemon has read its words into `server` (the engine
    /// parses no configuration text): HAProxy's answer, `New server registered.` or why not.
    public func addServer(_ server: ConfigModel.Server, backend: String) -> String {
        if let name = server.options.resolution.resolvers, serviceDiscovery.sections[name] == nil {
            return "unable to find resolvers section '\(name)'"
        }
        switch serviceDiscovery.addServer(server, backend: backend) {
        case .success(let text): return text
        case .failure(let error): return error.message
        }
    }
}
