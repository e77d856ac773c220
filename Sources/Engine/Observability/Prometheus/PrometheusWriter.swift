/// Prometheus text exposition (format 0.0.4) written as bytes: `# HELP`, `# TYPE`, then one
/// sample per line, label values escaped. A scrape of 10,000 servers writes about 400,000 lines,
/// so the writer is a plain growing buffer (one capacity check per write, `memcpy` for text) and
/// integers are formatted by hand: no String, no Array append per byte. Call `finish()` once to
/// take the bytes (it frees the buffer).
struct PrometheusWriter {
    private var base: UnsafeMutableRawPointer
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 256)
        base = .allocate(byteCount: self.capacity, alignment: 1)
    }

    /// The bytes written; the writer must not be used afterwards.
    mutating func finish() -> [UInt8] {
        let bytes = [UInt8](UnsafeRawBufferPointer(start: base, count: count))
        base.deallocate()
        capacity = 0
        count = 0
        return bytes
    }

    /// The buffer itself, handed over: the caller deallocates it (no copy of a large scrape); the
    /// writer must not be used afterwards.
    mutating func takeBuffer() -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer(start: base, count: count)
        capacity = 0
        count = 0
        return buffer
    }

    /// The bytes written so far (valid until the next write).
    var written: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    enum Kind: String {
        /// `untyped`: a name HAProxy gives a counter without `_total` (kept for its dashboards;
        /// declared untyped so that the output passes `promtool check metrics`).
        case counter, gauge, histogram, untyped
    }

    @inline(__always)
    private mutating func reserve(_ n: Int) {
        if count + n > capacity { grow(count + n) }
    }

    private mutating func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 1)
        bigger.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = bigger
        capacity = newCapacity
    }

    @inline(__always)
    mutating func byte(_ b: UInt8) {
        reserve(1)
        base.storeBytes(of: b, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let p = bytes.baseAddress else { return }
        reserve(bytes.count)
        (base + count).copyMemory(from: p, byteCount: bytes.count)
        count += bytes.count
    }

    @inline(__always)
    mutating func append(_ s: StaticString) {
        append(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    mutating func append(_ s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    mutating func family(_ name: StaticString, _ kind: Kind, _ help: StaticString) {
        append("# HELP ")
        append(name)
        byte(0x20)
        append(help)
        append("\n# TYPE ")
        append(name)
        byte(0x20)
        append(kind.rawValue)
        byte(0x0A)
    }

    /// A label value, escaped (`\`, `"`, line feed).
    mutating func labelValue(_ s: String) {
        var s = s
        s.withUTF8 { u in
            reserve(u.count * 2)
            for b in u {
                switch b {
                case 0x5C: byte(0x5C); byte(0x5C)
                case 0x22: byte(0x5C); byte(0x22)
                case 0x0A: byte(0x5C); byte(0x6E)
                default: byte(b)
                }
            }
        }
    }

    @inline(__always)
    mutating func int(_ v: Int) {
        if v >= 0 && v < 10 {
            byte(0x30 + UInt8(truncatingIfNeeded: v))
        } else if v < 0 {
            byte(0x2D)
            unsigned(v.magnitude.toUInt64)
        } else {
            unsigned(UInt64(v))
        }
    }

    mutating func unsigned(_ v: UInt64) {
        if v < 10 {
            byte(0x30 + UInt8(truncatingIfNeeded: v))
            return
        }
        // Digits from the right into the 20 bytes reserved after the end, then moved in place.
        reserve(20)
        var digits = 0
        var x = v
        while x > 0 {
            digits += 1
            x /= 10
        }
        x = v
        var i = count + digits - 1
        while i >= count {
            base.storeBytes(of: 0x30 + UInt8(truncatingIfNeeded: x % 10), toByteOffset: i, as: UInt8.self)
            x /= 10
            i -= 1
        }
        count += digits
    }

    /// Milliseconds as seconds with three decimals (`0.012`).
    mutating func milliseconds(_ ms: Int) {
        let v = max(ms, 0)
        int(v / 1000)
        reserve(4)
        let frac = v % 1000
        byte(0x2E)
        byte(0x30 + UInt8(truncatingIfNeeded: frac / 100))
        byte(0x30 + UInt8(truncatingIfNeeded: frac / 10 % 10))
        byte(0x30 + UInt8(truncatingIfNeeded: frac % 10))
    }

    /// A float as Prometheus reads it (six decimals are enough for ages and durations).
    mutating func double(_ v: Double) {
        if v.isNaN { append("NaN"); return }
        if v.isInfinite { append(v > 0 ? "+Inf" : "-Inf"); return }
        var x = v
        if x < 0 { byte(0x2D); x = -x }
        let micros = UInt64((x * 1_000_000).rounded())
        unsigned(micros / 1_000_000)
        byte(0x2E)
        let frac = micros % 1_000_000
        var divisor: UInt64 = 100_000
        while divisor > 0 {
            byte(0x30 + UInt8(truncatingIfNeeded: frac / divisor % 10))
            divisor /= 10
        }
    }

    /// A bucket bound as Prometheus clients write it: no trailing zeros (`0.025`, `1`).
    mutating func bound(_ v: Double) {
        let start = count
        double(v)
        while count > start, base.load(fromByteOffset: count - 1, as: UInt8.self) == 0x30 { count -= 1 }
        if count > start, base.load(fromByteOffset: count - 1, as: UInt8.self) == 0x2E { count -= 1 }
    }

    @inline(__always)
    mutating func end() { byte(0x0A) }
}

private extension UInt {
    var toUInt64: UInt64 { UInt64(self) }
}
