import ConfigModel

/// The `json([INPUT-CODE])` converter as HAProxy 2.6 writes it (checked against 2.6.12): `"`, `\`
/// and `/` escaped with a backslash, `\b \f \n \r \t`, other control bytes and DEL as `\u00XX`.
/// `ascii` (the default) writes every byte from 0x80 as `\u00XX`; the `utf8` codes decode
/// UTF-8 of one to three bytes into `\uXXXX` and treat a sequence they cannot take (a stray or
/// cut byte, a surrogate, a code point past the BMP, an overlong form unless `p`) as an error:
/// `utf8` and `utf8p` fail (no sample), `utf8s` and `utf8ps` drop it. `p` (permissive) takes
/// overlong forms.
enum HTTPJSONEscape {
    static func escape(_ bytes: [UInt8], _ code: JSONInputCode) -> [UInt8]? {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 8)
        func unicode(_ c: Int) {
            out += [0x5C, UInt8(ascii: "u"), hex[c >> 12 & 0xF], hex[c >> 8 & 0xF], hex[c >> 4 & 0xF], hex[c & 0xF]]
        }
        func plain(_ c: UInt8) {
            switch c {
            case 0x22, 0x5C, 0x2F: out += [0x5C, c]
            case 0x08: out += [0x5C, UInt8(ascii: "b")]
            case 0x0C: out += [0x5C, UInt8(ascii: "f")]
            case 0x0A: out += [0x5C, UInt8(ascii: "n")]
            case 0x0D: out += [0x5C, UInt8(ascii: "r")]
            case 0x09: out += [0x5C, UInt8(ascii: "t")]
            case 0..<0x20, 0x7F: unicode(Int(c))
            default: out.append(c)
            }
        }
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if c < 0x80 {
                plain(c)
                i += 1
                continue
            }
            guard code != .ascii else {
                unicode(Int(c))
                i += 1
                continue
            }
            // The continuation bytes that follow, as far as the lead byte says (at most 3).
            let want = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0
            var n = 0
            while n < want, i + 1 + n < bytes.count, bytes[i + 1 + n] & 0xC0 == 0x80 { n += 1 }
            var point = -1
            if want > 0 && n == want && want < 3 {
                point = want == 1 ? Int(c & 0x1F) << 6 | Int(bytes[i + 1] & 0x3F)
                    : Int(c & 0x0F) << 12 | Int(bytes[i + 1] & 0x3F) << 6 | Int(bytes[i + 2] & 0x3F)
                let overlong = want == 1 ? point < 0x80 : point < 0x800
                if overlong && !code.permissive { point = -1 }
                if (0xD800...0xDFFF).contains(point) { point = -1 }
            }
            if point < 0 {
                guard code.skipsErrors else { return nil }
                i += 1 + n
                continue
            }
            if point < 0x80 { plain(UInt8(point)) } else { unicode(point) }
            i += 1 + n
        }
        return out
    }
}
