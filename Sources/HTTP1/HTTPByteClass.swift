// Byte classes of RFC 9110 / 9112 / 3986, as bits of a 256-byte table in read-only memory (a
// StaticString literal: no initialisation, no bounds check, one load per byte tested).

/// A set of byte values: one bit of `HTTPByteClass.table`.
package struct HTTPByteClass {
    let bit: UInt8

    @inline(__always)
    package func contains(_ byte: UInt8) -> Bool {
        HTTPByteClass.table.utf8Start[Int(byte)] & bit != 0
    }

    /// tchar (RFC 9110 §5.6.2): methods, field names, transfer codings, connection options.
    @inline(__always) package static var token: HTTPByteClass { HTTPByteClass(bit: 1 << 0) }
    /// Printable ASCII except `#`: the bytes a request target may hold (see `HTTPRequestTarget`).
    @inline(__always) static var target: HTTPByteClass { HTTPByteClass(bit: 1 << 1) }
    /// unreserved / sub-delims / `%` (RFC 3986 reg-name; `%` is checked for two hex digits apart).
    @inline(__always) static var regName: HTTPByteClass { HTTPByteClass(bit: 1 << 2) }
    /// unreserved / sub-delims / `:` (RFC 3986 IPvFuture tail).
    @inline(__always) static var ipFuture: HTTPByteClass { HTTPByteClass(bit: 1 << 3) }
    /// ALPHA / DIGIT / `+` / `-` / `.` (RFC 3986 scheme).
    @inline(__always) package static var scheme: HTTPByteClass { HTTPByteClass(bit: 1 << 4) }
    /// HEXDIG, either case.
    @inline(__always) static var hex: HTTPByteClass { HTTPByteClass(bit: 1 << 5) }
    /// qdtext (RFC 9110 §5.6.4).
    @inline(__always) static var quotedText: HTTPByteClass { HTTPByteClass(bit: 1 << 6) }

    /// For each byte value, the bits of the classes holding it (generated; bit order as above).
    @inline(__always) static var table: StaticString {
        """
        \u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{40}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\
        \u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\
        \u{40}\u{4F}\u{02}\u{41}\u{4F}\u{47}\u{4F}\u{4F}\u{4E}\u{4E}\u{4F}\u{5F}\u{4E}\u{5F}\u{5F}\u{42}\
        \u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{4A}\u{4E}\u{42}\u{4E}\u{42}\u{42}\
        \u{42}\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\
        \u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{42}\u{02}\u{42}\u{43}\u{4F}\
        \u{43}\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\
        \u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{5F}\u{42}\u{43}\u{42}\u{4F}\u{00}\
        \u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\
        \u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\
        \u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\
        \u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\
        \u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\
        \u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\
        \u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\
        \u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}\u{40}
        """
    }
}

/// Byte values the parsers name.
package enum HTTPByte {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    package static let cr: UInt8 = 0x0D
    package static let space: UInt8 = 0x20
    package static let quote: UInt8 = 0x22
    static let percent: UInt8 = 0x25
    package static let comma: UInt8 = 0x2C
    package static let dot: UInt8 = 0x2E
    package static let slash: UInt8 = 0x2F
    package static let zero: UInt8 = 0x30
    static let nine: UInt8 = 0x39
    package static let colon: UInt8 = 0x3A
    package static let semicolon: UInt8 = 0x3B
    package static let equals: UInt8 = 0x3D
    package static let questionMark: UInt8 = 0x3F
    static let at: UInt8 = 0x40
    static let openBracket: UInt8 = 0x5B
    package static let backslash: UInt8 = 0x5C
    static let closeBracket: UInt8 = 0x5D
    package static let asterisk: UInt8 = 0x2A

    /// field-vchar / SP / HTAB / obs-text (the `fieldValue` class, as comparisons).
    @inline(__always) package static func isFieldContent(_ b: UInt8) -> Bool { b >= 0x20 ? b != 0x7F : b == tab }
    @inline(__always) package static func isDigit(_ b: UInt8) -> Bool { b &- zero < 10 }
    @inline(__always) package static func lowercased(_ b: UInt8) -> UInt8 { b &- 0x41 < 26 ? b | 0x20 : b }
    @inline(__always) package static func isWhitespace(_ b: UInt8) -> Bool { b == space || b == tab }

    /// The value of a hex digit, or nil.
    @inline(__always) package static func hexValue(_ b: UInt8) -> UInt8? {
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
    /// field values are most of a head's bytes. (Swift's SIMD types were measured slower here.)
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
