import Foundation

/// A numeric IPv4 or IPv6 address (host names are resolved by the Loader).
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)  // host byte order
    case v6([UInt8])  // 16 bytes, network order

    public static let anyV4 = IPAddress.v4(0)
    public static let anyV6 = IPAddress.v6([UInt8](repeating: 0, count: 16))

    public var isV6: Bool { if case .v6 = self { return true } else { return false } }

    public var isAny: Bool {
        switch self {
        case .v4(let a): return a == 0
        case .v6(let b): return b.allSatisfy { $0 == 0 }
        }
    }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (with `::` compression and a trailing IPv4).
    public init?(_ text: some StringProtocol) {
        if let v4 = IPAddress.parseV4(text) {
            self = .v4(v4)
        } else if let v6 = IPAddress.parseV6(text) {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    static func parseV4(_ text: some StringProtocol) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let byte = UInt8(part) else { return nil }
            value = value << 8 | UInt32(byte)
        }
        return value
    }

    static func parseV6(_ text: some StringProtocol) -> [UInt8]? {
        var text = Substring(text)
        guard text.contains(":") else { return nil }
        var tail: [UInt8] = []
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard let v4 = parseV4(text[text.index(after: lastColon)...]) else { return nil }
            tail = [UInt8(v4 >> 24), UInt8(v4 >> 16 & 0xff), UInt8(v4 >> 8 & 0xff), UInt8(v4 & 0xff)]
            text = text[...lastColon]
            if text.hasSuffix("::") {
                // "::ffff:1.2.3.4" keeps its "::"; a single trailing ':' belongs to the IPv4 part.
            } else {
                text = text.dropLast()
            }
        }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ s: String) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            for g in s.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(g.count), let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        let rest = halves.count == 2 ? groups(halves[1]) : []
        guard let rest else { return nil }
        let total = (head.count + rest.count) * 2 + tail.count
        if halves.count == 1 {
            guard total == 16 else { return nil }
        } else {
            guard total <= 14 else { return nil }
        }
        var bytes: [UInt8] = []
        for g in head { bytes += [UInt8(g >> 8), UInt8(g & 0xff)] }
        bytes += [UInt8](repeating: 0, count: 16 - total)
        for g in rest { bytes += [UInt8(g >> 8), UInt8(g & 0xff)] }
        bytes += tail
        return bytes
    }

    public var description: String {
        switch self {
        case .v4(let a):
            return "\(a >> 24).\(a >> 16 & 0xff).\(a >> 8 & 0xff).\(a & 0xff)"
        case .v6(let b):
            var groups: [UInt16] = []
            for i in stride(from: 0, to: 16, by: 2) { groups.append(UInt16(b[i]) << 8 | UInt16(b[i + 1])) }
            // Longest run of zero groups (at least two) becomes "::".
            var bestStart = -1, bestLen = 0, i = 0
            while i < 8 {
                if groups[i] == 0 {
                    var j = i
                    while j < 8 && groups[j] == 0 { j += 1 }
                    if j - i > bestLen { bestStart = i; bestLen = j - i }
                    i = j
                } else {
                    i += 1
                }
            }
            func hex(_ r: ArraySlice<UInt16>) -> String { r.map { String($0, radix: 16) }.joined(separator: ":") }
            if bestLen < 2 { return hex(groups[...]) }
            return hex(groups[..<bestStart]) + "::" + hex(groups[(bestStart + bestLen)...])
        }
    }
}

/// An address and a port, as written on a `bind` or `server` line once resolved.
public struct SocketEndpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    public var description: String {
        address.isV6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }
}
