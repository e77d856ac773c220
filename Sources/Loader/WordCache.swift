/// The Strings of short words already made while reading a configuration, by content. A
/// configuration repeats the same short words thousands of times (`server`, `weight`, `maxconn`,
/// server names, small numbers), and making a String from bytes costs far more (validation, then
/// the small-string build) than finding the same word here. Only words of up to 15 bytes are
/// kept: those are small Strings, whose bytes and length fit the 16-byte key, so a key equal to
/// a stored one is the same text and the stored String is the String `String(decoding:)` makes.
struct WordCache {
    private static let size = 512
    private var keys: [(UInt64, UInt64)]
    private var words: [String]

    /// `enabled: false` makes every word anew (a single line's tokenizing keeps no table).
    init(enabled: Bool = true) {
        keys = enabled ? Array(repeating: (0, 0), count: WordCache.size) : []
        words = enabled ? Array(repeating: "", count: WordCache.size) : []
    }

    mutating func word(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let count = bytes.count
        guard count > 0, count <= 15, !keys.isEmpty, let base = bytes.baseAddress else {
            return String(decoding: bytes, as: UTF8.self)
        }
        // The bytes in the low 15 bytes of a zeroed 16-byte key, the count in the last one: the
        // key is the content. (The zero key is never a word's: its count byte is not 0.)
        var key: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &key) { raw in
            raw.baseAddress!.copyMemory(from: base, byteCount: count)
            raw[15] = UInt8(count)
        }
        let slot = Int(truncatingIfNeeded: ((key.0 ^ (key.1 &* 0x9e37_79b9_7f4a_7c15)) &* 0xff51_afd7_ed55_8ccd) >> 55)
            & (WordCache.size - 1)
        if keys[slot] == key { return words[slot] }
        let word = String(decoding: bytes, as: UTF8.self)
        keys[slot] = key
        words[slot] = word
        return word
    }
}
