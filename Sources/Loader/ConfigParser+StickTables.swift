#if canImport(Glibc)
import Glibc
#endif
import ConfigModel

/// The checks of stick tables that need every proxy: the tables rules and fetches name exist, and
/// `stick-table … peers NAME` names a `peers` section; and the `peers` section itself, accepted
/// only when its one peer is this host (HAProxy's way of keeping tables across its reloads,
/// which strata does without it).
extension ConfigParser {
    /// This host's peer name: `-L`, else `localpeer` in `global`, else the host name (HAProxy's order).
    var localPeerName: String {
        if let name = localPeerOverride ?? global.localPeer { return name }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        return String(cString: host)
    }

    /// A line of a `peers` section.
    mutating func peersKeyword(_ line: KeywordLine, index: Int) throws(ConfigError) {
        switch line.keyword {
        case "peer", "server":
            let name = try line.argument(0, expecting: "a peer name")
            guard name == localPeerName else {
                throw line.error("peers section '\(peers[index].name)': peer '\(name)' is a remote peer, which is not supported: strata does not synchronise stick tables between machines yet (only this host's own peer is accepted: the one named after the host name, or after 'localpeer' in the global section or -L)")
            }
            peers[index].hasLocalPeer = true
        case "bind", "default-bind", "default-server", "disabled", "enabled", "log", "shards":
            return
        case "table":
            throw line.error("'table' in a peers section is not supported yet (declare the table with 'stick-table' in a backend)")
        default:
            throw line.error("'\(line.keyword)' is not a peers keyword (expected peer, server, bind, default-bind, default-server, disabled, enabled, log or shards)")
        }
    }

    /// After every file: peers warnings, and tables referenced by name.
    func finishStickTables(_ config: inout Config, warnings: inout [ConfigError]) -> [ConfigError] {
        var errors: [ConfigError] = []
        for section in peers {
            warnings.append(ConfigError(section.location, "peers section '\(section.name)' is accepted and does nothing: strata keeps stick tables across reloads by itself, in its one process"
                + (section.hasLocalPeer ? "" : " (and the section has no peer for this host, '\(localPeerName)')")))
        }
        var tables: Set<String> = []
        for i in config.proxies.indices where config.proxies[i].stickTable != nil { tables.insert(config.proxies[i].name) }
        for draft in drafts where draft.valid {
            if let (name, location) = draft.stickTablePeers, !peers.contains(where: { $0.name == name }) {
                errors.append(ConfigError(location, "stick-table: unknown peers section '\(name)'"))
            }
        }
        var seen: Set<String> = []
        func report(_ location: SourceLocation, _ message: String) {
            let error = ConfigError(location, message)
            if seen.insert(error.description).inserted { errors.append(error) }
        }
        for i in config.proxies.indices {
            let proxy = config.proxies[i].name
            func resolve(_ table: String) -> String { table.isEmpty ? proxy : table }
            func check(_ sample: SampleExpression, _ location: SourceLocation, what: @autoclosure () -> String) {
                for table in SampleParser.tables(in: sample) where !tables.contains(resolve(table)) {
                    report(location, "proxy '\(proxy)': unable to find table '\(resolve(table))' referenced by \(what())")
                }
            }
            func check(_ condition: Condition?) {
                guard let condition else { return }
                for group in condition.alternatives {
                    for term in group {
                        for c in term.criteria {
                            check(c.sample, c.location, what: "'\(SampleParser.name(of: c.sample.fetch))'")
                        }
                    }
                }
            }
            func check(_ action: StickCounterAction, _ location: SourceLocation) {
                switch action {
                case .track(let t):
                    if !tables.contains(t.table) {
                        report(location, "proxy '\(proxy)': unable to find table '\(t.table)' referenced by track-sc\(t.counter)")
                    }
                    check(t.key, location, what: "track-sc\(t.counter)")
                case .setGPT0(_, .sample(let s)): check(s, location, what: "sc-set-gpt0")
                default: break
                }
            }
            for rule in config.proxies[i].stickRules {
                guard let j = config.proxies.firstIndex(where: { $0.name == rule.table && $0.stickTable != nil }) else {
                    report(rule.location, "proxy '\(proxy)': unable to find table '\(rule.table)' referenced by a 'stick \(rule.kind.rawValue)' rule")
                    continue
                }
                check(rule.key, rule.location, what: "a 'stick \(rule.kind.rawValue)' rule")
                check(rule.condition)
                // HAProxy stores the server's id in a table stick rules use, declared or not.
                if !config.proxies[j].stickTable!.stores(.serverID) {
                    config.proxies[j].stickTable!.store.insert(StickDataItem(.serverID), at: 0)
                }
            }
            let http = config.proxies[i].http
            for acl in http.acls { for c in acl.criteria { check(c.sample, c.location, what: "ACL '\(acl.name)'") } }
            // The values actions compute (`set-var` expressions, log-format strings' `%[…]`) as
            // HAProxy resolves them: a missing table is an error there too.
            for rule in http.requestRules {
                check(rule.condition)
                if case .stickCounter(let a) = rule.action { check(a, rule.location) }
                for sample in rule.action.samples { check(sample, rule.location, what: "an 'http-request' rule") }
            }
            for rule in http.responseRules {
                check(rule.condition)
                for sample in rule.action.samples { check(sample, rule.location, what: "an 'http-response' rule") }
            }
            for rule in http.afterResponseRules {
                check(rule.condition)
                for sample in rule.action.samples { check(sample, rule.location, what: "an 'http-after-response' rule") }
            }
            for rule in http.backendRules {
                check(rule.condition)
                for sample in rule.dynamic?.samples ?? [] { check(sample, rule.location, what: "'use_backend'") }
            }
            for rule in http.redirectRules {
                check(rule.condition)
                for sample in rule.redirect.kind.format.samples { check(sample, rule.location, what: "'redirect'") }
            }
            for rule in config.proxies[i].tcp.connection + config.proxies[i].tcp.session + config.proxies[i].tcp.content {
                check(rule.condition)
                if case .stickCounter(let a) = rule.action { check(a, rule.location) }
            }
        }
        return errors
    }
}

/// A `peers` section as read.
struct PeersDraft {
    var name: String
    var location: SourceLocation
    var hasLocalPeer = false
}

extension FormatString {
    /// The `%[…]` expressions.
    var samples: [SampleExpression] { parts.compactMap { if case .sample(let s) = $0 { s } else { nil } } }
}

extension Redirect.Kind {
    var format: FormatString {
        switch self {
        case .location(let f), .prefix(let f), .scheme(let f): f
        }
    }
}

extension ResponseBody {
    var samples: [SampleExpression] { if case .string(let f) = self { f.samples } else { [] } }
}

extension HTTPRequestAction {
    /// The expressions the action evaluates, its log-format strings' `%[…]` included (not a
    /// `track-sc*` key: stick counter actions are checked with their table).
    var samples: [SampleExpression] {
        switch self {
        case .setHeader(_, let f), .addHeader(_, let f), .replaceHeader(_, _, let f), .replaceValue(_, _, let f),
             .setPath(let f), .setQuery(let f), .setURI(let f), .setMethod(let f), .replaceTarget(_, _, let f),
             .setVariableFormat(_, let f):
            f.samples
        case .returnResponse(_, _, let body, let headers): body.samples + headers.flatMap(\.value.samples)
        case .redirect(let r): r.kind.format.samples
        case .setVariable(_, let s), .setAddress(_, let s): [s]
        default: []
        }
    }
}

extension HTTPResponseAction {
    /// The expressions the action evaluates, its log-format strings' `%[…]` included.
    var samples: [SampleExpression] {
        switch self {
        case .setHeader(_, let f), .addHeader(_, let f), .replaceHeader(_, _, let f), .replaceValue(_, _, let f),
             .setVariableFormat(_, let f):
            f.samples
        case .returnResponse(_, _, let body, let headers): body.samples + headers.flatMap(\.value.samples)
        case .setVariable(_, let s): [s]
        default: []
        }
    }
}
