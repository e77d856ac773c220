import ConfigModel
import Foundation
import Testing
@testable import Engine

/// The map indexes (a hash probed per key length, per delimited run, per prefix length) against
/// HAProxy's semantics written the slow way: every key in file order. Random maps and samples
/// over a small alphabet, so that keys and samples meet often; the seed is in each message.
@Suite struct MapLookupTests {
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func word(_ alphabet: [UInt8], _ maximum: Int) -> [UInt8] {
            (0..<(1 + below(maximum))).map { _ in alphabet[below(alphabet.count)] }
        }
    }

    static let alphabet = Array("ab./?:".utf8)

    static func entries(_ keys: [[UInt8]]) -> [MapSnapshot.Entry] {
        keys.enumerated().map { MapSnapshot.Entry(id: UInt64($0.offset + 1), key: $0.element, value: Array("v\($0.offset)".utf8), line: $0.offset + 1) }
    }

    /// HAProxy's `match_word`: the key without its outer delimiters, found where a delimiter or
    /// an end is on each side.
    static func wordMatch(_ sample: [UInt8], _ key: [UInt8], _ isDelimiter: (UInt8) -> Bool) -> Bool {
        var k = key[...]
        while let f = k.first, isDelimiter(f) { k = k.dropFirst() }
        while let l = k.last, isDelimiter(l) { k = k.dropLast() }
        guard !k.isEmpty, k.count <= sample.count else { return false }
        for s in 0...(sample.count - k.count) where (s == 0 || isDelimiter(sample[s - 1]))
            && (s + k.count == sample.count || isDelimiter(sample[s + k.count])) && Array(sample[s..<(s + k.count)]) == Array(k) {
            return true
        }
        return false
    }

    static func reference(_ keys: [[UInt8]], _ sample: [UInt8], _ match: MapMatch) -> Int? {
        switch match {
        case .str: return keys.firstIndex(of: sample)
        case .beg:
            // The longest key that begins the sample; the first of equal keys.
            var best: Int?
            for (i, k) in keys.enumerated() where k.count <= sample.count && Array(sample.prefix(k.count)) == k {
                if best == nil || k.count > keys[best!].count { best = i }
            }
            return best
        case .end: return keys.firstIndex { $0.count <= sample.count && Array(sample.suffix($0.count)) == $0 }
        case .sub:
            return keys.firstIndex { k in
                k.count <= sample.count && (0...(sample.count - k.count)).contains { Array(sample[$0..<($0 + k.count)]) == k }
            }
        case .dir: return keys.firstIndex { wordMatch(sample, $0, MapSnapshot.isDirDelimiter) }
        case .dom: return keys.firstIndex { wordMatch(sample, $0, MapSnapshot.isDomDelimiter) }
        default: return nil
        }
    }

    @Test(arguments: [MapMatch.str, .beg, .end, .sub, .dir, .dom])
    func stringIndexesAgreeWithAKeyByKeyWalk(_ match: MapMatch) {
        for seed in UInt64(1)...400 {
            var random = Random(state: seed &* 31 &+ UInt64(match.hashValue & 0xFF))
            let keys = (0..<(1 + random.below(12))).map { _ in random.word(Self.alphabet, 5) }
            let snapshot = MapSnapshot(entries: Self.entries(keys), matches: [match])
            for _ in 0..<20 {
                let sample = random.below(5) == 0 ? keys[random.below(keys.count)] : random.word(Self.alphabet, 10)
                let found = sample.withUnsafeBytes { snapshot.find($0, match) }
                #expect(found == Self.reference(keys, sample, match),
                        "seed \(seed) \(match): keys \(keys.map { String(decoding: $0, as: UTF8.self) }) sample \(String(decoding: sample, as: UTF8.self))")
            }
        }
    }

    @Test func ipTakesTheLongestNetworkAndIntegersTheFirstKey() {
        for seed in UInt64(1)...300 {
            var random = Random(state: seed)
            var networks: [(UInt32, Int)] = []
            var keys: [[UInt8]] = []
            for _ in 0..<(1 + random.below(20)) {
                let length = random.below(33)
                let address = UInt32(0x0A00_0000) | UInt32(truncatingIfNeeded: random.next()) & 0x0003_0F0F
                networks.append((address, length))
                let a = address
                keys.append(Array("\(a >> 24).\(a >> 16 & 0xFF).\(a >> 8 & 0xFF).\(a & 0xFF)/\(length)".utf8))
            }
            let snapshot = MapSnapshot(entries: Self.entries(keys), matches: [.ip])
            for _ in 0..<20 {
                let probe = UInt32(0x0A00_0000) | UInt32(truncatingIfNeeded: random.next()) & 0x0003_0F0F
                var best: Int?
                for (i, n) in networks.enumerated() where MapSnapshot.mask4(probe, n.1) == MapSnapshot.mask4(n.0, n.1) {
                    if best == nil || n.1 > networks[best!].1 { best = i }
                }
                #expect(snapshot.find(address: HTTPAddressBits(v4: probe)) == best, "seed \(seed)")
                // The same address as IPv4-mapped IPv6 finds the same network.
                #expect(snapshot.find(address: HTTPAddressBits(high: 0, low: 0xFFFF_0000_0000 | UInt64(probe))) == best, "seed \(seed)")
            }
        }
        let ints = MapSnapshot(entries: Self.entries(["10:20", "15", "15", ":0", "30:"].map { Array($0.utf8) }), matches: [.int])
        #expect(ints.find(integer: 15) == 0)
        #expect(ints.find(integer: 21) == nil)
        #expect(ints.find(integer: -4) == 3)
        #expect(ints.find(integer: 1_000) == 4)
    }

    /// Loops read through their own slots while the control loop publishes changes: each reader
    /// sees the values in the order they were published (never an older snapshot after a newer
    /// one) and ends on the last. Run under ThreadSanitizer in CI.
    @Test func readersOnTheirSlotsSeePublishedChangesInOrder() throws {
        let file = MapFile(name: "m", path: "/m", location: SourceLocation(file: "t.cfg", line: 1),
                           entries: [MapEntry(key: "k", value: "0", line: 1)], match: .str, matches: [.str], outputs: [.int],
                           digest: 1)
        let map = SharedMap(file, slots: 3)
        let key = Array("k".utf8)
        let last = 300
        let problems = Locked<[String]>([])
        let readers = (0..<2).map { slot in
            Thread {
                var previous = -1
                while previous < last {
                    let value = map.read(slot: slot) { snapshot -> Int in
                        guard let i = key.withUnsafeBytes({ snapshot.find($0, .str) }) else { return -2 }
                        return Int(String(decoding: snapshot.entries[i].value, as: UTF8.self)) ?? -3
                    }
                    if value < previous { problems.withLock { $0.append("slot \(slot): \(value) after \(previous)") } ; break }
                    previous = value
                }
            }
        }
        for r in readers { r.start() }
        for n in 1...last {
            map.update { entries, nextID in
                if n % 2 == 0 { entries.append(MapSnapshot.Entry(id: nextID(), key: Array("other\(n)".utf8), value: [], line: 0)) }
                for i in entries.indices where entries[i].key == key { entries[i].value = Array(String(n).utf8) }
            }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while readers.contains(where: { !$0.isFinished }) && ContinuousClock.now < deadline { usleep(1_000) }
        let finished = readers.allSatisfy { $0.isFinished }
        let seen = problems.withLock { $0 }
        #expect(finished)
        #expect(seen.isEmpty, "\(seen)")
        #expect(map.snapshot.entries.count == 1 + last / 2)
    }
}
