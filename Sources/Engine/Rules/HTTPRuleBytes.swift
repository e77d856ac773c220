import HTTP1
import Glibc

/// Byte-string operations the rules need (ASCII case folding only, as HAProxy's `-i`), over
/// `UnsafeRawBufferPointer`s: no String, no allocation.
enum HTTPRuleBytes {
    static var empty: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }

    @inline(__always)
    static func slice(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[range])
    }

    @inline(__always)
    static func upper(_ b: UInt8) -> UInt8 { b &- 0x61 < 26 ? b & 0xDF : b }

    /// Byte-for-byte equality.
    @inline(__always)
    static func equals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        if a.count == 0 { return true }
        return memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0
    }

    /// Whether `a` equals `lowercase` (already lowercase) ignoring ASCII case.
    @inline(__always)
    static func equalsIgnoringCase(_ a: UnsafeRawBufferPointer, lowercase: UnsafeRawBufferPointer) -> Bool {
        guard a.count == lowercase.count else { return false }
        var i = 0
        while i < a.count {
            if HTTPByte.lowercased(a[i]) != lowercase[i] { return false }
            i &+= 1
        }
        return true
    }

    /// Whether `a[at..<at + pattern.count]` equals `pattern`; with `ignoreCase`, `pattern` is lowercase.
    @inline(__always)
    static func matches(_ a: UnsafeRawBufferPointer, at: Int, _ pattern: UnsafeRawBufferPointer, ignoreCase: Bool) -> Bool {
        guard at >= 0, at + pattern.count <= a.count else { return false }
        if pattern.count == 0 { return true }
        if !ignoreCase {
            return memcmp(a.baseAddress! + at, pattern.baseAddress!, pattern.count) == 0
        }
        var i = 0
        while i < pattern.count {
            if HTTPByte.lowercased(a[at &+ i]) != pattern[i] { return false }
            i &+= 1
        }
        return true
    }

    static func equals(_ a: UnsafeRawBufferPointer, _ pattern: UnsafeRawBufferPointer, ignoreCase: Bool) -> Bool {
        a.count == pattern.count && matches(a, at: 0, pattern, ignoreCase: ignoreCase)
    }

    static func hasPrefix(_ a: UnsafeRawBufferPointer, _ pattern: UnsafeRawBufferPointer, ignoreCase: Bool) -> Bool {
        matches(a, at: 0, pattern, ignoreCase: ignoreCase)
    }

    static func hasSuffix(_ a: UnsafeRawBufferPointer, _ pattern: UnsafeRawBufferPointer, ignoreCase: Bool) -> Bool {
        matches(a, at: a.count - pattern.count, pattern, ignoreCase: ignoreCase)
    }

    static func contains(_ a: UnsafeRawBufferPointer, _ pattern: UnsafeRawBufferPointer, ignoreCase: Bool) -> Bool {
        if pattern.count == 0 { return true }
        guard pattern.count <= a.count else { return false }
        let first = pattern[0]
        var i = 0
        let last = a.count - pattern.count
        while i <= last {
            let b = ignoreCase ? HTTPByte.lowercased(a[i]) : a[i]
            if b == first && matches(a, at: i, pattern, ignoreCase: ignoreCase) { return true }
            i &+= 1
        }
        return false
    }

    /// The first offset of `byte` in `a[from..<to]`.
    @inline(__always)
    static func firstIndex(of byte: UInt8, in a: UnsafeRawBufferPointer, from: Int = 0, to: Int? = nil) -> Int? {
        var i = from
        let end = to ?? a.count
        while i < end {
            if a[i] == byte { return i }
            i &+= 1
        }
        return nil
    }

    /// A signed decimal integer filling all of `a` (HAProxy's string-to-integer cast), or nil.
    static func integer(_ a: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        var negative = false
        if i < a.count && (a[i] == 0x2D || a[i] == 0x2B) {
            negative = a[i] == 0x2D
            i += 1
        }
        guard i < a.count else { return nil }
        var value = 0
        while i < a.count {
            let d = a[i] &- HTTPByte.zero
            guard d < 10 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int(d))
            guard !o1, !o2 else { return nil }
            value = s
            i += 1
        }
        return negative ? -value : value
    }

    /// A nibble as a lower-case hexadecimal digit.
    @inline(__always)
    static func lowerHex(_ nibble: UInt8) -> UInt8 { nibble < 10 ? HTTPByte.zero &+ nibble : 0x61 &+ nibble &- 10 }

    /// `name` as bytes, for literals written in the code.
    @inline(__always)
    static func literal(_ s: StaticString) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
    }
}

/// Small shared helpers.
enum HTTPRules {
    @inline(__always)
    static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? HTTPByte.zero &+ nibble : 0x41 &+ nibble &- 10
    }
}
