import ConfigModel

/// A session's membership in its generation's list and in a backend queue: intrusive links, so
/// joining and leaving cost no allocation. The links are unowned: a session unlinks itself before
/// it releases its own retain.
class ListedSession: EventHandler {
    unowned(unsafe) var generationPrev: ListedSession?
    unowned(unsafe) var generationNext: ListedSession?
    unowned(unsafe) var queuePrev: ListedSession?
    unowned(unsafe) var queueNext: ListedSession?
    var isQueued = false
    /// What the balancer hashes for this session while it waits in a queue.
    var balanceSource: IPAddress? { nil }
    var balanceKey: UInt64? { nil }

    /// Closes the session at once (hard-stop-after, max-generations, shutdown).
    func kill() {}

    /// A server slot was found for this queued session.
    func leftQueue(assigned server: BackendServer) {}
}

struct SessionList {
    private(set) unowned(unsafe) var head: ListedSession?
    private(set) var count = 0

    mutating func insert(_ s: ListedSession) {
        s.generationPrev = nil
        s.generationNext = head
        head?.generationPrev = s
        head = s
        count += 1
    }

    mutating func remove(_ s: ListedSession) {
        if let p = s.generationPrev { p.generationNext = s.generationNext } else { head = s.generationNext }
        s.generationNext?.generationPrev = s.generationPrev
        s.generationPrev = nil
        s.generationNext = nil
        count -= 1
    }

    /// Every member, copied first: killing a session removes it from the list.
    var members: [ListedSession] {
        var out: [ListedSession] = []
        out.reserveCapacity(count)
        var cursor = head
        while let s = cursor {
            out.append(s)
            cursor = s.generationNext
        }
        return out
    }
}

/// First-in first-out sessions waiting for a server slot.
struct SessionQueue {
    private(set) unowned(unsafe) var first: ListedSession?
    private unowned(unsafe) var last: ListedSession?
    private(set) var count = 0

    mutating func append(_ s: ListedSession) {
        s.isQueued = true
        s.queueNext = nil
        s.queuePrev = last
        if let l = last { l.queueNext = s } else { first = s }
        last = s
        count += 1
    }

    mutating func remove(_ s: ListedSession) {
        guard s.isQueued else { return }
        s.isQueued = false
        if let p = s.queuePrev { p.queueNext = s.queueNext } else { first = s.queueNext }
        if let n = s.queueNext { n.queuePrev = s.queuePrev } else { last = s.queuePrev }
        s.queuePrev = nil
        s.queueNext = nil
        count -= 1
    }
}
