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
    /// `$NAME` and `${NAME}` in an address are expanded from it, quoted or not (HAProxy's rule
    /// for addresses: unlike other words, they need no double quotes).
    var environment: [String: String] = [:]

    /// `text` with its environment variables expanded (an unset one is empty, as in HAProxy).
    func expanded(_ text: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "$")) else { return text }
        var out = ""
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            guard c == "$" else { out.append(c); i = text.index(after: i); continue }
            var j = text.index(after: i)
            var name = ""
            if j < text.endIndex && text[j] == "{" {
                guard let close = text[j...].firstIndex(of: "}") else { out.append(contentsOf: text[i...]); break }
                name = String(text[text.index(after: j)..<close])
                j = text.index(after: close)
            } else {
                while j < text.endIndex, text[j] == "_" || text[j].isASCII && (text[j].isLetter || text[j].isNumber) {
                    name.append(text[j])
                    j = text.index(after: j)
                }
            }
            if name.isEmpty { out.append(c) } else { out += environment[name] ?? "" }
            i = j
        }
        return out
    }

    /// Prefixes other than these name kinds of sockets strata does not open yet.
    static let familyPrefixes: [String: Family] = ["ipv4@": .v4, "ipv6@": .v6]

    static func split(_ text: String, prefixes: [String: Family] = familyPrefixes) -> Result<Parts, AddressProblem> {
        // On UTF-8 bytes: every separator is ASCII, so byte offsets cut the text on scalar
        // boundaries and each part is the same String as a Substring of the text would give.
        withBytes(text) { bytes -> Result<Parts, AddressProblem> in
            func string(_ range: Range<Int>) -> String {
                String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
            }
            var start = 0
            let end = bytes.count
            var family = Family.unspecified
            if let at = bytes.firstIndex(of: UInt8(ascii: "@")) {
                let prefix = string(0..<(at + 1))
                guard let known = prefixes[prefix] else {
                    return .failure("'\(prefix)' addresses are not supported yet")
                }
                family = known
                start = at + 1
            }
            let first = start < end ? bytes[start] : 0
            if first == UInt8(ascii: "/") { return .failure("UNIX socket paths are not supported yet ('\(text)')") }
            if first == UInt8(ascii: "[") {
                guard let close = bytes[start...].firstIndex(of: UInt8(ascii: "]")) else {
                    return .failure("missing ']' in '\(text)'")
                }
                let host = string((start + 1)..<close)
                // Brackets say IPv6 unless what they hold is plainly not (HAProxy takes `[10.0.0.1]:80`).
                let v6 = family != .unspecified ? family : host.isEmpty || host.contains(":") ? Family.v6 : .unspecified
                if close + 1 == end { return .success(Parts(host: host, port: nil, family: v6)) }
                guard bytes[close + 1] == UInt8(ascii: ":") else {
                    return .failure("unexpected '\(string((close + 1)..<end))' after ']' in '\(text)'")
                }
                return .success(Parts(host: host, port: string((close + 2)..<end), family: v6))
            }
            guard let colon = bytes[start...].lastIndex(of: UInt8(ascii: ":")) else {
                return .success(Parts(host: start == 0 ? text : string(start..<end), port: nil, family: family))
            }
            return .success(Parts(host: string(start..<colon), port: string((colon + 1)..<end), family: family))
        }
    }

    static func port(_ text: String, in address: String) -> Result<UInt16, AddressProblem> {
        let value = withBytes(text) { bytes -> Int? in
            // nil: a range or an offset, told apart below; 0: not a port.
            guard let first = bytes.first else { return 0 }
            if first == UInt8(ascii: "+") || first == UInt8(ascii: "-") || bytes.contains(UInt8(ascii: "-")) {
                return nil
            }
            var value = 0
            for c in bytes {
                let digit = c &- UInt8(ascii: "0")
                guard digit < 10 else { return 0 }
                value = value * 10 + Int(digit)
                if value > 65535 { return 0 }
            }
            return value
        }
        guard let value else {
            if text.utf8.first != UInt8(ascii: "-") && text.utf8.contains(UInt8(ascii: "-")) {
                return .failure("port ranges are not supported yet ('\(text)' in '\(address)')")
            }
            return .failure("port offsets are not supported yet ('\(text)' in '\(address)')")
        }
        if text.isEmpty { return .failure("missing port after ':' in '\(address)'") }
        guard (1...65535).contains(value) else {
            return .failure("invalid port '\(text)' in '\(address)' (expected 1 to 65535)")
        }
        return .success(UInt16(value))
    }

    /// `A.B.C.D` or `A.B.C.D:PORT`, the form of nearly every `server` and `bind` line, read on
    /// bytes with one String made (the host). nil for anything else, which the general path
    /// (split, port, address) then reads and words the errors of.
    static func plainIPv4(_ text: String) -> (host: String, address: IPAddress, port: UInt16?)? {
        withBytes(text) { bytes -> (host: String, address: IPAddress, port: UInt16?)? in
            let colon = bytes.lastIndex(of: UInt8(ascii: ":"))
            let host = UnsafeBufferPointer(rebasing: bytes[..<(colon ?? bytes.count)])
            guard let v4 = IPAddress.parseV4(utf8: host) else { return nil }
            var port: UInt16?
            if let colon {
                guard colon + 1 < bytes.count else { return nil }
                var value = 0
                for c in bytes[(colon + 1)...] {
                    let digit = c &- UInt8(ascii: "0")
                    guard digit < 10 else { return nil }
                    value = value * 10 + Int(digit)
                    guard value <= 65535 else { return nil }
                }
                guard value > 0 else { return nil }
                port = UInt16(value)
            }
            return (String(decoding: host, as: UTF8.self), .v4(v4), port)
        }
    }

    private static func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

    private static func isNameByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
            true
        default: false
        }
    }

    /// The address of `host`: a literal, the any address when `allowAny` and the host is empty or
    /// `*`, or what the resolver answers for a name. A literal never goes to the resolver.
    func address(_ host: String, family: Family, in address: String, allowAny: Bool) -> Result<IPAddress, AddressProblem> {
        if host.isEmpty || host == "*" {
            guard allowAny else { return .failure("missing address in '\(address)'") }
            return .success(family == .v6 ? IPAddress.anyV6 : IPAddress.anyV4)
        }
        enum Kind { case v6, v4, name, invalid }
        let (kind, literal) = withBytes(host) { bytes -> (Kind, IPAddress?) in
            var digitsAndDots = true
            var nameBytes = true
            for c in bytes {
                if c == UInt8(ascii: ":") { return (.v6, IPAddress(utf8: bytes).flatMap { $0.isV6 ? $0 : nil }) }
                if c != UInt8(ascii: ".") && !AddressParser.isDigit(c) { digitsAndDots = false }
                if !AddressParser.isNameByte(c) { nameBytes = false }
            }
            if digitsAndDots { return (.v4, IPAddress(utf8: bytes)) }
            return (nameBytes ? .name : .invalid, nil)
        }
        let parsed: IPAddress?
        switch kind {
        case .v6:
            parsed = literal
            guard parsed != nil else { return .failure("invalid IPv6 address '\(host)' in '\(address)'") }
        case .v4:
            parsed = literal
            guard parsed != nil else { return .failure("invalid IPv4 address '\(host)' in '\(address)'") }
        case .invalid:
            return .failure("invalid address '\(host)' in '\(address)'")
        case .name:
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

    /// `host` as an address literal, nil for a host name (left to the caller's `init-addr`), or
    /// why it is neither.
    func literal(_ host: String, family: Family, in address: String) -> Result<IPAddress?, AddressProblem> {
        if host.isEmpty || host == "*" { return .failure("missing address in '\(address)'") }
        let isName = withBytes(host) { bytes in
            bytes.allSatisfy { AddressParser.isNameByte($0) } && !bytes.allSatisfy { $0 == UInt8(ascii: ".") || AddressParser.isDigit($0) }
        }
        if isName { return .success(nil) }
        return self.address(host, family: family, in: address, allowAny: false).map { $0 }
    }

    /// `ADDR:PORT` with a mandatory port (`bind`, `stats socket`).
    func endpoint(_ text: String, allowAny: Bool) -> Result<SocketEndpoint, AddressProblem> {
        let text = expanded(text)
        if let plain = AddressParser.plainIPv4(text), let port = plain.port {
            return .success(SocketEndpoint(address: plain.address, port: port))
        }
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

/// The UTF-8 bytes of `text` without copying them (a small string is spilled to the stack).
@inline(__always)
func withBytes<R>(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
    if let result = try text.utf8.withContiguousStorageIfAvailable(body) { return result }
    var copy = text
    return try copy.withUTF8(body)
}

/// Why an address was refused; interpolated into the caller's message.
struct AddressProblem: Error, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringInterpolation {
    var description: String

    init(stringLiteral value: String) { description = value }
    init(stringInterpolation: DefaultStringInterpolation) { description = String(stringInterpolation: stringInterpolation) }
}
