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
        for proxy in config.proxies where !proxy.disabled {
            if proxy.isFrontend {
                listeners += proxy.binds.count
                if proxy.mode == .tcp { tcp = true }
            }
            if proxy.isBackend { checks += proxy.servers.count(where: { $0.options.check.enabled }) }
            for target in proxy.log.targets { logs.insert(target.destination) }
        }
        let fixed = listeners + checks + config.global.statsSockets.count + logs.count + FileDescriptorNeeds.margin
        self.maxconn = maxconn
        required = 2 * maxconn + fixed
        wanted = required + (tcp ? 2 * (maxconn / 4) : 0)
    }
}
