/// Pairs the items of two lists by identity (a proxy's kind and name, a server's name). Items
/// usually keep their place, so the item at the same index is tried first, and the identities
/// are hashed into a dictionary only once one did not match there (as `Backend.init` carries
/// server state): linear, and without hashing at all when nothing moved.
struct IdentityMatch {
    /// For each new item, the index of its old counterpart, or -1 (added).
    private(set) var counterpart: [Int]
    /// For each old item, whether a new one took it (false: removed).
    private(set) var matched: [Bool]

    init<Key: Hashable>(old oldCount: Int, new newCount: Int, oldKey: (Int) -> Key, newKey: (Int) -> Key) {
        counterpart = [Int](repeating: -1, count: newCount)
        matched = [Bool](repeating: false, count: oldCount)
        var byKey: [Key: Int]?
        for i in 0..<newCount {
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
    }
}
