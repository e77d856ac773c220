import HTTP1
import ConfigModel

/// An IPv4 or IPv6 address as plain integers (an `IPAddress` without its array), for matching
/// networks and writing text without allocating.
struct HTTPAddressBits: Hashable {
    var isV6: Bool
    /// IPv4, host order.
    var v4: UInt32 = 0
    /// IPv6, the first and last 8 bytes as big-endian numbers.
    var high: UInt64 = 0
    var low: UInt64 = 0

    init(v4: UInt32) {
        isV6 = false
        self.v4 = v4
    }

    init(high: UInt64, low: UInt64) {
        isV6 = true
        self.high = high
        self.low = low
    }

    init(_ address: IPAddress) {
        switch address {
        case .v4(let a):
            self.init(v4: a)
        case .v6(let b):
            var h: UInt64 = 0
            var l: UInt64 = 0
            for i in 0..<8 { h = h << 8 | UInt64(b[i]) }
            for i in 8..<16 { l = l << 8 | UInt64(b[i]) }
            self.init(high: h, low: l)
        }
    }

    /// The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) carries.
    var mappedV4: UInt32? {
        guard isV6, high == 0, low >> 32 == 0xFFFF else { return nil }
        return UInt32(truncatingIfNeeded: low)
    }

    /// The address as IPv6 (IPv4 becomes `::ffff:a.b.c.d`).
    var asV6: (UInt64, UInt64) {
        isV6 ? (high, low) : (0, 0xFFFF_0000_0000 | UInt64(v4))
    }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (`::` compression, a trailing IPv4) from bytes.
    static func parse(_ text: UnsafeRawBufferPointer) -> HTTPAddressBits? {
        if let v4 = parseV4(text, 0, text.count) { return HTTPAddressBits(v4: v4) }
        return parseV6(text)
    }

    static func parseV4(_ t: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> UInt32? {
        var value: UInt32 = 0
        var p = from
        for part in 0..<4 {
            if part > 0 {
                guard p < to, t[p] == HTTPByte.dot else { return nil }
                p += 1
            }
            var octet: UInt32 = 0
            let start = p
            while p < to && HTTPByte.isDigit(t[p]) && p - start < 3 {
                octet = octet * 10 + UInt32(t[p] - HTTPByte.zero)
                p += 1
            }
            guard p > start, octet <= 255 else { return nil }
            value = value << 8 | octet
        }
        return p == to ? value : nil
    }

    static func parseV6(_ t: UnsafeRawBufferPointer) -> HTTPAddressBits? {
        // Up to 8 groups, with at most one "::" (whose position is `gap`).
        var groups: (UInt64, UInt64) = (0, 0)  // 8 x 16 bits, filled as a 128-bit value
        var count = 0
        var gap: Int?
        var p = 0
        let end = t.count
        guard end >= 2 else { return nil }
        var parsed: (UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16) = (0, 0, 0, 0, 0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &parsed) { raw -> Bool in
            let slots = raw.bindMemory(to: UInt16.self)
            if t[0] == HTTPByte.colon {
                guard t[1] == HTTPByte.colon else { return false }
                gap = 0
                p = 2
            }
            while p < end {
                guard count < 8 else { return false }
                // A trailing IPv4 takes two groups.
                var q = p
                while q < end && t[q] != HTTPByte.colon && t[q] != HTTPByte.dot { q += 1 }
                if q < end && t[q] == HTTPByte.dot {
                    guard count <= 6, let v4 = parseV4(t, p, end) else { return false }
                    slots[count] = UInt16(v4 >> 16)
                    slots[count + 1] = UInt16(v4 & 0xFFFF)
                    count += 2
                    p = end
                    break
                }
                guard q > p, q - p <= 4 else { return false }
                var v: UInt16 = 0
                for i in p..<q {
                    guard let h = HTTPByte.hexValue(t[i]) else { return false }
                    v = v << 4 | UInt16(h)
                }
                slots[count] = v
                count += 1
                p = q
                if p < end {
                    p += 1  // ':'
                    if p < end && t[p] == HTTPByte.colon {
                        guard gap == nil else { return false }
                        gap = count
                        p += 1
                    } else if p == end {
                        return false  // trailing single ':'
                    }
                }
            }
            if let gap {
                guard count < 8 else { return false }
                // Move the groups after the gap to the end.
                let tail = count - gap
                var i = tail - 1
                while i >= 0 {
                    slots[8 - tail + i] = slots[gap + i]
                    i -= 1
                }
                for j in gap..<(8 - tail) { slots[j] = 0 }
            } else {
                guard count == 8 else { return false }
            }
            var h: UInt64 = 0
            var l: UInt64 = 0
            for i in 0..<4 { h = h << 16 | UInt64(slots[i]) }
            for i in 4..<8 { l = l << 16 | UInt64(slots[i]) }
            groups = (h, l)
            return true
        }
        return ok ? HTTPAddressBits(high: groups.0, low: groups.1) : nil
    }

    /// Whether the address is inside `network` (IPv4 against IPv6 through the mapped form, as HAProxy).
    func isIn(_ network: HTTPCompiledNetwork) -> Bool {
        if !network.isV6 {
            let a: UInt32
            if !isV6 {
                a = v4
            } else if let m = mappedV4 {
                a = m
            } else {
                return false
            }
            return a & network.mask4 == network.v4
        }
        let (h, l) = asV6
        return h & network.maskHigh == network.high && l & network.maskLow == network.low
    }
}

/// An `IPNetwork` as masks, ready to test.
struct HTTPCompiledNetwork {
    var isV6: Bool
    var v4: UInt32 = 0
    var mask4: UInt32 = 0
    var high: UInt64 = 0
    var low: UInt64 = 0
    var maskHigh: UInt64 = 0
    var maskLow: UInt64 = 0

    init(_ network: IPNetwork) {
        let bits = HTTPAddressBits(network.address)
        isV6 = bits.isV6
        if !bits.isV6 {
            let n = min(max(network.prefixLength, 0), 32)
            mask4 = n == 0 ? 0 : UInt32.max << UInt32(32 - n)
            v4 = bits.v4 & mask4
        } else {
            let n = min(max(network.prefixLength, 0), 128)
            maskHigh = n == 0 ? 0 : (n >= 64 ? UInt64.max : UInt64.max << UInt64(64 - n))
            maskLow = n <= 64 ? 0 : (n == 128 ? UInt64.max : UInt64.max << UInt64(128 - n))
            high = bits.high & maskHigh
            low = bits.low & maskLow
        }
    }
}
