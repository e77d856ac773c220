import Foundation
import StrataTestSupport
import Testing
@testable import HTTP1

@Suite struct HTTPParserWriterTests {
    /// Parses `bytes` as a request head and writes it back with `write`.
    func rewrite(_ bytes: [UInt8], capacity: Int = 1024,
                 _ write: (inout HTTPHeadWriter, HTTPHead, UnsafeRawBufferPointer) -> Void) -> String? {
        var parser = HTTPRequestParser()
        var output = [UInt8](repeating: 0, count: capacity)
        return bytes.withUnsafeBytes { input -> String? in
            guard case .headersComplete = parser.parse(input) else { return nil }
            return output.withUnsafeMutableBytes { out -> String? in
                var writer = HTTPHeadWriter(into: out)
                write(&writer, parser.head, input)
                if writer.overflowed { return nil }
                return String(decoding: writer.written, as: UTF8.self)
            }
        }
    }

    @Test func forwardsARequestWithoutHopByHopFields() throws {
        let bytes = h1Message("GET /a?b HTTP/1.1", "Host: example.com", "Connection: keep-alive, X-Private",
                              "Keep-Alive: timeout=5", "X-Private: secret", "x-private: again", "Proxy-Connection: keep-alive",
                              "TE: trailers", "Upgrade: h2c", "Accept:   */*  ", "Content-Length: 0")
        let out = try #require(rewrite(bytes) { writer, head, input in
            writer.writeStartLine(head, from: input)
            writer.writeFields(head, from: input, removing: .hopByHop)
            writer.writeField(name: "X-Forwarded-For", value: UnsafeRawBufferPointer(start: ("192.0.2.1" as StaticString).utf8Start, count: 9))
            writer.writeField(name: "Connection", value: "keep-alive")
            writer.writeEndOfHead()
        })
        #expect(out == "GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nContent-Length: 0\r\n"
            + "X-Forwarded-For: 192.0.2.1\r\nConnection: keep-alive\r\n\r\n")
    }

    @Test func equalContentLengthsLeaveAsOneField() throws {
        for lines in [["Content-Length: 5, 5"], ["Content-Length: 5", "X-A: 1", "content-length: 5"]] {
            let bytes = h1Message(["POST /x HTTP/1.1", "Host: a"] + lines)
            let out = try #require(rewrite(bytes) { writer, head, input in
                writer.writeStartLine(head, from: input)
                writer.writeFields(head, from: input, removing: .hopByHop)
                writer.writeEndOfHead()
            })
            #expect(out.components(separatedBy: "\r\n").filter { $0.lowercased().hasPrefix("content-length") } == ["content-length: 5"])
        }
        // A single field is written as it came.
        let one = try #require(rewrite(h1Message("POST /x HTTP/1.1", "Host: a", "Content-Length: 5")) { writer, head, input in
            writer.writeFields(head, from: input, removing: .hopByHop)
        })
        #expect(one == "Host: a\r\nContent-Length: 5\r\n")
    }

    @Test func anUnknownMinorVersionIsForwardedAsHTTP11() throws {
        let out = try #require(rewrite(h1Message("GET / HTTP/1.2", "Host: a")) { writer, head, input in
            #expect(head.version == .http11)
            writer.writeStartLine(head, from: input)
        })
        #expect(out == "GET / HTTP/1.1\r\n")
    }

    @Test func keepsUpgradeWhenAsked() throws {
        let bytes = h1Message("GET /ws HTTP/1.1", "Host: a", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Key: k")
        let out = try #require(rewrite(bytes) { writer, head, input in
            writer.writeStartLine(head, from: input)
            writer.writeFields(head, from: input, removing: .connectionOptions)
            writer.writeField(name: "Connection", value: "upgrade")
            writer.writeEndOfHead()
        })
        #expect(out == "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nConnection: upgrade\r\n\r\n")
    }

    @Test func reframesAndFilters() throws {
        let bytes = h1Message("POST /x HTTP/1.0", "Content-Length: 3", "X-Drop: 1", "X-Keep: 2")
        let out = try #require(rewrite(bytes) { writer, head, input in
            writer.writeStartLine(head, from: input, version: .http11)
            writer.writeFields(head, from: input, removing: [.contentLength, .connectionOptions]) { field in
                input.httpEqualsLowercase(field.name, "x-drop")
            }
            writer.writeField(name: "Content-Length", decimal: 3)
            writer.writeField(name: "Host", value: "backend")
            writer.writeEndOfHead()
        })
        #expect(out == "POST /x HTTP/1.1\r\nX-Keep: 2\r\nContent-Length: 3\r\nHost: backend\r\n\r\n")
    }

    @Test func rewritesTheTarget() throws {
        let bytes = h1Message("GET /old HTTP/1.1", "Host: a")
        let out = try #require(rewrite(bytes) { writer, head, input in
            Array("/new/path".utf8).withUnsafeBytes { writer.writeRequestLine(head, from: input, target: $0) }
            writer.writeFields(head, from: input)
            writer.writeEndOfHead()
        })
        #expect(out == "GET /new/path HTTP/1.1\r\nHost: a\r\n\r\n")
    }

    @Test func writesAStatusLine() {
        var parser = HTTPResponseParser()
        let bytes = h1Message("HTTP/1.1 404 Not Found", "Connection: close", "Content-Length: 0")
        var output = [UInt8](repeating: 0, count: 128)
        let text = bytes.withUnsafeBytes { input -> String in
            _ = parser.parse(input, requestMethod: .get)
            return output.withUnsafeMutableBytes { out in
                var writer = HTTPHeadWriter(into: out)
                writer.writeStartLine(parser.head, from: input)
                writer.writeFields(parser.head, from: input)
                writer.writeEndOfHead()
                return String(decoding: writer.written, as: UTF8.self)
            }
        }
        #expect(text == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func numbers() {
        var output = [UInt8](repeating: 0, count: 128)
        let text = output.withUnsafeMutableBytes { out -> String in
            var writer = HTTPHeadWriter(into: out)
            writer.writeDecimal(0); writer.write(byte: 0x20)
            writer.writeDecimal(UInt64.max); writer.write(byte: 0x20)
            writer.writeHex(0); writer.write(byte: 0x20)
            writer.writeHex(0x1a2b); writer.write(byte: 0x20)
            writer.writeHex(UInt64.max); writer.write(byte: 0x20)
            writer.writeChunkHeader(size: 255)
            writer.writeLastChunk()
            return String(decoding: writer.written, as: UTF8.self)
        }
        #expect(text == "0 18446744073709551615 0 1a2b ffffffffffffffff ff\r\n0\r\n\r\n")
    }

    @Test func overflowStopsWriting() {
        let bytes = h1Message("GET / HTTP/1.1", "Host: example.com")
        #expect(rewrite(bytes, capacity: 20) { writer, head, input in
            writer.writeStartLine(head, from: input)
            writer.writeFields(head, from: input)
            writer.writeEndOfHead()
        } == nil)
        var output = [UInt8](repeating: 0, count: 4)
        output.withUnsafeMutableBytes { out in
            var writer = HTTPHeadWriter(into: out)
            writer.writeDecimal(123)
            writer.writeDecimal(45)
            #expect(writer.overflowed && writer.count == 3)
            writer.write(byte: 0x41)
            #expect(writer.count == 3)
        }
    }

    @Test func hopByHopQuery() throws {
        let bytes = h1Message("GET / HTTP/1.1", "Host: a", "Connection: x-a", "X-A: 1", "X-B: 2", "Keep-Alive: 1")
        var parser = HTTPRequestParser()
        try bytes.withUnsafeBytes { input in
            _ = parser.parse(input)
            let head = parser.head
            #expect(head.fields.map { head.isHopByHop($0, in: input) } == [false, true, true, false, true])
            let index = try #require(head.firstIndex(ofField: "x-b", in: input))
            #expect(index == 3)
            #expect(head.firstIndex(ofField: "x-c", in: input) == nil)
        }
    }
}
