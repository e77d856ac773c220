/// Prometheus text exposition (format 0.0.4) written as bytes: `# HELP`, `# TYPE`, then one
/// sample per line, label values escaped. Integers are formatted by hand: a scrape of 10,000
/// servers writes a few hundred thousand lines, so no String is made per line.
struct PrometheusWriter {
    var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    enum Kind: String {
        case counter, gauge, histogram
    }

    mutating func append(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func append(_ s: String) {
        var s = s
        s.withUTF8 { bytes.append(contentsOf: $0) }
    }

    mutating func family(_ name: StaticString, _ kind: Kind, _ help: StaticString) {
        append("# HELP ")
        append(name)
        append(" ")
        append(help)
        append("\n# TYPE ")
        append(name)
        append(" ")
        append(kind.rawValue)
        append("\n")
    }

    /// A label value, escaped (`\`, `"`, line feed).
    mutating func labelValue(_ s: String) {
        var s = s
        s.withUTF8 { u in
            for b in u {
                switch b {
                case 0x5C: bytes.append(0x5C); bytes.append(0x5C)
                case 0x22: bytes.append(0x5C); bytes.append(0x22)
                case 0x0A: bytes.append(0x5C); bytes.append(0x6E)
                default: bytes.append(b)
                }
            }
        }
    }

    mutating func int(_ v: Int) {
        if v < 0 {
            bytes.append(0x2D)
            unsigned(UInt64(-v))
        } else {
            unsigned(UInt64(v))
        }
    }

    mutating func unsigned(_ v: UInt64) {
        var divisor: UInt64 = 1
        while v / divisor >= 10 { divisor *= 10 }
        var x = v
        while divisor > 0 {
            bytes.append(0x30 + UInt8(x / divisor))
            x %= divisor
            divisor /= 10
        }
    }

    /// Milliseconds as seconds with three decimals (`0.012`).
    mutating func milliseconds(_ ms: Int) {
        let v = max(ms, 0)
        unsigned(UInt64(v / 1000))
        bytes.append(0x2E)
        let frac = v % 1000
        bytes.append(0x30 + UInt8(frac / 100))
        bytes.append(0x30 + UInt8(frac / 10 % 10))
        bytes.append(0x30 + UInt8(frac % 10))
    }

    /// A float as Prometheus reads it (six decimals are enough for ages and durations).
    mutating func double(_ v: Double) {
        if v.isNaN { append("NaN"); return }
        if v.isInfinite { append(v > 0 ? "+Inf" : "-Inf"); return }
        var x = v
        if x < 0 { bytes.append(0x2D); x = -x }
        let micros = UInt64((x * 1_000_000).rounded())
        unsigned(micros / 1_000_000)
        bytes.append(0x2E)
        let frac = micros % 1_000_000
        var divisor: UInt64 = 100_000
        while divisor > 0 {
            bytes.append(0x30 + UInt8(frac / divisor % 10))
            divisor /= 10
        }
    }

    /// A bucket bound as Prometheus clients write it: no trailing zeros (`0.025`, `1`).
    mutating func bound(_ v: Double) {
        let start = bytes.count
        double(v)
        while bytes.count > start, bytes.last == 0x30 { bytes.removeLast() }
        if bytes.last == 0x2E { bytes.removeLast() }
    }

    mutating func end() { bytes.append(0x0A) }
}
