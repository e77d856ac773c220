/// Keyword -> value for the lookups made on every line, without hashing the whole word: a word
/// goes to a bucket by its length and first and last bytes, then is compared with the few
/// keywords there. About a quarter of a Dictionary<String, _> lookup on short keywords.
struct KeywordTable<Value: Sendable>: Sendable {
    private var buckets: [[(name: String, value: Value)]]

    init(_ entries: [(String, Value)]) {
        buckets = Array(repeating: [], count: 64)
        for (name, value) in entries { buckets[KeywordTable.bucket(name)].append((name, value)) }
    }

    @inline(__always)
    private static func bucket(_ word: String) -> Int {
        withBytes(word) { bytes in
            guard let first = bytes.first, let last = bytes.last else { return 0 }
            return Int((UInt(bytes.count) &* 7 &+ UInt(first) &* 3 &+ UInt(last)) & 63)
        }
    }

    subscript(_ word: String) -> Value? {
        buckets.withUnsafeBufferPointer { buckets in
            buckets[KeywordTable.bucket(word)].withUnsafeBufferPointer { entries in
                for i in entries.indices where entries[i].name == word { return entries[i].value }
                return nil
            }
        }
    }
}
