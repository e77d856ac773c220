import ConfigModel
import Glibc

extension Engine {
    /// Gives each TLS listener of `generation` the ticket keys and session cache its listener
    /// already has, so a client resumes its session after a reload; forgets the stores of
    /// listeners no live generation serves with TLS.
    func adoptTLSStores(_ generation: Generation) {
        for (key, context) in generation.tlsContexts {
            let global = generation.config.config.global
            let store = tlsStores[key] ?? context.store
            store.configure(ticketKeys: context.settings.ticketKeys, capacity: global.sslCacheSize, lifetimeMS: global.sslLifetime)
            tlsStores[key] = store
            context.store = store
            // Any loop's thread asks: the monotonic clock, not a loop's cached time.
            context.clock = { MonotonicClock.now() }
        }
        guard tlsStores.count > generation.tlsContexts.count else { return }
        var used = Set(generation.tlsContexts.keys)
        for g in liveGenerations { used.formUnion(g.tlsContexts.keys) }
        tlsStores = tlsStores.filter { used.contains($0.key) }
    }
}
