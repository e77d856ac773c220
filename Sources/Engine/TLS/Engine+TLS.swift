import ConfigModel
import Glibc

extension Engine {
    /// Gives each TLS listener of `generation` the ticket keys and session cache its listener
    /// already has, so a client resumes its session after a reload; forgets the stores of
    /// listeners no live generation serves with TLS.
    func adoptTLSStores(_ generation: Generation) {
        let loop = self.loop
        for (key, context) in generation.tlsContexts {
            let global = generation.config.config.global
            let store = tlsStores[key] ?? context.store
            store.configure(ticketKeys: context.settings.ticketKeys, capacity: global.sslCacheSize, lifetimeMS: global.sslLifetime)
            tlsStores[key] = store
            context.store = store
            context.clock = { loop.now }
        }
        guard tlsStores.count > generation.tlsContexts.count else { return }
        var used = Set(generation.tlsContexts.keys)
        for g in liveGenerations { used.formUnion(g.tlsContexts.keys) }
        tlsStores = tlsStores.filter { used.contains($0.key) }
    }

    /// `show ssl cert [NAME]`: the certificates of the live generations (NAME: only the ones
    /// whose path is NAME), each with the generations using it, newest generation's first.
    public func certificates(named name: String? = nil) -> [TLSCertificateInfo] {
        var byPath: [String: TLSCertificateInfo] = [:]
        var order: [String] = []
        for g in liveGenerations.reversed() {
            var contexts = Array(g.tlsContexts.values).map { $0.certificates }
            for b in g.backends.values {
                for s in b.servers {
                    if let c = s.tls?.certificate { contexts.append([c]) }
                }
            }
            for certificate in contexts.joined() {
                let path = certificate.info.path
                if let name, name != path { continue }
                if byPath[path] == nil {
                    byPath[path] = certificate.info
                    order.append(path)
                }
                if !byPath[path]!.generations.contains(g.id) { byPath[path]!.generations.insert(g.id, at: 0) }
            }
        }
        return order.map { byPath[$0]! }
    }
}

extension Engine {
    /// `show ssl cert [NAME]`: without NAME the certificate files of the live generations
    /// (HAProxy's list); with NAME its subject, names, validity and the generations using it.
    public func showSSLCertificates(_ name: String?) -> String {
        guard let name else {
            return (["# filename"] + certificates().map(\.path)).joined(separator: "\n")
        }
        guard let c = certificates(named: name).first else {
            return "Can't display the certificate: Not found or the certificate is a bundle!"
        }
        var lines = [
            "Filename: \(c.path)",
            "Status: Used",
            "Serial: \(c.serial)",
            "notBefore: \(c.notBefore)",
            "notAfter: \(c.notAfter)",
        ]
        if !c.dnsNames.isEmpty { lines.append("Subject Alternative Name: " + c.dnsNames.map { "DNS:\($0)" }.joined(separator: ", ")) }
        lines.append("Subject: \(c.subject)")
        lines.append("Issuer: \(c.issuer)")
        lines.append("Generations: " + c.generations.map(String.init).joined(separator: " "))
        return lines.joined(separator: "\n")
    }
}
