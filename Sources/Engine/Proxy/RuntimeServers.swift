import ConfigModel

/// Servers added with `add server` (HAProxy 2.6's dynamic servers), by backend, in the order they
/// were added, with the state each carries. Unlike HAProxy, which loses them on reload, strata
/// keeps each in every new generation while its backend exists and the configuration does not
/// define a server of that name (the file's server then takes its place, and the runtime one is
/// forgotten).
struct RuntimeServers {
    struct Entry {
        var config: ConfigModel.Server
        let state: ServerState
    }

    private(set) var byBackend: [String: [Entry]] = [:]

    var isEmpty: Bool { byBackend.isEmpty }

    mutating func add(_ config: ConfigModel.Server, state: ServerState, backend: String) {
        byBackend[backend, default: []].append(Entry(config: config, state: state))
    }

    mutating func remove(_ server: String, backend: String) {
        byBackend[backend]?.removeAll { $0.config.name == server }
        if byBackend[backend]?.isEmpty == true { byBackend[backend] = nil }
    }

    func contains(_ server: String, backend: String) -> Bool {
        byBackend[backend]?.contains { $0.config.name == server } ?? false
    }

    /// Before `generation` is activated: each runtime server joins its backend there, with its
    /// state (activation then adopts it as any server's), and is listed for activation to look up.
    /// Returns the ones forgotten: their backend is gone or the configuration now names them.
    mutating func join(_ generation: Generation) -> [(backend: String, server: String)] {
        var forgotten: [(backend: String, server: String)] = []
        for (name, entries) in byBackend {
            guard let backend = generation.backends[name] else {
                forgotten += entries.map { (name, $0.config.name) }
                byBackend[name] = nil
                continue
            }
            var kept: [Entry] = []
            for entry in entries {
                if backend.servers.contains(where: { $0.name == entry.config.name }) {
                    forgotten.append((name, entry.config.name))
                    continue
                }
                var config = entry.config
                // An id the configuration now uses goes to the next free one.
                if backend.servers.contains(where: { $0.config.id == config.id }) {
                    config.id = RuntimeServers.freeID(in: backend)
                }
                let server = BackendServer(config: config, backendName: name, carried: entry.state)
                backend.join(server)
                generation.unresolvedServers.append(server)
                kept.append(Entry(config: config, state: entry.state))
            }
            byBackend[name] = kept.isEmpty ? nil : kept
        }
        return forgotten
    }

    /// The lowest server id the backend does not use (HAProxy's get_next_id).
    static func freeID(in backend: Backend) -> Int {
        let used = Set(backend.servers.map(\.config.id))
        var id = 1
        while used.contains(id) { id += 1 }
        return id
    }
}
