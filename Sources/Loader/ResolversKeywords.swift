import ConfigModel

/// The keywords of a `resolvers NAME` section (HAProxy's configuration.txt §5.3.2), and how each
/// lands in ResolversSection.
extension KeywordReader {
    static let resolversKeywords = [
        "accepted_payload_size", "hold", "nameserver", "parse-resolv-conf", "resolve_retries", "timeout resolve",
        "timeout retry",
    ]
    static let holdStatuses = ["nx", "other", "refused", "timeout", "valid", "obsolete"]

    /// One line of a `resolvers` section. `warnings`: what `parse-resolv-conf` skipped.
    func resolversKeyword(_ line: KeywordLine, section: inout ResolversSection, warnings: inout [ConfigError])
        throws(ConfigError)
    {
        guard KeywordReader.resolversKeywords.contains(line.keyword) else {
            throw line.error("'\(line.keyword)' is not supported in section 'resolvers'"
                + KeywordSuggestion.clause(for: line.keyword, among: KeywordReader.resolversKeywords))
        }
        if line.negated { throw line.error("'no' cannot be used with '\(line.keyword)'") }
        switch line.keyword {
        case "nameserver":
            let id = try line.argument(0, expecting: "a name and an address (nameserver ID ADDR:PORT)")
            let address = try line.argument(1, expecting: "an address after the name (nameserver ID ADDR:PORT)")
            try line.noArguments(after: 2)
            if !KeywordReader.isName(id), let bad = id.first(where: { !KeywordReader.isNameCharacter($0) }) {
                throw line.error("character '\(bad)' is not permitted in nameserver name '\(id)'")
            }
            if let earlier = section.nameservers.first(where: { $0.id == id }) {
                throw line.error("nameserver '\(id)' has the same name as another nameserver declared at \(earlier.location)")
            }
            section.nameservers.append(try nameserver(id: id, address: address, line: line))
        case "parse-resolv-conf":
            try line.noArguments()
            let found = try resolvConfNameservers(line, section: section, warnings: &warnings)
            section.nameservers += found
        case "accepted_payload_size":
            // A DNS header at least; 65535 is the most EDNS0 can announce.
            section.acceptedPayloadSize = try line.integer(0, range: 12...65535)
            try line.noArguments(after: 1)
        case "resolve_retries":
            section.resolveRetries = try line.integer(0, range: 1...Int(Int32.max))
            try line.noArguments(after: 1)
        case "timeout resolve", "timeout retry":
            let ms = try line.time(0)
            try line.noArguments(after: 1)
            guard ms > 0 else { throw line.error("'\(line.keyword)' expects a time greater than 0") }
            if line.keyword == "timeout resolve" { section.timeoutResolve = ms } else { section.timeoutRetry = ms }
        case "hold":
            let status = try line.choice(0, among: KeywordReader.holdStatuses)
            guard line.args.count > 1 else { throw line.error("'hold \(status)' expects a time (for example 30s)") }
            let text = line.args[line.args.startIndex + 1]
            let ms: Int
            switch ConfigUnits.parseTime(text) {
            case .success(let value): ms = value
            case .failure(let failure): throw line.error("'hold \(status)' expects a time, got '\(text)' (\(failure))")
            }
            try line.noArguments(after: 2)
            switch status {
            case "nx": section.hold.nx = ms
            case "other": section.hold.other = ms
            case "refused": section.hold.refused = ms
            case "timeout": section.hold.timeout = ms
            case "valid": section.hold.valid = ms
            default: section.hold.obsolete = ms
            }
        default:
            break
        }
    }

    /// `[udp@|tcp@][ipv4@|ipv6@]ADDR:PORT`; a host name resolves now, as on a `bind` line.
    private func nameserver(id: String, address text: String, line: KeywordLine) throws(ConfigError)
        -> ResolversSection.Nameserver
    {
        var rest = Substring(text)
        var tcp = false
        for (prefix, isTCP) in [("tcp@", true), ("udp@", false), ("tcp4@", true), ("udp4@", false), ("tcp6@", true), ("udp6@", false)]
        where rest.hasPrefix(prefix) {
            tcp = isTCP
            rest = rest.dropFirst(prefix.count)
            // tcp4@/udp6@… name the family too, as ipv4@/ipv6@ do.
            if prefix.count == 5 { rest = (prefix.hasPrefix("tcp4") || prefix.hasPrefix("udp4") ? "ipv4@" : "ipv6@") + rest }
            break
        }
        switch addresses.endpoint(String(rest), allowAny: false) {
        case .success(let endpoint):
            return ResolversSection.Nameserver(id: id, endpoint: endpoint, tcp: tcp, location: line.location)
        case .failure(let problem):
            throw line.error("'nameserver \(id)': \(problem)")
        }
    }

    /// The `nameserver` lines of resolv.conf, each named after its address (HAProxy's rule), on
    /// port 53. A line without an address, with one that is not an IP address, or naming one
    /// already in the section is skipped with a warning, as HAProxy skips it.
    /// HAProxy 2.6's `default` resolvers section, made when no section has that name: the
    /// nameservers of resolv.conf (nil when it names none or cannot be read, as HAProxy then has
    /// no such section).
    func defaultResolvers() -> ResolversSection? {
        let location = SourceLocation(file: resolvConfPath)
        var section = ResolversSection(name: "default", location: location)
        var ignored: [ConfigError] = []
        guard let found = try? resolvConfNameservers(KeywordLine(words: ["parse-resolv-conf"], location: location),
                                                     section: section, warnings: &ignored), !found.isEmpty else { return nil }
        section.nameservers = found
        return section
    }

    private func resolvConfNameservers(_ line: KeywordLine, section: ResolversSection,
                                       warnings: inout [ConfigError]) throws(ConfigError) -> [ResolversSection.Nameserver]
    {
        let file = resolvConfPath
        let bytes: [UInt8]
        switch paths.read(file, .resolvConf) {
        case .success(let b): bytes = b
        case .failure(let problem): throw line.error("'parse-resolv-conf': cannot read \(file): \(problem)")
        }
        var found: [ResolversSection.Nameserver] = []
        for (index, raw) in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let where_ = SourceLocation(file: file, line: index + 1)
            guard raw.hasPrefix("nameserver") else { continue }
            let after = raw.dropFirst("nameserver".count)
            guard after.isEmpty || after.first == " " || after.first == "\t" || after.first == "\r" else { continue }
            guard let address = after.split(whereSeparator: { " \t\r".contains($0) }).first.map(String.init) else {
                warnings.append(ConfigError(line.location, "'parse-resolv-conf': \(where_): nameserver line is missing address"))
                continue
            }
            if let earlier = (section.nameservers + found).first(where: { $0.id == address }) {
                warnings.append(ConfigError(line.location, "'parse-resolv-conf': \(where_): nameserver '\(address)' is already declared at \(earlier.location), skipped"))
                continue
            }
            guard let ip = IPAddress(address) else {
                warnings.append(ConfigError(line.location, "'parse-resolv-conf': \(where_): address '\(address)' could not be recognized, nameserver skipped"))
                continue
            }
            found.append(ResolversSection.Nameserver(id: address, endpoint: SocketEndpoint(address: ip, port: 53), tcp: false,
                                                     location: where_))
        }
        return found
    }
}
