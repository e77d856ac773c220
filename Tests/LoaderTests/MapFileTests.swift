import ConfigModel
import Foundation
import Testing
@testable import Loader

/// Map files are bytes the configuration does not control: the parser is checked against a
/// model of HAProxy's format on random files, and on random bytes for what it must never do.
struct MapFileTests {
    /// SplitMix64: reproducible from the seed printed with a failure.
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

    static let keyBytes = Array("abcXYZ019./:-_%é".utf8)
    static let valueBytes = Array("abc 09\t./#:".utf8)

    @Test func randomFilesParseAsTheirLinesSay() {
        for seed in UInt64(1)...300 {
            var random = Random(state: seed)
            var bytes: [UInt8] = []
            var expected: [MapEntry] = []
            let lines = random.below(40)
            for number in 1...max(lines, 1) {
                let indent = [UInt8](repeating: random.below(2) == 0 ? 0x20 : 0x09, count: random.below(3))
                let ending: [UInt8] = random.below(4) == 0 ? [0x0D, 0x0A] : [0x0A]
                switch random.below(6) {
                case 0:
                    bytes += indent + Array("# comment key value".utf8) + ending
                case 1:
                    bytes += indent + ending
                default:
                    let key = random.word(Self.keyBytes, 12)
                    var value: [UInt8] = []
                    if random.below(5) != 0 {
                        value = random.word(Self.valueBytes, 20)
                        // The value starts after the blanks that follow the key.
                        while let first = value.first, first == 0x20 || first == 0x09 { value.removeFirst() }
                    }
                    let gap = [UInt8](repeating: 0x20, count: 1 + random.below(3))
                    bytes += indent + key + gap + value + ending
                    expected.append(MapEntry(key: String(decoding: key, as: UTF8.self), value: String(decoding: value, as: UTF8.self),
                                             line: number))
                }
            }
            // A last line without its newline counts too.
            if random.below(2) == 0, bytes.last == 0x0A {
                bytes.removeLast()
                if bytes.last == 0x0D { bytes.removeLast() }
            }
            #expect(MapFileParser.entries(bytes) == expected, "seed \(seed)")
        }
    }

    @Test func randomBytesNeverGiveKeysWithBlanksOrValuesWithLineEnds() {
        for seed in UInt64(1)...500 {
            var random = Random(state: seed)
            let bytes = (0..<random.below(400)).map { _ in
                random.below(4) == 0 ? [0x20, 0x09, 0x0A, 0x0D, 0x23][random.below(5)] : UInt8(truncatingIfNeeded: random.next())
            }
            let entries = MapFileParser.entries(bytes)
            let newlines = bytes.filter { $0 == 0x0A }.count
            #expect(entries.count <= newlines + 1, "seed \(seed)")
            for e in entries {
                #expect(!e.key.isEmpty && !e.key.hasPrefix("#"), "seed \(seed)")
                #expect(!e.key.unicodeScalars.contains { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }, "seed \(seed)")
                #expect(!e.value.unicodeScalars.contains { $0 == "\r" || $0 == "\n" }, "seed \(seed)")
                #expect(e.line >= 1 && e.line <= newlines + 1, "seed \(seed)")
            }
        }
    }

    @Test func mapFilesAreReadThroughTheLoadsFileSource() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-maps-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "a.test be_a\n# note\n  b.test   be_b  \n".write(toFile: dir + "/hosts.map", atomically: true, encoding: .utf8)
        try """
            global
                default-path config
            frontend fe
                mode http
                bind 127.0.0.1:8080
                use_backend %[req.hdr(host),lower,map(hosts.map,be_a)]
                http-request set-header X %[path,map_beg_int(hosts.map,0)] if { path,map_beg(hosts.map) -m found }
                default_backend be_a
            backend be_a
                mode http
                server s 127.0.0.1:1
            """.write(toFile: dir + "/strata.cfg", atomically: true, encoding: .utf8)
        let files = RecordingFiles()
        var loader = ConfigLoader(environment: [:], resolver: testResolver)
        loader.source = files
        let loaded = loader.load(paths: [dir + "/strata.cfg"])
        // be_b is not an integer: map_beg_int refuses the file, at the line that asks for integers.
        guard case .failure(let errors) = loaded else { Issue.record("loaded"); return }
        #expect(errors.errors.count == 1, "\(errors)")
        #expect(errors.errors.first?.location?.line == 7)
        #expect(errors.errors.first?.message.contains("map file 'hosts.map' line 1: value 'be_a' is not an integer") == true, "\(errors)")
        #expect(files.read.contains(dir + "/hosts.map"))

        try "/a 1\n/b 2\n".write(toFile: dir + "/hosts.map", atomically: true, encoding: .utf8)
        let config = try loader.load(paths: [dir + "/strata.cfg"]).get().config
        let map = try #require(config.maps[dir + "/hosts.map"])
        #expect(map.name == "hosts.map")
        #expect(map.entries.map(\.key) == ["/a", "/b"])
        #expect(map.matches == [.str, .beg])
        #expect(map.outputs == [.str, .int])
        #expect(map.location.line == 6)

        // The map's bytes are part of the configuration's hash.
        let hash = try loader.load(paths: [dir + "/strata.cfg"]).get().hash
        #expect(try loader.load(paths: [dir + "/strata.cfg"]).get().hash == hash)
        try "/a 1\n/b 3\n".write(toFile: dir + "/hosts.map", atomically: true, encoding: .utf8)
        #expect(try loader.load(paths: [dir + "/strata.cfg"]).get().hash != hash)
    }
}
