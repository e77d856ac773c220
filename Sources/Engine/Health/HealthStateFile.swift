import ConfigModel

extension Engine {
    /// `load-server-state-from-file` when the process starts: each saved state (read and matched
    /// to the configuration by the Loader's `ServerStateFile`) is applied to its server of the
    /// current generation, before the loop runs and so before any traffic or check result. Later
    /// generations carry the state in the process and never read the file. On the loop's thread.
    public func restoreServerStates(_ states: [SavedServerState]) {
        guard let current, !states.isEmpty else { return }
        var servers: [String: [String: BackendServer]] = [:]
        for saved in states {
            if servers[saved.backend] == nil {
                guard let backend = current.backends[saved.backend] else { continue }
                servers[saved.backend] = Dictionary(backend.servers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            }
            guard let server = servers[saved.backend]?[saved.server] else { continue }
            healthMonitor.restore(server, saved)
        }
    }
}
