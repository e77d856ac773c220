import ConfigModel

/// `log TARGET [len N] [format F] FACILITY [LEVEL [MINLEVEL]]`, in `global` and in proxies.
extension KeywordReader {
    /// Syslog facility numbers by name (RFC 5424 order, HAProxy's names).
    static let logFacilities = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2", "ftp", "ntp",
        "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    ]
    static let logLevels = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
    static let logFormats = ["raw", "rfc3164", "rfc5424", "short"]
    /// HAProxy's other formats, named as not supported yet.
    static let otherLogFormats: Set<String> = ["local", "priority", "timed", "iso"]
    /// UDP syslog address prefixes.
    static let logPrefixes: [String: AddressParser.Family] = [
        "udp@": .unspecified, "udp4@": .v4, "udp6@": .v6, "ipv4@": .v4, "ipv6@": .v6,
    ]

    func logTarget(_ line: KeywordLine) throws(ConfigError) -> LogTarget {
        let text = try line.argument(0, expecting: "a target (stdout, stderr, a /path, or ADDR[:PORT]) and a facility")
        let destination = try logDestination(text, line: line)

        var maxLength = 1024
        var format = LogTarget.Format.rfc3164
        var i = 1
        while let word = line.optionalArgument(i), word == "len" || word == "format" || word == "sample" {
            switch word {
            case "len":
                maxLength = try line.integer(i + 1, range: 80...65535, name: "log len")
            case "format":
                let name = try line.argument(i + 1, expecting: "a format after 'format' (\(KeywordLine.list(KeywordReader.logFormats)))")
                if KeywordReader.otherLogFormats.contains(name) {
                    throw line.error("log format '\(name)' is not supported yet (strata has \(KeywordLine.list(KeywordReader.logFormats)))")
                }
                guard let value = LogTarget.Format(rawValue: name) else {
                    throw line.error("'log' format expects \(KeywordLine.list(KeywordReader.logFormats)), got '\(name)'")
                }
                format = value
            default:
                throw line.error("'sample' on log is not supported yet")
            }
            i += 2
        }

        let facilities = "a syslog facility (local0 to local7, daemon, user, ...)"
        guard let facilityName = line.optionalArgument(i) else {
            throw line.error("'\(line.keyword)' expects \(facilities) after the target")
        }
        guard let facility = KeywordReader.logFacilities.firstIndex(of: facilityName) else {
            throw line.error("'\(line.keyword)' expects \(facilities), got '\(facilityName)'")
        }
        var target = LogTarget(location: line.location, destination: destination, facility: facility)
        target.maxLength = maxLength
        target.format = format
        let levels = KeywordLine.list(KeywordReader.logLevels)
        if let name = line.optionalArgument(i + 1) {
            guard let level = KeywordReader.logLevels.firstIndex(of: name) else {
                throw line.error("'\(line.keyword)' level expects \(levels), got '\(name)'")
            }
            target.level = level
        }
        if let name = line.optionalArgument(i + 2) {
            guard let level = KeywordReader.logLevels.firstIndex(of: name) else {
                throw line.error("'\(line.keyword)' minimum level expects \(levels), got '\(name)'")
            }
            target.minLevel = level
        }
        try line.noArguments(after: i + 3)
        return target
    }

    private func logDestination(_ text: String, line: KeywordLine) throws(ConfigError) -> LogTarget.Destination {
        let text = addresses.expanded(text)
        switch text {
        case "stdout": return .stdout
        case "stderr": return .stderr
        default: break
        }
        if text.hasPrefix("/") { return .unixDatagram(path: text) }
        if text.hasPrefix("unix@") { return .unixDatagram(path: String(text.dropFirst(5))) }
        let parts: AddressParser.Parts
        switch AddressParser.split(text, prefixes: KeywordReader.logPrefixes) {
        case .success(let p): parts = p
        case .failure(let message): throw line.error("'log': \(message)")
        }
        var port: UInt16 = 514  // the syslog port; `ADDR:` with nothing after also means it (HAProxy's IPv6 form)
        if let portText = parts.port, !portText.isEmpty {
            switch AddressParser.port(portText, in: text) {
            case .success(let p): port = p
            case .failure(let message): throw line.error("'log': \(message)")
            }
        }
        switch addresses.address(parts.host, family: parts.family, in: text, allowAny: false) {
        case .success(let address): return .udp(SocketEndpoint(address: address, port: port))
        case .failure(let message): throw line.error("'log': \(message)")
        }
    }
}
