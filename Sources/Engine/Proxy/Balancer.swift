import ConfigModel

/// HAProxy's balancing algorithms over one backend's servers. `eligible` says which servers
/// may be chosen now; a full server (at its maxconn) is skipped, and nil means every eligible
/// server is full, so the session waits in the queue.
struct Balancer {
    let algorithm: BalanceAlgorithm
    /// leastconn breaks ties by rotating from the last pick, as HAProxy's tree does.
    private var lastPick = -1
    /// Smooth weighted round-robin's running weight of each server (by index).
    private var currentWeights: [Int] = []
    /// `hash-type consistent` with a hashing algorithm (`source`, `uri`, `url_param`, `hdr`).
    private var ring: ConsistentHashRing?
    /// `hash-balance-factor` (0: off), and each server's weight before it (by index), kept
    /// between picks so that a pick allocates nothing.
    private let balanceFactor: Int
    private var weightBefore: [Int] = []

    /// `servers`: the backend's servers, in the order `pick` receives them (the ring of
    /// `hash-type consistent` is built from them).
    init(algorithm: BalanceAlgorithm, hashType: HashType = .mapBased, balanceFactor: Int = 0, servers: [BackendServer] = []) {
        self.algorithm = algorithm
        self.balanceFactor = hashType == .consistent ? balanceFactor : 0
        switch algorithm {
        case .source, .uri, .urlParameter, .header, .hash:
            if hashType == .consistent { ring = ConsistentHashRing(servers) }
        default:
            break
        }
    }

    /// `hashKey`: the request's hash for `uri`, `url_param` and `hdr` (nil when the request lacks
    /// the parameter or header: those fall back to round robin, as HAProxy does).
    mutating func pick(_ servers: [BackendServer], source: IPAddress?, hashKey: UInt64? = nil,
                       eligible: (BackendServer) -> Bool) -> BackendServer? {
        switch algorithm {
        case .uri, .urlParameter, .header, .hash:
            guard let hashKey else { return smoothWeighted(servers, eligible) }
            return hashed(servers, hashKey, eligible)
        case .roundRobin, .staticRoundRobin:
            return smoothWeighted(servers, eligible)
        case .leastConnections:
            return leastConnections(servers, eligible)
        case .first:
            for s in servers where eligible(s) && !s.isFull { return s }
            return nil
        case .source:
            return hashed(servers, Balancer.hash(source), eligible)
        case .random(let draws):
            return randomDraws(servers, draws, eligible)
        }
    }

    /// `balance random(N)`: N draws weighted by the servers' weights, the one with the fewest
    /// sessions per unit of weight kept (HAProxy's draws on its random-keyed ring, in effect).
    private func randomDraws(_ servers: [BackendServer], _ draws: Int, _ eligible: (BackendServer) -> Bool) -> BackendServer? {
        var total = 0
        for s in servers where eligible(s) && !s.isFull { total += s.weight }
        guard total > 0 else { return nil }
        var best: BackendServer?
        for _ in 0..<draws {
            var point = Int.random(in: 0..<total)
            for s in servers where eligible(s) && !s.isFull {
                if point < s.weight {
                    if let b = best {
                        // HAProxy's comparison: load per weight, a tie keeps the earlier draw.
                        if s.state.currentSessions * b.weight < b.state.currentSessions * s.weight { best = s }
                    } else {
                        best = s
                    }
                    break
                }
                point -= s.weight
            }
        }
        return best
    }

    /// Points on the `hash-type consistent` ring (0 without one).
    var ringPointCount: Int { ring?.points.count ?? 0 }

    /// A hashing algorithm's choice: on the ring with `hash-type consistent`, else map-based.
    private mutating func hashed(_ servers: [BackendServer], _ key: UInt64, _ eligible: (BackendServer) -> Bool) -> BackendServer? {
        guard ring != nil else { return mapBased(servers, key, eligible) }
        ring!.refresh(servers)
        if balanceFactor > 0 {
            // HAProxy's bounded load: (served + 1) × factor% slots shared by weight, a server
            // past its share skipped on the ring (never fewer than one slot).
            var served = 0, total = 0
            weightBefore.removeAll(keepingCapacity: true)
            for s in servers {
                weightBefore.append(total)
                if eligible(s) {
                    served += s.state.currentSessions
                    total += s.weight
                }
            }
            if total > 0 {
                let slots = ((served + 1) * balanceFactor + 99) / 100
                let perWeight = slots / total, remainder = slots % total
                let before = weightBefore
                let bounded = { (s: BackendServer) -> Bool in
                    guard eligible(s), let i = servers.firstIndex(where: { $0 === s }) else { return false }
                    var own = s.weight * perWeight + ((before[i] + s.weight) * remainder) / total - (before[i] * remainder) / total
                    if own == 0 { own = 1 }
                    return s.state.currentSessions < own
                }
                if let s = ring!.server(for: key, servers, bounded) { return s.isFull ? nil : s }
            }
        }
        guard let s = ring!.server(for: key, servers, eligible) else { return nil }
        return s.isFull ? nil : s
    }

    /// Smooth weighted round robin: each eligible server gains its weight, the richest is chosen
    /// and pays the total. Weights 1 and 2 give s2 s1 s2 …, spread rather than in bursts. The
    /// running weights are this balancer's (one per loop): each loop's sequence is the same fair
    /// one, so their sum is too.
    private mutating func smoothWeighted(_ servers: [BackendServer], _ eligible: (BackendServer) -> Bool) -> BackendServer? {
        if currentWeights.count != servers.count { currentWeights = [Int](repeating: 0, count: servers.count) }
        var total = 0
        var best = -1
        for i in servers.indices {
            let s = servers[i]
            guard eligible(s) && !s.isFull else { continue }
            let w = s.weight
            currentWeights[i] += w
            total += w
            if best < 0 || currentWeights[i] > currentWeights[best] { best = i }
        }
        guard best >= 0 else { return nil }
        currentWeights[best] -= total
        return servers[best]
    }

    /// Fewest current sessions per unit of weight; ties go round robin.
    private mutating func leastConnections(_ servers: [BackendServer], _ eligible: (BackendServer) -> Bool) -> BackendServer? {
        let n = servers.count
        guard n > 0 else { return nil }
        var best: BackendServer?
        var bestIndex = -1
        for step in 1...n {
            let i = (lastPick + step) % n
            let s = servers[i]
            guard eligible(s), !s.isFull else { continue }
            if let b = best {
                // s.cur / s.weight < b.cur / b.weight, without division.
                if (s.state.currentSessions + 1) * b.weight < (b.state.currentSessions + 1) * s.weight {
                    best = s
                    bestIndex = i
                }
            } else {
                best = s
                bestIndex = i
            }
        }
        if best != nil { lastPick = bestIndex }
        return best
    }

    /// HAProxy's map-based hashing: the key modulo the eligible servers' total weight. The same
    /// key reaches the same server while the set of servers does not change; when it does, most
    /// keys move (see `ConsistentHashRing` for the alternative).
    private func mapBased(_ servers: [BackendServer], _ key: UInt64, _ eligible: (BackendServer) -> Bool) -> BackendServer? {
        var total = 0
        for s in servers where eligible(s) { total += s.weight }
        guard total > 0 else { return nil }
        var point = Int(key % UInt64(total))
        for s in servers where eligible(s) {
            if point < s.weight { return s.isFull ? nil : s }
            point -= s.weight
        }
        return nil
    }

    static func hash(_ address: IPAddress?) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        switch address {
        case .v4(let a)?:
            mix(UInt8(a >> 24)); mix(UInt8(a >> 16 & 0xff)); mix(UInt8(a >> 8 & 0xff)); mix(UInt8(a & 0xff))
        case .v6(let b)?:
            for byte in b { mix(byte) }
        case nil:
            break
        }
        return h
    }
}

/// `hash-type consistent`: each server owns points on a 32-bit ring, 16 per unit of weight
/// (HAProxy's BE_WEIGHT_SCALE), and a key goes to the server of the nearest point, as HAProxy's
/// lb_chash does. Taking a server out moves only the keys it held (about 1/N of them) to its
/// neighbours; bringing it back moves them back; a weight change adds or removes that server's
/// points only.
///
/// One ring per backend and generation, of every server; a server that may not be chosen now
/// (down, in maintenance or drain, a backup while actives are up, the server a redispatch leaves)
/// is skipped: the nearest point of an eligible server, searched both ways, wins. That is the
/// server HAProxy's tree of usable servers answers, without rebuilding anything when a server goes
/// up or down. The ring is rebuilt when a server's weight changes (`set weight`, slow start).
///
/// A server's points come from its name, not from its position: adding, removing or reordering
/// other servers in the configuration leaves them where they are. A key is mixed (HAProxy's
/// `avalanche`) before it is placed: SDBM hashes of similar paths differ in their low bits only,
/// and would otherwise land on a few neighbouring points.
struct ConsistentHashRing {
    /// Points per unit of weight.
    static let pointsPerWeight = 16
    /// Position << 32 | server index, sorted: by position, ties by index.
    private(set) var points: [UInt64] = []
    /// The weights the ring was built with, by server index.
    private var weights: [Int]
    /// Each server's name, hashed: where its points come from.
    private let seeds: [UInt64]

    init(_ servers: [BackendServer]) {
        seeds = servers.map { ConsistentHashRing.seed($0.name) }
        weights = servers.map(\.weight)
        build()
    }

    /// Rebuilds the ring if a server's weight is not the one it was built with.
    mutating func refresh(_ servers: [BackendServer]) {
        var i = 0
        while i < servers.count {
            if servers[i].weight != weights[i] {
                weights = servers.map(\.weight)
                build()
                return
            }
            i += 1
        }
    }

    private mutating func build() {
        points.removeAll(keepingCapacity: true)
        points.reserveCapacity(weights.reduce(0) { $0 + max(0, $1) } * ConsistentHashRing.pointsPerWeight)
        for (index, weight) in weights.enumerated() where weight > 0 {
            for node in 0..<(weight * ConsistentHashRing.pointsPerWeight) {
                points.append(UInt64(ConsistentHashRing.position(seeds[index], node)) << 32 | UInt64(index))
            }
        }
        points.sort()
    }

    /// The eligible server whose point is nearest to `key` (either way round the ring; the one
    /// before on a tie, as HAProxy), or nil when no eligible server has a point.
    func server(for key: UInt64, _ servers: [BackendServer], _ eligible: (BackendServer) -> Bool) -> BackendServer? {
        let n = points.count
        guard n > 0 else { return nil }
        let hash = ConsistentHashRing.place(key)
        // First point at or after the key (the first point of all past the last one).
        var low = 0
        var high = n
        let target = UInt64(hash) << 32
        while low < high {
            let mid = (low + high) / 2
            if points[mid] < target { low = mid + 1 } else { high = mid }
        }
        let start = low == n ? 0 : low
        // The nearest eligible point after, then before.
        var next: Int?
        var i = start
        for _ in 0..<n {
            if eligible(servers[Int(points[i] & 0xFFFF_FFFF)]) {
                next = i
                break
            }
            i = i + 1 == n ? 0 : i + 1
        }
        guard let next else { return nil }
        var previous = next
        i = start == 0 ? n - 1 : start - 1
        for _ in 0..<n {
            if i == next { break }
            if eligible(servers[Int(points[i] & 0xFFFF_FFFF)]) {
                previous = i
                break
            }
            i = i == 0 ? n - 1 : i - 1
        }
        let after = UInt32(truncatingIfNeeded: points[next] >> 32) &- hash
        let before = hash &- UInt32(truncatingIfNeeded: points[previous] >> 32)
        let chosen = before <= after ? previous : next
        return servers[Int(points[chosen] & 0xFFFF_FFFF)]
    }

    /// Where a key sits on the ring: its 64 bits mixed (SplitMix64's finaliser), the high 32 kept.
    static func place(_ key: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: mix(key) >> 32)
    }

    static func position(_ seed: UInt64, _ node: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: mix(seed &+ UInt64(node) &* 0x9E37_79B9_7F4A_7C15) >> 32)
    }

    static func seed(_ name: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return mix(h)
    }

    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
