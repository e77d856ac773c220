import ConfigModel
import Testing
@testable import Engine

/// `hash-type consistent`: a server leaving moves only its own keys, weights are honoured, and the
/// ring follows weight changes.
@Suite struct ConsistentHashTests {
    static func backend(_ names: [String], weights: [Int]? = nil, backups: Set<String> = [],
                        balance: BalanceAlgorithm = .uri(whole: false), hashType: HashType = .consistent) -> Backend {
        let at = SourceLocation(file: "test.cfg", line: 1)
        var proxy = Proxy(name: "be", kind: .backend, location: at, id: 1)
        proxy.mode = .http
        proxy.balance = balance
        proxy.http.hashType = hashType
        proxy.servers = names.enumerated().map { i, name in
            var options = ServerOptions()
            options.weight = weights?[i] ?? 1
            options.backup = backups.contains(name)
            return Server(name: name, location: at, id: i + 1, host: "127.0.0.1", address: .v4(0x7F00_0001),
                          port: UInt16(8000 + i), options: options)
        }
        return Backend(proxy: proxy)
    }

    /// SDBM hashes of request paths, as `balance uri` makes them.
    static func keys(_ count: Int) -> [UInt64] {
        (0..<count).map { i in
            Array("/static/img\(i).png".utf8).withUnsafeBytes { HTTPRuleSet.sdbm($0) }
        }
    }

    static func assign(_ backend: Backend, _ keys: [UInt64]) -> [String] {
        keys.map { key in
            if case .server(let s) = backend.pickServer(on: testLoop, excluding: nil, source: nil, hashKey: key) { return s.name }
            return "-"
        }
    }

    static func server(_ backend: Backend, _ name: String) -> BackendServer {
        backend.servers.first { $0.name == name }!
    }

    static let names = (1...10).map { "s\($0)" }

    @Test func removingOneOfTenServersMovesOnlyItsKeys() {
        let backend = Self.backend(Self.names)
        let keys = Self.keys(20_000)
        let before = Self.assign(backend, keys)
        // Every server gets some of the keys, none far more than its share.
        for name in Self.names {
            let share = Double(before.filter { $0 == name }.count) / Double(keys.count)
            #expect(share > 0.04 && share < 0.2, "\(name) holds \(share)")
        }
        _ = Self.server(backend, "s4").state.health.enterMaintenance(now: 0)
        let after = Self.assign(backend, keys)
        var moved = 0
        for i in keys.indices where before[i] != after[i] {
            moved += 1
            #expect(before[i] == "s4", "key \(i) moved from \(before[i]) to \(after[i])")
        }
        let fraction = Double(moved) / Double(keys.count)
        #expect(fraction > 0.04 && fraction < 0.2, "moved \(fraction) of the keys")
        #expect(!after.contains("s4"))
        // Back from maintenance: every key goes back where it was.
        _ = Self.server(backend, "s4").state.health.leaveMaintenance(now: 0)
        #expect(Self.assign(backend, keys) == before)
    }

    @Test func mapBasedMovesMostKeysForComparison() {
        let backend = Self.backend(Self.names, hashType: .mapBased)
        let keys = Self.keys(5_000)
        let before = Self.assign(backend, keys)
        _ = Self.server(backend, "s4").state.health.enterMaintenance(now: 0)
        let after = Self.assign(backend, keys)
        let moved = keys.indices.filter { before[$0] != after[$0] }.count
        #expect(Double(moved) / Double(keys.count) > 0.5)
    }

    @Test func aServerRemovedFromTheConfigurationMovesOnlyItsKeys() {
        // The next generation drops s7 and lists the others in another order: points come from
        // names, so only s7's keys move.
        let keys = Self.keys(20_000)
        let before = Self.assign(Self.backend(Self.names), keys)
        let next = Self.backend(Self.names.filter { $0 != "s7" }.reversed())
        let after = Self.assign(next, keys)
        var moved = 0
        for i in keys.indices where before[i] != after[i] {
            moved += 1
            #expect(before[i] == "s7")
        }
        #expect(Double(moved) / Double(keys.count) > 0.04 && Double(moved) / Double(keys.count) < 0.2)
        // Adding an eleventh server takes about 1/11 of the keys, from every other server.
        let grown = Self.assign(Self.backend(Self.names + ["s11"]), keys)
        let taken = keys.indices.filter { before[$0] != grown[$0] }
        #expect(taken.allSatisfy { grown[$0] == "s11" })
        #expect(Double(taken.count) / Double(keys.count) > 0.03 && Double(taken.count) / Double(keys.count) < 0.2)
    }

    @Test func weightsAreHonoured() {
        let backend = Self.backend(["a", "b"], weights: [1, 3])
        let keys = Self.keys(20_000)
        let picks = Self.assign(backend, keys)
        let b = Double(picks.filter { $0 == "b" }.count) / Double(keys.count)
        #expect(b > 0.65 && b < 0.85, "b holds \(b)")
        #expect(backend.shards[0].balancer.ringPointCount == 4 * ConsistentHashRing.pointsPerWeight)
    }

    @Test func aWeightChangeRebuildsTheRingAndMovesOnlyThatServersShare() {
        let backend = Self.backend(Self.names)
        let keys = Self.keys(20_000)
        let before = Self.assign(backend, keys)
        // s2 weighs 3 now (`set weight be/s2 3`): it gains keys, from everyone, and loses none.
        Self.server(backend, "s2").state.health.setWeight(3)
        let after = Self.assign(backend, keys)
        #expect(backend.shards[0].balancer.ringPointCount == 12 * ConsistentHashRing.pointsPerWeight)
        let moved = keys.indices.filter { before[$0] != after[$0] }
        #expect(moved.allSatisfy { after[$0] == "s2" })
        let share = Double(after.filter { $0 == "s2" }.count) / Double(keys.count)
        #expect(share > 0.15 && share < 0.4, "s2 holds \(share)")
        // Weight 0: s2 is out, its keys go to the others, the rest stay.
        Self.server(backend, "s2").state.health.setWeight(0)
        let out = Self.assign(backend, keys)
        #expect(!out.contains("s2"))
        #expect(keys.indices.allSatisfy { after[$0] == "s2" || out[$0] == after[$0] })
        Self.server(backend, "s2").state.health.setWeight(1)
        #expect(Self.assign(backend, keys) == before)
    }

    @Test func backupsTakeOverOnlyWhenNoActiveIsUsable() {
        let backend = Self.backend(["a", "b", "c", "d"], backups: ["c", "d"])
        let keys = Self.keys(2_000)
        #expect(Set(Self.assign(backend, keys)) == ["a", "b"])
        _ = Self.server(backend, "a").state.health.enterMaintenance(now: 0)
        _ = Self.server(backend, "b").state.health.enterMaintenance(now: 0)
        // Without `option allbackups`, the first backup only.
        #expect(Set(Self.assign(backend, keys)) == ["c"])
        _ = Self.server(backend, "c").state.health.enterMaintenance(now: 0)
        #expect(Set(Self.assign(backend, keys)) == ["d"])
        _ = Self.server(backend, "d").state.health.enterMaintenance(now: 0)
        #expect(Set(Self.assign(backend, keys)) == ["-"])
    }

    @Test func redispatchAvoidsTheServerItLeaves() {
        let backend = Self.backend(Self.names)
        let key = Self.keys(1)[0]
        guard case .server(let first) = backend.pickServer(on: testLoop, excluding: nil, source: nil, hashKey: key) else {
            Issue.record("no server")
            return
        }
        guard case .server(let second) = backend.pickServer(on: testLoop, excluding: first, source: nil, hashKey: key) else {
            Issue.record("no server")
            return
        }
        #expect(second !== first)
        // The same key goes where it did once the server is back in the running.
        guard case .server(let third) = backend.pickServer(on: testLoop, excluding: nil, source: nil, hashKey: key) else { return }
        #expect(third === first)
    }

    @Test func sourceHashingIsConsistentToo() {
        let backend = Self.backend(Self.names, balance: .source)
        let clients = (0..<5_000).map { IPAddress.v4(0x0A00_0000 + UInt32($0)) }
        func assign() -> [String] {
            clients.map { c in
                if case .server(let s) = backend.pickServer(on: testLoop, excluding: nil, source: c) { return s.name }
                return "-"
            }
        }
        let before = assign()
        #expect(Set(before).count == 10)
        _ = Self.server(backend, "s9").state.health.enterMaintenance(now: 0)
        let after = assign()
        let moved = clients.indices.filter { before[$0] != after[$0] }
        #expect(moved.allSatisfy { before[$0] == "s9" })
        #expect(Double(moved.count) / Double(clients.count) < 0.2)
    }

    @Test func aFullServerQueuesRatherThanMovingTheKey() {
        let backend = Self.backend(["a", "b"])
        let keys = Self.keys(200)
        let before = Self.assign(backend, keys)
        let a = Self.server(backend, "a")
        a.config.options.maxconn = 1
        #expect(a.takeSlot(on: testLoop))
        for (i, key) in keys.enumerated() {
            let pick = backend.pickServer(on: testLoop, excluding: nil, source: nil, hashKey: key)
            switch pick {
            case .full: #expect(before[i] == "a")
            case .server(let s): #expect(s.name == "b" && before[i] == "b")
            case .noServer: Issue.record("no server")
            }
        }
        a.state.releaseSlot()
    }

    @Test func theRingHasSixteenPointsPerUnitOfWeightInOrder() {
        let ring = ConsistentHashRing(Self.backend(["a", "b", "c"], weights: [1, 2, 0]).servers)
        #expect(ring.points.count == 3 * 16)
        #expect(ring.points == ring.points.sorted())
        #expect(!ring.points.contains { $0 & 0xFFFF_FFFF == 2 })
    }
}
