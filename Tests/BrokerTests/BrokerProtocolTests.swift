import Broker
import ConfigModel
import Loader
import Testing

/// The protocol's parser reads what a possibly compromised serving process sends: every input
/// either parses whole or is refused, never traps; and every message survives its own encoding.
@Suite struct BrokerProtocolTests {
    static func key(_ port: UInt16, v6: Bool = false) -> ListenerKey {
        ListenerKey(endpoint: SocketEndpoint(address: v6 ? .v6([0xfe, 0x80] + [UInt8](repeating: 7, count: 14)) : .v4(0x7F00_0001), port: port),
                    v6only: v6, interface: v6 ? "lo" : nil, backlog: 511, reusePort: !v6)
    }

    static let requests: [BrokerRequest] = [
        .begin, .commit,
        .read(path: "/etc/strata/strata.cfg", kind: .configuration),
        .read(path: "certs/site.pem", kind: .tls),
        .read(path: "/e/503.http", kind: .httpMessage(bufferSize: 16384)),
        .read(path: "/state", kind: .serverState), .read(path: "/etc/resolv.conf", kind: .resolvConf),
        .read(path: "/k", kind: .ticketKeys), .read(path: "/p", kind: .patterns),
        .list(path: "/etc/strata/conf.d"),
        .bind(key(80), probe: false), .bind(key(443, v6: true), probe: true),
        .user("nobody"), .group("nogroup"), .user("é"),
    ]

    static let responses: [BrokerResponse] = [
        .done, .bytes([]), .bytes(Array("global\n".utf8)), .names([]), .names(["a.cfg", "b.cfg"]),
        .id(nil), .id(65534), .socket,
        .failure(BrokerFailure(.system, errno: 13, text: "bind")), .failure(BrokerFailure(.refused, text: "not named")),
        .failure(BrokerFailure(.tooLarge, text: "the 16 MiB limit")),
    ]

    static func body(_ frame: [UInt8]) throws -> ArraySlice<UInt8> {
        let n = try #require(try BrokerFrame.length(frame, limit: BrokerFrame.maxResponse))
        #expect(n == frame.count - 4)
        return frame[4...]
    }

    @Test func everyRequestAndAnswerSurvivesItsEncoding() throws {
        for r in Self.requests { #expect(try BrokerFrame.request(try Self.body(BrokerFrame.encode(r))) == r) }
        for r in Self.responses { #expect(try BrokerFrame.response(try Self.body(BrokerFrame.encode(r))) == r) }
    }

    @Test func aFrameLongerThanTheLimitIsRefusedBeforeItIsRead() {
        #expect(throws: BrokerFrame.ParseError.tooLong(BrokerFrame.maxRequest + 1)) {
            try BrokerFrame.length([0, 0, 0x20, 0x01], limit: BrokerFrame.maxRequest)
        }
        #expect(throws: BrokerFrame.ParseError.tooLong(0)) { try BrokerFrame.length([0, 0, 0, 0], limit: 10) }
    }

    @Test func trailingBytesAndUnknownTypesAreRefused() {
        #expect(throws: BrokerFrame.ParseError.self) { try BrokerFrame.request([1, 0][...]) }
        #expect(throws: BrokerFrame.ParseError.self) { try BrokerFrame.request([99][...]) }
        #expect(throws: BrokerFrame.ParseError.self) { try BrokerFrame.request([][...]) }
        // A read of an errorfile larger than any buffer, a path with a NUL, an empty path.
        #expect(throws: BrokerFrame.ParseError.self) { try BrokerFrame.request([3, 3, 0x10, 0, 0, 0, 0, 1, 0x41][...]) }
        #expect(throws: BrokerFrame.ParseError.self) { try BrokerFrame.request([4, 0, 2, 0x41, 0][...]) }
        #expect(throws: BrokerFrame.ParseError.self) { try BrokerFrame.request([4, 0, 0][...]) }
    }

    /// Random bytes, and every valid frame truncated, extended and with bytes flipped: the parser
    /// answers each with a value or an error (a trap would end the test process).
    @Test func randomizedInputNeverTraps() {
        var rng = SplitMix(seed: 0x5EED_B40C)
        var parsed = 0, refused = 0
        func feed(_ body: [UInt8]) {
            if (try? BrokerFrame.request(body[...])) != nil { parsed += 1 } else { refused += 1 }
            _ = try? BrokerFrame.response(body[...])
        }
        for _ in 0..<20_000 {
            let n = Int(rng.next() % 64)
            feed((0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        }
        let valid = Self.requests.map { Array(BrokerFrame.encode($0).dropFirst(4)) }
            + Self.responses.map { Array(BrokerFrame.encode($0).dropFirst(4)) }
        for frame in valid {
            for cut in 0..<frame.count { feed(Array(frame.prefix(cut))) }
            feed(frame + [0])
            for _ in 0..<500 {
                var mutated = frame
                for _ in 0...(rng.next() % 3) {
                    mutated[Int(rng.next() % UInt64(mutated.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
                feed(mutated)
            }
        }
        #expect(parsed > 0)
        #expect(refused > 0)
    }
}

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
