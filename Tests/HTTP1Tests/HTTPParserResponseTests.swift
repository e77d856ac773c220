import StrataTestSupport
import Testing
@testable import HTTP1

@Suite struct HTTPParserResponseTests {
    func events(_ bytes: [UInt8], _ methods: [HTTPMethod] = [.get], close: Bool = false,
                sourceLocation: SourceLocation = #_sourceLocation) -> [H1Event] {
        h1Transcript({ H1Response(methods) }, bytes, close: close, sourceLocation: sourceLocation)
    }

    func heads(_ events: [H1Event]) -> [H1Head] {
        events.compactMap { if case .head(let head) = $0 { return head } else { return nil } }
    }

    @Test func contentLengthResponse() throws {
        let e = events(h1Message("HTTP/1.1 200 OK", "Content-Length: 5", "Server: x") + Array("hello".utf8))
        let head = try #require(heads(e).first)
        #expect(head.status == 200 && head.reason == "OK" && head.version == .http11)
        #expect(head.framing == .contentLength(5) && head.keepAlive)
        #expect(Array(e.dropFirst()) == [.body(Array("hello".utf8)), .complete(framing: [], trailers: [])])
    }

    @Test func reasonPhrases() throws {
        let empty = try #require(heads(events(h1Message("HTTP/1.1 200 ", "Content-Length: 0"))).first)
        #expect(empty.reason == "" && empty.status == 200)
        let missing = try #require(heads(events(h1Message("HTTP/1.1 404", "Content-Length: 0"))).first)
        #expect(missing.reason == "" && missing.status == 404)
        let long = try #require(heads(events(h1Message("HTTP/1.1 503 Service\tUnavailable \u{E9}", "Content-Length: 0"))).first)
        #expect(long.reason == "Service\tUnavailable \u{E9}")
    }

    @Test func headResponseHasNoBody() throws {
        let bytes = h1Message("HTTP/1.1 200 OK", "Content-Length: 1000") + h1Message("HTTP/1.1 200 OK", "Content-Length: 2") + Array("ok".utf8)
        let e = events(bytes, [.head, .get])
        let hs = heads(e)
        #expect(hs.count == 2)
        #expect(hs[0].framing == .noBody && hs[0].contentLength == 1000 && hs[0].keepAlive)
        #expect(e[1] == .complete(framing: [], trailers: []))
        #expect(e.last == .complete(framing: [], trailers: []) && e.contains(.body(Array("ok".utf8))))
    }

    @Test func noContentAndNotModifiedHaveNoBody() throws {
        let bytes = h1Message("HTTP/1.1 204 No Content", "Transfer-Encoding: chunked")
            + h1Message("HTTP/1.1 304 Not Modified", "Content-Length: 50")
            + h1Message("HTTP/1.1 200 OK", "Content-Length: 0")
        let e = events(bytes, [.get, .get, .get])
        #expect(heads(e).map(\.framing) == [.noBody, .noBody, .contentLength(0)])
        #expect(e.count == 6)
    }

    @Test func interimResponsesThenTheFinalOne() throws {
        let bytes = h1Message("HTTP/1.1 100 Continue") + h1Message("HTTP/1.1 103 Early Hints", "Link: </s.css>; rel=preload")
            + h1Message("HTTP/1.1 200 OK", "Content-Length: 2") + Array("ok".utf8)
        var parser = H1Response([.post])
        let e = h1Run(&parser, bytes)
        #expect(heads(e).map(\.status) == [100, 103, 200])
        #expect(heads(e).map(\.framing) == [.noBody, .noBody, .contentLength(2)])
        #expect(e.count == 7)
        #expect(events(bytes, [.post]) == e)
    }

    @Test func interimHeadIsReadableAtItsCompletion() {
        var parser = HTTPResponseParser()
        let bytes = h1Message("HTTP/1.1 100 Continue") + h1Message("HTTP/1.1 200 OK", "Content-Length: 0")
        bytes.withUnsafeBytes { input in
            let head = parser.parse(input, requestMethod: .post)
            #expect(head.consumed == 25 && parser.head.isInformational)
            let rest = UnsafeRawBufferPointer(rebasing: input[25...])
            #expect(parser.parse(rest, requestMethod: .post) == .messageComplete(framingLength: 0))
            #expect(parser.head.isInformational && parser.head.status == 100)
            #expect(parser.parse(rest, requestMethod: .post) == .headersComplete(headLength: rest.count))
            #expect(!parser.head.isInformational && parser.head.status == 200)
        }
    }

    @Test func switchingProtocolsIsATunnel() throws {
        let bytes = h1Message("HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", "Upgrade: websocket", "Content-Length: 3")
            + Array("\u{81}\u{05}hello".utf8)
        let e = events(bytes, close: true)
        let head = try #require(heads(e).first)
        #expect(head.framing == .tunnel && !head.keepAlive && head.upgrade == "websocket")
        #expect(Array(e.dropFirst()) == [.body(Array("\u{81}\u{05}hello".utf8)), .complete(framing: [], trailers: [])])
    }

    @Test func connectAnswers() throws {
        let ok = events(h1Message("HTTP/1.1 200 Connection Established") + Array("tls".utf8), [.connect], close: true)
        #expect(heads(ok).first?.framing == .tunnel)
        #expect(ok.count == 3)
        let refused = events(h1Message("HTTP/1.1 407 Proxy Auth", "Content-Length: 2") + Array("no".utf8), [.connect])
        #expect(heads(refused).first?.framing == .contentLength(2))
        #expect(refused.last == .complete(framing: [], trailers: []))
    }

    @Test func closeDelimitedBody() throws {
        let bytes = h1Message("HTTP/1.1 200 OK", "Content-Type: text/plain") + Array("all of it".utf8)
        let e = events(bytes, close: true)
        let head = try #require(heads(e).first)
        #expect(head.framing == .untilClose && !head.keepAlive)
        #expect(Array(e.dropFirst()) == [.body(Array("all of it".utf8)), .complete(framing: [], trailers: [])])
        let notChunked = try #require(heads(events(h1Message("HTTP/1.1 200 OK", "Transfer-Encoding: gzip"))).first)
        #expect(notChunked.framing == .untilClose)
    }

    @Test func chunkedResponseWithTrailers() {
        let bytes = h1Message("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Trailer: X-Sum")
            + Array("4\r\nabcd\r\n0\r\nX-Sum: 1\r\n\r\n".utf8)
        let e = events(bytes)
        #expect(Array(e.dropFirst()) == [
            .chunk(4), .body(Array("abcd".utf8)), .chunkEnd,
            .complete(framing: Array("0\r\nX-Sum: 1\r\n\r\n".utf8), trailers: [H1Pair("X-Sum", "1")]),
        ])
    }

    @Test func http10Responses() throws {
        let closing = try #require(heads(events(h1Message("HTTP/1.0 200 OK", "Content-Length: 0"))).first)
        #expect(closing.version == .http10 && !closing.keepAlive)
        let kept = try #require(heads(events(h1Message("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 0"))).first)
        #expect(kept.keepAlive)
        let closed11 = try #require(heads(events(h1Message("HTTP/1.1 200 OK", "Connection: close", "Content-Length: 0"))).first)
        #expect(!closed11.keepAlive)
    }

    @Test(arguments: [
        ("HTTP/1.1 20 OK", HTTPParseError.Code.invalidStatusLine),
        ("HTTP/1.1 2000 OK", .invalidStatusLine),
        ("HTTP/1.1 20x OK", .invalidStatusLine),
        ("HTTP/1.1  200 OK", .invalidStatusLine),
        ("HTTP/1.1", .invalidStatusLine),
        ("HTTP/1.1 099 Low", .invalidStatusCode),
        ("HTTP/1.1 600 High", .invalidStatusCode),
        ("HTP/1.1 200 OK", .invalidStatusLine),
        ("HTTP/1.x 200 OK", .invalidVersion),
        ("HTTP/2.0 200 OK", .unsupportedVersion),
        ("HTTP/1.1 200 O\u{01}K", .invalidStatusLine),
        ("HTTP/1.1 200 O\rK", .bareCR),
    ])
    func rejectsStatusLines(_ line: String, _ code: HTTPParseError.Code) {
        #expect(events(h1Message(line, "Content-Length: 0")).last == .error(code))
    }

    @Test func rejectedResponsesAnswer502() {
        let cases: [([UInt8], HTTPParseError.Code)] = [
            (h1Message("HTTP/1.1 200 OK", "Content-Length: 2", "Transfer-Encoding: chunked"), .contentLengthWithTransferEncoding),
            (h1Message("HTTP/1.1 200 OK", "Content-Length: 2, 3"), .conflictingContentLength),
            (h1Message("HTTP/1.1 200 OK", "Content-Length: x"), .invalidContentLength),
            (h1Message("HTTP/1.1 200 OK", "Transfer-Encoding: chunked, chunked"), .chunkedAppliedTwice),
            (h1Message("HTTP/1.0 200 OK", "Transfer-Encoding: chunked"), .transferEncodingInHTTP10),
            (h1Message("HTTP/1.1 200 OK", "Bad Name: x"), .whitespaceBeforeColon),
            (Array("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n".utf8), .bareLF),
        ]
        for (bytes, code) in cases {
            var parser = HTTPResponseParser()
            let action = bytes.withUnsafeBytes { parser.parse($0, requestMethod: .get) }
            guard case .error(let error) = action else {
                Issue.record("accepted: \(String(decoding: bytes, as: UTF8.self).debugDescription)")
                continue
            }
            #expect(error.code == code && error.inResponse && error.status == 502)
        }
    }

    @Test func headResponseIgnoresFramingConflicts() throws {
        // Framing fields of a bodiless response are not used, so their combination is not an error.
        let e = events(h1Message("HTTP/1.1 304 Not Modified", "Content-Length: 5", "Transfer-Encoding: chunked"))
        #expect(heads(e).first?.framing == .noBody)
    }

    @Test func truncatedResponses() {
        #expect(events(h1Message("HTTP/1.1 200 OK", "Content-Length: 5") + Array("he".utf8), close: true).last
                == .error(.incompleteMessage))
        #expect(events(Array("HTTP/1.1 200 OK\r\n".utf8), close: true).last == .error(.incompleteMessage))
        #expect(events([], close: true) == [])
    }

    @Test func tooLargeResponseHead() {
        let limits = HTTPParserLimits(maxHeadSize: 40)
        let bytes = h1Message("HTTP/1.1 200 OK", "X-Long: " + String(repeating: "x", count: 40))
        let e = h1Transcript({ H1Response([.get], limits) }, bytes)
        #expect(e.last == .error(.headTooLarge))
        #expect(HTTPParseError(.headTooLarge, inResponse: true).status == 502)
    }
}
