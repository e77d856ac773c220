#if !BROKER_FUZZ
import ConfigModel
#endif

/// What the broker agrees to read and bind for the serving process, which it does not trust (it
/// parses traffic). The rule, in HAProxy's terms: a reload reads what the configuration on disk
/// names, as a HAProxy master process would read it, and nothing else.
///
/// - The configuration files given with `-f` (and the `*.cfg` files of a `-f` directory) are
///   always readable: every load starts with them.
/// - Any other file is readable when it is **named by the configuration the broker itself read in
///   this load** (the `-f` files' bytes as the broker served them, not a list the serving process
///   sends): a word of a configuration file (or of a `crt-list` served in the same load) that,
///   taken as a path, absolute or relative to the broker's working directory, to a `-f` file's
///   directory or its parent, or to a directory a `crt-base`, `ca-base`, `server-state-base` or
///   `default-path origin` line names, is the file; or the `.key` beside such a certificate; or a
///   file of a directory so named that the load listed (`crt DIR`). `/etc/resolv.conf` with `parse-resolv-conf` (or a server naming the implicit `resolvers default`).
/// - The files the last successful load read stay readable (a load that fails does not widen
///   anything: the set is replaced by what the broker served in a load that then succeeded).
/// - A bind is done when a `bind` line of the configuration read in this load (or the first one)
///   has its port, and its address when the line writes a literal one (a host name or a
///   `${VAR}` there is matched by the port alone).
/// - `"${VAR}"` in a word is expanded with the environment strata started with.
///
/// So an edited configuration that names a new certificate is read on the next reload (HAProxy's
/// behaviour), while a compromised serving process can read only files the configuration
/// written by the administrator names, and bind only its ports.
public struct BrokerPolicy: Sendable {
    /// The `-f` arguments, absolute.
    public let arguments: [String]
    public let workingDirectory: String
    /// Files the last successful load read.
    public private(set) var committed: Set<String>
    /// Files served since the current load began.
    private var served: Set<String> = []
    /// Paths the configuration read in this load names (see the type's rule).
    private var named: Set<String> = []
    /// The words of the configuration files and crt-lists read in this load, and the bases.
    private var words: Set<String> = []
    private var bases: Set<String> = []
    /// `bind` lines: (address or nil for any/unknown, port).
    private var binds: Set<BindName> = []
    private var resolvConf = false
    /// Directories listed in this load (`crt DIR`): their files are the certificates.
    private var listed: Set<String> = []

    struct BindName: Hashable, Sendable {
        var address: IPAddress?
        var port: UInt16
    }

    /// The environment strata started with: `"${VAR}"` in a word is expanded with it, as the
    /// loader expands it.
    let environment: [String: String]

    public init(arguments: [String], workingDirectory: String, firstLoadFiles: [String], environment: [String: String] = [:]) {
        self.workingDirectory = workingDirectory
        self.environment = environment
        self.arguments = arguments.map { BrokerPolicy.normalize($0, in: workingDirectory) }
        self.committed = Set(firstLoadFiles.map { BrokerPolicy.normalize($0, in: workingDirectory) })
    }

    // MARK: what the broker learns

    /// A load begins: what the previous attempt named is forgotten.
    public mutating func begin() {
        served = []
        named = []
        words = []
        bases = []
        binds = []
        resolvConf = false
        listed = []
    }

    /// The load succeeded: what it read stays readable.
    public mutating func commit() {
        committed = served
    }

    /// The broker served `bytes` of `path`: a configuration file's words name files and binds;
    /// a TLS file without a PEM block is a crt-list, whose words name certificates.
    public mutating func served(_ path: String, kind: FileKindClass, bytes: [UInt8]) {
        let p = BrokerPolicy.normalize(path, in: workingDirectory)
        served.insert(p)
        switch kind {
        // Only the `-f` files' words are names: a file the configuration names, asked for as a
        // configuration, must not widen what is readable with its own contents.
        case .configuration where isArgument(p):
            let directory = BrokerPolicy.directory(of: p)
            bases.insert(directory)
            bases.insert(BrokerPolicy.directory(of: directory))
            learnConfiguration(bytes)
        case .tls where !BrokerPolicy.contains(bytes, "-----BEGIN"):
            learnWords(bytes)
        default:
            break
        }
        rebuildNamed()
    }

    public enum FileKindClass: Sendable { case configuration, tls, other }

    // MARK: decisions

    public func mayRead(_ path: String) -> Bool {
        let p = BrokerPolicy.normalize(path, in: workingDirectory)
        if isArgument(p) || committed.contains(p) || named.contains(p) { return true }
        if p.hasSuffix(".key"), named.contains(String(p.dropLast(4))) { return true }
        if listed.contains(BrokerPolicy.directory(of: p)) { return true }
        return resolvConf && p == "/etc/resolv.conf"
    }

    public func mayList(_ path: String) -> Bool {
        let p = BrokerPolicy.normalize(path, in: workingDirectory)
        return arguments.contains(p) || named.contains(p)
    }

    /// The broker listed `path` for this load: a `crt DIR`'s files become readable.
    public mutating func listed(_ path: String) {
        listed.insert(BrokerPolicy.normalize(path, in: workingDirectory))
    }

    public func mayBind(_ key: ListenerKey) -> Bool {
        binds.contains(BindName(address: nil, port: key.endpoint.port))
            || binds.contains(BindName(address: key.endpoint.address, port: key.endpoint.port))
    }

    private func isArgument(_ p: String) -> Bool {
        if arguments.contains(p) { return true }
        // A `*.cfg` file directly in a `-f` directory.
        return p.hasSuffix(".cfg") && arguments.contains(BrokerPolicy.directory(of: p))
    }

    // MARK: reading a configuration's words

    private mutating func learnConfiguration(_ bytes: [UInt8]) {
        for raw in bytes.split(separator: 0x0A) {
            let line = BrokerPolicy.words(raw)
            guard let first = line.first else { continue }
            words.formUnion(line)
            // A map file is named inside a sample expression: `%[req.hdr(host),map(FILE,DEFAULT)]`.
            for word in line where word.contains("map") { words.formUnion(BrokerPolicy.mapFiles(in: word)) }
            // HAProxy 2.6's implicit `resolvers default` section is made from resolv.conf.
            if first == "server" || first == "server-template" || first == "default-server",
               zip(line, line.dropFirst()).contains(where: { $0 == "resolvers" && $1 == "default" }) {
                resolvConf = true
            }
            switch first {
            case "crt-base", "ca-base", "server-state-base":
                if line.count > 1 { bases.insert(BrokerPolicy.normalize(line[1], in: workingDirectory)) }
            case "default-path":
                if line.count > 2, line[1] == "origin" { bases.insert(BrokerPolicy.normalize(line[2], in: workingDirectory)) }
            case "parse-resolv-conf":
                resolvConf = true
            case "bind":
                if line.count > 1 { for entry in line[1].split(separator: ",") { learnBind(String(entry)) } }
            default:
                break
            }
        }
    }

    /// The files the `map*(FILE[,DEFAULT])` converters of `word` name: the first argument after
    /// each `map(` or `map_…(`.
    static func mapFiles(in word: String) -> [String] {
        var files: [String] = []
        var rest = Substring(word)
        while let start = rest.firstRange(of: "map") {
            var after = rest[start.upperBound...]
            // `map`, or `map_` and letters (`map_beg`, `map_str_int`), then `(`.
            let atWordStart = start.lowerBound == rest.startIndex || !(rest[rest.index(before: start.lowerBound)].isLetter
                || rest[rest.index(before: start.lowerBound)] == "_")
            while let c = after.first, c == "_" || c.isLetter { after = after.dropFirst() }
            if atWordStart, after.first == "(" {
                let argument = after.dropFirst().prefix { $0 != "," && $0 != ")" }
                if !argument.isEmpty { files.append(String(argument)) }
            }
            rest = rest[start.upperBound...]
        }
        return files
    }

    private mutating func learnWords(_ bytes: [UInt8]) {
        for raw in bytes.split(separator: 0x0A) { words.formUnion(BrokerPolicy.words(raw)) }
    }

    /// `[ipv4@|ipv6@]ADDR:PORT`, `:PORT`, `*:PORT`, `[v6]:PORT`.
    private mutating func learnBind(_ text: String) {
        var t = Substring(text)
        for prefix in ["ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"] where t.hasPrefix(prefix) { t = t.dropFirst(prefix.count) }
        guard let colon = t.lastIndex(of: ":"), let port = UInt16(t[t.index(after: colon)...]) else { return }
        var host = t[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        if host.isEmpty || host == "*" {
            binds.insert(BindName(address: .anyV4, port: port))
            binds.insert(BindName(address: .anyV6, port: port))
        } else if let address = IPAddress(host) {
            binds.insert(BindName(address: address, port: port))
        } else {
            // A host name or a variable: the port alone.
            binds.insert(BindName(address: nil, port: port))
        }
    }

    private mutating func rebuildNamed() {
        named = []
        for raw in words where raw.utf8.count <= 4096 {
            guard let word = expand(raw) else { continue }
            if word.hasPrefix("/") {
                named.insert(BrokerPolicy.normalize(word, in: "/"))
                continue
            }
            named.insert(BrokerPolicy.normalize(word, in: workingDirectory))
            for base in bases { named.insert(BrokerPolicy.normalize(word, in: base)) }
        }
    }

    /// `word` with each `${NAME}` replaced by the variable's value; nil when one is not set.
    func expand(_ word: String) -> String? {
        guard word.contains("${") else { return word }
        var out = ""
        var rest = Substring(word)
        while let open = rest.firstRange(of: "${") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}"),
                  let value = environment[String(rest[open.upperBound..<close])] else { return nil }
            out += value
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    /// The words of one line: split on blanks, quotes removed, a `#` word ends the line.
    static func words(_ line: ArraySlice<UInt8>) -> [String] {
        var out: [String] = []
        var current: [UInt8] = []
        var quote: UInt8? = nil
        func flush() {
            if !current.isEmpty { out.append(String(decoding: current, as: UTF8.self)) }
            current = []
        }
        for b in line {
            if let q = quote {
                if b == q { quote = nil } else { current.append(b) }
                continue
            }
            switch b {
            case 0x20, 0x09, 0x0D: flush()
            case 0x22, 0x27: quote = b
            case 0x23 where current.isEmpty:
                flush()
                return out
            default: current.append(b)
            }
        }
        flush()
        return out
    }

    static func contains(_ bytes: [UInt8], _ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard bytes.count >= needle.count else { return false }
        return bytes.indices.dropLast(needle.count - 1).contains { i in bytes[i..<i + needle.count].elementsEqual(needle) }
    }

    // MARK: paths

    /// `path` absolute (relative ones from `base`), with `.`, `..` and repeated slashes resolved
    /// as text (the configuration's author chose the paths; symbolic links are followed by open).
    public static func normalize(_ path: String, in base: String) -> String {
        let full = path.hasPrefix("/") ? path : base + "/" + path
        var parts: [Substring] = []
        for part in full.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }
}
