/// Base64 (RFC 4648) for the `base64`/`ub64enc`/`b64dec`/`ub64dec` converters and Basic
/// credentials (`stats auth`, `userlist`).
enum Base64 {
    enum Alphabet {
        /// `+` and `/`, padded with `=`.
        case standard
        /// `-` and `_`, without padding.
        case urlSafe
        /// Either (Basic credentials as clients send them).
        case either
    }

    static func encode(_ b: [UInt8], urlSafe: Bool) -> [UInt8] {
        let table = Array((urlSafe ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                                   : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/").utf8)
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            let n = min(3, b.count - i)
            var chunk: UInt32 = 0
            for k in 0..<3 { chunk = chunk << 8 | UInt32(k < n ? b[i + k] : 0) }
            for k in 0..<4 {
                if k <= n { out.append(table[Int(chunk >> UInt32(18 - 6 * k) & 0x3F)]) } else if !urlSafe { out.append(0x3D) }
            }
            i += 3
        }
        return out
    }

    /// The bytes `text` encodes, nil when it holds a character outside `alphabet` (`=` is skipped).
    static func decode(_ text: some Sequence<UInt8>, _ alphabet: Alphabet) -> [UInt8]? {
        let standard = alphabet != .urlSafe, urlSafe = alphabet != .standard
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for c in text {
            let v: UInt32
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+") where standard, UInt8(ascii: "-") where urlSafe: v = 62
            case UInt8(ascii: "/") where standard, UInt8(ascii: "_") where urlSafe: v = 63
            case UInt8(ascii: "="): continue
            default: return nil
            }
            buffer = buffer << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return out
    }
}
