// libFuzzer target for `HTTPRequestParser` (Sources/HTTP1). Built by fuzz/build.sh together
// with the parser's own source files into one module, so `internal` is visible here; see
// bench/README.md ("Fuzzing the request parser") for how to run it.
//
// Each input is a byte stream a client sent on one connection. It is parsed under two sets of
// limits (HAProxy's defaults, and tight ones derived from the input so that the 414/431 and chunk
// line limits are reached with small inputs), each time three ways: in one piece, a byte at a time,
// and in pieces of pseudo-random sizes (with some payload skipped through `skipBody`, as the proxy
// does when it splices). The target traps (and libFuzzer saves the input) when:
// - an action consumes more than the input it was given, a body range does not start at 0 or is
//   empty, a head or trailer range leaves the bytes that were consumed, a limit is exceeded;
// - the parser makes no progress (two actions in a row that consume nothing but `.needMore`), or
//   more calls are made than the bytes can justify;
// - an error is not sticky (the next `parse` or `inputEnded` answers something else);
// - an accepted head breaks what the parser promises (no CR, LF or NUL in a name, value or target,
//   names are tokens, one Host at most and one in HTTP/1.1, no Content-Length beside a
//   Transfer-Encoding, no Transfer-Encoding in HTTP/1.0, chunked framing only with chunked last);
// - the transcripts (heads, payload bytes, chunk framing, trailers, the error code, the end) of the
//   three ways differ;
// - what the parser consumed before refusing a request (the bytes a proxy streams to a server as
//   they are parsed) is not itself a valid start of the stream: parsed again alone, it must not
//   fail. A refused request then never puts bytes on a server connection that the parser did not
//   accept as a request's;
// - an absolute-form target is accepted with a Host that names another authority;
// and of course on any crash, overflow trap or sanitizer report.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func requestParserFuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    let seed = FuzzRandom.hash(input)
    var random = FuzzRandom(state: seed)
    let tight = HTTPParserLimits(maxHeadSize: 1 + random.next(size + 24),
                                 maxFieldCount: 1 + random.next(12),
                                 maxChunkLineSize: 3 + random.next(40))
    for limits in [HTTPParserLimits.default, tight] {
        // Whether an Upgrade or CONNECT request is followed by tunnel bytes (the server accepted).
        let tunnels = random.next(2) == 0
        let whole = FuzzDriver(limits: limits, tunnels: tunnels).run(input, pieces: nil)
        var bytewise = FuzzRandom(state: 0)
        let oneByOne = FuzzDriver(limits: limits, tunnels: tunnels).run(input, pieces: &bytewise, maxPiece: 1)
        fuzzCheck(oneByOne == whole, "one byte at a time differs from one piece", input, whole, oneByOne)
        var pieces = FuzzRandom(state: seed ^ 0x9E37_79B9_7F4A_7C15)
        let maxPiece = [2, 7, 64, 512, 4096][random.next(5)]
        let split = FuzzDriver(limits: limits, tunnels: tunnels, skips: true).run(input, pieces: &pieces, maxPiece: maxPiece)
        fuzzCheck(split == whole, "pieces of up to \(maxPiece) bytes differ from one piece", input, whole, split)
    }
    return 0
}

/// What the parser reported, resolved to bytes when it was reported.
enum FuzzEvent: Equatable {
    case head(FuzzHead)
    case body([UInt8])
    case chunk(size: UInt64, line: [UInt8])
    case chunkEnd
    case complete(framing: [UInt8], trailers: [[UInt8]])
    case tunnel
    case error(HTTPParseError.Code)
    /// `inputEnded()` at the end of the bytes: nil, or what it answered.
    case ended(FuzzEnd)
}

enum FuzzEnd: Equatable {
    case clean
    case complete
    case error(HTTPParseError.Code)
}

/// A head, as bytes and facts.
struct FuzzHead: Equatable {
    var bytes: [UInt8]
    var method: HTTPMethod
    var methodRange: Range<Int>
    var target: Range<Int>
    var targetForm: HTTPRequestTargetForm
    var authority: Range<Int>?
    var version: HTTPVersion
    var fields: [Range<Int>]
    var framing: HTTPFraming
    var contentLength: UInt64?
    var keepAlive: Bool
    var connection: UInt8
    var connectionTokens: [Range<Int>]
    var isUpgradeRequest: Bool
    var upgrade: Range<Int>?
    var expectsContinue: Bool
    var host: Range<Int>?

    init(_ head: HTTPHead, _ input: UnsafeRawBufferPointer) {
        bytes = Array(input[0..<head.length])
        method = head.method
        methodRange = head.methodRange
        target = head.target
        targetForm = head.targetForm
        authority = head.targetAuthority
        version = head.version
        fields = head.fields.flatMap { [$0.name, $0.value] }
        framing = head.framing
        contentLength = head.contentLength
        keepAlive = head.keepAlive
        connection = head.connection.rawValue
        connectionTokens = head.connectionTokens
        isUpgradeRequest = head.isUpgradeRequest
        upgrade = head.upgrade
        expectsContinue = head.expectsContinue
        host = head.host
    }
}

/// Runs one parser over a byte stream as the I/O layer would: consumed bytes are dropped, the rest is
/// presented again with the next piece appended.
struct FuzzDriver {
    let limits: HTTPParserLimits
    let tunnels: Bool
    var skips = false

    func run(_ bytes: UnsafeRawBufferPointer, pieces: UnsafeMutablePointer<FuzzRandom>?, maxPiece: Int = 1) -> [FuzzEvent] {
        var parser = HTTPRequestParser(limits: limits)
        var events: [FuzzEvent] = []
        var pending: [UInt8] = []
        pending.reserveCapacity(bytes.count)
        var next = 0
        var random = FuzzRandom(state: UInt64(bytes.count) &* 0x2545_F491_4F6C_DD1D)
        var wantsTunnel = false
        var inTunnel = false
        var everTunnelled = false
        /// Every byte an action consumed or a skip passed on, in order: what a proxy forwards.
        var consumedBytes: [UInt8] = []
        // Every call must consume a byte, read a byte, or be one of the few that do neither: a
        // message that ends with nothing left to consume, one per message (a message is at least
        // 16 bytes), and the `.needMore` that asks for the next piece.
        var calls = 0
        let callLimit = 3 * bytes.count + 8
        var idleInARow = 0

        func record(_ event: FuzzEvent) {
            if case .body(let more) = event, case .body(let previous)? = events.last {
                events[events.count - 1] = .body(previous + more)
            } else {
                events.append(event)
            }
        }

        while true {
            calls += 1
            fuzzCheck(calls <= callLimit, "\(calls) calls for \(bytes.count) bytes: the parser does not progress")
            if skips, !inTunnel, let remaining = parser.remainingBodyLength, remaining > 0, !pending.isEmpty,
               random.next(2) == 0 {
                // Spliced: forwarded without being parsed.
                let n = 1 + random.next(Int(min(remaining, UInt64(pending.count))))
                record(.body(Array(pending[0..<n])))
                parser.skipBody(n)
                consumedBytes += pending[0..<n]
                pending.removeFirst(n)
                idleInARow = 0
                continue
            }
            var consumed = 0
            var stop = false
            var failed = false
            pending.withUnsafeBytes { input in
                let action = parser.parse(input)
                consumed = action.consumed
                fuzzCheck(consumed >= 0 && consumed <= input.count, "\(action) consumes past \(input.count) bytes")
                switch action {
                case .needMore:
                    stop = true
                case .headersComplete(let length):
                    let head = parser.head
                    fuzzCheck(length > 0 && length == head.length, "headersComplete(\(length)), head.length \(head.length)")
                    fuzzCheck(length <= limits.maxHeadSize, "a head of \(length) bytes, limit \(limits.maxHeadSize)")
                    checkHead(head, input, limits)
                    wantsTunnel = head.isUpgradeRequest || head.method == .connect
                    record(.head(FuzzHead(head, input)))
                case .body(let range):
                    fuzzCheck(range.lowerBound == 0 && !range.isEmpty, "body(\(range))")
                    if let remaining = parser.remainingBodyLength, remaining > 0 {
                        // Within counted payload, a body action stops at the framing or the input's end.
                        fuzzCheck(range.upperBound == input.count, "body(\(range)) stops short of the input")
                    }
                    record(.body(Array(input[range])))
                case .chunkHeader(let size, let lineLength):
                    fuzzCheck(size > 0, "chunkHeader(size: 0)")
                    fuzzCheck(lineLength >= 3 && lineLength <= limits.maxChunkLineSize, "chunk line of \(lineLength) bytes")
                    fuzzCheck(input[lineLength - 2] == 0x0D && input[lineLength - 1] == 0x0A, "chunk line without CRLF")
                    fuzzCheck(parser.remainingBodyLength == size, "chunk of \(size), remaining \(String(describing: parser.remainingBodyLength))")
                    record(.chunk(size: size, line: Array(input[0..<lineLength])))
                case .chunkDataEnd:
                    fuzzCheck(input[0] == 0x0D && input[1] == 0x0A, "chunkDataEnd on something else than CRLF")
                    record(.chunkEnd)
                case .messageComplete(let length):
                    let section = parser.trailerSection
                    fuzzCheck(section.isEmpty || (section.lowerBound >= 3 && section.upperBound <= length),
                              "trailer section \(section) outside the framing (\(length) bytes)")
                    fuzzCheck(length <= limits.maxHeadSize, "last chunk and trailers of \(length) bytes, limit \(limits.maxHeadSize)")
                    var trailers: [[UInt8]] = []
                    for field in parser.trailerFields {
                        fuzzCheck(field.name.lowerBound >= section.lowerBound && field.value.upperBound <= section.upperBound,
                                  "trailer field outside the trailer section")
                        checkFieldBytes(input, field)
                        trailers.append(Array(input[field.name]) + [0x3A] + Array(input[field.value]))
                    }
                    fuzzCheck(trailers.count <= limits.maxFieldCount, "\(trailers.count) trailer fields")
                    record(.complete(framing: Array(input[0..<length]), trailers: trailers))
                    if tunnels && wantsTunnel {
                        parser.enterTunnel()
                        inTunnel = true
                        everTunnelled = true
                        record(.tunnel)
                    }
                    wantsTunnel = false
                case .error(let error):
                    fuzzCheck(error.offset >= 0 && error.offset <= input.count, "error offset \(error.offset) of \(input.count)")
                    fuzzCheck(!error.inResponse, "a request error marked as a response's")
                    // Sticky: the parser answers the same error from now on.
                    let again = parser.parse(input)
                    fuzzCheck(again == .error(error), "error \(error) then \(again)")
                    record(.error(error.code))
                    failed = true
                }
                if case .needMore = action {
                    idleInARow = 0
                } else if consumed == 0 && !failed {
                    idleInARow += 1
                    fuzzCheck(idleInARow < 2, "two actions in a row consume nothing: \(action)")
                } else {
                    idleInARow = 0
                }
            }
            if failed {
                if !everTunnelled { checkConsumedIsValid(consumedBytes) }
                let end = parser.inputEnded()
                if case .error(let code)? = events.last {
                    fuzzCheck(end.map { if case .error(let e) = $0 { e.code == code } else { false } } ?? false,
                              "inputEnded after \(code) answers \(String(describing: end))")
                }
                return events
            }
            consumedBytes += pending[0..<consumed]
            pending.removeFirst(consumed)
            guard stop else { continue }
            if next < bytes.count {
                let n = pieces.map { min(1 + $0.pointee.next(maxPiece), bytes.count - next) } ?? (bytes.count - next)
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[next..<(next + n)]))
                next += n
                continue
            }
            // The client closed its side.
            let idle = parser.isIdle
            switch parser.inputEnded() {
            case nil:
                fuzzCheck(idle, "inputEnded says clean, isIdle says no")
                record(.ended(.clean))
            case .messageComplete(let length)?:
                fuzzCheck(length == 0, "inputEnded: messageComplete(\(length))")
                fuzzCheck(!idle, "inputEnded completes a message, isIdle says idle")
                record(.ended(.complete))
            case .error(let error)?:
                fuzzCheck(!idle, "inputEnded: \(error) while idle")
                fuzzCheck(error.code == .incompleteMessage, "inputEnded: \(error)")
                record(.ended(.error(error.code)))
            case let other?:
                fuzzCheck(false, "inputEnded: \(other)")
            }
            return events
        }
    }

    /// The bytes consumed before an error, parsed again alone and in one piece, must not fail.
    private func checkConsumedIsValid(_ bytes: [UInt8]) {
        var parser = HTTPRequestParser(limits: limits)
        bytes.withUnsafeBytes { all in
            var offset = 0
            while true {
                let input = UnsafeRawBufferPointer(rebasing: all[offset...])
                let action = parser.parse(input)
                if case .error(let e) = action {
                    fuzzCheck(false, "bytes consumed before a refusal fail alone: \(e) at \(offset + e.offset) of \(bytes.count)")
                    return
                }
                if case .needMore = action { return }
                offset += action.consumed
            }
        }
    }

    /// What an accepted head promises, checked from its bytes rather than from the parser's facts.
    private func checkHead(_ head: HTTPHead, _ input: UnsafeRawBufferPointer, _ limits: HTTPParserLimits) {
        let length = head.length
        func inside(_ r: Range<Int>, _ what: String) {
            fuzzCheck(r.lowerBound >= 0 && r.upperBound <= length, "\(what) \(r) outside the head (\(length) bytes)")
        }
        fuzzCheck(head.isRequest, "a request head marked as a response")
        fuzzCheck(input[length - 2] == 0x0D && input[length - 1] == 0x0A
                  && input[length - 4] == 0x0D && input[length - 3] == 0x0A, "the head does not end with CRLF CRLF")
        inside(head.startLine, "start line")
        inside(head.methodRange, "method")
        inside(head.target, "target")
        fuzzCheck(!head.methodRange.isEmpty && !head.target.isEmpty, "empty method or target")
        for p in head.methodRange { fuzzCheck(HTTPByteClass.token.contains(input[p]), "method byte \(input[p])") }
        for p in head.target {
            let b = input[p]
            fuzzCheck(b > 0x20 && b < 0x7F && b != 0x23, "target byte \(b)")
        }
        if head.targetForm == .absolute, let authority = head.targetAuthority, let host = head.host {
            // RFC 9112 §3.2.2: the same host and port (case aside, the scheme's port implied).
            let https = input[head.target.lowerBound + 4] | 0x20 == 0x73
            func normalized(_ r: Range<Int>) -> String {
                var text = String(decoding: input[r], as: UTF8.self).lowercased()
                let port = https ? ":443" : ":80"
                if text.hasSuffix(port) { text.removeLast(port.count) }
                return text
            }
            fuzzCheck(normalized(authority) == normalized(host), "absolute-form authority and Host disagree")
        }
        if let authority = head.targetAuthority {
            inside(authority, "authority")
            fuzzCheck(authority.lowerBound >= head.target.lowerBound && authority.upperBound <= head.target.upperBound,
                      "authority outside the target")
        }
        fuzzCheck(head.fields.count <= limits.maxFieldCount, "\(head.fields.count) fields, limit \(limits.maxFieldCount)")
        var hosts = 0
        var contentLengths = 0
        var transferEncodings = 0
        for field in head.fields {
            inside(field.name, "field name")
            inside(field.value, "field value")
            fuzzCheck(field.name.upperBound < field.value.lowerBound, "value before its name's colon")
            checkFieldBytes(input, field)
            if equalsLowercase(input, field.name, "host") { hosts += 1 }
            if equalsLowercase(input, field.name, "content-length") { contentLengths += 1 }
            if equalsLowercase(input, field.name, "transfer-encoding") { transferEncodings += 1 }
        }
        fuzzCheck(hosts <= 1, "\(hosts) Host fields accepted")
        if head.version == .http11 { fuzzCheck(hosts == 1, "HTTP/1.1 without Host accepted") }
        if let host = head.host { inside(host, "host") }
        fuzzCheck((head.host != nil) == (hosts == 1), "host fact and Host fields disagree")
        if transferEncodings > 0 {
            fuzzCheck(head.version == .http11, "Transfer-Encoding in HTTP/1.0 accepted")
            fuzzCheck(contentLengths == 0, "Content-Length beside Transfer-Encoding accepted")
            fuzzCheck(head.framing == .chunked && head.isChunked, "Transfer-Encoding not framed chunked: \(head.framing)")
        } else if contentLengths > 0 {
            guard case .contentLength(let n) = head.framing, head.contentLength == n else {
                fuzzCheck(false, "Content-Length field, framing \(head.framing)")
                return
            }
        } else {
            fuzzCheck(head.framing == .noBody && head.contentLength == nil, "no framing field, framing \(head.framing)")
        }
        if head.isUpgradeRequest { fuzzCheck(head.version == .http11 && head.upgrade != nil, "an upgrade without Upgrade") }
        for token in head.connectionTokens { inside(token, "connection token") }
        if let upgrade = head.upgrade { inside(upgrade, "upgrade") }
    }

    private func checkFieldBytes(_ input: UnsafeRawBufferPointer, _ field: HTTPField) {
        fuzzCheck(!field.name.isEmpty, "an empty field name")
        for p in field.name { fuzzCheck(HTTPByteClass.token.contains(input[p]), "field name byte \(input[p])") }
        for p in field.value {
            let b = input[p]
            fuzzCheck(b == 0x09 || (b >= 0x20 && b != 0x7F), "field value byte \(b)")
        }
        if let first = field.value.first, let last = field.value.last {
            fuzzCheck(input[first] != 0x20 && input[first] != 0x09 && input[last] != 0x20 && input[last] != 0x09,
                      "field value not trimmed")
        }
    }

    private func equalsLowercase(_ input: UnsafeRawBufferPointer, _ range: Range<Int>, _ name: String) -> Bool {
        let utf8 = Array(name.utf8)
        guard range.count == utf8.count else { return false }
        for (i, p) in range.enumerated() {
            var b = input[p]
            if b >= 0x41 && b <= 0x5A { b |= 0x20 }
            if b != utf8[i] { return false }
        }
        return true
    }
}

/// A small deterministic generator (PCG-style LCG), so that a crash reproduces from its input alone.
struct FuzzRandom {
    var state: UInt64

    mutating func next(_ bound: Int) -> Int {
        guard bound > 1 else { return 0 }
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(bound))
    }

    /// FNV-1a of the input.
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }
}

func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        fputs("request parser invariant broken: \(message())\n", stderr)
        abort()
    }
}

func fuzzCheck(_ condition: Bool, _ message: String, _ input: UnsafeRawBufferPointer,
               _ expected: [FuzzEvent], _ got: [FuzzEvent]) {
    if !condition {
        fputs("request parser invariant broken: \(message)\n", stderr)
        fputs("input: \(String(decoding: input, as: UTF8.self).debugDescription)\n", stderr)
        fputs("one piece: \(expected)\n", stderr)
        fputs("split:     \(got)\n", stderr)
        abort()
    }
}
