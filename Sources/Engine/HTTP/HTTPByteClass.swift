// Byte classes of RFC 9110 / 9112 / 3986 as 256-bit sets, and the case-insensitive comparisons the
// parsers use. No tables in memory: each class is four 64-bit words folded in as constants, so a test
// is a shift and a mask, with no global initialisation on the hot path.

/// A set of byte values (one bit per value).
struct HTTPByteClass {
    var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    @inline(__always)
    init(_ w0: UInt64, _ w1: UInt64, _ w2: UInt64, _ w3: UInt64) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
    }

    @inline(__always)
    func contains(_ byte: UInt8) -> Bool {
        let bit = UInt64(byte & 63)
        switch byte >> 6 {
        case 0: return (w0 &>> bit) & 1 != 0
        case 1: return (w1 &>> bit) & 1 != 0
        case 2: return (w2 &>> bit) & 1 != 0
        default: return (w3 &>> bit) & 1 != 0
        }
    }

    /// tchar (RFC 9110 §5.6.2): methods, field names, transfer codings, connection options.
    @inline(__always) static var token: HTTPByteClass {
        HTTPByteClass(0x03FF_6CFA_0000_0000, 0x57FF_FFFF_C7FF_FFFE, 0, 0)
    }
    /// field-vchar / SP / HTAB / obs-text: what a field value or a reason phrase may hold
    /// (everything but CTLs other than HTAB, and DEL).
    @inline(__always) static var fieldValue: HTTPByteClass {
        HTTPByteClass(0xFFFF_FFFF_0000_0200, 0x7FFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF)
    }
    /// Printable ASCII except `#`: the bytes a request target may hold (see `HTTPRequestTarget`).
    @inline(__always) static var target: HTTPByteClass {
        HTTPByteClass(0xFFFF_FFF6_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0, 0)
    }
    /// unreserved / sub-delims / `%` (RFC 3986 reg-name; `%` is checked for two hex digits apart).
    @inline(__always) static var regName: HTTPByteClass {
        HTTPByteClass(0x2BFF_7FF2_0000_0000, 0x47FF_FFFE_87FF_FFFE, 0, 0)
    }
    /// unreserved / sub-delims / `:` (RFC 3986 IPvFuture tail).
    @inline(__always) static var ipFuture: HTTPByteClass {
        HTTPByteClass(0x2FFF_7FD2_0000_0000, 0x47FF_FFFE_87FF_FFFE, 0, 0)
    }
    /// ALPHA / DIGIT / `+` / `-` / `.` (RFC 3986 scheme, after its first letter).
    @inline(__always) static var scheme: HTTPByteClass {
        HTTPByteClass(0x03FF_6800_0000_0000, 0x07FF_FFFE_07FF_FFFE, 0, 0)
    }
    /// HEXDIG, either case.
    @inline(__always) static var hex: HTTPByteClass {
        HTTPByteClass(0x03FF_0000_0000_0000, 0x0000_007E_0000_007E, 0, 0)
    }
    /// qdtext (RFC 9110 §5.6.4).
    @inline(__always) static var quotedText: HTTPByteClass {
        HTTPByteClass(0xFFFF_FFFB_0000_0200, 0x7FFF_FFFF_EFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF)
    }
}

/// Byte values the parsers name.
enum HTTPByte {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x22
    static let percent: UInt8 = 0x25
    static let comma: UInt8 = 0x2C
    static let dot: UInt8 = 0x2E
    static let slash: UInt8 = 0x2F
    static let zero: UInt8 = 0x30
    static let nine: UInt8 = 0x39
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let equals: UInt8 = 0x3D
    static let questionMark: UInt8 = 0x3F
    static let at: UInt8 = 0x40
    static let openBracket: UInt8 = 0x5B
    static let backslash: UInt8 = 0x5C
    static let closeBracket: UInt8 = 0x5D
    static let asterisk: UInt8 = 0x2A

    /// field-vchar / SP / HTAB / obs-text (the `fieldValue` class, as comparisons).
    @inline(__always) static func isFieldContent(_ b: UInt8) -> Bool { b >= 0x20 ? b != 0x7F : b == tab }
    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b &- zero < 10 }
    @inline(__always) static func lowercased(_ b: UInt8) -> UInt8 { b &- 0x41 < 26 ? b | 0x20 : b }
    @inline(__always) static func isWhitespace(_ b: UInt8) -> Bool { b == space || b == tab }

    /// The value of a hex digit, or nil.
    @inline(__always) static func hexValue(_ b: UInt8) -> UInt8? {
        if b &- zero < 10 { return b &- zero }
        let lower = b | 0x20
        if lower &- 0x61 < 6 { return lower &- 0x61 &+ 10 }
        return nil
    }
}

extension UnsafeRawBufferPointer {
    /// Whether `self[range]` equals `lowercase` (written in lowercase) ignoring ASCII case.
    @inline(__always)
    func httpEqualsLowercase(_ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        var i = 0
        var p = range.lowerBound
        while i < range.count {
            if HTTPByte.lowercased(self[p]) != expected[i] { return false }
            i &+= 1
            p &+= 1
        }
        return true
    }

    /// Whether two ranges of this buffer hold the same bytes ignoring ASCII case.
    @inline(__always)
    func httpTokensEqual(_ a: Range<Int>, _ b: Range<Int>) -> Bool {
        guard a.count == b.count else { return false }
        var i = a.lowerBound
        var j = b.lowerBound
        while i < a.upperBound {
            if HTTPByte.lowercased(self[i]) != HTTPByte.lowercased(self[j]) { return false }
            i &+= 1
            j &+= 1
        }
        return true
    }

    /// Whether `self[range]` equals `bytes` exactly (case-sensitive).
    @inline(__always)
    func httpEquals(_ range: Range<Int>, _ bytes: StaticString) -> Bool {
        guard range.count == bytes.utf8CodeUnitCount else { return false }
        let expected = bytes.utf8Start
        var i = 0
        while i < range.count {
            if self[range.lowerBound &+ i] != expected[i] { return false }
            i &+= 1
        }
        return true
    }
}

extension UnsafeRawBufferPointer {
    /// The first offset in `from..<to` holding a byte that field content may not hold (a CTL other
    /// than HTAB, or DEL), or `to`. Eight bytes at a time while none is below 0x20 or equal to 0x7F:
    /// field values are most of a head's bytes.
    @inline(__always)
    func httpFieldContentEnd(from: Int, to: Int) -> Int {
        guard let base = baseAddress else { return from }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var p = from
        while p &+ 8 <= to {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: p, as: UInt64.self))
            let control = (word &- ones &* 0x20) & ~word & highs      // some byte < 0x20
            let flipped = word ^ (ones &* 0x7F)
            let delete = (flipped &- ones) & ~flipped & highs         // some byte == 0x7F
            if control | delete != 0 {
                // An HTAB, or the end of the content: look at these eight bytes one by one.
                for i in 0..<8 where !HTTPByte.isFieldContent(base.load(fromByteOffset: p &+ i, as: UInt8.self)) {
                    return p &+ i
                }
            }
            p &+= 8
        }
        while p < to && HTTPByte.isFieldContent(base.load(fromByteOffset: p, as: UInt8.self)) { p &+= 1 }
        return p
    }
}
