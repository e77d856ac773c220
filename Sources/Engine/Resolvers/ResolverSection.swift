import ConfigModel

/// A `resolvers` section at runtime: a channel per nameserver, and the names its servers follow
/// (a Resolution each). Kept across reloads while the section keeps its name: a reload that
/// changes its nameservers or settings makes new channels (queries in flight start again) and
/// keeps the records, the resolutions and each nameserver's counters.
final class ResolverSection {
    private(set) var config: ResolversSection
    unowned(unsafe) let loop: EventLoop
    weak var discovery: ServiceDiscovery?
    private(set) var channels: [NameserverChannel] = []
    var resolutions: [Resolution.Key: Resolution] = [:]

    init(config: ResolversSection, loop: EventLoop, discovery: ServiceDiscovery) {
        self.config = config
        self.loop = loop
        self.discovery = discovery
        makeChannels(carrying: [:])
    }

    /// The section as a new configuration has it.
    func update(_ config: ResolversSection) {
        guard config != self.config else { return }
        var counters: [String: NameserverCounters] = [:]
        for c in channels { counters[c.nameserver.id] = c.counters }
        for c in channels { c.close() }
        self.config = config
        makeChannels(carrying: counters)
        // Queries in flight were cancelled with their channels: ask again.
        for r in resolutions.values { r.restart() }
    }

    private func makeChannels(carrying counters: [String: NameserverCounters]) {
        channels = config.nameservers.compactMap { ns in
            let c = NameserverChannel(nameserver: ns, section: config, loop: loop)
            if let saved = counters[ns.id] { c?.counters = saved }
            if c == nil { discovery?.engine.report("resolvers \(config.name): cannot make a DNS channel for nameserver \(ns.id)", level: .err) }
            return c
        }
    }

    /// Counters of every nameserver, in the configuration's order.
    var counters: [(nameserver: String, counters: NameserverCounters)] { channels.map { ($0.nameserver.id, $0.counters) } }

    func close() {
        for r in resolutions.values { r.close() }
        resolutions.removeAll()
        for c in channels { c.close() }
        channels.removeAll()
    }
}
