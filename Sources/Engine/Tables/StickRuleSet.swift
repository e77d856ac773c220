import ConfigModel
import HTTP1

/// A backend's `stick on|match|store-request|store-response` rules, compiled (HAProxy's
/// persistence by stick table, `process_sticking_rules` and `process_store_rules`): before
/// balancing, the first matching rule whose key has an entry naming a usable server sends the
/// session there; once a server is chosen, the keys of the store rules get its id (`server_id`);
/// the keys of `store-response` rules, read from the server's answer, get the id of the server
/// that gave it. Immutable once built: every loop uses it, each table takes its own lock.
final class StickRuleSet: @unchecked Sendable {
    struct Rule {
        let match: Bool
        let store: Bool
        let onResponse: Bool
        let table: StickTable?
        let key: HTTPCompiledSample
        let condition: HTTPCompiledCondition?
    }

    let rules: [Rule]
    let storesResponses: Bool
    /// What evaluates conditions (the backend's HTTP rules, or a set of its own in mode tcp).
    let evaluator: HTTPRuleSet
    private let constants: HTTPRuleConstants

    init(_ proxy: Proxy, evaluator: HTTPRuleSet, stickTables: [String: StickTable]) throws(ConfigError) {
        let constants = HTTPRuleConstants()
        constants.proxyName = proxy.name
        constants.stickTables = stickTables
        var rules: [Rule] = []
        for r in proxy.stickRules {
            rules.append(Rule(match: r.matches, store: r.stores, onResponse: r.storesResponse, table: constants.stickTable(r.table)?.takeUnretainedValue(),
                              key: HTTPCompiledSample(r.key, constants: constants),
                              condition: try r.condition.map { c throws(ConfigError) in try HTTPCompiledCondition(c, constants: constants) }))
        }
        self.rules = rules
        storesResponses = rules.contains { $0.onResponse }
        self.evaluator = evaluator
        self.constants = constants
    }

    /// What the rules decide for one session or request.
    struct Decision {
        var server: BackendServer?
        /// The store rules' keys, given the chosen server's id once there is one.
        var stores: [(StickTable, StickKey)] = []
    }

    /// HTTP: over the request.
    func evaluate(_ head: borrowing HTTPHead, input: UnsafeRawBufferPointer, connection: HTTPConnectionInfo,
                  scratch: HTTPRuleScratch, backend: Backend) -> Decision {
        withUnsafePointer(to: head) { head in
            withUnsafePointer(to: connection) { connection in
                let request = HTTPMessageView(input: input, head: head, edits: scratch.request)
                let ev = HTTPEvaluation(request: request, response: nil, connection: connection, scratch: scratch,
                                        frontend: evaluator, backend: evaluator)
                return evaluate(ev, backend: backend)
            }
        }
    }

    /// Mode tcp: over the connection (and what was inspected of it).
    func evaluate(_ connection: HTTPConnectionInfo, payload: UnsafeRawBufferPointer, scratch: HTTPRuleScratch,
                  backend: Backend) -> Decision {
        withUnsafePointer(to: connection) { connection in
            var ev = HTTPEvaluation(request: nil, response: nil, connection: connection, scratch: scratch,
                                    frontend: evaluator, backend: evaluator)
            ev.payload = payload
            return evaluate(ev, backend: backend)
        }
    }

    private func evaluate(_ ev: HTTPEvaluation, backend: Backend) -> Decision {
        var decision = Decision()
        for rule in rules where !rule.onResponse {
            ev.scratch.beginRule()
            guard let table = rule.table, rule.condition.evaluate(ev), let sample = ev.value(rule.key),
                  let key = ev.stickKey(sample, table: table) else { continue }
            if rule.match, decision.server == nil, let id = table.value(of: key, .serverID),
               let server = backend.configuredServers.first(where: { $0.config.id == id }),
               server.acceptsPersistentTraffic(forced: backend.proxy.persist) {
                decision.server = server
            }
            // One store per table, as HAProxy (the first rule that names it).
            if rule.store, !decision.stores.contains(where: { $0.0 === table }) { decision.stores.append((table, key)) }
        }
        return decision
    }

    /// `stick store-response`, over the server's answer as it came (HAProxy runs these rules before
    /// the `http-response` ones): each matching rule's key gets the id of the server that
    /// answered, one key per table among these rules (the first rule naming it), beside what the
    /// request's `on`/`store-request` rules stored there: HAProxy lets one of each coexist.
    func storeResponse(_ head: borrowing HTTPHead, input: UnsafeRawBufferPointer, connection: HTTPConnectionInfo,
                       scratch: HTTPRuleScratch, server: BackendServer) {
        scratch.beginResponse()
        withUnsafePointer(to: head) { head in
            withUnsafePointer(to: connection) { connection in
                let ev = HTTPEvaluation(request: nil, response: HTTPMessageView(input: input, head: head, edits: scratch.response),
                                        connection: connection, scratch: scratch, frontend: evaluator, backend: evaluator)
                var stored: [ObjectIdentifier] = []
                for rule in rules where rule.onResponse {
                    ev.scratch.beginRule()
                    guard let table = rule.table, !stored.contains(ObjectIdentifier(table)), rule.condition.evaluate(ev),
                          let sample = ev.value(rule.key), let key = ev.stickKey(sample, table: table) else { continue }
                    stored.append(ObjectIdentifier(table))
                    _ = table.set(key: key, [(.serverID, server.config.id)])
                }
            }
        }
    }

    /// The chosen server's id into every stored key's entry.
    static func store(_ stores: [(StickTable, StickKey)], server: BackendServer) {
        for (table, key) in stores { _ = table.set(key: key, [(.serverID, server.config.id)]) }
    }
}
