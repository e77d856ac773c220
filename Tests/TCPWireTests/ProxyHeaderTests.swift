import Testing
@testable import TCPWire

func parse(_ bytes: [UInt8], maxLength: Int = 16384) -> ProxyHeaderParse {
    bytes.withUnsafeBytes { ProxyHeaderParser.parse($0, maxLength: maxLength) }
}

func v4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16) -> ProxyAddress {
    ProxyAddress(bytes: [a, b, c, d], port: port)
}

@Suite struct ProxyHeaderV1Tests {
    @Test func tcp4() throws {
        let text = Array("PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n".utf8)
        guard case .complete(let h) = parse(text) else { Issue.record("not complete"); return }
        #expect(h.version == 1)
        #expect(h.source == v4(192, 0, 2, 7, port: 56324))
        #expect(h.destination == v4(198, 51, 100, 1, port: 443))
        #expect(h.length == 45)
    }

    @Test func tcp6AndUnknown() {
        guard case .complete(let h) = parse(Array("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n".utf8)) else {
            Issue.record("TCP6 not complete"); return
        }
        #expect(h.source?.bytes == [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1])
        #expect(h.destination?.port == 65535)
        guard case .complete(let u) = parse(Array("PROXY UNKNOWN whatever follows\r\nx".utf8)) else {
            Issue.record("UNKNOWN not complete"); return
        }
        #expect(u.source == nil && u.destination == nil && u.length == 32)
    }

    @Test(arguments: [
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",          // bare LF
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",    // port out of range
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",       // double space
        "PROXY TCP4 ::1 ::1 1 2\r\n",                // IPv6 in TCP4
        "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",        // IPv4 in TCP6
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        "PROXY \r\n",
    ])
    func malformed(_ text: String) {
        #expect(parse(Array(text.utf8)) == .invalid(.malformedV1))
    }

    @Test func notProxyAndTooLong() {
        #expect(parse(Array("GET / HTTP/1.1\r\n".utf8)) == .invalid(.notProxy))
        #expect(parse(Array("PROXZ".utf8)) == .invalid(.notProxy))
        #expect(parse(Array("PROX".utf8)) == .needMore)
        let long = Array("PROXY UNKNOWN ".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 100)
        #expect(parse(long) == .invalid(.tooLong))
        // 107 bytes with CRLF is the longest accepted.
        let longest = Array("PROXY UNKNOWN ".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 91) + [13, 10]
        #expect(longest.count == 107)
        if case .complete = parse(longest) {} else { Issue.record("107 bytes refused") }
    }

    @Test func everyPrefixNeedsMore() {
        let text = Array("PROXY TCP4 10.0.0.1 10.0.0.2 1000 80\r\n".utf8)
        for n in 0..<text.count { #expect(parse(Array(text[..<n])) == .needMore, "prefix \(n)") }
    }
}

@Suite struct ProxyHeaderV2Tests {
    @Test func roundTripTCP4AndTCP6() {
        let s = v4(10, 1, 2, 3, port: 4000), d = v4(10, 9, 8, 7, port: 80)
        let bytes = ProxyHeaderWriter.v2(source: s, destination: d)
        #expect(bytes.count == 28)
        #expect(parse(bytes + [1, 2, 3]) == .complete(ProxyHeader(version: 2, source: s, destination: d, length: 28)))
        let s6 = ProxyAddress(bytes: [UInt8](repeating: 0xAB, count: 16), port: 1)
        let mixed = ProxyHeaderWriter.v2(source: s6, destination: d)
        guard case .complete(let h) = parse(mixed) else { Issue.record("TCP6"); return }
        #expect(h.source == s6)
        #expect(h.destination?.bytes == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 9, 8, 7])
    }

    @Test func localAndUnspecKeepTheConnectionsAddresses() {
        let local = ProxyHeaderWriter.v2(source: nil, destination: nil)
        #expect(parse(local) == .complete(ProxyHeader(version: 2, source: nil, destination: nil, length: 16)))
        // PROXY command, UNSPEC family, 4 bytes of something.
        let unspec = ProxyHeaderParser.v2Signature + [0x21, 0x00, 0, 4, 9, 9, 9, 9]
        #expect(parse(unspec) == .complete(ProxyHeader(version: 2, source: nil, destination: nil, length: 20)))
    }

    @Test func tlvsAndChecksum() {
        let s = v4(1, 2, 3, 4, port: 5), d = v4(6, 7, 8, 9, port: 10)
        let tlvs = [ProxyHeaderWriter.TLV(type: ProxyHeaderWriter.TLV.authority, value: Array("example.com".utf8)),
                    ProxyHeaderWriter.TLV.ssl(client: 1, verify: 0, [.init(type: 0x21, value: Array("TLSv1.3".utf8))])]
        var bytes = ProxyHeaderWriter.v2(source: s, destination: d, tlvs: tlvs, checksum: true)
        guard case .complete(let h) = parse(bytes) else { Issue.record("with TLVs"); return }
        #expect(h.authority == Array("example.com".utf8))
        #expect(h.length == bytes.count)
        bytes[bytes.count - 1] ^= 1  // a changed byte: the checksum no longer matches
        #expect(parse(bytes) == .invalid(.malformedV2))
    }

    @Test func malformed() {
        let sig = ProxyHeaderParser.v2Signature
        #expect(parse(sig + [0x11, 0x11, 0, 12] + [UInt8](repeating: 0, count: 12)) == .invalid(.unsupportedVersion))
        #expect(parse(sig + [0x22, 0x11, 0, 12] + [UInt8](repeating: 0, count: 12)) == .invalid(.unsupportedVersion))
        // TCP4 needs 12 bytes of addresses.
        #expect(parse(sig + [0x21, 0x11, 0, 8] + [UInt8](repeating: 0, count: 8)) == .invalid(.malformedV2))
        // A TLV longer than the header.
        #expect(parse(sig + [0x21, 0x11, 0, 16] + [UInt8](repeating: 0, count: 12) + [0x04, 0, 9, 0]) == .invalid(.malformedV2))
        // A unique ID over 128 bytes.
        let id = [UInt8](repeating: 1, count: 129)
        #expect(parse(sig + [0x21, 0x11, 0, UInt8(12 + 3 + 129)] + [UInt8](repeating: 0, count: 12) + [0x05, 0, 129] + id)
            == .invalid(.malformedV2))
        // Longer than the limit.
        #expect(parse(sig + [0x21, 0x11, 0x40, 0], maxLength: 1024) == .invalid(.tooLong))
        // A signature that differs.
        #expect(parse([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0B]) == .invalid(.notProxy))
    }

    @Test func v1Writer() {
        #expect(ProxyHeaderWriter.v1(source: v4(1, 2, 3, 4, port: 5), destination: v4(6, 7, 8, 9, port: 10))
            == Array("PROXY TCP4 1.2.3.4 6.7.8.9 5 10\r\n".utf8))
        #expect(ProxyHeaderWriter.v1(source: nil, destination: nil) == Array("PROXY UNKNOWN\r\n".utf8))
        let mixed = ProxyHeaderWriter.v1(source: ProxyAddress(bytes: [UInt8](repeating: 0, count: 15) + [1], port: 1),
                                         destination: v4(6, 7, 8, 9, port: 10))
        #expect(mixed == Array("PROXY TCP6 ::1 ::ffff:6.7.8.9 1 10\r\n".utf8))
    }

    /// CRC-32C's check value (RFC 3720's "123456789").
    @Test func crc32c() {
        let sum = Array("123456789".utf8).withUnsafeBytes { CRC32C.checksum($0) }
        #expect(sum == 0xE306_9283)
    }
}

/// Fuzz-style: valid headers, mutated and cut at random, must never trap, and what the parser
/// says must be consistent across prefixes: a complete header is `needMore` on every shorter
/// prefix and the same on every longer input; an invalid one stays invalid with more bytes.
@Suite struct ProxyHeaderRandomizedTests {
    @Test func mutatedHeaders() {
        var rng = SplitMix(seed: 0x5EED)
        let seeds: [[UInt8]] = [
            Array("PROXY TCP4 192.168.0.1 10.0.0.1 12345 80\r\n".utf8),
            Array("PROXY TCP6 2001:db8::7 ::1 1 2\r\n".utf8),
            Array("PROXY UNKNOWN\r\n".utf8),
            ProxyHeaderWriter.v2(source: v4(1, 2, 3, 4, port: 5), destination: v4(6, 7, 8, 9, port: 10),
                                 tlvs: [.init(type: 2, value: Array("a.example".utf8))], checksum: true),
            ProxyHeaderWriter.v2(source: nil, destination: nil),
        ]
        for _ in 0..<20000 {
            var bytes = seeds[Int(rng.next() % UInt64(seeds.count))]
            let edits = Int(rng.next() % 4)
            for _ in 0..<edits {
                let i = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 4 {
                case 0: bytes[i] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                case 2: if bytes.count > 1 { bytes.remove(at: i) }
                default: bytes += (0..<Int(rng.next() % 8)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                }
            }
            let whole = parse(bytes, maxLength: 256)
            switch whole {
            case .complete(let h):
                #expect(h.length <= bytes.count && h.length >= 15)
                for n in stride(from: 0, to: h.length, by: max(1, h.length / 7)) {
                    #expect(parse(Array(bytes[..<n]), maxLength: 256) == .needMore)
                }
                #expect(parse(Array(bytes[..<h.length]), maxLength: 256) == whole)
            case .invalid:
                #expect(parse(bytes + [0, 1, 2, 13, 10], maxLength: 256) == whole)
            case .needMore:
                break
            }
        }
    }
}

/// A small deterministic generator (SplitMix64): the same cases every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
