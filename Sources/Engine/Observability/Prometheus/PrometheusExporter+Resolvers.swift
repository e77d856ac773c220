/// HAProxy's exporter's `resolver` module: one series per nameserver of each `resolvers`
/// section, labelled `resolver` and `nameserver`, named `strata_resolver_*` (HAProxy's names
/// with strata's prefix; HAProxy exports them as gauges too).
extension Engine {
    private static let resolverFamilies: [(name: StaticString, help: StaticString, value: @Sendable (NameserverCounters) -> Int)] = [
        ("strata_resolver_sent", "Sent", { $0.sent }),
        ("strata_resolver_send_error", "Send error", { $0.sendErrors }),
        ("strata_resolver_valid", "Valid", { $0.valid }),
        ("strata_resolver_update", "Update", { $0.update }),
        ("strata_resolver_cname", "CNAME", { $0.cname }),
        ("strata_resolver_any_err", "Any errors", { $0.anyError }),
        ("strata_resolver_nx", "NX", { $0.nx }),
        ("strata_resolver_timeout", "Timeout", { $0.timeout }),
        ("strata_resolver_refused", "Refused", { $0.refused }),
        ("strata_resolver_other", "Other", { $0.other }),
        ("strata_resolver_invalid", "Invalid", { $0.invalid }),
        ("strata_resolver_outdated", "Outdated", { $0.outdated }),
    ]

    func writeResolvers(_ w: inout PrometheusWriter) {
        let discovery = serviceDiscovery
        let sections = discovery.sectionOrder.compactMap { discovery.sections[$0] }
        guard sections.contains(where: { !$0.channels.isEmpty }) else { return }
        for family in Engine.resolverFamilies {
            w.family(family.name, .gauge, family.help)
            for section in sections {
                for (nameserver, counters) in section.counters {
                    w.append(family.name); w.append("{resolver=\""); w.labelValue(section.config.name)
                    w.append("\",nameserver=\""); w.labelValue(nameserver); w.append("\"} "); w.int(family.value(counters)); w.end()
                }
            }
        }
    }
}
