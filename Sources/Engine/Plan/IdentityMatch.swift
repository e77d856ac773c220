/// Pairs the items of two lists by identity (a proxy's kind and name, a server's name). Items
/// usually keep their place, so the item at the same index is tried first, and the identities
/// are hashed into a dictionary only once one did not match there (as `Backend.init` carries
/// server state): linear, and without hashing or allocating when nothing moved.
struct IdentityMatch {
    /// For each new item, the index of its old counterpart, or -1 (added); nil when every item
    /// has its counterpart at its own index.
    private var counterparts: [Int]?
    /// For each old item, whether a new one took it (false: removed); nil as above.
    private var matches: [Bool]?

    init<Key: Hashable>(old oldCount: Int, new newCount: Int, oldKey: (Int) -> Key, newKey: (Int) -> Key) {
        var aligned = 0
        if oldCount == newCount {
            while aligned < newCount && oldKey(aligned) == newKey(aligned) { aligned += 1 }
            if aligned == newCount { return }
        }
        var counterpart = [Int](repeating: -1, count: newCount)
        var matched = [Bool](repeating: false, count: oldCount)
        for i in 0..<aligned {
            counterpart[i] = i
            matched[i] = true
        }
        var byKey: [Key: Int]?
        for i in aligned..<newCount {
            let key = newKey(i)
            var j = i
            if j >= oldCount || matched[j] || oldKey(j) != key {
                if byKey == nil {
                    var keys: [Key: Int] = [:]
                    keys.reserveCapacity(oldCount)
                    // The first of two items with one identity is the one a reload finds too.
                    for k in (0..<oldCount).reversed() { keys[oldKey(k)] = k }
                    byKey = keys
                }
                j = byKey![key] ?? -1
                if j >= 0 && matched[j] { j = -1 }
            }
            if j >= 0 {
                counterpart[i] = j
                matched[j] = true
            }
        }
        counterparts = counterpart
        matches = matched
    }

    /// The index of new item `i`'s old counterpart, or -1 (added).
    func counterpart(of i: Int) -> Int { counterparts?[i] ?? i }

    /// Whether a new item took old item `j` (false: removed).
    func isMatched(_ j: Int) -> Bool { matches?[j] ?? true }
}
