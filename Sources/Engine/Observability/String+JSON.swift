extension String {
    /// This text as a JSON string, quotes included (RFC 8259): `"` and `\` escaped, and every
    /// control character below U+0020, which JSON forbids raw in a string (`show info json`
    /// prints a `description` with a line feed as `\n`). The one escaper for every JSON the
    /// engine writes (the `json` converter uses its byte form).
    var jsonQuoted: String {
        "\"" + String(decoding: String.jsonEscaped(utf8, escapingDelete: false), as: UTF8.self) + "\""
    }

    /// `bytes` escaped for the inside of a JSON string; bytes of 0x80 and above (UTF-8 or not)
    /// pass as they are. `escapingDelete`: 0x7F too, as HAProxy's `json` converter writes it.
    static func jsonEscaped(_ bytes: some Sequence<UInt8>, escapingDelete: Bool) -> [UInt8] {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for c in bytes {
            switch c {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x0A: out += [0x5C, UInt8(ascii: "n")]
            case 0x0D: out += [0x5C, UInt8(ascii: "r")]
            case 0x09: out += [0x5C, UInt8(ascii: "t")]
            case 0..<0x20:
                out += Array("\\u00".utf8) + [hex[Int(c >> 4)], hex[Int(c & 0xF)]]
            case 0x7F where escapingDelete:
                out += Array("\\u007f".utf8)
            default: out.append(c)
            }
        }
        return out
    }
}
