import Testing
@testable import Engine

/// Base64 reads untrusted bytes (Basic credentials, `b64dec` on a header): random input never
/// traps, and what is encoded decodes back in both alphabets.
@Suite struct Base64Tests {
    @Test func randomInputNeverTrapsAndEncodingsRoundTrip() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for alphabet in [Base64.Alphabet.standard, .urlSafe, .either] { _ = Base64.decode(bytes, alphabet) }
            #expect(Base64.decode(Base64.encode(bytes, urlSafe: false), .standard) == bytes)
            #expect(Base64.decode(Base64.encode(bytes, urlSafe: true), .urlSafe) == bytes)
        }
        #expect(Base64.encode(Array("hello".utf8), urlSafe: false) == Array("aGVsbG8=".utf8))
        #expect(Base64.decode(Array("a-_b".utf8), .standard) == nil)
        #expect(Base64.decode(Array("a+/b".utf8), .urlSafe) == nil)
        let value = Array("Basic YWxpY2U6czNjcmV0".utf8)
        #expect(value.withUnsafeBytes { StatsAuth.basicCredentials($0) } == Array("alice:s3cret".utf8))
        #expect(Array("Bearer x".utf8).withUnsafeBytes { StatsAuth.basicCredentials($0) } == nil)
    }
}
