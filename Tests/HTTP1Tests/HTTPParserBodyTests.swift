import StrataTestSupport
import Testing
@testable import HTTP1

@Suite struct HTTPParserBodyTests {
    @Test func contentLengthBody() {
        let bytes = h1Message("POST /upload HTTP/1.1", "Host: a", "Content-Length: 11") + Array("hello world".utf8)
        let events = h1Transcript({ H1Request() }, bytes)
        #expect(events.dropFirst() == [.body(Array("hello world".utf8)), .complete(framing: [], trailers: [])])
    }

    @Test func bodyRangesPointIntoTheInput() {
        let bytes = h1Message("POST / HTTP/1.1", "Host: a", "Content-Length: 5") + Array("helloGET".utf8)
        var parser = HTTPRequestParser()
        bytes.withUnsafeBytes { input in
            guard case .headersComplete(let length) = parser.parse(input) else { Issue.record("no head"); return }
            let rest = UnsafeRawBufferPointer(rebasing: input[length...])
            #expect(parser.remainingBodyLength == 5)
            let action = parser.parse(rest)
            #expect(action == .body(0..<5))
            // Zero-copy: the range is into the caller's memory.
            #expect(rest.baseAddress == input.baseAddress! + length)
            #expect(parser.remainingBodyLength == 0)
            #expect(parser.parse(UnsafeRawBufferPointer(rebasing: rest[5...])) == .messageComplete(framingLength: 0))
            #expect(parser.remainingBodyLength == nil)
        }
    }

    @Test func chunkedWithExtensionsAndTrailers() {
        let body = "5;name=value;q=\"a b\\\"c\"\r\nhello\r\n6 ; bws = 1\r\n world\r\n000\r\nX-Checksum: abc\r\nX-Other:  v \r\n\r\n"
        let bytes = h1Message("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + Array(body.utf8)
        let events = h1Transcript({ H1Request() }, bytes)
        #expect(Array(events.dropFirst()) == [
            .chunk(5), .body(Array("hello".utf8)), .chunkEnd,
            .chunk(6), .body(Array(" world".utf8)), .chunkEnd,
            .complete(framing: Array("000\r\nX-Checksum: abc\r\nX-Other:  v \r\n\r\n".utf8),
                      trailers: [H1Pair("X-Checksum", "abc"), H1Pair("X-Other", "v")]),
        ])
    }

    @Test func chunkSizesInHex() {
        let data = String(repeating: "x", count: 0x1A)
        let bytes = h1Message("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + Array("1a\r\n\(data)\r\n0\r\n\r\n".utf8)
        let events = h1Transcript({ H1Request() }, bytes)
        #expect(Array(events.dropFirst()) == [
            .chunk(26), .body(Array(data.utf8)), .chunkEnd, .complete(framing: Array("0\r\n\r\n".utf8), trailers: []),
        ])
    }

    @Test func largestChunkSizeIsAccepted() {
        var parser = H1Request()
        let bytes = h1Message("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + Array("7fffffffffffffff\r\nab".utf8)
        let events = h1Run(&parser, bytes)
        #expect(Array(events.dropFirst()) == [.chunk(UInt64(Int64.max)), .body(Array("ab".utf8))])
        #expect(parser.parser.remainingBodyLength == UInt64(Int64.max) - 2)
    }

    @Test func trailerSectionForRechunking() {
        let bytes = Array("0\r\nA: 1\r\nB: 2\r\n\r\n".utf8)
        var parser = HTTPRequestParser()
        let head = h1Message("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked")
        _ = head.withUnsafeBytes { parser.parse($0) }
        bytes.withUnsafeBytes { input in
            #expect(parser.parse(input) == .messageComplete(framingLength: bytes.count))
            #expect(String(decoding: UnsafeRawBufferPointer(rebasing: input[parser.trailerSection]), as: UTF8.self) == "A: 1\r\nB: 2\r\n")
            #expect(parser.trailerFields.count == 2)
        }
    }

    struct ChunkRejection: CustomTestStringConvertible, Sendable {
        var body: String
        var code: HTTPParseError.Code
        var testDescription: String { body.debugDescription }
    }

    static let chunkRejections: [ChunkRejection] = [
        ChunkRejection(body: "g\r\n", code: .invalidChunkSize),
        ChunkRejection(body: "\r\n", code: .invalidChunkSize),
        ChunkRejection(body: "-5\r\n", code: .invalidChunkSize),
        ChunkRejection(body: "0x5\r\n", code: .invalidChunkSize),
        ChunkRejection(body: "5g\r\n", code: .invalidChunkSize),
        ChunkRejection(body: " 5\r\n", code: .invalidChunkSize),
        ChunkRejection(body: "8000000000000000\r\n", code: .chunkSizeOverflow),
        ChunkRejection(body: "10000000000000000\r\n", code: .chunkSizeOverflow),
        ChunkRejection(body: "ffffffffffffffffff\r\n", code: .chunkSizeOverflow),
        ChunkRejection(body: "5 \r\n", code: .invalidChunkExtension),
        ChunkRejection(body: "5;\r\n", code: .invalidChunkExtension),
        ChunkRejection(body: "5;a=\r\n", code: .invalidChunkExtension),
        ChunkRejection(body: "5;a=\"open\r\n", code: .invalidChunkExtension),
        ChunkRejection(body: "5;a b\r\n", code: .invalidChunkExtension),
        ChunkRejection(body: "5;a=b \r\n", code: .invalidChunkExtension),
        ChunkRejection(body: "5;a\u{01}\r\n", code: .invalidChunkExtension),
        ChunkRejection(body: "5;a=(b)\r\n", code: .invalidChunkExtension),
        ChunkRejection(body: "5\n", code: .bareLF),
        ChunkRejection(body: "5\rx\r\n", code: .bareCR),
        ChunkRejection(body: "5\r\nhelloXX", code: .missingChunkDataCRLF),
        ChunkRejection(body: "5\r\nhello\rX", code: .missingChunkDataCRLF),
        ChunkRejection(body: "5\r\nhello\n", code: .missingChunkDataCRLF),
        ChunkRejection(body: "0\r\nX-A: 1\n\r\n", code: .bareLF),
        ChunkRejection(body: "0\r\n\n", code: .bareLF),
        ChunkRejection(body: "0\r\nX-A: a\rb\r\n\r\n", code: .bareCR),
        ChunkRejection(body: "0\r\n folded\r\n\r\n", code: .obsFold),
        ChunkRejection(body: "0\r\nX A: 1\r\n\r\n", code: .whitespaceBeforeColon),
        ChunkRejection(body: "0\r\nX-A: \u{7F}\r\n\r\n", code: .invalidFieldValue),
        ChunkRejection(body: "0\r\nContent-Length: 5\r\n\r\n", code: .forbiddenTrailerField),
        ChunkRejection(body: "0\r\ntransfer-encoding: chunked\r\n\r\n", code: .forbiddenTrailerField),
        ChunkRejection(body: "0\r\nHost: evil\r\n\r\n", code: .forbiddenTrailerField),
    ]

    @Test(arguments: chunkRejections)
    func rejectsChunkedFraming(_ vector: ChunkRejection) {
        let bytes = h1Message("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + Array(vector.body.utf8)
        let events = h1Transcript({ H1Request() }, bytes)
        #expect(events.last == .error(vector.code))
    }

    @Test func chunkLineAndTrailerLimits() {
        let limits = HTTPParserLimits(maxHeadSize: 128, maxFieldCount: 2, maxChunkLineSize: 32)
        let head = h1Message("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked")
        let longExtension = head + Array(("5;" + String(repeating: "a", count: 40) + "\r\nhello\r\n").utf8)
        #expect(h1Transcript({ H1Request(limits) }, longExtension).last == .error(.chunkLineTooLong))
        let fitting = head + Array(("5;" + String(repeating: "a", count: 27) + "\r\nhello\r\n").utf8)
        #expect(h1Transcript({ H1Request(limits) }, fitting).last == .chunkEnd)
        let bigTrailers = head + Array(("0\r\nX: " + String(repeating: "b", count: 130) + "\r\n\r\n").utf8)
        #expect(h1Transcript({ H1Request(limits) }, bigTrailers).last == .error(.trailersTooLarge))
        let manyTrailers = head + Array("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n".utf8)
        #expect(h1Transcript({ H1Request(limits) }, manyTrailers).last == .error(.tooManyFields))
    }

    @Test func pipelinedRequestsInOneBuffer() {
        let bytes = h1Message("GET /1 HTTP/1.1", "Host: a")
            + h1Message("POST /2 HTTP/1.1", "Host: a", "Content-Length: 3") + Array("abc".utf8)
            + h1Message("POST /3 HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + Array("2\r\nde\r\n0\r\n\r\n".utf8)
            + Array("\r\n".utf8) + h1Message("GET /4 HTTP/1.0")
        let events = h1Transcript({ H1Request() }, bytes)
        let targets = events.compactMap { event -> String? in
            if case .head(let head) = event { return head.target }
            return nil
        }
        #expect(targets == ["/1", "/2", "/3", "/4"])
        let completes = events.filter { if case .complete = $0 { return true } else { return false } }
        #expect(completes.count == 4)
        #expect(events.contains(.body(Array("abc".utf8))) && events.contains(.body(Array("de".utf8))))
    }

    @Test func pipelinedRemainderIsLeftToTheNextMessage() {
        let first = h1Message("POST / HTTP/1.1", "Host: a", "Content-Length: 2") + Array("ok".utf8)
        let bytes = first + Array("GET /next HT".utf8)
        var parser = HTTPRequestParser()
        bytes.withUnsafeBytes { input in
            var offset = 0
            var actions: [HTTPParseAction] = []
            while true {
                let action = parser.parse(UnsafeRawBufferPointer(rebasing: input[offset...]))
                actions.append(action)
                if action == .needMore { break }
                offset += action.consumed
            }
            #expect(actions.count == 4)
            #expect(offset == first.count)
            #expect(!parser.isIdle)
        }
    }

    @Test func skipBodyForSplicedBytes() {
        var parser = HTTPRequestParser()
        let head = h1Message("POST / HTTP/1.1", "Host: a", "Content-Length: 10")
        _ = head.withUnsafeBytes { parser.parse($0) }
        #expect(parser.remainingBodyLength == 10)
        parser.skipBody(7)
        #expect(parser.remainingBodyLength == 3)
        #expect(Array("abcdef".utf8).withUnsafeBytes { parser.parse($0) } == .body(0..<3))
        #expect([UInt8]().withUnsafeBytes { parser.parse($0) } == .messageComplete(framingLength: 0))

        var chunked = HTTPRequestParser()
        _ = h1Message("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked").withUnsafeBytes { chunked.parse($0) }
        #expect(Array("4\r\n".utf8).withUnsafeBytes { chunked.parse($0) } == .chunkHeader(size: 4, lineLength: 3))
        chunked.skipBody(4)
        #expect(chunked.remainingBodyLength == nil)
        #expect(Array("\r\n0\r\n\r\n".utf8).withUnsafeBytes { chunked.parse($0) } == .chunkDataEnd)
    }

    @Test func tunnelAfterConnect() {
        var parser = HTTPRequestParser()
        let head = h1Message("CONNECT a:443 HTTP/1.1", "Host: a:443")
        #expect(head.withUnsafeBytes { parser.parse($0) } == .headersComplete(headLength: head.count))
        #expect([UInt8]().withUnsafeBytes { parser.parse($0) } == .messageComplete(framingLength: 0))
        parser.enterTunnel()
        #expect(Array("\u{16}\u{03}\u{01}".utf8).withUnsafeBytes { parser.parse($0) } == .body(0..<3))
        #expect([UInt8]().withUnsafeBytes { parser.parse($0) } == .needMore)
        #expect(parser.inputEnded() == .messageComplete(framingLength: 0))
    }

    @Test func endOfInputInsideABody() {
        var parser = H1Request()
        let bytes = h1Message("POST / HTTP/1.1", "Host: a", "Content-Length: 10") + Array("abc".utf8)
        #expect(h1Run(&parser, bytes, close: true).last == .error(.incompleteMessage))
        var chunked = H1Request()
        let chunkedBytes = h1Message("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + Array("3\r\nabc\r\n0\r\n".utf8)
        #expect(h1Run(&chunked, chunkedBytes, close: true).last == .error(.incompleteMessage))
    }

    @Test func rechunkingWithTheWriter() {
        // Drop the client's framing (extensions) and write our own; the payload goes through untouched.
        let bytes = h1Message("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked")
            + Array("3;ext=1\r\nabc\r\n0\r\nT: v\r\n\r\n".utf8)
        var parser = HTTPRequestParser()
        var output = [UInt8](repeating: 0, count: 256)
        var pending = bytes[...]
        let written = output.withUnsafeMutableBytes { out -> Int in
            var writer = HTTPHeadWriter(into: out)
            while true {
                let action = Array(pending).withUnsafeBytes { input -> HTTPParseAction in
                    let action = parser.parse(input)
                    switch action {
                    case .chunkHeader(let size, _): writer.writeChunkHeader(size: size)
                    case .body(let range): writer.write(input, range)
                    case .chunkDataEnd: writer.writeChunkDataEnd()
                    case .messageComplete:
                        writer.writeLastChunk(trailerSection: UnsafeRawBufferPointer(rebasing: input[parser.trailerSection]))
                    default: break
                    }
                    return action
                }
                pending = pending.dropFirst(action.consumed)
                if case .messageComplete = action { break }
            }
            return writer.count
        }
        #expect(String(decoding: output[0..<written], as: UTF8.self) == "3\r\nabc\r\n0\r\nT: v\r\n\r\n")
    }
}
