import ConfigModel

/// HAProxy's balancing algorithms over one backend's servers. `eligible` says which servers
/// may be chosen now; a full server (at its maxconn) is skipped, and nil means every eligible
/// server is full, so the session waits in the queue.
struct Balancer {
    let algorithm: BalanceAlgorithm
    /// leastconn breaks ties by rotating from the last pick, as HAProxy's tree does.
    private var lastPick = -1

    init(algorithm: BalanceAlgorithm) { self.algorithm = algorithm }

    /// `hashKey`: the request's hash for `uri`, `url_param` and `hdr` (nil when the request lacks
    /// the parameter or header: those fall back to round robin, as HAProxy does).
    mutating func pick(_ servers: [BackendServer], source: IPAddress?, hashKey: UInt64? = nil,
                       eligible: (BackendServer) -> Bool) -> BackendServer? {
        switch algorithm {
        case .uri, .urlParameter, .header:
            guard let hashKey else { return smoothWeighted(servers, eligible) }
            return mapBased(servers, hashKey, eligible)
        case .roundRobin, .staticRoundRobin:
            return smoothWeighted(servers, eligible)
        case .leastConnections:
            return leastConnections(servers, eligible)
        case .first:
            for s in servers where eligible(s) && !s.isFull { return s }
            return nil
        case .source:
            return sourceHash(servers, source, eligible)
        }
    }

    /// Smooth weighted round robin: each eligible server gains its weight, the richest is chosen
    /// and pays the total. Weights 1 and 2 give s2 s1 s2 …, spread rather than in bursts.
    private func smoothWeighted(_ servers: [BackendServer], _ eligible: (BackendServer) -> Bool) -> BackendServer? {
        var total = 0
        var best: BackendServer?
        for s in servers where eligible(s) && !s.isFull {
            s.currentWeight += s.weight
            total += s.weight
            if best == nil || s.currentWeight > best!.currentWeight { best = s }
        }
        best?.currentWeight -= total
        return best
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

    /// Map-based hash of the client address over the eligible servers' weights: the same client
    /// reaches the same server while the set of servers does not change.
    private func sourceHash(_ servers: [BackendServer], _ source: IPAddress?, _ eligible: (BackendServer) -> Bool) -> BackendServer? {
        mapBased(servers, Balancer.hash(source), eligible)
    }

    /// HAProxy's map-based hashing: the key modulo the eligible servers' total weight.
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
