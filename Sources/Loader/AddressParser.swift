import ConfigModel

/// `ADDR:PORT` as HAProxy writes it on `bind`, `server`, `log` and `stats socket` lines: IPv4,
/// IPv6 in brackets or bare (the port is after the last colon, so `:::80` is IPv6 any on port 80),
/// `*` or nothing for IPv4 any, an optional `ipv4@`/`ipv6@` prefix, or a host name resolved now.
/// Failures are messages without the keyword; the caller prefixes its context.
struct AddressParser {
    enum Family { case unspecified, v4, v6 }

    /// The text split into its parts, nothing resolved yet.
    struct Parts {
        var host: String
        /// nil when there is no `:PORT`; empty when the colon has nothing after it.
        var port: String?
        var family: Family
    }

    var resolver: HostResolver

    /// Prefixes other than these name kinds of sockets strata does not open yet.
    static let familyPrefixes: [String: Family] = ["ipv4@": .v4, "ipv6@": .v6]

    static func split(_ text: String, prefixes: [String: Family] = familyPrefixes) -> Result<Parts, AddressProblem> {
        var rest = Substring(text)
        var family = Family.unspecified
        if let at = rest.firstIndex(of: "@") {
            let prefix = String(rest[...at])
            guard let known = prefixes[prefix] else {
                return .failure("'\(prefix)' addresses are not supported yet")
            }
            family = known
            rest = rest[rest.index(after: at)...]
        }
        if rest.hasPrefix("/") { return .failure("UNIX socket paths are not supported yet ('\(text)')") }
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                return .failure("missing ']' in '\(text)'")
            }
            let host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.isEmpty { return .success(Parts(host: host, port: nil, family: family == .unspecified ? .v6 : family)) }
            guard after.hasPrefix(":") else { return .failure("unexpected '\(after)' after ']' in '\(text)'") }
            return .success(Parts(host: host, port: String(after.dropFirst()), family: family == .unspecified ? .v6 : family))
        }
        guard let colon = rest.lastIndex(of: ":") else {
            return .success(Parts(host: String(rest), port: nil, family: family))
        }
        return .success(Parts(host: String(rest[..<colon]), port: String(rest[rest.index(after: colon)...]),
                              family: family))
    }

    static func port(_ text: String, in address: String) -> Result<UInt16, AddressProblem> {
        if text.isEmpty { return .failure("missing port after ':' in '\(address)'") }
        if text.contains("-") && text.first != "-" {
            return .failure("port ranges are not supported yet ('\(text)' in '\(address)')")
        }
        if text.first == "+" || text.first == "-" {
            return .failure("port offsets are not supported yet ('\(text)' in '\(address)')")
        }
        guard text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(text), (1...65535).contains(value)
        else {
            return .failure("invalid port '\(text)' in '\(address)' (expected 1 to 65535)")
        }
        return .success(UInt16(value))
    }

    /// The address of `host`: a literal, the any address when `allowAny` and the host is empty or
    /// `*`, or what the resolver answers for a name.
    func address(_ host: String, family: Family, in address: String, allowAny: Bool) -> Result<IPAddress, AddressProblem> {
        if host.isEmpty || host == "*" {
            guard allowAny else { return .failure("missing address in '\(address)'") }
            return .success(family == .v6 ? IPAddress.anyV6 : IPAddress.anyV4)
        }
        let parsed: IPAddress?
        if host.contains(":") {
            parsed = IPAddress(host).flatMap { $0.isV6 ? $0 : nil }
            guard parsed != nil else { return .failure("invalid IPv6 address '\(host)' in '\(address)'") }
        } else if host.allSatisfy({ $0 == "." || ($0.isASCII && $0.isNumber) }) {
            parsed = IPAddress(host)
            guard parsed != nil else { return .failure("invalid IPv4 address '\(host)' in '\(address)'") }
        } else {
            let nameCharacters = host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) }
            guard nameCharacters else { return .failure("invalid address '\(host)' in '\(address)'") }
            guard let resolved = resolver.resolve(host) else {
                return .failure("could not resolve host name '\(host)'")
            }
            parsed = resolved
        }
        guard let result = parsed else { return .failure("invalid address '\(host)' in '\(address)'") }
        switch (family, result.isV6) {
        case (.v4, true): return .failure("'ipv4@' needs an IPv4 address, got '\(host)'")
        case (.v6, false):
            // `ipv6@` with a name that resolved to IPv4 is a configuration the user did not mean.
            return .failure("an IPv6 address was expected, got '\(host)'")
        default: return .success(result)
        }
    }

    /// `ADDR:PORT` with a mandatory port (`bind`, `stats socket`).
    func endpoint(_ text: String, allowAny: Bool) -> Result<SocketEndpoint, AddressProblem> {
        let parts: Parts
        switch AddressParser.split(text) {
        case .failure(let message): return .failure(message)
        case .success(let p): parts = p
        }
        guard let portText = parts.port else { return .failure("missing port in '\(text)' (expected ADDR:PORT)") }
        let port: UInt16
        switch AddressParser.port(portText, in: text) {
        case .failure(let message): return .failure(message)
        case .success(let p): port = p
        }
        return address(parts.host, family: parts.family, in: text, allowAny: allowAny).map {
            SocketEndpoint(address: $0, port: port)
        }
    }
}

/// Why an address was refused; interpolated into the caller's message.
struct AddressProblem: Error, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringInterpolation {
    var description: String

    init(stringLiteral value: String) { description = value }
    init(stringInterpolation: DefaultStringInterpolation) { description = String(stringInterpolation: stringInterpolation) }
}
