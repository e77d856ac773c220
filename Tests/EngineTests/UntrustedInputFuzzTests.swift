import Glibc
import ConfigModel
import Testing
@testable import Engine

/// Randomized cases for the parsers of untrusted bytes this turn added beside the fuzz targets in
/// fuzz/: an agent's line (a server's own process writes it), a client's request target for
/// `normalize-uri`, a client's Accept-Encoding q-values. Each run is seeded, so a failure repeats.
@Suite struct UntrustedInputFuzzTests {
    /// A small deterministic generator (xorshift), so the cases are the same on every run.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func bytes(_ alphabet: [UInt8], count: Int) -> [UInt8] { (0..<count).map { _ in alphabet[below(alphabet.count)] } }
    }

    @Test func agentLinesOfKnownWordsAndNoise() {
        var random = Random(state: 0x9E37_79B9_7F4A_7C15)
        let words = ["up", "DOWN", "fail", "stopped", "ready", "drain", "maint", "50%", "weight:7", "maxconn:3", "junk", "%", "#x"]
        let separators = [" ", "\t", ",", ", "]
        for _ in 0..<5000 {
            // Known words in any order: the last health word wins, as HAProxy reads the line.
            var line = ""
            var lastHealth: String?
            var sawHash = false
            for _ in 0..<random.below(8) {
                let w = words[random.below(words.count)]
                line += w + separators[random.below(separators.count)]
                if w.hasPrefix("#") { sawHash = true }
                if !sawHash, ["up", "down", "fail", "stopped"].contains(w.lowercased()) { lastHealth = w }
            }
            let reply = AgentReply(line)
            switch reply.health {
            case .up(let w)?, .down(let w)?: #expect(w == lastHealth, "\(line)")
            case nil: #expect(lastHealth == nil, "\(line)")
            }
            // Any bytes at all: a reply, never a trap.
            let noise = String(decoding: random.bytes(Array(0...255), count: random.below(64)), as: UTF8.self)
            _ = AgentReply(noise)
        }
    }

    func run(_ input: [UInt8], _ body: (UnsafeRawBufferPointer, HTTPScratchBuffer) -> Void) -> [UInt8] {
        let out = HTTPScratchBuffer(capacity: 4096)
        input.withUnsafeBytes { body($0, out) }
        return Array(out.bytes(from: 0))
    }

    @Test func normalizersOnRandomTargets() {
        var random = Random(state: 0xD1B5_4A32_D192_ED03)
        let alphabet = Array("/./..%2eE4fzZ?&=a".utf8)
        for _ in 0..<5000 {
            let path = random.bytes(alphabet, count: random.below(40))
            let merged = run(path) { HTTPURINormalizer.mergeSlashes($0, $1) }
            // Slashes merged, nothing else changed: the path with its runs of slashes made one.
            var model: [UInt8] = []
            for b in path where !(b == UInt8(ascii: "/") && model.last == UInt8(ascii: "/")) { model.append(b) }
            #expect(merged == model, "\(path)")
            // The others only ever shorten a target, or keep it.
            #expect(run(path) { HTTPURINormalizer.stripDot($0, $1) }.count <= path.count)
            #expect(run(path) { HTTPURINormalizer.stripDotDot($0, $1, full: false) }.count <= path.count)
            #expect(run(path) { HTTPURINormalizer.stripDotDot($0, $1, full: true) }.count <= path.count)
            #expect(run(path) { _ = HTTPURINormalizer.percent($0, $1, decode: true) }.count <= path.count)
            #expect(run(path) { _ = HTTPURINormalizer.percent($0, $1, decode: false) }.count == path.count)
            #expect(run(path) { HTTPURINormalizer.sortQuery($0, $1) }.count == path.count)
        }
    }

    @Test func qValuesOnRandomParameters() {
        var random = Random(state: 0x2545_F491_4F6C_DD1D)
        let alphabet = Array("q=0.123456789;, QX\t1".utf8)
        for _ in 0..<5000 {
            let value = random.bytes(alphabet, count: random.below(24))
            let q = value.withUnsafeBytes { HTTPCompressionRules.qValue($0, 0..<$0.count) }
            #expect((0...1000).contains(q), "\(String(decoding: value, as: UTF8.self)) → \(q)")
        }
    }
    /// A server's dates (Expires, Last-Modified, Date) and a client's If-Modified-Since: every
    /// IMF-fixdate made from a random time parses back to it, and noise or a cut date never traps
    /// (it parses to nil or to some time).
    @Test func httpDatesRoundTripAndNoiseIsSafe() {
        var random = Random(state: 0xD1B5_4A32_D192_ED03)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        for _ in 0..<3000 {
            let t = random.below(4_102_444_800)  // up to 2100
            var tm = tm()
            var time = time_t(t)
            gmtime_r(&time, &tm)
            let text = "\(days[Int(tm.tm_wday)]), \(two(Int(tm.tm_mday))) \(months[Int(tm.tm_mon)]) \(tm.tm_year + 1900) \(two(Int(tm.tm_hour))):\(two(Int(tm.tm_min))):\(two(Int(tm.tm_sec))) GMT"
            let parsed = Array(text.utf8).withUnsafeBytes { HTTPDate.parse($0) }
            #expect(parsed == t, "\(text)")
            // Cut anywhere, or with a byte changed: no trap.
            var bytes = Array(text.utf8)
            bytes = Array(bytes.prefix(random.below(bytes.count + 1)))
            if !bytes.isEmpty { bytes[random.below(bytes.count)] = UInt8(random.below(256)) }
            _ = bytes.withUnsafeBytes { HTTPDate.parse($0) }
        }
        let alphabet = Array("SunMoNov, 0123456789:-GMT \t".utf8)
        for _ in 0..<3000 {
            let noise = random.bytes(alphabet, count: random.below(40))
            _ = noise.withUnsafeBytes { HTTPDate.parse($0) }
        }
        // RFC 850 and asctime, as HAProxy reads them.
        #expect(Array("Sunday, 06-Nov-94 08:49:37 GMT".utf8).withUnsafeBytes { HTTPDate.parse($0) } == 784_111_777)
        #expect(Array("Sun Nov  6 08:49:37 1994".utf8).withUnsafeBytes { HTTPDate.parse($0) } == 784_111_777)
    }

    /// Capture slots take a client's or a server's bytes: whatever they are, `%hr`/`%hs` has one
    /// field per slot, none of `"#{|}` or a control byte raw, and each field decodes to the value
    /// truncated to its slot's length; a later layout (another generation) starts empty.
    @Test func captureSlotsOfAnyBytes() {
        var random = Random(state: 0xC0FF_EE12_3456_789B)
        let slots = HTTPCaptureSlots()
        let out = HTTPScratchBuffer(capacity: 1 << 16)
        for _ in 0..<3000 {
            let lengths = (0..<(1 + random.below(5))).map { _ in random.below(40) }
            slots.begin(HTTPCaptureSlots.Layout(lengths))
            var expected: [[UInt8]] = lengths.map { _ in [] }
            for _ in 0..<random.below(8) {
                let slot = random.below(lengths.count + 2) - 1
                let value = random.bytes(Array(0...255), count: random.below(60))
                value.withUnsafeBytes { slots.store(slot, $0) }
                if slot >= 0 && slot < lengths.count { expected[slot] = Array(value.prefix(lengths[slot])) }
            }
            out.reset()
            slots.format(into: out)
            let text = Array(out.bytes(from: 0))
            #expect(text.first == 0x7B && text.last == 0x7D)
            let fields = text.dropFirst().dropLast().split(separator: 0x7C, omittingEmptySubsequences: false)
            #expect(fields.count == lengths.count)
            for (i, field) in fields.enumerated() where i < expected.count {
                #expect(!field.contains { $0 < 0x20 || $0 >= 0x7F || $0 == 0x22 || $0 == 0x7B || $0 == 0x7D })
                var decoded: [UInt8] = []
                var j = field.startIndex
                while j < field.endIndex {
                    if field[j] == 0x23 {  // `#` only ever starts an escape
                        let hex = String(decoding: field[(j + 1)...(j + 2)], as: UTF8.self)
                        decoded.append(UInt8(hex, radix: 16)!)
                        j += 3
                    } else {
                        decoded.append(field[j])
                        j += 1
                    }
                }
                #expect(decoded == expected[i], "slot \(i)")
            }
        }
    }

    /// `json([INPUT-CODE])` escapes a client's bytes for a log or a header: HAProxy 2.6.12's own
    /// answers on the same inputs, then random bytes: `ascii`, `utf8s` and `utf8ps` never fail and
    /// always give printable ASCII with no bare quote.
    @Test func jsonEscapesAsHAProxyAndAnyBytesStayPrintable() {
        func run(_ bytes: [UInt8], _ code: JSONInputCode) -> String? {
            HTTPJSONEscape.escape(bytes, code).map { String(decoding: $0, as: UTF8.self) }
        }
        let quote = Array("foo 1/2 \"q\" \\b <t>".utf8)
        #expect(run(quote, .ascii) == "foo 1\\/2 \\\"q\\\" \\\\b <t>")
        // A surrogate, a code point past U+10FFFF, a cut sequence, an overlong '/', a 4-byte one.
        let cases: [([UInt8], [JSONInputCode: String?])] = [
            ([0x78, 0xED, 0xA0, 0x80, 0x79], [.ascii: "x\\u00ed\\u00a0\\u0080y", .utf8: nil, .utf8s: "xy", .utf8p: nil, .utf8ps: "xy"]),
            ([0x7A, 0xF4, 0x90, 0x80, 0x80, 0x77], [.utf8: nil, .utf8s: "zw", .utf8ps: "zw"]),
            ([0x63, 0xC3, 0x64], [.utf8: nil, .utf8s: "cd"]),
            ([0x65, 0xC0, 0xAF, 0x7A], [.utf8: nil, .utf8s: "ez", .utf8p: "e\\/z", .utf8ps: "e\\/z"]),
            ([0x61, 0xF0, 0x9F, 0x98, 0x80, 0x62], [.utf8: nil, .utf8s: "ab"]),
            ([0x6B, 0xE2, 0x82, 0xAC, 0x6D], [.ascii: "k\\u00e2\\u0082\\u00acm", .utf8: "k\\u20acm", .utf8ps: "k\\u20acm"]),
            ([0x7F], [.ascii: "\\u007f", .utf8: "\\u007f"]),
        ]
        for (input, expected) in cases {
            for (code, answer) in expected { #expect(run(input, code) == answer, "\(input) \(code)") }
        }
        var random = Random(state: 0x4A53_4F4E_0000_0001)
        for _ in 0..<3000 {
            let bytes = random.bytes(Array(0...255), count: random.below(64))
            for code in [JSONInputCode.ascii, .utf8s, .utf8ps] {
                guard let out = HTTPJSONEscape.escape(bytes, code) else { Issue.record("\(code) failed on \(bytes)"); continue }
                #expect(out.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "\(code) \(bytes)")
                // Every quote is escaped.
                for (k, b) in out.enumerated() where b == 0x22 { #expect(k > 0 && out[k - 1] == 0x5C) }
            }
            _ = HTTPJSONEscape.escape(bytes, .utf8)
            _ = HTTPJSONEscape.escape(bytes, .utf8p)
        }
    }
}
