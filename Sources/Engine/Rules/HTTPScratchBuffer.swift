import HTTP1
import Glibc

/// A bump buffer at a fixed address: bytes appended to it stay where they are until `reset()`.
/// Allocated on first use, once; when full, appends fail (`overflowed`) rather than move bytes
/// that samples point at.
final class HTTPScratchBuffer {
    @exclusivity(unchecked) private var base: UnsafeMutableRawPointer?
    let capacity: Int
    @exclusivity(unchecked) private(set) var count = 0
    /// Something did not fit since the last reset.
    @exclusivity(unchecked) private(set) var overflowed = false

    init(capacity: Int) {
        self.capacity = capacity
    }

    deinit { base?.deallocate() }

    @inline(__always)
    func reset() {
        count = 0
        overflowed = false
    }

    /// Rewinds to an earlier `count` (what was appended after it is dropped).
    @inline(__always)
    func rewind(to mark: Int) {
        count = mark
    }

    @inline(__always)
    private func reserve(_ n: Int) -> UnsafeMutableRawPointer? {
        if base == nil { base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8) }
        guard !overflowed, capacity - count >= n else {
            overflowed = true
            return nil
        }
        return base! + count
    }

    /// The free space after what was appended (allocating the buffer on first use); `commit`
    /// what was written there.
    func remaining() -> UnsafeMutableRawBufferPointer {
        if base == nil { base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8) }
        return UnsafeMutableRawBufferPointer(start: base! + count, count: capacity - count)
    }

    func commit(_ n: Int) {
        count += n
    }

    @discardableResult
    func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let p = reserve(bytes.count) else { return false }
        if bytes.count > 0 { p.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        count += bytes.count
        return true
    }

    @discardableResult
    func append(byte: UInt8) -> Bool {
        guard let p = reserve(1) else { return false }
        p.storeBytes(of: byte, as: UInt8.self)
        count += 1
        return true
    }

    @discardableResult
    func append(_ s: StaticString) -> Bool {
        append(HTTPRuleBytes.literal(s))
    }

    /// Appends `bytes` mapped through `transform` byte by byte.
    @discardableResult
    func append(_ bytes: UnsafeRawBufferPointer, mapping transform: (UInt8) -> UInt8) -> Bool {
        guard let p = reserve(bytes.count) else { return false }
        var i = 0
        while i < bytes.count {
            p.storeBytes(of: transform(bytes[i]), toByteOffset: i, as: UInt8.self)
            i &+= 1
        }
        count += bytes.count
        return true
    }

    @discardableResult
    func appendDecimal(_ value: Int) -> Bool {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        return withUnsafeMutableBytes(of: &digits) { scratch -> Bool in
            var v = value.magnitude
            var i = scratch.count
            repeat {
                i -= 1
                scratch[i] = UInt8(truncatingIfNeeded: v % 10) &+ HTTPByte.zero
                v /= 10
            } while v > 0
            if value < 0 {
                i -= 1
                scratch[i] = 0x2D
            }
            return append(UnsafeRawBufferPointer(rebasing: scratch[i...]))
        }
    }

    /// Appends an address as text (dotted quad, or RFC 5952 IPv6 through inet_ntop).
    @discardableResult
    func appendAddress(_ address: HTTPAddressBits) -> Bool {
        if !address.isV6 {
            var shift: UInt32 = 24
            while true {
                appendDecimal(Int(address.v4 >> shift & 0xFF))
                if shift == 0 { break }
                append(byte: 0x2E)
                shift -= 8
            }
            return !overflowed
        }
        guard let p = reserve(46) else { return false }
        var raw = (address.high.bigEndian, address.low.bigEndian)
        let written = withUnsafeBytes(of: &raw) { src -> Int in
            guard inet_ntop(AF_INET6, src.baseAddress, p.assumingMemoryBound(to: CChar.self), 46) != nil else { return 0 }
            return strlen(p.assumingMemoryBound(to: CChar.self))
        }
        count += written
        return written > 0
    }

    /// The bytes appended since `mark`.
    @inline(__always)
    func bytes(from mark: Int) -> UnsafeRawBufferPointer {
        guard let base else { return HTTPRuleBytes.empty }
        return UnsafeRawBufferPointer(start: base + mark, count: count - mark)
    }

    /// The bytes at `range` (offsets from the start).
    @inline(__always)
    func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        guard let base else { return HTTPRuleBytes.empty }
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }
}
