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
    /// Digits only: no sign, no space (UInt8("+1") would take one).
    public init?(_ text: some StringProtocol) {
        let parsed = text.utf8.withContiguousStorageIfAvailable { IPAddress(utf8: $0) }
            ?? Array(text.utf8).withUnsafeBufferPointer { IPAddress(utf8: $0) }
        guard let parsed else { return nil }
        self = parsed
    }

    /// The same on UTF-8 bytes: the loader's path, with no String made.
    public init?(utf8 text: UnsafeBufferPointer<UInt8>) {
        if let v4 = IPAddress.parseV4(text) {
            self = .v4(v4)
        } else if let v6 = IPAddress.parseV6(text) {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    /// The 32 bits of dotted-quad IPv4 text, or nil: for the loader's fast path.
    public static func parseV4(utf8 text: UnsafeBufferPointer<UInt8>) -> UInt32? { parseV4(text) }

    static func parseV4(_ text: some StringProtocol) -> UInt32? {
        text.utf8.withContiguousStorageIfAvailable { parseV4($0) }
            ?? Array(text.utf8).withUnsafeBufferPointer { parseV4($0) }
    }

    static func parseV6(_ text: some StringProtocol) -> [UInt8]? {
        text.utf8.withContiguousStorageIfAvailable { parseV6($0) }
            ?? Array(text.utf8).withUnsafeBufferPointer { parseV6($0) }
    }

    /// Four dot-separated decimal parts of one to three digits, each at most 255.
    static func parseV4(_ text: UnsafeBufferPointer<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var part: UInt32 = 0
        var digits = 0
        var dots = 0
        for c in text {
            if c == UInt8(ascii: ".") {
                guard digits > 0, part <= 255, dots < 3 else { return nil }
                value = value << 8 | part
                part = 0
                digits = 0
                dots += 1
            } else {
                let d = c &- UInt8(ascii: "0")
                guard d < 10, digits < 3 else { return nil }
                part = part * 10 + UInt32(d)
                digits += 1
            }
        }
        guard dots == 3, digits > 0, part <= 255 else { return nil }
        return value << 8 | part
    }

    private static func hexDigit(_ c: UInt8) -> UInt16? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt16(c &- UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt16(c &- UInt8(ascii: "a") &+ 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt16(c &- UInt8(ascii: "A") &+ 10)
        default: nil
        }
    }

    /// Colon-separated groups of one to four hex digits in `text[range]` (empty: no group), into
    /// `groups` from `count`; false when a group is malformed or there are more than eight.
    private static func groups(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                               into groups: inout (UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16),
                               count: inout Int) -> Bool
    {
        if range.isEmpty { return true }
        var value: UInt16 = 0
        var digits = 0
        var i = range.lowerBound
        while true {
            if i == range.upperBound || text[i] == UInt8(ascii: ":") {
                guard digits > 0, count < 8 else { return false }
                withUnsafeMutableBytes(of: &groups) { $0.storeBytes(of: value, toByteOffset: count * 2, as: UInt16.self) }
                count += 1
                if i == range.upperBound { return true }
                value = 0
                digits = 0
            } else {
                guard let d = hexDigit(text[i]), digits < 4 else { return false }
                value = value << 4 | d
                digits += 1
            }
            i += 1
        }
    }

    /// RFC 4291 text: up to eight groups, one `::` for a run of zero groups, an IPv4 address as
    /// the last 32 bits.
    static func parseV6(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard let lastColon = text.lastIndex(of: UInt8(ascii: ":")) else { return nil }
        var end = text.count
        var tail: UInt32?
        if text[(lastColon + 1)...].contains(UInt8(ascii: ".")) {
            guard let v4 = parseV4(UnsafeBufferPointer(rebasing: text[(lastColon + 1)...])) else { return nil }
            tail = v4
            // "::ffff:1.2.3.4" keeps its "::"; a single trailing ':' belongs to the IPv4 part.
            end = lastColon > 0 && text[lastColon - 1] == UInt8(ascii: ":") ? lastColon + 1 : lastColon
        }
        // The first "::" (searched left to right, as a split on "::" does) splits head from rest.
        var compression: Int?
        var i = 0
        while i + 1 < end {
            if text[i] == UInt8(ascii: ":") && text[i + 1] == UInt8(ascii: ":") {
                guard compression == nil else { return nil }
                compression = i
                i += 2
            } else {
                i += 1
            }
        }
        var head = (UInt16(0), UInt16(0), UInt16(0), UInt16(0), UInt16(0), UInt16(0), UInt16(0), UInt16(0))
        var rest = head
        var headCount = 0
        var restCount = 0
        if let compression {
            guard groups(text, 0..<compression, into: &head, count: &headCount),
                  groups(text, (compression + 2)..<end, into: &rest, count: &restCount)
            else { return nil }
        } else {
            guard groups(text, 0..<end, into: &head, count: &headCount) else { return nil }
        }
        let total = (headCount + restCount) * 2 + (tail == nil ? 0 : 4)
        if compression == nil {
            guard total == 16 else { return nil }
        } else {
            guard total <= 14 else { return nil }
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: head) { h in
            for g in 0..<headCount {
                let v = h.load(fromByteOffset: g * 2, as: UInt16.self)
                bytes[g * 2] = UInt8(v >> 8)
                bytes[g * 2 + 1] = UInt8(v & 0xff)
            }
        }
        let restStart = 16 - total + headCount * 2
        withUnsafeBytes(of: rest) { r in
            for g in 0..<restCount {
                let v = r.load(fromByteOffset: g * 2, as: UInt16.self)
                bytes[restStart + g * 2] = UInt8(v >> 8)
                bytes[restStart + g * 2 + 1] = UInt8(v & 0xff)
            }
        }
        if let tail {
            bytes[12] = UInt8(tail >> 24)
            bytes[13] = UInt8(tail >> 16 & 0xff)
            bytes[14] = UInt8(tail >> 8 & 0xff)
            bytes[15] = UInt8(tail & 0xff)
        }
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
