import ConfigModel

/// Which address each server following one name in one backend takes from the records a
/// resolution holds, HAProxy's rules (resolv_get_ip_from_response): a server keeps the record it
/// holds while the record is alive; otherwise it takes the best-scored record: its preferred
/// family (8), in one of its `resolve-net` networks (4), held by no other server of the backend
/// (2: without `allow-dup-ip` a record held by another is not a candidate at all), its current
/// address (1); ties go to the record answered first. No record left: no address (resolution
/// maintenance). A plain value, tested without sockets.
struct AddressAssignment {
    struct Server {
        /// The address it has now (nil: none).
        var current: IPAddress?
        /// The record it holds from an earlier answer, if any.
        var held: IPAddress?
        var prefer: AddressFamily
        var networks: [IPNetwork]
        var allowDuplicate: Bool
    }

    enum Choice: Equatable {
        /// It holds a record still alive: nothing changes.
        case keep(IPAddress)
        /// It takes this record (its address changes unless it already was this one).
        case take(IPAddress)
        case none
    }

    /// `records`: alive, in the order first answered. `servers`: in configuration order; each sees
    /// the records the ones before it took.
    static func assign(records: [IPAddress], servers: [Server]) -> [Choice] {
        var holders: [IPAddress: Int] = [:]
        for s in servers { if let h = s.held, records.contains(h) { holders[h, default: 0] += 1 } }
        var choices: [Choice] = []
        choices.reserveCapacity(servers.count)
        for s in servers {
            if let h = s.held, records.contains(h) {
                choices.append(.keep(h))
                continue
            }
            var best: IPAddress?
            var bestScore = -1
            for record in records {
                var score = 0
                if record.isV6 == (s.prefer == .ipv6) { score += 8 }
                if s.networks.contains(where: { $0.contains(record) }) { score += 4 }
                if holders[record, default: 0] > 0 {
                    if !s.allowDuplicate { continue }
                } else {
                    score += 2
                }
                if record == s.current { score += 1 }
                if score > bestScore {
                    best = record
                    bestScore = score
                }
            }
            if let best {
                holders[best, default: 0] += 1
                choices.append(.take(best))
            } else {
                choices.append(.none)
            }
        }
        return choices
    }
}

/// Which SRV record each server of a template following one SRV label takes (HAProxy's
/// resolv_check_response): a server keeps the record it holds while the record is alive, a
/// record nobody holds goes to the first free server, a server whose record is gone is freed
/// (resolution maintenance until a record comes). Records beyond the servers are left out.
struct ServiceAssignment {
    enum Choice: Equatable {
        case keep(SRVRecord)
        /// A record it did not hold (its target and port change).
        case take(SRVRecord)
        /// Its record is gone and no other is left for it.
        case release
        /// It had none and gets none.
        case free
    }

    /// `held[i]`: the record server i holds (target and port), nil when free.
    static func assign(records: [SRVRecord], held: [SRVRecord?]) -> [Choice] {
        func same(_ a: SRVRecord, _ b: SRVRecord) -> Bool { a.target == b.target && a.port == b.port }
        var choices = [Choice](repeating: .free, count: held.count)
        var taken = [Bool](repeating: false, count: records.count)
        for (i, h) in held.enumerated() {
            guard let h else { continue }
            if let r = records.indices.first(where: { !taken[$0] && same(records[$0], h) }) {
                taken[r] = true
                choices[i] = .keep(records[r])
            } else {
                choices[i] = .release
            }
        }
        // A server whose record is gone is free again at once, as HAProxy's cleanup makes it.
        var free = held.indices.filter { choices[$0] == .free || choices[$0] == .release }.makeIterator()
        for r in records.indices where !taken[r] {
            guard let i = free.next() else { break }
            choices[i] = .take(records[r])
        }
        return choices
    }
}
