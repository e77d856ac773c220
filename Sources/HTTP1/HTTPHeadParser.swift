#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Parses a head (start line and field lines) in place, line by line, for requests and responses.
///
/// A line is found with `memchr` for its LF, then validated in one pass. The scan position is kept
/// between calls, so bytes presented again after `.needMore` are not examined again (a client
/// dribbling a 16 KB head a byte at a time costs 16 KB of work, not 16 KB squared), except that the
/// line in progress is validated once it is complete.
package struct HTTPHeadParser {
    enum Result {
        case needMore
        case complete(headLength: Int)
        case error(HTTPParseError)
    }

    enum FieldLine {
        case field(HTTPField)
        case error(HTTPParseError.Code, offset: Int)
    }

    let limits: HTTPParserLimits
    private(set) var head: HTTPHead

    /// Start of the line being scanned.
    private var lineStart = 0
    /// Where the search for the next LF resumes.
    private var scanned = 0
    private var startLineDone = false
    private var hostCount = 0
    /// Non-empty transfer codings seen, and how many were `chunked`.
    private var codingCount = 0
    private var chunkedCount = 0

    init(isRequest: Bool, limits: HTTPParserLimits) {
        self.limits = limits
        self.head = HTTPHead(isRequest: isRequest, fieldCapacity: min(limits.maxFieldCount, 32))
    }

    /// Whether bytes of a message (other than empty lines before the start line) have been seen.
    var hasPartialMessage: Bool { startLineDone || scanned > lineStart }

    mutating func reset() {
        head.reset()
        lineStart = 0
        scanned = 0
        startLineDone = false
        hostCount = 0
        codingCount = 0
        chunkedCount = 0
    }

    @inline(__always)
    private func failure(_ code: HTTPParseError.Code, at offset: Int) -> HTTPParseError {
        HTTPParseError(code, inResponse: !head.isRequest, offset: offset)
    }

    /// An error found in `line`: a CR anywhere in the line is reported as the bare CR it is,
    /// whatever check tripped first.
    private func lineFailure(_ code: HTTPParseError.Code, at offset: Int,
                             _ input: UnsafeRawBufferPointer, _ line: Range<Int>) -> HTTPParseError {
        if let cr = input.httpIndex(of: HTTPByte.cr, from: line.lowerBound, to: line.upperBound) {
            return failure(.bareCR, at: cr)
        }
        return failure(code, at: offset)
    }

    /// Continues parsing the head at the start of `input`. `requestMethod` is the method of the
    /// request a response answers (ignored for requests).
    mutating func parse(_ input: UnsafeRawBufferPointer, requestMethod: HTTPMethod) -> Result {
        while true {
            let limit = min(input.count, limits.maxHeadSize)
            guard let lf = input.httpIndex(of: HTTPByte.lf, from: scanned, to: limit) else {
                if input.count >= limits.maxHeadSize {
                    let code: HTTPParseError.Code = startLineDone || !head.isRequest ? .headTooLarge : .uriTooLong
                    return .error(failure(code, at: limit))
                }
                scanned = max(scanned, limit)
                return .needMore
            }
            // A line must end with CRLF; a bare LF (even an empty line "\n") is rejected.
            guard lf > lineStart, input[lf &- 1] == HTTPByte.cr else { return .error(failure(.bareLF, at: lf)) }
            let line = lineStart..<(lf &- 1)
            lineStart = lf &+ 1
            scanned = lineStart
            if !startLineDone {
                // RFC 9112 §2.2: empty lines before the start line are skipped (and count toward the limit).
                if line.isEmpty { continue }
                let error = head.isRequest ? parseRequestLine(input, line) : parseStatusLine(input, line)
                if let error { return .error(error) }
                head.startLine = line
                startLineDone = true
                continue
            }
            if line.isEmpty {
                head.length = lineStart
                if let error = finish(input, requestMethod: requestMethod) { return .error(error) }
                return .complete(headLength: lineStart)
            }
            guard head.fields.count < limits.maxFieldCount else {
                return .error(failure(.tooManyFields, at: line.lowerBound))
            }
            switch HTTPHeadParser.parseFieldLine(input, line) {
            case .error(let code, let offset):
                return .error(lineFailure(code, at: offset, input, line))
            case .field(let field):
                if let error = interpret(field, input) { return .error(error) }
                head.fields.append(field)
            }
        }
    }

    // MARK: Start lines

    /// `HTTP/` DIGIT `.` DIGIT: 1.0, or 1.1 for any minor version above 0 (RFC 9112 §2.3: an
    /// unknown minor version of HTTP/1 is processed as the highest one the recipient knows).
    private static func parseVersion(_ input: UnsafeRawBufferPointer, _ range: Range<Int>)
        -> (version: HTTPVersion?, error: HTTPParseError.Code?)
    {
        let p = range.lowerBound
        guard range.count == 8, input.httpEquals(p..<p &+ 5, "HTTP/"),
              HTTPByte.isDigit(input[p &+ 5]), input[p &+ 6] == HTTPByte.dot, HTTPByte.isDigit(input[p &+ 7])
        else { return (nil, .invalidVersion) }
        guard input[p &+ 5] == 0x31 else { return (nil, .unsupportedVersion) }
        return (input[p &+ 7] == 0x30 ? .http10 : .http11, nil)
    }

    /// request-line = method SP request-target SP HTTP-version (single spaces, RFC 9112 §3).
    private mutating func parseRequestLine(_ input: UnsafeRawBufferPointer, _ line: Range<Int>) -> HTTPParseError? {
        let start = line.lowerBound
        let end = line.upperBound
        let methodEnd = HTTPFieldValue.tokenEnd(input, start, end)
        guard methodEnd > start else { return lineFailure(.invalidMethod, at: start, input, line) }
        guard methodEnd < end else { return lineFailure(.invalidRequestLine, at: methodEnd, input, line) }
        guard input[methodEnd] == HTTPByte.space else { return lineFailure(.invalidMethod, at: methodEnd, input, line) }

        let targetStart = methodEnd &+ 1
        let targetClass = HTTPByteClass.target
        var p = targetStart
        while p < end && targetClass.contains(input[p]) { p &+= 1 }
        guard p < end else { return lineFailure(.invalidRequestLine, at: p, input, line) }
        guard input[p] == HTTPByte.space else { return lineFailure(.invalidRequestTarget, at: p, input, line) }
        guard p > targetStart else { return lineFailure(.invalidRequestLine, at: p, input, line) }
        let target = targetStart..<p

        let versionRange = (p &+ 1)..<end
        if input.httpIndex(of: HTTPByte.space, from: versionRange.lowerBound, to: end) != nil {
            return lineFailure(.invalidRequestLine, at: versionRange.lowerBound, input, line)
        }
        let (version, versionError) = HTTPHeadParser.parseVersion(input, versionRange)
        if let versionError { return lineFailure(versionError, at: versionRange.lowerBound, input, line) }

        let method = HTTPMethod.identify(input, start..<methodEnd)
        guard let classified = HTTPRequestTarget.classify(input, target, method: method) else {
            return failure(.invalidRequestTarget, at: target.lowerBound)
        }
        head.version = version!
        head.method = method
        head.methodRange = start..<methodEnd
        head.target = target
        head.targetForm = classified.form
        head.targetAuthority = classified.authority
        return nil
    }

    /// status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4). The SP after
    /// the code is also accepted missing when the reason is empty (`HTTP/1.1 200`): servers send it,
    /// and it cannot change where the message ends.
    private mutating func parseStatusLine(_ input: UnsafeRawBufferPointer, _ line: Range<Int>) -> HTTPParseError? {
        let p = line.lowerBound
        let end = line.upperBound
        guard line.count >= 12, input[p &+ 8] == HTTPByte.space else {
            return lineFailure(.invalidStatusLine, at: p, input, line)
        }
        let (version, versionError) = HTTPHeadParser.parseVersion(input, p..<p &+ 8)
        if let versionError { return lineFailure(versionError, at: p, input, line) }
        var status = 0
        for i in (p &+ 9)..<(p &+ 12) {
            let d = input[i] &- HTTPByte.zero
            guard d < 10 else { return lineFailure(.invalidStatusLine, at: i, input, line) }
            status = status &* 10 &+ Int(d)
        }
        guard status >= 100 && status <= 599 else { return lineFailure(.invalidStatusCode, at: p &+ 9, input, line) }
        var reason = end..<end
        if line.count > 12 {
            guard input[p &+ 12] == HTTPByte.space else { return lineFailure(.invalidStatusLine, at: p &+ 12, input, line) }
            let r = input.httpFieldContentEnd(from: p &+ 13, to: end)
            guard r == end else { return lineFailure(.invalidStatusLine, at: r, input, line) }
            reason = (p &+ 13)..<end
        }
        head.version = version!
        head.status = status
        head.reason = reason
        return nil
    }

    // MARK: Field lines

    /// field-line = field-name ":" OWS field-value OWS (RFC 9112 §5), without its CRLF. Shared with
    /// the trailer section.
    static func parseFieldLine(_ input: UnsafeRawBufferPointer, _ line: Range<Int>) -> FieldLine {
        let start = line.lowerBound
        let end = line.upperBound
        if HTTPByte.isWhitespace(input[start]) { return .error(.obsFold, offset: start) }
        let nameEnd = HTTPFieldValue.tokenEnd(input, start, end)
        guard nameEnd < end else { return .error(.invalidFieldName, offset: nameEnd) }
        let b = input[nameEnd]
        guard b == HTTPByte.colon else {
            if HTTPByte.isWhitespace(b) && nameEnd > start { return .error(.whitespaceBeforeColon, offset: nameEnd) }
            return .error(.invalidFieldName, offset: nameEnd)
        }
        guard nameEnd > start else { return .error(.invalidFieldName, offset: start) }

        let valueStart = HTTPFieldValue.skipWhitespace(input, nameEnd &+ 1, end)
        let p = input.httpFieldContentEnd(from: valueStart, to: end)
        guard p == end else { return .error(.invalidFieldValue, offset: p) }
        var valueEnd = end
        while valueEnd > valueStart && HTTPByte.isWhitespace(input[valueEnd &- 1]) { valueEnd &-= 1 }

        let name = start..<nameEnd
        return .field(HTTPField(name: name, value: valueStart..<valueEnd,
                                knownName: HTTPFieldName.identify(input, name)))
    }

    /// Takes what the proxy needs from a field as it is parsed.
    private mutating func interpret(_ field: HTTPField, _ input: UnsafeRawBufferPointer) -> HTTPParseError? {
        let value = field.value
        switch field.knownName {
        case .host:
            guard head.isRequest else { return nil }
            hostCount += 1
            guard hostCount == 1 else { return failure(.multipleHost, at: field.name.lowerBound) }
            guard HTTPRequestTarget.isValidAuthority(input, value, requirePort: false, allowEmpty: true) else {
                return failure(.invalidHost, at: value.lowerBound)
            }
            head.host = value

        case .contentLength:
            // RFC 9110 §8.6: a list of identical values may be taken as that one value.
            var error: HTTPParseError.Code?
            var length = head.contentLength
            var elements = 0
            _ = HTTPFieldValue.forEachElement(input, value) { element in
                elements += 1
                guard let n = HTTPFieldValue.contentLength(input, element) else {
                    error = .invalidContentLength
                    return false
                }
                if let current = length, current != n {
                    error = .conflictingContentLength
                    return false
                }
                length = n
                return true
            }
            if let error { return failure(error, at: value.lowerBound) }
            // A second value (equal, or it failed above): forwarded as one field (HAProxy merges them).
            if head.contentLength != nil || elements > 1 { head.contentLengthRepeated = true }
            head.contentLength = length

        case .transferEncoding:
            guard head.version == .http11 else { return failure(.transferEncodingInHTTP10, at: field.name.lowerBound) }
            head.hasTransferEncoding = true
            var error: HTTPParseError.Code?
            var codings = codingCount
            var chunkeds = chunkedCount
            var lastIsChunked = head.isChunked
            _ = HTTPFieldValue.forEachElement(input, value) { element in
                if element.isEmpty { return true }  // RFC 9110 §5.6.1: empty list elements are ignored
                let nameEnd = HTTPFieldValue.tokenEnd(input, element.lowerBound, element.upperBound)
                guard nameEnd > element.lowerBound else {
                    error = .invalidTransferEncoding
                    return false
                }
                let isChunked = input.httpEqualsLowercase(element.lowerBound..<nameEnd, "chunked")
                if nameEnd < element.upperBound {
                    // transfer-parameters; chunked has none.
                    guard !isChunked,
                          HTTPFieldValue.isValidParameters(input, nameEnd, element.upperBound, valueRequired: true)
                    else {
                        error = .invalidTransferEncoding
                        return false
                    }
                }
                codings += 1
                if isChunked {
                    chunkeds += 1
                    if chunkeds > 1 {
                        error = .chunkedAppliedTwice
                        return false
                    }
                }
                lastIsChunked = isChunked
                return true
            }
            if let error { return failure(error, at: value.lowerBound) }
            codingCount = codings
            chunkedCount = chunkeds
            head.isChunked = lastIsChunked

        case .connection:
            var options = head.connection
            _ = HTTPFieldValue.forEachElement(input, value) { element in
                // connection-option = token; an element that is not one names no field: skipped.
                guard !element.isEmpty,
                      HTTPFieldValue.tokenEnd(input, element.lowerBound, element.upperBound) == element.upperBound
                else { return true }
                if input.httpEqualsLowercase(element, "close") {
                    options.insert(.close)
                } else if input.httpEqualsLowercase(element, "keep-alive") {
                    options.insert(.keepAlive)
                } else if input.httpEqualsLowercase(element, "upgrade") {
                    options.insert(.upgrade)
                } else {
                    head.connectionTokens.append(element)
                }
                return true
            }
            head.connection = options

        case .upgrade:
            if head.upgrade == nil { head.upgrade = value }

        case .expect:
            guard head.isRequest else { return nil }
            var expects = head.expectsContinue
            _ = HTTPFieldValue.forEachElement(input, value) { element in
                if input.httpEqualsLowercase(element, "100-continue") { expects = true }
                return true
            }
            head.expectsContinue = expects

        case .te:
            guard head.isRequest else { return nil }
            var trailers = head.acceptsTrailers
            _ = HTTPFieldValue.forEachElement(input, value) { element in
                if input.httpEqualsLowercase(element, "trailers") { trailers = true }
                return true
            }
            head.acceptsTrailers = trailers

        default:
            break
        }
        return nil
    }

    // MARK: Framing

    /// Decides framing and connection persistence once every field is known (RFC 9112 §6.3, §9.3).
    private mutating func finish(_ input: UnsafeRawBufferPointer, requestMethod: HTTPMethod) -> HTTPParseError? {
        let at = head.startLine.lowerBound
        if head.hasTransferEncoding && codingCount == 0 { return failure(.invalidTransferEncoding, at: at) }
        let isHTTP11 = head.version == .http11
        if head.isRequest {
            guard hostCount > 0 || !isHTTP11 else { return failure(.missingHost, at: at) }
            // RFC 9112 §3.2.2: an absolute-form target's authority is the request's host. A Host
            // that names another would let rules and logs see one host and the server serve another:
            // refused, as HAProxy does.
            if head.targetForm == .absolute, let authority = head.targetAuthority, let host = head.host,
               !HTTPRequestTarget.sameAuthority(input, authority, host, scheme: head.target) {
                return failure(.hostMismatch, at: host.lowerBound)
            }
            if head.hasTransferEncoding {
                guard head.contentLength == nil else { return failure(.contentLengthWithTransferEncoding, at: at) }
                guard head.isChunked else { return failure(.chunkedNotFinal, at: at) }
                head.framing = .chunked
            } else if let length = head.contentLength {
                head.framing = .contentLength(length)
            } else {
                head.framing = .noBody
            }
            head.isUpgradeRequest = isHTTP11 && head.connection.contains(.upgrade) && head.upgrade != nil
            head.expectsContinue = head.expectsContinue && isHTTP11
        } else {
            let status = head.status
            if status == 101 || (requestMethod == .connect && status >= 200 && status < 300) {
                head.framing = .tunnel
            } else if requestMethod == .head || status < 200 || status == 204 || status == 304 {
                // Ended by the empty line whatever the framing fields say.
                head.framing = .noBody
            } else if head.hasTransferEncoding {
                guard head.contentLength == nil else { return failure(.contentLengthWithTransferEncoding, at: at) }
                head.framing = head.isChunked ? .chunked : .untilClose
            } else if let length = head.contentLength {
                head.framing = .contentLength(length)
            } else {
                head.framing = .untilClose
            }
        }
        switch head.framing {
        case .untilClose, .tunnel:
            head.keepAlive = false
        default:
            head.keepAlive = !head.connection.contains(.close)
                && (isHTTP11 || head.connection.contains(.keepAlive))
        }
        return nil
    }
}

extension UnsafeRawBufferPointer {
    /// The offset of the first `byte` in `from..<to`, or nil.
    @inline(__always)
    func httpIndex(of byte: UInt8, from: Int, to: Int) -> Int? {
        guard from < to, let base = baseAddress else { return nil }
        guard let hit = memchr(base + from, Int32(byte), to &- from) else { return nil }
        return base.distance(to: UnsafeRawPointer(hit))
    }
}
