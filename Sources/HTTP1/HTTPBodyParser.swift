/// Delimits a body once the head is known: Content-Length, chunked (with extensions and trailers),
/// until close. Reports payload as ranges of the input, and chunked framing as actions of its own,
/// so that the proxy can pass the framing through untouched or drop it and re-chunk.
package struct HTTPBodyParser {
    enum State: Equatable {
        /// Content-Length body (or no body: 0), that many bytes left.
        case contentLength(UInt64)
        /// Expecting a chunk-size line.
        case chunkLine
        /// Inside a chunk's data, that many bytes left.
        case chunkData(UInt64)
        /// Expecting the CRLF after chunk data.
        case chunkDataEnd
        /// After the last chunk's line: field lines until an empty line.
        case trailers
        /// Everything until the connection closes (a response without length, or a tunnel).
        case untilClose
        /// The message is complete.
        case done
    }

    let limits: HTTPParserLimits
    let isRequest: Bool
    private(set) var state: State = .done
    /// Where the search for the next LF resumes (chunk line, trailer lines).
    private var scanned = 0
    /// Start of the trailer line being scanned, and of the trailer section.
    private var lineStart = 0
    private var trailerStart = 0
    /// The trailer fields of the last chunked message (ranges into the input of the call that
    /// returned `.messageComplete`).
    private(set) var trailerFields: [HTTPField] = []
    /// The trailer field lines (each with its CRLF), without the last chunk's line and the final CRLF.
    private(set) var trailerSection: Range<Int> = 0..<0

    init(isRequest: Bool, limits: HTTPParserLimits) {
        self.isRequest = isRequest
        self.limits = limits
    }

    @inline(__always)
    private func failure(_ code: HTTPParseError.Code, at offset: Int) -> HTTPParseAction {
        .error(HTTPParseError(code, inResponse: !isRequest, offset: offset))
    }

    mutating func start(_ framing: HTTPFraming) {
        scanned = 0
        trailerFields.removeAll(keepingCapacity: true)
        trailerSection = 0..<0
        switch framing {
        case .noBody: state = .contentLength(0)
        case .contentLength(let length): state = .contentLength(length)
        case .chunked: state = .chunkLine
        case .untilClose, .tunnel: state = .untilClose
        }
    }

    mutating func startTunnel() {
        state = .untilClose
    }

    /// Payload bytes still expected before the next framing element: the rest of a Content-Length
    /// body or of a chunk's data. Nil when the parser is not inside counted payload.
    var remaining: UInt64? {
        switch state {
        case .contentLength(let n), .chunkData(let n): return n
        default: return nil
        }
    }

    /// Accounts for payload the caller moved without showing it to the parser (splice).
    mutating func skip(_ count: Int) {
        precondition(count >= 0)
        switch state {
        case .contentLength(let n):
            precondition(UInt64(count) <= n, "skipped past the end of the body")
            state = .contentLength(n - UInt64(count))
        case .chunkData(let n):
            precondition(UInt64(count) <= n, "skipped past the end of the chunk")
            state = n == UInt64(count) ? .chunkDataEnd : .chunkData(n - UInt64(count))
        case .untilClose:
            break
        default:
            preconditionFailure("skipBody outside payload")
        }
    }

    mutating func parse(_ input: UnsafeRawBufferPointer) -> HTTPParseAction {
        switch state {
        case .contentLength(let remaining):
            if remaining == 0 {
                state = .done
                return .messageComplete(framingLength: 0)
            }
            if input.isEmpty { return .needMore }
            let n = remaining < UInt64(input.count) ? Int(remaining) : input.count
            state = .contentLength(remaining - UInt64(n))
            return .body(0..<n)

        case .chunkData(let remaining):
            if input.isEmpty { return .needMore }
            let n = remaining < UInt64(input.count) ? Int(remaining) : input.count
            state = UInt64(n) == remaining ? .chunkDataEnd : .chunkData(remaining - UInt64(n))
            return .body(0..<n)

        case .chunkDataEnd:
            if input.count >= 2 {
                guard input[0] == HTTPByte.cr else { return failure(.missingChunkDataCRLF, at: 0) }
                guard input[1] == HTTPByte.lf else { return failure(.missingChunkDataCRLF, at: 1) }
                state = .chunkLine
                scanned = 0
                return .chunkDataEnd
            }
            if input.count == 1 && input[0] != HTTPByte.cr { return failure(.missingChunkDataCRLF, at: 0) }
            return .needMore

        case .chunkLine:
            return parseChunkLine(input)

        case .trailers:
            return parseTrailers(input)

        case .untilClose:
            return input.isEmpty ? .needMore : .body(0..<input.count)

        case .done:
            return .messageComplete(framingLength: 0)
        }
    }

    /// chunk = chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1), at the start of `input`.
    private mutating func parseChunkLine(_ input: UnsafeRawBufferPointer) -> HTTPParseAction {
        let limit = min(input.count, limits.maxChunkLineSize)
        guard let lf = input.httpIndex(of: HTTPByte.lf, from: scanned, to: limit) else {
            if input.count >= limits.maxChunkLineSize { return failure(.chunkLineTooLong, at: limit) }
            scanned = max(scanned, limit)
            return .needMore
        }
        let end = lf &- 1
        guard lf > 0, input[end] == HTTPByte.cr else { return failure(.bareLF, at: lf) }
        if let cr = input.httpIndex(of: HTTPByte.cr, from: 0, to: end) { return failure(.bareCR, at: cr) }

        let max = UInt64(Int64.max)
        var size: UInt64 = 0
        var p = 0
        while p < end, let digit = HTTPByte.hexValue(input[p]) {
            guard size <= (max - UInt64(digit)) >> 4 else { return failure(.chunkSizeOverflow, at: p) }
            size = size << 4 | UInt64(digit)
            p &+= 1
        }
        guard p > 0 else { return failure(.invalidChunkSize, at: 0) }
        if p < end {
            let b = input[p]
            guard b == HTTPByte.semicolon || HTTPByte.isWhitespace(b) else { return failure(.invalidChunkSize, at: p) }
            guard HTTPFieldValue.isValidParameters(input, p, end, valueRequired: false) else {
                return failure(.invalidChunkExtension, at: p)
            }
        }
        scanned = 0
        if size == 0 {
            // The last chunk: it, the trailer section and the final CRLF are consumed together by
            // `.messageComplete`, once all of them are here.
            state = .trailers
            trailerStart = lf &+ 1
            lineStart = trailerStart
            scanned = trailerStart
            return parseTrailers(input)
        }
        state = .chunkData(size)
        return .chunkHeader(size: size, lineLength: lf &+ 1)
    }

    /// trailer-section = *( field-line CRLF ), then CRLF. Validated like head fields; the fields that
    /// frame or route a message are refused (see `HTTPParseError.Code.forbiddenTrailerField`).
    private mutating func parseTrailers(_ input: UnsafeRawBufferPointer) -> HTTPParseAction {
        while true {
            let limit = min(input.count, limits.maxHeadSize)
            guard let lf = input.httpIndex(of: HTTPByte.lf, from: scanned, to: limit) else {
                if input.count >= limits.maxHeadSize { return failure(.trailersTooLarge, at: limit) }
                scanned = max(scanned, limit)
                return .needMore
            }
            guard lf > lineStart, input[lf &- 1] == HTTPByte.cr else { return failure(.bareLF, at: lf) }
            let line = lineStart..<(lf &- 1)
            lineStart = lf &+ 1
            scanned = lineStart
            if line.isEmpty {
                trailerSection = trailerStart..<line.lowerBound
                state = .done
                return .messageComplete(framingLength: lineStart)
            }
            guard trailerFields.count < limits.maxFieldCount else { return failure(.tooManyFields, at: line.lowerBound) }
            switch HTTPHeadParser.parseFieldLine(input, line) {
            case .error(let code, let offset):
                if let cr = input.httpIndex(of: HTTPByte.cr, from: line.lowerBound, to: line.upperBound) {
                    return failure(.bareCR, at: cr)
                }
                return failure(code, at: offset)
            case .field(let field):
                switch field.knownName {
                case .contentLength, .transferEncoding, .host:
                    return failure(.forbiddenTrailerField, at: field.name.lowerBound)
                default:
                    trailerFields.append(field)
                }
            }
        }
    }
}
