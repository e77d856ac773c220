extension String {
    /// This text as a JSON string, quotes included (RFC 8259): `"` and `\` escaped, and every
    /// control character below U+0020, which JSON forbids raw in a string (`show info json`
    /// prints a `description` with a line feed as `\n`). The one escaper for every JSON the
    /// engine writes.
    var jsonQuoted: String {
        var out = "\""
        for u in unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = Array("0123456789abcdef")
                out += "\\u00" + String(hex[Int(u.value >> 4)]) + String(hex[Int(u.value & 15)])
            default:
                out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
