import StrataTestSupport
import Testing
@testable import HTTP1

/// Mutated messages: whatever the bytes, the parser must not trap, and must report the same thing
/// however the bytes are split.
@Suite struct HTTPParserFuzzTests {
    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
    }

    static let seeds: [[UInt8]] = [
        h1Message("GET /a?b=c HTTP/1.1", "Host: example.com", "Connection: keep-alive, x-a", "X-A: 1"),
        h1Message("POST /p HTTP/1.1", "Host: a", "Content-Length: 5", "Expect: 100-continue") + Array("hello".utf8),
        h1Message("PUT / HTTP/1.1", "Host: [::1]:80", "Transfer-Encoding: gzip, chunked")
            + Array("3;e=\"v\"\r\nabc\r\n0\r\nT: 1\r\n\r\n".utf8),
        h1Message("CONNECT a:443 HTTP/1.1", "Host: a:443") + h1Message("OPTIONS * HTTP/1.0"),
    ]

    static let responseSeeds: [[UInt8]] = [
        h1Message("HTTP/1.1 100 Continue") + h1Message("HTTP/1.1 200 OK", "Content-Length: 3") + Array("abc".utf8),
        h1Message("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + Array("2\r\nab\r\n0\r\n\r\n".utf8),
        h1Message("HTTP/1.0 404 Not Found", "Server: x") + Array("gone".utf8),
    ]

    static func mutate(_ bytes: [UInt8], _ random: inout Generator) -> [UInt8] {
        var out = bytes
        let alphabet: [UInt8] = [0x0D, 0x0A, 0x20, 0x09, 0x3A, 0x2C, 0x3B, 0x22, 0x00, 0x7F, 0xFF, 0x30, 0x61, 0x2F]
        for _ in 0..<(1 + random.next(3)) {
            guard !out.isEmpty else { break }
            let at = random.next(out.count)
            switch random.next(3) {
            case 0: out[at] = alphabet[random.next(alphabet.count)]
            case 1: out.insert(alphabet[random.next(alphabet.count)], at: at)
            default: out.remove(at: at)
            }
        }
        return out
    }

    @Test func mutatedRequests() {
        var random = Generator(state: 0x5EED)
        for round in 0..<400 {
            let seed = HTTPParserFuzzTests.seeds[round % HTTPParserFuzzTests.seeds.count]
            let bytes = HTTPParserFuzzTests.mutate(seed, &random)
            _ = h1Transcript({ H1Request(HTTPParserLimits(maxHeadSize: 200, maxFieldCount: 8, maxChunkLineSize: 16)) },
                             bytes, close: true)
        }
    }

    @Test func mutatedResponses() {
        var random = Generator(state: 0xC0FFEE)
        for round in 0..<300 {
            let seed = HTTPParserFuzzTests.responseSeeds[round % HTTPParserFuzzTests.responseSeeds.count]
            let bytes = HTTPParserFuzzTests.mutate(seed, &random)
            _ = h1Transcript({ H1Response([.get, .head, .get]) }, bytes, close: true)
        }
    }
}
