import Testing
@testable import TCPWire

/// A ClientHello as a TLS client sends it: record header, handshake header, body.
func clientHello(sni: String?, alpn: [String] = [], groups: Bool = true, recordSize: Int? = nil) -> [UInt8] {
    var ext: [UInt8] = []
    func u16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    if let sni {
        let name = Array(sni.utf8)
        let entry = [0] + u16(name.count) + name
        let body = u16(entry.count) + entry
        ext += u16(0) + u16(body.count) + body
    }
    if !alpn.isEmpty {
        var list: [UInt8] = []
        for p in alpn { list += [UInt8(p.utf8.count)] + Array(p.utf8) }
        let body = u16(list.count) + list
        ext += u16(16) + u16(body.count) + body
    }
    if groups { ext += u16(10) + u16(4) + u16(2) + u16(29) }
    var body: [UInt8] = [3, 3] + [UInt8](repeating: 7, count: 32) + [0] + u16(2) + [0x13, 0x01] + [1, 0]
    body += u16(ext.count) + ext
    let message = [1, UInt8(body.count >> 16), UInt8(body.count >> 8 & 0xFF), UInt8(body.count & 0xFF)] + body
    // Split the message into records of `recordSize` bytes at most.
    var out: [UInt8] = []
    var i = 0
    let size = recordSize ?? message.count
    while i < message.count {
        let chunk = Array(message[i..<min(i + size, message.count)])
        out += [0x16, 3, 1] + u16(chunk.count) + chunk
        i += size
    }
    return out
}

func hello(_ bytes: [UInt8]) -> ClientHelloParse { bytes.withUnsafeBytes { ClientHelloParser.parse($0) } }

@Suite struct ClientHelloTests {
    @Test func serverNameALPNAndGroups() {
        guard case .complete(let h) = hello(clientHello(sni: "api.example.com", alpn: ["h2", "http/1.1"])) else {
            Issue.record("not complete"); return
        }
        #expect(h.handshakeType == 1)
        #expect(h.serverName == Array("api.example.com".utf8))
        #expect(h.alpn == [Array("h2".utf8), Array("http/1.1".utf8)])
        #expect(h.hasECExtension)
        #expect(h.helloVersion == 0x30003)
        #expect(h.recordVersion == 0x30001)
    }

    @Test func spansRecordsAndReads() {
        let bytes = clientHello(sni: "b.example", recordSize: 13)
        guard case .complete(let h) = hello(bytes) else { Issue.record("split records"); return }
        #expect(h.serverName == Array("b.example".utf8))
        // Every cut before the end waits for more.
        for n in 0..<bytes.count { #expect(hello(Array(bytes[..<n])) == .needMore, "prefix \(n)") }
    }

    @Test func noExtensionsAndNotTLS() {
        guard case .complete(let h) = hello(clientHello(sni: nil, groups: false)) else { Issue.record("bare"); return }
        #expect(h.serverName == nil && !h.hasECExtension)
        #expect(hello(Array("GET / HTTP/1.1\r\n".utf8)) == .notHello)
        #expect(hello([0x16, 2, 0, 0, 5]) == .notHello)
        #expect(hello([0x16, 3, 1, 0, 0]) == .notHello)  // empty record
    }

    @Test func lengthsThatLie() {
        var bytes = clientHello(sni: "x.example")
        // The extensions' total says one byte more than there is.
        let extLengthAt = 5 + 4 + 2 + 32 + 1 + 2 + 2 + 2
        bytes[extLengthAt + 1] &+= 1
        #expect(hello(bytes) == .notHello)
    }

    @Test func mutatedHellos() {
        var rng = SplitMix(seed: 42)
        let seeds = [clientHello(sni: "a.example", alpn: ["h2"]), clientHello(sni: "bb.example", recordSize: 20),
                     clientHello(sni: nil, groups: false)]
        for _ in 0..<20000 {
            var bytes = seeds[Int(rng.next() % UInt64(seeds.count))]
            for _ in 0..<Int(1 + rng.next() % 3) {
                let i = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes[i] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.remove(at: i)
                default: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                }
            }
            let whole = hello(bytes)
            // A cut of what completed or failed is never more than "need more" or the same answer.
            let cut = Array(bytes[..<Int(rng.next() % UInt64(bytes.count + 1))])
            let part = hello(cut)
            if whole == .needMore { #expect(part == .needMore || part == .notHello) }
            if case .complete(let h) = whole, let name = h.serverName { #expect(name.count < bytes.count) }
        }
    }
}
