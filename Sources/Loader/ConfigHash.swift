/// FNV-1a 64 over the effective configuration: the words of every section header and keyword line
/// after quoting and expansion. Comments, blank lines and spacing do not change it; any word does.
/// Stable across processes and machines (Swift's `Hasher` is seeded per process, so it cannot be used).
struct ConfigHash {
    private var state: UInt64 = 0xcbf2_9ce4_8422_2325

    private mutating func add(_ byte: UInt8) {
        state ^= UInt64(byte)
        state = state &* 0x0000_0100_0000_01b3
    }

    /// Each word ends with a 0 byte and each line with a newline, so that `a b` and `ab` differ and
    /// so do two lines and one.
    mutating func add(line words: [String]) {
        var state = self.state
        for word in words {
            withBytes(word) { bytes in
                for byte in bytes {
                    state ^= UInt64(byte)
                    state = state &* 0x0000_0100_0000_01b3
                }
            }
            state = state &* 0x0000_0100_0000_01b3  // the 0 byte: xor with 0 changes nothing
        }
        self.state = state
        add(0x0a)
    }

    /// 16 lowercase hex digits.
    var hex: String {
        let digits = String(state, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
