import ConfigModel

/// `show resolvers [SECTION]`: each nameserver's counters, in HAProxy's layout.
enum ResolverCommands {
    static let adminCommands = [
        AdminCommand(["show", "resolvers"], usage: ("show resolvers [id]", "dumps counters from all resolvers section and associated name servers"),
                     level: .user) { c in
            .text(text(c.engine, section: c.arguments.first))
        },
    ]

    static func text(_ engine: Engine, section: String?) -> String {
        let discovery = engine.serviceDiscovery
        var names = discovery.sectionOrder
        if let section {
            guard names.contains(section) else { return "Can't find that resolvers section" }
            names = [section]
        }
        guard !names.isEmpty else { return "No resolvers found" }
        var lines: [String] = []
        for name in names {
            guard let s = discovery.sections[name] else { continue }
            lines.append("Resolvers section \(name)")
            for (nameserver, counters) in s.counters {
                lines.append(" nameserver \(nameserver):")
                for (field, value) in counters.fields {
                    let label = field + ":"
                    lines.append("  " + label + String(repeating: " ", count: max(1, 13 - label.count)) + "\(value)")
                }
            }
        }
        return lines.joined(separator: "\n")
    }
}
