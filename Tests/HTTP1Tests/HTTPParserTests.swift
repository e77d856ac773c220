import StrataTestSupport
import Testing
@testable import HTTP1

// MARK: - Driver shared by the HTTPParser* tests

/// What a parser reported, resolved to bytes at the time it was reported (ranges are only meaningful
/// against the input of that call).
enum H1Event: Equatable, CustomStringConvertible {
    case head(H1Head)
    case body([UInt8])
    case chunk(UInt64)
    case chunkEnd
    case complete(framing: [UInt8], trailers: [H1Pair])
    case error(HTTPParseError.Code)

    var description: String {
        switch self {
        case .head(let h): return "head(\(h))"
        case .body(let b): return "body(\(String(decoding: b, as: UTF8.self).debugDescription))"
        case .chunk(let n): return "chunk(\(n))"
        case .chunkEnd: return "chunkEnd"
        case .complete(let f, let t): return "complete(\(String(decoding: f, as: UTF8.self).debugDescription), \(t))"
        case .error(let c): return "error(\(c))"
        }
    }
}

struct H1Pair: Equatable, CustomStringConvertible {
    var name: String
    var value: String
    init(_ name: String, _ value: String) { self.name = name; self.value = value }
    var description: String { "\(name): \(value.debugDescription)" }
}

/// A parsed head as strings, for comparisons.
struct H1Head: Equatable {
    var method = ""
    var target = ""
    var targetForm = HTTPRequestTargetForm.origin
    var authority: String?
    var status = 0
    var reason = ""
    var version = HTTPVersion.http11
    var fields: [H1Pair] = []
    var framing = HTTPFraming.noBody
    var contentLength: UInt64?
    var isChunked = false
    var keepAlive = true
    var connection: HTTPConnectionOptions = []
    var connectionTokens: [String] = []
    var isUpgradeRequest = false
    var upgrade: String?
    var expectsContinue = false
    var acceptsTrailers = false
    var host: String?
    var length = 0

    init(_ head: HTTPHead, _ input: UnsafeRawBufferPointer) {
        func s(_ r: Range<Int>) -> String { String(decoding: UnsafeRawBufferPointer(rebasing: input[r]), as: UTF8.self) }
        if head.isRequest {
            method = s(head.methodRange)
            target = s(head.target)
            targetForm = head.targetForm
            authority = head.targetAuthority.map(s)
            host = head.host.map(s)
        } else {
            status = head.status
            reason = s(head.reason)
        }
        version = head.version
        fields = head.fields.map { H1Pair(s($0.name), s($0.value)) }
        framing = head.framing
        contentLength = head.contentLength
        isChunked = head.isChunked
        keepAlive = head.keepAlive
        connection = head.connection
        connectionTokens = head.connectionTokens.map(s)
        isUpgradeRequest = head.isUpgradeRequest
        upgrade = head.upgrade.map(s)
        expectsContinue = head.expectsContinue
        acceptsTrailers = head.acceptsTrailers
        length = head.length
    }
}

/// A parser the driver can run: both parsers, the response one bound to a request method.
protocol H1Parser {
    mutating func step(_ input: UnsafeRawBufferPointer) -> HTTPParseAction
    mutating func end() -> HTTPParseAction?
    var currentHead: HTTPHead { get }
    var trailers: [HTTPField] { get }
}

struct H1Request: H1Parser {
    var parser: HTTPRequestParser
    init(_ limits: HTTPParserLimits = .default) { parser = HTTPRequestParser(limits: limits) }
    mutating func step(_ input: UnsafeRawBufferPointer) -> HTTPParseAction { parser.parse(input) }
    mutating func end() -> HTTPParseAction? { parser.inputEnded() }
    var currentHead: HTTPHead { parser.head }
    var trailers: [HTTPField] { parser.trailerFields }
}

struct H1Response: H1Parser {
    var parser: HTTPResponseParser
    /// Methods of the requests the responses answer, oldest first; the last one repeats.
    var methods: [HTTPMethod]
    init(_ methods: [HTTPMethod] = [.get], _ limits: HTTPParserLimits = .default) {
        parser = HTTPResponseParser(limits: limits)
        self.methods = methods
    }
    mutating func step(_ input: UnsafeRawBufferPointer) -> HTTPParseAction {
        let action = parser.parse(input, requestMethod: methods[0])
        if case .messageComplete = action, !parser.head.isInformational, methods.count > 1 { methods.removeFirst() }
        return action
    }
    mutating func end() -> HTTPParseAction? { parser.inputEnded() }
    var currentHead: HTTPHead { parser.head }
    var trailers: [HTTPField] { parser.trailerFields }
}

/// Feeds `bytes` to `parser` `step` bytes at a time (all at once when nil), as the I/O layer would:
/// consumed bytes are dropped, unconsumed ones presented again with the next read. Consecutive body
/// events are merged, so every split gives the same transcript. At the end of the bytes, `inputEnded`
/// is reported when `close` is set.
func h1Run<P: H1Parser>(_ parser: inout P, _ bytes: [UInt8], step: Int? = nil, close: Bool = false) -> [H1Event] {
    var events: [H1Event] = []
    var pending: [UInt8] = []
    var next = 0
    func record(_ event: H1Event) {
        if case .body(let more) = event, case .body(let previous)? = events.last {
            events[events.count - 1] = .body(previous + more)
        } else {
            events.append(event)
        }
    }
    var guardCount = 0
    while true {
        guardCount += 1
        precondition(guardCount < 1_000_000, "parser loops")
        var consumed = 0
        var stop = false
        pending.withUnsafeBytes { input in
            let action = parser.step(input)
            consumed = action.consumed
            switch action {
            case .needMore:
                stop = true
            case .headersComplete(let length):
                #expect(length == parser.currentHead.length)
                record(.head(H1Head(parser.currentHead, input)))
            case .body(let range):
                #expect(range.lowerBound == 0 && !range.isEmpty)
                record(.body(Array(input[range])))
            case .chunkHeader(let size, _):
                record(.chunk(size))
            case .chunkDataEnd:
                record(.chunkEnd)
            case .messageComplete(let length):
                let trailers = parser.trailers.map {
                    H1Pair(String(decoding: UnsafeRawBufferPointer(rebasing: input[$0.name]), as: UTF8.self),
                           String(decoding: UnsafeRawBufferPointer(rebasing: input[$0.value]), as: UTF8.self))
                }
                record(.complete(framing: Array(input[0..<length]), trailers: trailers))
            case .error(let error):
                record(.error(error.code))
            }
        }
        if case .error? = events.last { return events }
        pending.removeFirst(consumed)
        if stop {
            if next < bytes.count {
                let n = min(step ?? bytes.count, bytes.count - next)
                pending += bytes[next..<next + n]
                next += n
                continue
            }
            if close, let action = parser.end() {
                switch action {
                case .messageComplete: record(.complete(framing: [], trailers: []))
                case .error(let error): record(.error(error.code))
                default: Issue.record("inputEnded returned \(action)")
                }
            }
            return events
        }
    }
}

/// Runs `bytes` in one piece, a byte at a time, and in a few other splits; expects the same
/// transcript every time and returns it.
func h1Transcript<P: H1Parser>(_ make: () -> P, _ bytes: [UInt8], close: Bool = false,
                               sourceLocation: SourceLocation = #_sourceLocation) -> [H1Event] {
    var parser = make()
    let whole = h1Run(&parser, bytes, close: close)
    for step in [1, 2, 3, 7, 64] {
        var p = make()
        let split = h1Run(&p, bytes, step: step, close: close)
        #expect(split == whole, "split every \(step) bytes", sourceLocation: sourceLocation)
    }
    return whole
}

/// Bytes of a string, with every "\n" not preceded by "\r" turned into CRLF.
func crlf(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    for b in text.utf8 {
        if b == 0x0A && out.last != 0x0D { out.append(0x0D) }
        out.append(b)
    }
    return out
}


/// The single head a request produces, or nil (after recording why) if something else came.
func h1RequestHead(_ bytes: [UInt8], limits: HTTPParserLimits = .default,
                   sourceLocation: SourceLocation = #_sourceLocation) -> H1Head? {
    let events = h1Transcript({ H1Request(limits) }, bytes, sourceLocation: sourceLocation)
    guard case .head(let head)? = events.first else {
        Issue.record("no head: \(events)", sourceLocation: sourceLocation)
        return nil
    }
    return head
}

/// The error a request produces (same for every split), or nil.
func h1RequestError(_ bytes: [UInt8], limits: HTTPParserLimits = .default,
                    sourceLocation: SourceLocation = #_sourceLocation) -> HTTPParseError.Code? {
    let events = h1Transcript({ H1Request(limits) }, bytes, sourceLocation: sourceLocation)
    guard case .error(let code)? = events.last else { return nil }
    return code
}

// MARK: - Requests: heads

@Suite struct HTTPParserTests {
    @Test func simpleGet() throws {
        let head = try #require(h1RequestHead(h1Message("GET /index.html?x=1&y=%20 HTTP/1.1", "Host: example.com", "Accept: */*")))
        #expect(head.method == "GET")
        #expect(head.target == "/index.html?x=1&y=%20")
        #expect(head.targetForm == .origin)
        #expect(head.version == .http11)
        #expect(head.host == "example.com")
        #expect(head.fields == [H1Pair("Host", "example.com"), H1Pair("Accept", "*/*")])
        #expect(head.framing == .noBody)
        #expect(head.keepAlive)
        #expect(!head.isUpgradeRequest && !head.expectsContinue)
    }

    @Test func teTrailersIsNoted() throws {
        #expect(try #require(h1RequestHead(h1Message("POST /g HTTP/1.1", "Host: a", "TE: Trailers", "Content-Length: 0"))).acceptsTrailers)
        #expect(try #require(h1RequestHead(h1Message("GET / HTTP/1.1", "Host: a", "TE: gzip, trailers"))).acceptsTrailers)
        #expect(try #require(h1RequestHead(h1Message("GET / HTTP/1.1", "Host: a", "TE: gzip"))).acceptsTrailers == false)
        #expect(try #require(h1RequestHead(h1Message("GET / HTTP/1.1", "Host: a"))).acceptsTrailers == false)
    }

    @Test func wholeTranscriptOfAGet() {
        let bytes = h1Message("GET / HTTP/1.1", "Host: a")
        let events = h1Transcript({ H1Request() }, bytes)
        #expect(events.count == 2)
        #expect(events.last == .complete(framing: [], trailers: []))
        var parser = HTTPRequestParser()
        #expect(parser.isIdle)
        bytes.withUnsafeBytes { input in
            #expect(parser.parse(UnsafeRawBufferPointer(rebasing: input[0..<5])) == .needMore)
            #expect(!parser.isIdle)
            #expect(parser.parse(input) == .headersComplete(headLength: bytes.count))
            #expect(parser.head.method == .get)
            #expect(parser.parse(UnsafeRawBufferPointer(rebasing: input[bytes.count...])) == .messageComplete(framingLength: 0))
            #expect(parser.isIdle)
        }
    }

    @Test func methodsAreNamedCaseSensitively() throws {
        var parser = HTTPRequestParser()
        for (text, method) in [("GET", HTTPMethod.get), ("HEAD", .head), ("POST", .post), ("PUT", .put),
                               ("DELETE", .delete), ("OPTIONS", .options), ("TRACE", .trace), ("PATCH", .patch),
                               ("PURGE", .other), ("get", .other), ("M-SEARCH", .other)] {
            let bytes = h1Message("\(text) /x HTTP/1.1", "Host: a")
            let action = bytes.withUnsafeBytes { parser.parse($0) }
            #expect(action == .headersComplete(headLength: bytes.count), "\(text)")
            #expect(parser.head.method == method, "\(text)")
            _ = [UInt8]().withUnsafeBytes { parser.parse($0) }  // messageComplete
        }
    }

    @Test func http10DefaultsToClose() throws {
        let plain = try #require(h1RequestHead(h1Message("GET / HTTP/1.0")))
        #expect(plain.version == .http10 && !plain.keepAlive && plain.host == nil)
        let kept = try #require(h1RequestHead(h1Message("GET / HTTP/1.0", "Connection: Keep-Alive")))
        #expect(kept.keepAlive)
        #expect(kept.connection == .keepAlive)
    }

    @Test func connectionOptions() throws {
        let closed = try #require(h1RequestHead(h1Message("GET / HTTP/1.1", "Host: a", "Connection: close")))
        #expect(!closed.keepAlive)
        let listed = try #require(h1RequestHead(h1Message(
            "GET / HTTP/1.1", "Host: a", "Connection: keep-alive, X-Foo ,, x-bar", "connection: CLOSE", "X-Foo: 1")))
        #expect(listed.connection == [.keepAlive, .close])
        #expect(listed.connectionTokens == ["X-Foo", "x-bar"])
        #expect(!listed.keepAlive)
    }

    @Test func upgradeNeedsConnectionUpgradeAndHTTP11() throws {
        let ws = try #require(h1RequestHead(h1Message(
            "GET /chat HTTP/1.1", "Host: a", "Connection: Upgrade", "Upgrade: websocket")))
        #expect(ws.isUpgradeRequest && ws.upgrade == "websocket" && ws.connection == .upgrade)
        let noOption = try #require(h1RequestHead(h1Message("GET / HTTP/1.1", "Host: a", "Upgrade: websocket")))
        #expect(!noOption.isUpgradeRequest)
        let old = try #require(h1RequestHead(h1Message("GET / HTTP/1.0", "Connection: upgrade", "Upgrade: websocket")))
        #expect(!old.isUpgradeRequest)
    }

    @Test func expectContinue() throws {
        let e = try #require(h1RequestHead(h1Message(
            "PUT /f HTTP/1.1", "Host: a", "Expect: 100-Continue", "Content-Length: 3")))
        #expect(e.expectsContinue)
        let old = try #require(h1RequestHead(h1Message("PUT /f HTTP/1.0", "Expect: 100-continue")))
        #expect(!old.expectsContinue)
        let other = try #require(h1RequestHead(h1Message("PUT /f HTTP/1.1", "Host: a", "Expect: something")))
        #expect(!other.expectsContinue)
    }

    @Test func targetForms() throws {
        let absolute = try #require(h1RequestHead(h1Message("GET http://example.com:8080/a?b=c HTTP/1.1", "Host: EXAMPLE.com:8080")))
        #expect(absolute.targetForm == .absolute && absolute.authority == "example.com:8080" && absolute.host == "EXAMPLE.com:8080")
        // The scheme's own port is the same authority as none.
        let defaultPort = try #require(h1RequestHead(h1Message("GET http://a.test:80/ HTTP/1.1", "Host: a.test")))
        #expect(defaultPort.authority == "a.test:80")
        #expect(h1RequestHead(h1Message("GET https://a.test/ HTTP/1.1", "Host: a.test:443")) != nil)
        let https = try #require(h1RequestHead(h1Message("GET HTTPS://[2001:db8::1]?q HTTP/1.1", "Host: [2001:db8::1]")))
        #expect(https.targetForm == .absolute && https.authority == "[2001:db8::1]")
        let asterisk = try #require(h1RequestHead(h1Message("OPTIONS * HTTP/1.1", "Host: a")))
        #expect(asterisk.targetForm == .asterisk && asterisk.target == "*")
        let connect = try #require(h1RequestHead(h1Message("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443")))
        #expect(connect.targetForm == .authority && connect.authority == "example.com:443" && connect.framing == .noBody)
        let connect6 = try #require(h1RequestHead(h1Message("CONNECT [::1]:443 HTTP/1.1", "Host: [::1]:443")))
        #expect(connect6.targetForm == .authority)
        let unwise = try #require(h1RequestHead(h1Message("GET /search?q={\"a\"|b}&c=[1] HTTP/1.1", "Host: a")))
        #expect(unwise.target == "/search?q={\"a\"|b}&c=[1]")
    }

    @Test func fieldValues() throws {
        var bytes = h1Message("GET / HTTP/1.1", "Host: a", "X-Tab: a\tb", "X-Trim:   v  \t", "X-Empty:", "X-Spaces:   ",
                              "content-LENGTH: 0", "X-!#$%&'*+-.^_`|~: tchars", "X-Obs: \u{E9}t\u{E9}")
        let head = try #require(h1RequestHead(bytes))
        #expect(head.fields == [
            H1Pair("Host", "a"), H1Pair("X-Tab", "a\tb"), H1Pair("X-Trim", "v"), H1Pair("X-Empty", ""),
            H1Pair("X-Spaces", ""), H1Pair("content-LENGTH", "0"), H1Pair("X-!#$%&'*+-.^_`|~", "tchars"),
            H1Pair("X-Obs", "\u{E9}t\u{E9}"),
        ])
        #expect(head.contentLength == 0 && head.framing == .contentLength(0))
        // A field line that is only a name and a colon, without space.
        bytes = h1Message("GET / HTTP/1.1", "Host:a", "A:")
        #expect(try #require(h1RequestHead(bytes)).fields == [H1Pair("Host", "a"), H1Pair("A", "")])
    }

    @Test func emptyLinesBeforeTheRequestLineAreSkipped() throws {
        let bytes = Array("\r\n\r\n".utf8) + h1Message("GET / HTTP/1.1", "Host: a")
        let head = try #require(h1RequestHead(bytes))
        #expect(head.method == "GET" && head.length == bytes.count)
    }

    @Test(arguments: ["example.com", "EXAMPLE.com:80", "127.0.0.1:8080", "[::1]", "[2001:db8::a:b]:443",
                      "[v1.fe80::a+en1]", "", "example.com:", "xn--bcher-kva.example", "a%20b", "sub_domain.a-b~c!$&'()*+,;="])
    func validHosts(_ host: String) throws {
        let head = try #require(h1RequestHead(h1Message("GET / HTTP/1.1", "Host: \(host)")))
        #expect(head.host == host)
    }

    @Test func contentLengthLists() throws {
        let list = try #require(h1RequestHead(h1Message("POST / HTTP/1.1", "Host: a", "Content-Length: 5, 5", "Content-Length: 5")))
        #expect(list.framing == .contentLength(5))
        let max = try #require(h1RequestHead(h1Message("POST / HTTP/1.1", "Host: a", "Content-Length: 9223372036854775807")))
        #expect(max.contentLength == UInt64(Int64.max))
        let zeros = try #require(h1RequestHead(h1Message("POST / HTTP/1.1", "Host: a", "Content-Length: 007")))
        #expect(zeros.contentLength == 7)
    }

    @Test func transferEncodings() throws {
        let gzip = try #require(h1RequestHead(h1Message("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip, chunked")))
        #expect(gzip.framing == .chunked && gzip.isChunked)
        let lines = try #require(h1RequestHead(h1Message("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip", "transfer-encoding: CHUNKED")))
        #expect(lines.framing == .chunked)
        let params = try #require(h1RequestHead(h1Message("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: x-custom ; a=1;b=\"q,\\\"z\", , chunked")))
        #expect(params.framing == .chunked)
    }
}

// MARK: - Requests: rejections

/// A request that must be rejected, and why.
struct H1Rejection: CustomTestStringConvertible, Sendable {
    var name: String
    var bytes: [UInt8]
    var code: HTTPParseError.Code
    var status = 400
    var limits = HTTPParserLimits.default
    var testDescription: String { name }

    init(_ name: String, _ bytes: [UInt8], _ code: HTTPParseError.Code, status: Int = 400,
         limits: HTTPParserLimits = .default) {
        self.name = name
        self.bytes = bytes
        self.code = code
        self.status = status
        self.limits = limits
    }

    /// A request whose head has `fields` after a Host field.
    init(_ name: String, fields: [String], _ code: HTTPParseError.Code, line: String = "POST / HTTP/1.1") {
        self.init(name, Array(([line, "Host: a"] + fields).joined(separator: "\r\n").utf8) + Array("\r\n\r\n".utf8), code)
    }
}

let h1Rejections: [H1Rejection] = [
    // Framing.
    H1Rejection("CL and TE", fields: ["Content-Length: 5", "Transfer-Encoding: chunked"], .contentLengthWithTransferEncoding),
    H1Rejection("TE and CL", fields: ["Transfer-Encoding: chunked", "Content-Length: 5"], .contentLengthWithTransferEncoding),
    H1Rejection("CL list differs", fields: ["Content-Length: 5, 6"], .conflictingContentLength),
    H1Rejection("CL lines differ", fields: ["Content-Length: 5", "Content-Length: 6"], .conflictingContentLength),
    H1Rejection("CL negative", fields: ["Content-Length: -1"], .invalidContentLength),
    H1Rejection("CL plus sign", fields: ["Content-Length: +5"], .invalidContentLength),
    H1Rejection("CL hex", fields: ["Content-Length: 0x5"], .invalidContentLength),
    H1Rejection("CL letters", fields: ["Content-Length: abc"], .invalidContentLength),
    H1Rejection("CL empty", fields: ["Content-Length: "], .invalidContentLength),
    H1Rejection("CL empty element", fields: ["Content-Length: 5,"], .invalidContentLength),
    H1Rejection("CL inner space", fields: ["Content-Length: 1 2"], .invalidContentLength),
    H1Rejection("CL 2^63", fields: ["Content-Length: 9223372036854775808"], .invalidContentLength),
    H1Rejection("CL overflow", fields: ["Content-Length: 99999999999999999999999"], .invalidContentLength),
    H1Rejection("TE gzip last", fields: ["Transfer-Encoding: gzip"], .chunkedNotFinal),
    H1Rejection("TE chunked then gzip", fields: ["Transfer-Encoding: chunked, gzip"], .chunkedNotFinal),
    H1Rejection("TE chunked then gzip line", fields: ["Transfer-Encoding: chunked", "Transfer-Encoding: gzip"], .chunkedNotFinal),
    H1Rejection("TE chunked twice", fields: ["Transfer-Encoding: chunked, chunked"], .chunkedAppliedTwice),
    H1Rejection("TE chunked twice lines", fields: ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], .chunkedAppliedTwice),
    H1Rejection("TE empty", fields: ["Transfer-Encoding: "], .invalidTransferEncoding),
    H1Rejection("TE commas only", fields: ["Transfer-Encoding: , ,"], .invalidTransferEncoding),
    H1Rejection("TE chunked with parameter", fields: ["Transfer-Encoding: chunked;a=1"], .invalidTransferEncoding),
    H1Rejection("TE parameter without value", fields: ["Transfer-Encoding: gzip;level, chunked"], .invalidTransferEncoding),
    H1Rejection("TE not a token", fields: ["Transfer-Encoding: \"chunked\""], .invalidTransferEncoding),
    H1Rejection("TE in HTTP/1.0", fields: ["Transfer-Encoding: chunked"], .transferEncodingInHTTP10, line: "POST / HTTP/1.0"),
    // Field syntax.
    H1Rejection("obs-fold", fields: ["X-A: a", " continued"], .obsFold),
    H1Rejection("whitespace line after the request line", Array("GET / HTTP/1.1\r\n Host: a\r\n\r\n".utf8), .obsFold),
    H1Rejection("obs-fold tab", fields: ["X-A: a", "\tcontinued"], .obsFold),
    H1Rejection("space before colon", fields: ["Content-Length : 5"], .whitespaceBeforeColon),
    H1Rejection("tab before colon", fields: ["X-A\t: 5"], .whitespaceBeforeColon),
    H1Rejection("name with parenthesis", fields: ["X(A): 5"], .invalidFieldName),
    H1Rejection("name with slash", fields: ["X/A: 5"], .invalidFieldName),
    H1Rejection("name non-ASCII", fields: ["X\u{E9}: 5"], .invalidFieldName),
    H1Rejection("empty name", fields: [": 5"], .invalidFieldName),
    H1Rejection("no colon", fields: ["NoColonHere"], .invalidFieldName),
    H1Rejection("value CTL", fields: ["X-A: a\u{01}b"], .invalidFieldValue),
    H1Rejection("value escape", fields: ["X-A: a\u{1B}[0m"], .invalidFieldValue),
    H1Rejection("value DEL", fields: ["X-A: a\u{7F}"], .invalidFieldValue),
    H1Rejection("value NUL", fields: ["X-A: a\u{00}b"], .invalidFieldValue),
    H1Rejection("name NUL", fields: ["X\u{00}A: b"], .invalidFieldName),
    // Bare CR and LF.
    H1Rejection("bare CR in value", fields: ["X-A: a\rb"], .bareCR),
    H1Rejection("bare CR in name", fields: ["X\rA: b"], .bareCR),
    H1Rejection("bare CR ending a line", fields: ["X-A: a\r\rX-B: b"], .bareCR),
    H1Rejection("bare CR in request line", Array("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n".utf8), .bareCR),
    H1Rejection("bare CR in version", Array("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n".utf8), .bareCR),
    H1Rejection("CR CR LF at the end", Array("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n".utf8), .bareCR),
    H1Rejection("bare LF after request line", Array("GET / HTTP/1.1\nHost: a\r\n\r\n".utf8), .bareLF),
    H1Rejection("bare LF after field", Array("GET / HTTP/1.1\r\nHost: a\n\r\n".utf8), .bareLF),
    H1Rejection("bare LF ending the head", Array("GET / HTTP/1.1\r\nHost: a\r\n\n".utf8), .bareLF),
    H1Rejection("bare LF before request line", Array("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8), .bareLF),
    // Host.
    H1Rejection("missing Host", h1Message("GET / HTTP/1.1", "Accept: */*"), .missingHost),
    H1Rejection("two Hosts", fields: ["Host: a"], .multipleHost),
    H1Rejection("two Hosts, other case", fields: ["host: b"], .multipleHost),
    H1Rejection("Host with space", h1Message("GET / HTTP/1.1", "Host: exa mple.com"), .invalidHost),
    H1Rejection("Host with slash", h1Message("GET / HTTP/1.1", "Host: a/b"), .invalidHost),
    H1Rejection("Host with userinfo", h1Message("GET / HTTP/1.1", "Host: user@a"), .invalidHost),
    H1Rejection("Host unterminated IPv6", h1Message("GET / HTTP/1.1", "Host: [::1"), .invalidHost),
    H1Rejection("Host bad IPv6", h1Message("GET / HTTP/1.1", "Host: [zz::1]"), .invalidHost),
    H1Rejection("Host port letters", h1Message("GET / HTTP/1.1", "Host: a:8x"), .invalidHost),
    H1Rejection("Host port too large", h1Message("GET / HTTP/1.1", "Host: a:65536"), .invalidHost),
    H1Rejection("Host port only", h1Message("GET / HTTP/1.1", "Host: :80"), .invalidHost),
    H1Rejection("Host bad percent", h1Message("GET / HTTP/1.1", "Host: a%zz"), .invalidHost),
    H1Rejection("Host non-ASCII", h1Message("GET / HTTP/1.1", "Host: \u{E9}.fr"), .invalidHost),
    // Request line.
    H1Rejection("method with parenthesis", h1Message("G(T / HTTP/1.1", "Host: a"), .invalidMethod),
    H1Rejection("leading space", h1Message(" GET / HTTP/1.1", "Host: a"), .invalidMethod),
    H1Rejection("method and tab", h1Message("GET\t/ HTTP/1.1", "Host: a"), .invalidMethod),
    H1Rejection("method alone", h1Message("GET", "Host: a"), .invalidRequestLine),
    H1Rejection("no version", h1Message("GET /", "Host: a"), .invalidRequestLine),
    H1Rejection("two spaces", h1Message("GET  / HTTP/1.1", "Host: a"), .invalidRequestLine),
    H1Rejection("space in target", h1Message("GET /a b HTTP/1.1", "Host: a"), .invalidRequestLine),
    H1Rejection("trailing space", h1Message("GET / HTTP/1.1 ", "Host: a"), .invalidRequestLine),
    H1Rejection("fragment", h1Message("GET /a#frag HTTP/1.1", "Host: a"), .invalidRequestTarget),
    H1Rejection("tab in target", h1Message("GET /a\tb HTTP/1.1", "Host: a"), .invalidRequestTarget),
    H1Rejection("DEL in target", h1Message("GET /a\u{7F} HTTP/1.1", "Host: a"), .invalidRequestTarget),
    H1Rejection("NUL in target", h1Message("GET /a\u{00} HTTP/1.1", "Host: a"), .invalidRequestTarget),
    H1Rejection("non-ASCII target", h1Message("GET /caf\u{E9} HTTP/1.1", "Host: a"), .invalidRequestTarget),
    H1Rejection("asterisk for GET", h1Message("GET * HTTP/1.1", "Host: a"), .invalidRequestTarget),
    H1Rejection("asterisk and more", h1Message("OPTIONS *x HTTP/1.1", "Host: a"), .invalidRequestTarget),
    H1Rejection("CONNECT with path", h1Message("CONNECT /x HTTP/1.1", "Host: a"), .invalidRequestTarget),
    H1Rejection("CONNECT without port", h1Message("CONNECT example.com HTTP/1.1", "Host: a"), .invalidRequestTarget),
    H1Rejection("authority-form for GET", h1Message("GET example.com:80 HTTP/1.1", "Host: a"), .invalidRequestTarget),
    H1Rejection("ftp absolute-form", h1Message("GET ftp://a/b HTTP/1.1", "Host: a"), .invalidRequestTarget),
    H1Rejection("absolute-form empty host", h1Message("GET http:///b HTTP/1.1", "Host: a"), .invalidRequestTarget),
    H1Rejection("absolute-form userinfo", h1Message("GET http://u:p@a/b HTTP/1.1", "Host: a"), .invalidRequestTarget),
    H1Rejection("relative target", h1Message("GET a/b HTTP/1.1", "Host: a"), .invalidRequestTarget),
    // Versions.
    H1Rejection("HTTP/2.0", h1Message("GET / HTTP/2.0", "Host: a"), .unsupportedVersion, status: 505),
    H1Rejection("HTTP/2 preface", Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8), .unsupportedVersion, status: 505),
    H1Rejection("absolute-form and Host disagree", h1Message("GET http://other.test/abs HTTP/1.1", "Host: a.test"), .hostMismatch, status: 400),
    H1Rejection("absolute-form and Host disagree on the port", h1Message("GET http://a.test:8080/ HTTP/1.1", "Host: a.test"), .hostMismatch, status: 400),
    H1Rejection("HTTP/2.0 over HTTP/1", h1Message("GET / HTTP/2.0", "Host: a"), .unsupportedVersion, status: 505),
    H1Rejection("HTTP/0.9 version", h1Message("GET / HTTP/0.9", "Host: a"), .unsupportedVersion, status: 505),
    H1Rejection("lowercase http", h1Message("GET / http/1.1", "Host: a"), .invalidVersion),
    H1Rejection("HTTP/1", h1Message("GET / HTTP/1", "Host: a"), .invalidVersion),
    H1Rejection("HTTP/1.10", h1Message("GET / HTTP/1.10", "Host: a"), .invalidVersion),
    H1Rejection("HTTP/1.x", h1Message("GET / HTTP/1.x", "Host: a"), .invalidVersion),
    // Limits.
    H1Rejection("request line too long", h1Message("GET /" + String(repeating: "a", count: 100) + " HTTP/1.1", "Host: a"),
                .uriTooLong, status: 414, limits: HTTPParserLimits(maxHeadSize: 64)),
    H1Rejection("head too large", h1Message("GET / HTTP/1.1", "Host: a", "X-A: " + String(repeating: "a", count: 100)),
                .headTooLarge, status: 431, limits: HTTPParserLimits(maxHeadSize: 64)),
    H1Rejection("head one byte too large", h1Message("GET / HTTP/1.1", "Host: a"),
                .headTooLarge, status: 431, limits: HTTPParserLimits(maxHeadSize: 26)),
    H1Rejection("too many fields", h1Message("GET / HTTP/1.1", "Host: a", "A: 1", "B: 2", "C: 3"),
                .tooManyFields, status: 431, limits: HTTPParserLimits(maxFieldCount: 3)),
]

@Suite struct HTTPParserRejectionTests {
    @Test(arguments: h1Rejections)
    func rejects(_ vector: H1Rejection) {
        let code = h1RequestError(vector.bytes, limits: vector.limits)
        #expect(code == vector.code)
        if let code { #expect(HTTPParseError(code).status == vector.status) }
    }

    @Test func limitsAreInclusive() throws {
        let bytes = h1Message("GET / HTTP/1.1", "Host: a", "A: 1", "B: 2")
        #expect(bytes.count == 39)
        #expect(h1RequestHead(bytes, limits: HTTPParserLimits(maxHeadSize: 39, maxFieldCount: 3)) != nil)
    }

    @Test func errorsAreSticky() {
        var parser = HTTPRequestParser()
        let bad = h1Message("GET / HTTP/1.1", "Host: a", "Content-Length: x")
        let first = bad.withUnsafeBytes { parser.parse($0) }
        guard case .error(let error) = first else {
            Issue.record("expected an error, got \(first)")
            return
        }
        #expect(error.code == .invalidContentLength && error.offset == 41 && error.status == 400 && !error.inResponse)
        let good = h1Message("GET / HTTP/1.1", "Host: a")
        #expect(good.withUnsafeBytes { parser.parse($0) } == first)
        #expect(parser.inputEnded() == first)
    }

    @Test func endOfInputInsideAHead() {
        var parser = H1Request()
        let events = h1Run(&parser, Array("GET / HTTP/1.1\r\nHost".utf8), close: true)
        #expect(events == [.error(.incompleteMessage)])
        var idle = H1Request()
        #expect(h1Run(&idle, Array("\r\n".utf8), close: true) == [])
        var after = H1Request()
        #expect(h1Run(&after, h1Message("GET / HTTP/1.1", "Host: a"), close: true).count == 2)
    }
}

@Suite struct HTTPParserByteClassTests {
    /// The generated table against the RFC definitions, byte by byte.
    @Test func tableMatchesTheGrammar() {
        #expect(HTTPByteClass.table.utf8CodeUnitCount == 256)
        func isAlpha(_ b: Int) -> Bool { (65...90).contains(b) || (97...122).contains(b) }
        func isDigit(_ b: Int) -> Bool { (48...57).contains(b) }
        func among(_ b: Int, _ set: String) -> Bool { b < 128 && set.utf8.contains(UInt8(b)) }
        let definitions: [(String, HTTPByteClass, (Int) -> Bool)] = [
            ("token", .token, { isAlpha($0) || isDigit($0) || among($0, "!#$%&'*+-.^_`|~") }),
            ("target", .target, { (0x21...0x7E).contains($0) && $0 != 0x23 }),
            ("regName", .regName, { isAlpha($0) || isDigit($0) || among($0, "-._~!$&'()*+,;=%") }),
            ("ipFuture", .ipFuture, { isAlpha($0) || isDigit($0) || among($0, "-._~!$&'()*+,;=:") }),
            ("scheme", .scheme, { isAlpha($0) || isDigit($0) || among($0, "+-.") }),
            ("hex", .hex, { isDigit($0) || among($0, "abcdefABCDEF") }),
            ("quotedText", .quotedText, { $0 == 9 || $0 == 0x20 || $0 == 0x21 || (0x23...0x5B).contains($0)
                || (0x5D...0x7E).contains($0) || $0 >= 0x80 }),
        ]
        for (name, byteClass, definition) in definitions {
            for b in 0..<256 where byteClass.contains(UInt8(b)) != definition(b) {
                Issue.record("\(name) is wrong for byte \(b)")
            }
        }
        for b in 0..<256 {
            #expect(HTTPByte.isFieldContent(UInt8(b)) == (b == 9 || (b >= 0x20 && b != 0x7F)))
        }
    }

    @Test func fieldContentScanFindsTheFirstInvalidByte() {
        for length in 0..<40 {
            for bad in [-1] + Array(0..<length) {
                var bytes = [UInt8](repeating: 0x61, count: length)
                if length > 3 { bytes[length / 2] = 0x09 }  // HTAB is content
                if bad >= 0 { bytes[bad] = [0x00, 0x0D, 0x1F, 0x7F][bad % 4] }
                let found = bytes.withUnsafeBytes { $0.httpFieldContentEnd(from: 0, to: length) }
                #expect(found == (bad >= 0 ? bad : length), "length \(length), bad \(bad)")
            }
        }
    }
}
