import ConfigModel
import Testing
@testable import Engine

/// roundrobin through a loop's schedule (made when health changes, not at each pick): the same
/// sequence as the smooth weighted scan, and it follows maintenance, weights and full servers.
@Suite struct RoundRobinScheduleTests {
    static func picks(_ backend: Backend, _ count: Int) -> [String] {
        (0..<count).map { _ in
            if case .server(let s) = backend.pickServer(on: testLoop, excluding: nil, source: nil) { return s.name }
            return "-"
        }
    }

    @Test func thePeriodIsTheSmoothWeightedSequence() {
        for weights in [[1, 1, 1], [1, 2], [5, 1, 1], [3, 0, 2, 7], [10, 20, 30], [256, 1, 17]] {
            let members = (0..<weights.count).map(Int32.init).filter { weights[Int($0)] > 0 }
            let period = BackendShard.smoothWeightedPeriod(members, members.map { weights[Int($0)] })
            // The scan of the balancer, over the same weights, one period long.
            var current = [Int](repeating: 0, count: weights.count)
            let total = weights.reduce(0, +)
            var divisor = total
            for w in weights where w > 0 { divisor = gcd(divisor, w) }
            var scan: [Int32] = []
            for _ in 0..<(total / divisor) {
                var best = -1
                for i in weights.indices where weights[i] > 0 {
                    current[i] += weights[i]
                    if best < 0 || current[i] > current[best] { best = i }
                }
                current[best] -= total
                scan.append(Int32(best))
            }
            #expect(period == scan, "weights \(weights)")
        }
    }

    func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

    @Test func picksFollowMaintenanceAndWeightChanges() {
        let backend = ConsistentHashTests.backend(["a", "b", "c"], balance: .roundRobin, hashType: .mapBased)
        #expect(Self.picks(backend, 6) == ["a", "b", "c", "a", "b", "c"])
        _ = ConsistentHashTests.server(backend, "b").state.health.enterMaintenance(now: 0)
        #expect(Set(Self.picks(backend, 4)) == ["a", "c"])
        _ = ConsistentHashTests.server(backend, "b").state.health.leaveMaintenance(now: 0)
        ConsistentHashTests.server(backend, "c").state.health.setWeight(2)
        let picks = Self.picks(backend, 400)
        #expect(picks.filter { $0 == "c" }.count == 200)
        #expect(picks.filter { $0 == "a" }.count == 100)
        ConsistentHashTests.server(backend, "c").state.health.setWeight(1)
        _ = ConsistentHashTests.server(backend, "a").state.health.enterMaintenance(now: 0)
        _ = ConsistentHashTests.server(backend, "b").state.health.enterMaintenance(now: 0)
        _ = ConsistentHashTests.server(backend, "c").state.health.enterMaintenance(now: 0)
        guard case .noServer = backend.pickServer(on: testLoop, excluding: nil, source: nil) else {
            Issue.record("a backend whose servers are all in maintenance picked one")
            return
        }
    }

    @Test func aFullServerIsSkippedAndAllFullQueues() {
        var proxy = ConsistentHashTests.backend(["a", "b"], balance: .roundRobin, hashType: .mapBased).proxy
        proxy.servers = proxy.servers.map { var s = $0; s.options.maxconn = 1; return s }
        let backend = Backend(proxy: proxy)
        guard case .server(let first) = backend.pickServer(on: testLoop, excluding: nil, source: nil) else {
            Issue.record("no pick"); return
        }
        #expect(first.takeSlot(on: testLoop))
        // The full one is passed over, whoever's turn it is.
        for _ in 0..<3 {
            guard case .server(let s) = backend.pickServer(on: testLoop, excluding: nil, source: nil) else {
                Issue.record("no pick"); return
            }
            #expect(s !== first)
        }
        let other = ConsistentHashTests.server(backend, first.name == "a" ? "b" : "a")
        #expect(other.takeSlot(on: testLoop))
        guard case .full = backend.pickServer(on: testLoop, excluding: nil, source: nil) else {
            Issue.record("every server is full: the session should queue"); return
        }
    }
}
