import ConfigModel

/// Reads the keyword lines of each section into the model (GlobalKeywords, ProxyKeywords,
/// LogTargetParser); holds only what those need, the address parser and its resolver.
struct KeywordReader {
    let addresses: AddressParser
    /// `default-path`, shared by every line of the load.
    var paths = LoadPaths()
    /// `-dr`: a server address that no `init-addr` method finds is a warning, and the server
    /// starts in resolution maintenance (HAProxy appends `none` to every server's methods).
    var resolutionFailuresWarn = false
    /// What `parse-resolv-conf` reads.
    var resolvConfPath = "/etc/resolv.conf"

    /// HAProxy's proxy (and server) name characters.
    static func isNameCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_" || c == "." || c == ":")
    }

    /// True when every character of `name` is a name character, on bytes (only ASCII ones are):
    /// the common case, before the Character search that names the offending one.
    static func isName(_ name: String) -> Bool {
        name.utf8.allSatisfy { c in
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: ":"):
                true
            default: false
            }
        }
    }

    /// `'KEYWORD' is not supported in section 'S'`, with the nearest supported keyword of that
    /// section, or where the keyword belongs when strata supports it in other sections.
    func unsupported(_ line: KeywordLine, in section: SectionKind, supported: [String],
                     elsewhere: [SectionKind] = []) -> ConfigError
    {
        let base = "'\(line.keyword)' is not supported in section '\(section.rawValue)'"
        if !elsewhere.isEmpty {
            return line.error(base + " (only in \(elsewhere.map(\.rawValue).joined(separator: ", ")))")
        }
        return line.error(base + KeywordSuggestion.clause(for: line.keyword, among: supported))
    }
}
