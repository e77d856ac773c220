/// How many file descriptors a configuration's global `maxconn` needs: HAProxy's `maxsock`,
/// counted from what strata opens. Per connection a client socket and a server socket; one per
/// listener, per health check in flight (a checked server), per admin socket and per log socket;
/// and 64 for the process itself (stdio, epoll, the loop's wake-ups, a reload reading its files,
/// admin clients), the margin the engine also keeps when it derives maxconn from the limit.
public struct FileDescriptorNeeds: Hashable, Sendable {
    public var maxconn: Int
    /// Below this, connections at maxconn fail: an accept or a connect gets EMFILE.
    public var required: Int
    /// With splice pipes in TCP mode: HAProxy's default of one pipe (two fds) per four
    /// connections. A TCP session without a pipe copies through a buffer instead, so these are
    /// asked for, not required.
    public var wanted: Int

    public static let margin = 64

    /// Nil without a global `maxconn` (the engine then derives one from the limit).
    public init?(_ config: Config) {
        guard let maxconn = config.global.maxconn else { return nil }
        var listeners = 0, checks = 0, tcp = false
        var logs = Set(config.global.logTargets.map(\.destination))
        // Indexed: `for proxy in proxies` copies every Proxy (dozens of references).
        let proxies = config.proxies
        for p in proxies.indices where !proxies[p].disabled {
            if proxies[p].isFrontend {
                listeners += proxies[p].binds.count
                if proxies[p].mode == .tcp { tcp = true }
            }
            if proxies[p].isBackend {
                for s in proxies[p].servers.indices where proxies[p].servers[s].options.check.enabled { checks += 1 }
            }
            for target in proxies[p].log.targets { logs.insert(target.destination) }
        }
        let fixed = listeners + checks + config.global.statsSockets.count + logs.count + FileDescriptorNeeds.margin
        self.maxconn = maxconn
        required = 2 * maxconn + fixed
        wanted = required + (tcp ? 2 * (maxconn / 4) : 0)
    }
}
