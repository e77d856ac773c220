import ConfigModel
import Foundation
import Loader
import Testing

@testable import Engine

/// `reload plan`'s diff, as a value: two loaded configurations and the engine's facts in, the
/// plan's lines out. No socket, no loop.
@Suite struct ReloadPlanTests {
    static func config(_ text: String) throws -> Config {
        try ConfigLoader().load(text: text, file: "t.cfg").get().config
    }

    static func key(_ port: UInt16) -> ListenerKey {
        ListenerKey(endpoint: SocketEndpoint(address: .v4(0x7F00_0001), port: port), v6only: false, interface: nil,
                    backlog: ListenerKey.defaultBacklog, reusePort: true)
    }

    static func facts(held: [UInt16], generations: [(Int, GenerationState, Int)] = [(1, .active, 0)]) -> ReloadPlan.Facts {
        ReloadPlan.Facts(generations: generations.map { .init(id: $0.0, state: $0.1, sessions: $0.2, hash: "h\($0.0)") },
                         heldListeners: Set(held.map(key)))
    }

    static let running = """
        global
            maxconn 100
        defaults
            mode http
            timeout connect 5s
            timeout client 30s
            timeout server 10s
        frontend web
            bind 127.0.0.1:80
            bind 127.0.0.1:81
            acl is_api path_beg /api
            http-request deny if { path /admin }
            use_backend api if is_api
            default_backend app
        backend app
            server s1 127.0.0.1:8080
            server s2 127.0.0.1:8081
        backend api
            server a1 127.0.0.1:7000
        backend old
            server o1 127.0.0.1:7001
        """

    /// Every line below the new comment moved one down: only what was edited shows.
    static let candidate = """
        # line 1 is new: every line below it moved
        global
            maxconn 100
        defaults
            mode http
            timeout connect 5s
            timeout client 30s
            timeout server 10s
        frontend web
            bind 127.0.0.1:80
            bind 127.0.0.1:8443
            acl is_api path_beg /api
            http-request deny if { path /private }
            use_backend api if is_api
            default_backend app
        backend app
            timeout server 30s
            server s1 127.0.0.1:9090
            server s2 127.0.0.1:8081 weight 5
            server s3 127.0.0.1:8082
        backend api
            server a1 127.0.0.1:7000
        """

    @Test func planNamesEachChangeByIdentityWithItsLine() throws {
        let plan = ReloadPlan(from: try Self.config(Self.running), to: try Self.config(Self.candidate), candidateHash: "c2",
                              facts: Self.facts(held: [80, 81], generations: [(4, .draining, 3), (5, .active, 842)]))
        #expect(plan.succeeds)
        #expect(plan.lines == [
            "~ rules frontend web (t.cfg:13)",
            "~ proxy app: timeout server 10s -> 30s",
            "~ server app/s1 address 127.0.0.1:8080 -> 127.0.0.1:9090",
            "~ server app/s2 weight 1 -> 5",
            "+ server app/s3",
            "- backend old",
            "= listener 127.0.0.1:80 kept",
            "+ listener 127.0.0.1:8443 (frontend web) will bind",
            "- listener 127.0.0.1:81 will close after its queue",
            "! health state of app/s1 resets (address changed)",
            "! sessions draining: 3 on generation 4",
            "! sessions draining: 842 on generation 5",
            "= generation 5 (hash h5) -> candidate (hash c2)",
        ])
    }

    @Test func anUnchangedConfigurationSaysSoAndKeepsEveryListener() throws {
        let config = try Self.config(Self.running)
        let plan = ReloadPlan(from: config, to: config, candidateHash: "h1", facts: Self.facts(held: [80, 81]))
        #expect(plan.lines == [
            "= listener 127.0.0.1:80 kept",
            "= listener 127.0.0.1:81 kept",
            "= no change",
            "= generation 1 (hash h1) -> candidate (hash h1)",
        ])
    }

    /// Every item with a place of its own (log targets, the stats page and its condition, rule
    /// lines, servers, binds) one line further down: no change.
    @Test func aConfigurationMovedDownALineIsNoChange() throws {
        let text = Self.running.replacingOccurrences(of: "frontend web\n", with: """
            frontend web
                log 127.0.0.1:514 local0
                stats enable
                stats admin if { src 127.0.0.1 }

            """)
        let plan = ReloadPlan(from: try Self.config(text), to: try Self.config("# moved\n" + text), candidateHash: "h1",
                              facts: Self.facts(held: [80, 81]))
        #expect(plan.lines == [
            "= listener 127.0.0.1:80 kept",
            "= listener 127.0.0.1:81 kept",
            "= no change",
            "= generation 1 (hash h1) -> candidate (hash h1)",
        ])
        // And what the places hide is still seen.
        let edited = try Self.config("# moved\n" + text.replacingOccurrences(of: "src 127.0.0.1", with: "src 10.0.0.1")
            .replacingOccurrences(of: "local0", with: "local1"))
        let seen = ReloadPlan(from: try Self.config(text), to: edited, candidateHash: "c", facts: Self.facts(held: [80, 81]))
        #expect(seen.lines.first == "~ proxy web: stats changed")
        #expect(seen.lines.dropFirst().first == "~ settings frontend web (t.cfg:9)")
    }

    /// Service discovery in a plan: a `resolvers` section added, changed or removed, and a server
    /// that follows another name (its state resets: a server known by name is its name). A
    /// section or template line that only moved is no change.
    @Test func resolversSectionsAndNamedServersShowInAPlan() throws {
        let text = """
            resolvers dns
                nameserver ns1 127.0.0.1:53
                hold valid 10s
            resolvers old
                nameserver ns1 127.0.0.1:54
            defaults
                mode http
            frontend web
                bind 127.0.0.1:80
                default_backend app
            backend app
                server-template web 2 app.test:8080 resolvers dns init-addr none
                server db db.test:5432 resolvers dns init-addr none
            """
        let moved = try Self.config("# moved\n" + text)
        #expect(ReloadPlan(from: try Self.config(text), to: moved, candidateHash: "h1", facts: Self.facts(held: [80])).lines
                == ["= listener 127.0.0.1:80 kept", "= no change", "= generation 1 (hash h1) -> candidate (hash h1)"])
        let edited = try Self.config(text
            .replacingOccurrences(of: "hold valid 10s", with: "hold valid 20s")
            .replacingOccurrences(of: "resolvers old\n    nameserver ns1 127.0.0.1:54\n", with: "resolvers new\n    nameserver ns1 127.0.0.1:55\n")
            .replacingOccurrences(of: "db.test:5432", with: "db2.test:5432"))
        let lines = ReloadPlan(from: try Self.config(text), to: edited, candidateHash: "c", facts: Self.facts(held: [80])).lines
        #expect(lines.contains("~ settings resolvers dns (t.cfg:1)"), "\(lines)")
        #expect(lines.contains("+ resolvers new"), "\(lines)")
        #expect(lines.contains("- resolvers old"), "\(lines)")
        #expect(lines.contains("~ server app/db fqdn db.test -> db2.test"), "\(lines)")
        #expect(lines.contains("! health state of app/db resets (name changed)"), "\(lines)")
        #expect(!lines.contains { $0.contains("app/web") }, "\(lines)")
    }

    /// The copy-free comparisons name every stored property of what they compare: a field added
    /// to the model fails here until a plan knows whether to compare it.
    @Test func planContentKnowsEveryFieldOfTheModel() throws {
        func fields(_ value: Any) -> [String] { Mirror(reflecting: value).children.compactMap(\.label) }
        let proxy = try #require(try Self.config(Self.running).proxies.first { $0.name == "app" })
        #expect(fields(proxy) == PlanContent.proxyFields)
        #expect(fields(proxy.log) == PlanContent.logFields)
        #expect(fields(proxy.http) == PlanContent.httpFields)
        #expect(fields(proxy.servers[0]) == PlanContent.serverFields)
        #expect(fields(proxy.servers[0].options) == PlanContent.serverOptionFields)
        #expect(fields(proxy.servers[0].options.check) == PlanContent.serverCheckFields)
        let web = try #require(try Self.config(Self.running).proxies.first { $0.name == "web" })
        #expect(fields(web.binds[0]) == PlanContent.bindFields)
    }

    /// A stick table keeps its entries across a reload unless its identity changes: the plan
    /// says which (expire may change and keep them).
    @Test func aStickTableWhoseIdentityChangesStartsEmpty() throws {
        let text = """
            frontend f
                mode http
                bind 127.0.0.1:80
                stick-table type ip size 10 expire 10s store conn_cur
                http-request track-sc0 src
                http-request return status 200
            """
        let expire = ReloadPlan(from: try Self.config(text), to: try Self.config(text.replacingOccurrences(of: "10s", with: "20s")),
                                candidateHash: "c", facts: Self.facts(held: [80])).lines
        #expect(expire.contains("~ proxy f: stick-table type ip len 4 size 10 expire 10s store conn_cur -> type ip len 4 size 10 expire 20s store conn_cur"), "\(expire)")
        #expect(!expire.contains { $0.hasPrefix("! stick-table") }, "\(expire)")
        let size = ReloadPlan(from: try Self.config(text), to: try Self.config(text.replacingOccurrences(of: "size 10", with: "size 11")),
                              candidateHash: "c", facts: Self.facts(held: [80])).lines
        #expect(size.contains("! stick-table f starts empty (its type, key length, size or stored data changed)"), "\(size)")
    }

    /// A `cache` section changed drops its entries, one that moved keeps them: the plan says
    /// which; added and removed sections are listed.
    @Test func aChangedCacheSectionIsListedAsStartingEmpty() throws {
        let text = """
            cache c
                total-max-size 4
                max-age 10
            cache gone
                total-max-size 1
            frontend f
                mode http
                bind 127.0.0.1:80
                http-request cache-use c
                http-response cache-store c
                http-request return status 200
            """
        let moved = ReloadPlan(from: try Self.config(text), to: try Self.config("\n" + text), candidateHash: "c",
                               facts: Self.facts(held: [80])).lines
        #expect(!moved.contains { $0.contains("cache") }, "\(moved)")
        let changed = text.replacingOccurrences(of: "max-age 10", with: "max-age 20")
            .replacingOccurrences(of: "cache gone\n    total-max-size 1", with: "cache new\n    total-max-size 1")
        let lines = ReloadPlan(from: try Self.config(text), to: try Self.config(changed), candidateHash: "c",
                               facts: Self.facts(held: [80])).lines
        #expect(lines.contains { $0.contains("settings cache c (t.cfg:1): its entries are dropped") }, "\(lines)")
        #expect(lines.contains { $0.contains("+ cache new") }, "\(lines)")
        #expect(lines.contains { $0.contains("- cache gone") }, "\(lines)")
    }

    @Test func identitiesMeetWhereverTheyMoved() {
        func match(_ old: [String], _ new: [String]) -> (counterpart: [Int], matched: [Bool]) {
            let m = IdentityMatch(old: old.count, new: new.count, oldKey: { old[$0] }, newKey: { new[$0] })
            return (new.indices.map { m.counterpart(of: $0) }, old.indices.map { m.isMatched($0) })
        }
        #expect(match(["a", "b", "c"], ["a", "b", "c"]) == ([0, 1, 2], [true, true, true]))
        // One added in front: every other one moved, and is still found.
        #expect(match(["a", "b", "c"], ["z", "a", "b", "c"]) == ([-1, 0, 1, 2], [true, true, true]))
        #expect(match(["a", "b", "c"], ["c", "a"]) == ([2, 0], [true, false, true]))
        #expect(match(["a", "b", "c"], ["a", "b", "d"]) == ([0, 1, -1], [true, true, false]))
        #expect(match(["a", "b"], ["a", "b", "c"]) == ([0, 1, -1], [true, true]))
        #expect(match([], ["a"]) == ([-1], []))
        #expect(match(["a"], []) == ([], [false]))
    }

    @Test func addedAndRemovedProxiesAndSettingsWithoutANameSayWhere() throws {
        let old = try Self.config(Self.running)
        let new = try Self.config(Self.running.replacingOccurrences(of: "backend old\n    server o1 127.0.0.1:7001", with: """
            backend old
                server o1 127.0.0.1:7001
                load-server-state-from-file none
            listen extra
                bind 127.0.0.1:82
                server x 127.0.0.1:7002
            """).replacingOccurrences(of: "    maxconn 100", with: "    maxconn 200\n    hard-stop-after 1m"))
        let plan = ReloadPlan(from: old, to: new, candidateHash: "c", facts: Self.facts(held: [80, 81]))
        #expect(plan.lines == [
            "~ global: maxconn 100 -> 200",
            "~ global: hard-stop-after unset -> 1m",
            "~ settings backend old (t.cfg:21)",
            "+ listen extra",
            "= listener 127.0.0.1:80 kept",
            "= listener 127.0.0.1:81 kept",
            "+ listener 127.0.0.1:82 (frontend extra) will bind",
            "= generation 1 (hash h1) -> candidate (hash c)",
        ])
    }

    @Test func ruleLinesAddedMovedOrDeletedByTheirLines() throws {
        let old = try Self.config(Self.running)
        let new = try Self.config(Self.running.replacingOccurrences(
            of: "    http-request deny if { path /admin }\n    use_backend api if is_api",
            with: "    use_backend api if is_api\n    http-request set-header X-A 1\n    http-request deny if { path /admin }"))
        let plan = ReloadPlan(from: old, to: new, candidateHash: "c", facts: Self.facts(held: [80, 81]))
        // The request rules come before use_backend whatever their order in the file: the added
        // line is the change, the others only moved.
        #expect(plan.lines.first == "~ rules frontend web (t.cfg:13)")

        let swapped = try Self.config(Self.running.replacingOccurrences(
            of: "    acl is_api path_beg /api", with: "    acl is_api path_beg /api\n    acl is_x path_beg /x\n    http-request allow if is_x")
            .replacingOccurrences(of: "    http-request deny if { path /admin }", with: "")
            .replacingOccurrences(of: "    use_backend api if is_api", with: "    use_backend api if is_api\n    http-request deny if { path /admin }"))
        let reordered = try Self.config(Self.running.replacingOccurrences(
            of: "    acl is_api path_beg /api", with: "    acl is_api path_beg /api\n    acl is_x path_beg /x\n    http-request deny if { path /admin }")
            .replacingOccurrences(of: "    http-request deny if { path /admin }\n    use_backend", with: "    http-request allow if is_x\n    use_backend"))
        let moved = ReloadPlan(from: swapped, to: reordered, candidateHash: "c", facts: Self.facts(held: [80, 81]))
        #expect(moved.lines.first == "~ rules frontend web (t.cfg:13, t.cfg:14)")

        // A line deleted is named by where it was in the running configuration.
        let deleted = try Self.config(Self.running.replacingOccurrences(of: "    http-request deny if { path /admin }\n", with: ""))
        let shorter = ReloadPlan(from: old, to: deleted, candidateHash: "c", facts: Self.facts(held: [80, 81]))
        #expect(shorter.lines.first == "~ rules frontend web (removed t.cfg:12)")
    }

    @Test func liveStateOfTheSwap() throws {
        let config = try Self.config(Self.running.replacingOccurrences(of: "    maxconn 100", with: "    maxconn 100\n    max-generations 3"))
        let plan = ReloadPlan(from: config, to: config, candidateHash: "c",
                              facts: Self.facts(held: [80, 81], generations: [(2, .draining, 7), (3, .draining, 0), (4, .active, 2)]))
        #expect(plan.lines.filter { $0.hasPrefix("!") } == [
            "! generation 2 closes at once (max-generations 3): 7 sessions killed",
            "! sessions draining: 2 on generation 4",
        ])
    }

    @Test func aRefusedCandidateGivesTheErrorsAReloadGives() throws {
        let errors = try #require(ConfigLoader().load(text: Self.running + "\n    bogus 1\n", file: "t.cfg").failureErrors)
        let plan = ReloadPlan(refusing: errors, facts: Self.facts(held: [80, 81]))
        #expect(!plan.succeeds)
        #expect(plan.lines == errors.map(\.description) + ["= generation 1 (hash h1) -> candidate refused: a reload would fail and change nothing"])
        #expect(plan.lines.first?.hasPrefix("t.cfg:22: 'bogus' is not supported") == true)
    }

    @Test func jsonCarriesEveryLineWithItsFields() throws {
        let plan = ReloadPlan(from: try Self.config(Self.running), to: try Self.config(Self.candidate), candidateHash: "c2",
                              facts: Self.facts(held: [80, 81], generations: [(5, .active, 842)]))
        let document = try #require(try JSONSerialization.jsonObject(with: Data(plan.json.utf8)) as? [String: Any])
        #expect(document["success"] as? Bool == true)
        #expect((document["generation"] as? [String: Any])?["id"] as? Int == 5)
        #expect((document["candidate"] as? [String: Any])?["hash"] as? String == "c2")
        let changes = try #require(document["changes"] as? [[String: Any]])
        #expect(changes.map { $0["line"] as? String } == plan.lines)
        let address = try #require(changes.first { $0["setting"] as? String == "address" })
        #expect(address["mark"] as? String == "~")
        #expect(address["kind"] as? String == "server")
        #expect(address["backend"] as? String == "app")
        #expect(address["server"] as? String == "s1")
        #expect(address["from"] as? String == "127.0.0.1:8080")
        #expect(address["to"] as? String == "127.0.0.1:9090")
        let rules = try #require(changes.first { $0["kind"] as? String == "rules" })
        #expect(rules["lines"] as? [String] == ["t.cfg:13"])
        #expect(rules["replaced"] as? [String] == ["t.cfg:12"])
        #expect(rules["removed"] as? [String] == [])
        let drain = try #require(changes.first { $0["kind"] as? String == "drain" })
        #expect(drain["sessions"] as? Int == 842)

        let refused = ReloadPlan(refusing: [ConfigError(SourceLocation(file: "t.cfg", line: 3), "a \"quoted\"\nword")],
                                 facts: Self.facts(held: []))
        let failure = try #require(try JSONSerialization.jsonObject(with: Data(refused.json.utf8)) as? [String: Any])
        #expect(failure["success"] as? Bool == false)
        let error = try #require((failure["errors"] as? [[String: Any]])?.first)
        #expect(error["line"] as? Int == 3)
        #expect(error["message"] as? String == "a \"quoted\"\nword")
        #expect(error["text"] as? String == "t.cfg:3: a \"quoted\"\nword")
    }
}

extension Result where Failure == ConfigErrors {
    var failureErrors: [ConfigError]? {
        if case .failure(let e) = self { return e.errors }
        return nil
    }
}
