import CLibEV
import ConfigModel
import HTTP1

/// One answer's compression (HAProxy's comp_ctx): made when a response is chosen for
/// compression, freed as soon as its last byte is written. An answer of known length up to
/// `WholeMessageDeflater.maximumLength` is gathered and deflated in one call by its loop's
/// libdeflate compressor; others stream through a zlib state of their own (about 256 KiB at the
/// default memlevel and window). `identity` has neither: its bytes pass through (counted as
/// bypassing the compressor).
final class HTTPCompressor {
    let algorithm: HTTPCompression.Algorithm
    private let stream: UnsafeMutablePointer<z_stream>?
    /// A whole-answer compression: the loop's compressor, the level, the body gathered so far,
    /// then the compressed bytes and how many of them are written.
    private let whole: WholeMessageDeflater?
    private let level: Int
    private var gathered: [UInt8] = []
    private var compressed: [UInt8]?
    private var compressedSent = 0
    /// Where the answer's body is.
    enum State {
        /// Body bytes are compressed as they come.
        case streaming
        /// The end of the bytes at hand: Z_SYNC_FLUSH, so the client gets what the server sent
        /// so far (HAProxy flushes at the end of each batch of data too).
        case flushing
        /// The body ended: Z_FINISH.
        case finishing
        /// The compressed stream is complete: the last chunk (with the server's trailers) follows.
        case lastChunk
    }
    var state = State.streaming
    /// Input was given since the last flush.
    var needsFlush = false
    /// The server's trailer section (rare), kept until the last chunk has room.
    var trailers: [UInt8] = []

    enum Flush { case none, sync, finish }

    /// `wholeLength`: the answer's Content-Length, when it has one.
    init?(_ algorithm: HTTPCompression.Algorithm, global: GlobalSettings, wholeLength: UInt64?, deflater: WholeMessageDeflater) {
        self.algorithm = algorithm
        level = global.compressionLevel
        if algorithm != .identity, let wholeLength, wholeLength <= UInt64(WholeMessageDeflater.maximumLength) {
            stream = nil
            whole = deflater
            gathered.reserveCapacity(Int(wholeLength))
            return
        }
        whole = nil
        let windowBits: Int32
        switch algorithm {
        case .identity:
            stream = nil
            return
        case .gzip: windowBits = Int32(global.zlibWindowSize) + 16
        case .deflate: windowBits = Int32(global.zlibWindowSize)
        case .rawDeflate: windowBits = -Int32(global.zlibWindowSize)
        }
        let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        s.initialize(to: z_stream())
        guard CLibEV_deflate_init(s, Int32(global.compressionLevel), windowBits, Int32(global.zlibMemLevel)) == Z_OK else {
            s.deallocate()
            return nil
        }
        stream = s
    }

    deinit {
        if let stream {
            deflateEnd(stream)
            stream.deallocate()
        }
    }

    /// Compresses `input` into `output`. Returns the input consumed, the output produced, and
    /// whether the requested flush (or the finish) is complete.
    func run(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, _ flush: Flush)
        -> (consumed: Int, produced: Int, done: Bool)
    {
        if let whole { return runWhole(whole, input, into: output, flush) }
        guard let stream else {
            let n = min(input.count, output.count)
            if n > 0 { output.baseAddress!.copyMemory(from: input.baseAddress!, byteCount: n) }
            return (n, n, n == input.count)
        }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
        stream.pointee.avail_in = UInt32(input.count)
        stream.pointee.next_out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        stream.pointee.avail_out = UInt32(output.count)
        let mode: Int32 = flush == .none ? Z_NO_FLUSH : flush == .sync ? Z_SYNC_FLUSH : Z_FINISH
        let result = deflate(stream, mode)
        let consumed = input.count - Int(stream.pointee.avail_in)
        let produced = output.count - Int(stream.pointee.avail_out)
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        switch flush {
        case .none: return (consumed, produced, stream.pointee.avail_in == 0)
        // A flush is complete when zlib had output room to spare (zlib's documented contract).
        case .sync: return (consumed, produced, result == Z_OK && stream.pointee.avail_out > 0)
        case .finish: return (consumed, produced, result == Z_STREAM_END)
        }
    }

    /// A whole answer: input is gathered (a flush has nothing to write); the finish compresses it
    /// once and writes the result as `output` has room.
    private func runWhole(_ deflater: WholeMessageDeflater, _ input: UnsafeRawBufferPointer,
                          into output: UnsafeMutableRawBufferPointer, _ flush: Flush) -> (consumed: Int, produced: Int, done: Bool) {
        switch flush {
        case .none:
            gathered.append(contentsOf: input)
            return (input.count, 0, true)
        case .sync:
            return (0, 0, true)
        case .finish:
            if compressed == nil {
                compressed = gathered.withUnsafeBytes { deflater.compress($0, algorithm: algorithm, level: level) } ?? []
                gathered = []
            }
            let bytes = compressed!
            let n = min(bytes.count - compressedSent, output.count)
            if n > 0 {
                bytes.withUnsafeBytes { output.baseAddress!.copyMemory(from: $0.baseAddress! + compressedSent, byteCount: n) }
                compressedSent += n
            }
            // Nothing compressed (out of memory for the compressor) ends the body empty: the
            // client sees a truncated gzip stream rather than bytes that are not gzip.
            return (0, n, compressedSent == bytes.count)
        }
    }
}

/// HAProxy's rules for when an answer is compressed (flt_http_comp.c): the request side picks the
/// algorithm from Accept-Encoding, the response side decides from the server's head.
enum HTTPCompressionRules {
    /// The algorithm an answer to this request may be compressed with: the first of the proxy's
    /// algorithms (the backend's when it has some) that the Accept-Encoding element with the
    /// highest q-value names (`*` names the first one; q=0 names none); else `identity` when it
    /// is listed; none for the old Mozilla/4 user agents HAProxy excludes.
    /// `fromHeader`: Accept-Encoding named it (what `compression offload` removes the header for).
    static func algorithm(_ head: borrowing HTTPHead, input: UnsafeRawBufferPointer, edits: HTTPHeadEdits,
                          algorithms: [HTTPCompression.Algorithm]) -> (algorithm: HTTPCompression.Algorithm, fromHeader: Bool)? {
        var excluded = false
        forEachField("user-agent", head, input, edits) { value in
            excluded = isExcludedUserAgent(value)
            return false
        }
        if excluded { return nil }
        var chosen: HTTPCompression.Algorithm?
        var best = 0
        forEachField("accept-encoding", head, input, edits) { value in
            _ = HTTPFieldValue.forEachElement(value, 0..<value.count) { element in
                guard !element.isEmpty else { return true }
                var tokenEnd = element.lowerBound
                while tokenEnd < element.upperBound, HTTPByteClass.token.contains(value[tokenEnd]) { tokenEnd += 1 }
                let q = qValue(value, tokenEnd..<element.upperBound)
                guard q > best else { return true }
                let token = HTTPRuleBytes.slice(value, element.lowerBound..<tokenEnd)
                let star = value[element.lowerBound] == UInt8(ascii: "*")
                for algorithm in algorithms {
                    if star || algorithm.token.utf8.withContiguousStorageIfAvailable({ token.elementsEqualIgnoringCase($0) }) ?? false {
                        chosen = algorithm
                        best = q
                        break
                    }
                }
                return true
            }
            return true
        }
        if let chosen { return (chosen, true) }
        return algorithms.contains(.identity) ? (.identity, false) : nil
    }

    /// The `q=` parameter after an element's token, in thousandths (1000 without one), as
    /// HAProxy's http_parse_qvalue reads it.
    static func qValue(_ value: UnsafeRawBufferPointer, _ parameters: Range<Int>) -> Int {
        var p = parameters.lowerBound
        let end = parameters.upperBound
        while true {
            while p < end, HTTPByte.isWhitespace(value[p]) { p += 1 }
            guard p < end, value[p] == UInt8(ascii: ";") else { return 1000 }
            p += 1
            while p < end, HTTPByte.isWhitespace(value[p]) { p += 1 }
            guard p < end else { return 1000 }
            if p + 1 < end, value[p] | 0x20 == UInt8(ascii: "q"), value[p + 1] == UInt8(ascii: "=") { break }
            while p < end, value[p] != UInt8(ascii: ";") { p += 1 }
        }
        p += 2
        // As HAProxy: no digit reads as 1, any digit before the point counts (capped at 1).
        guard p < end, HTTPByte.isDigit(value[p]) else { return 1000 }
        var q = Int(value[p] - UInt8(ascii: "0")) * 1000
        p += 1
        guard p < end, value[p] == UInt8(ascii: ".") else { return min(q, 1000) }
        p += 1
        var scale = 100
        while scale > 0, p < end, value[p] >= UInt8(ascii: "0"), value[p] <= UInt8(ascii: "9") {
            q += Int(value[p] - UInt8(ascii: "0")) * scale
            scale /= 10
            p += 1
        }
        return min(q, 1000)
    }

    /// HAProxy skips user agents announcing `Mozilla/4` unless they are MSIE 6 with XP SP2, or
    /// MSIE 7 and later.
    static func isExcludedUserAgent(_ v: UnsafeRawBufferPointer) -> Bool {
        guard v.count >= 9, HTTPRuleBytes.equals(HTTPRuleBytes.slice(v, 0..<9), HTTPRuleBytes.literal("Mozilla/4")) else { return false }
        if v.count < 31 || !HTTPRuleBytes.equals(HTTPRuleBytes.slice(v, 25..<30), HTTPRuleBytes.literal("MSIE ")) { return true }
        if v[30] < UInt8(ascii: "6") { return true }
        return v[30] == UInt8(ascii: "6") && (v.count < 54 || !HTTPRuleBytes.equals(HTTPRuleBytes.slice(v, 51..<54), HTTPRuleBytes.literal("SV1")))
    }

    /// Whether the server's answer is compressed (HAProxy's select_compression_response_header,
    /// before the http-response rules): HTTP/1.1 both ways, not HEAD, status 200 to 203, a body of
    /// known length (Content-Length above 0 and at least `minsize-res`, or chunked), no
    /// Content-Encoding, no `Cache-Control: no-transform`, at most one valid ETag, a Content-Type
    /// that is not multipart and starts with one of `compression type` when some are set.
    static func compresses(_ head: borrowing HTTPHead, input: UnsafeRawBufferPointer, method: HTTPMethod,
                           requestVersion: HTTPVersion, types: [String], minimumSize: Int) -> Bool {
        guard head.version == .http11, requestVersion == .http11, method != .head,
              (200...203).contains(head.status) else { return false }
        switch head.framing {
        case .chunked: break
        case .contentLength(let length):
            guard length > 0, minimumSize == 0 || length >= UInt64(minimumSize) else { return false }
        default: return false
        }
        var etags = 0
        var contentType: Range<Int>?
        for field in head.fields {
            let name = field.name
            if field.knownName == .transferEncoding {
                // A transfer coding besides chunked (`gzip, chunked`) stays the server's: the body
                // strata would compress is still coded, and the field would outlive the re-chunking.
                var onlyChunked = true
                _ = HTTPFieldValue.forEachElement(input, field.value) { element in
                    onlyChunked = element.isEmpty || HTTPRuleBytes.equalsIgnoringCase(HTTPRuleBytes.slice(input, element),
                                                                                      lowercase: HTTPRuleBytes.literal("chunked"))
                    return onlyChunked
                }
                if !onlyChunked { return false }
                continue
            }
            switch name.count {
            case 16 where HTTPRuleBytes.equalsIgnoringCase(HTTPRuleBytes.slice(input, name), lowercase: HTTPRuleBytes.literal("content-encoding")):
                return false
            case 13 where HTTPRuleBytes.equalsIgnoringCase(HTTPRuleBytes.slice(input, name), lowercase: HTTPRuleBytes.literal("cache-control")):
                var noTransform = false
                _ = HTTPFieldValue.forEachElement(input, field.value) { element in
                    var end = element.lowerBound
                    while end < element.upperBound, HTTPByteClass.token.contains(input[end]) { end += 1 }
                    noTransform = HTTPRuleBytes.equalsIgnoringCase(HTTPRuleBytes.slice(input, element.lowerBound..<end),
                                                                   lowercase: HTTPRuleBytes.literal("no-transform"))
                    return !noTransform
                }
                if noTransform { return false }
            case 4 where HTTPRuleBytes.equalsIgnoringCase(HTTPRuleBytes.slice(input, name), lowercase: HTTPRuleBytes.literal("etag")):
                etags += 1
                if etags > 1 || !isValidETag(HTTPRuleBytes.slice(input, field.value)) { return false }
            case 12 where HTTPRuleBytes.equalsIgnoringCase(HTTPRuleBytes.slice(input, name), lowercase: HTTPRuleBytes.literal("content-type")):
                if contentType == nil { contentType = field.value }
            default:
                break
            }
        }
        guard let contentType else { return types.isEmpty }
        let value = HTTPRuleBytes.slice(input, contentType)
        if value.count >= 9 && HTTPRuleBytes.hasPrefix(value, HTTPRuleBytes.literal("multipart"), ignoreCase: true) { return false }
        guard !types.isEmpty else { return true }
        for type in types {
            let matched = type.utf8.withContiguousStorageIfAvailable { t in
                value.count >= t.count && value.prefix(t.count).elementsEqualIgnoringCase(t)
            } ?? false
            if matched { return true }
        }
        return false
    }

    /// `"…"` or `W/"…"` (HAProxy's http_get_etag_type: anything else is invalid).
    static func isValidETag(_ v: UnsafeRawBufferPointer) -> Bool {
        var p = 0
        if v.count >= 2, v[0] == UInt8(ascii: "W"), v[1] == UInt8(ascii: "/") { p = 2 }
        return v.count - p >= 2 && v[p] == HTTPByte.quote && v[v.count - 1] == HTTPByte.quote
    }

    /// The response head's edits for a compressed answer (HAProxy's set_compression_header):
    /// Content-Length removed and `Transfer-Encoding: chunked` added (unless already chunked), a
    /// strong ETag made weak, `Accept-Encoding` added to Vary (to the last Vary field, or a new
    /// one) unless it is there, and Content-Encoding unless the algorithm is `identity`.
    /// False when a rewrite does not fit (the answer then goes uncompressed).
    static func editResponseHead(_ head: borrowing HTTPHead, input: UnsafeRawBufferPointer, edits: HTTPHeadEdits,
                                 algorithm: HTTPCompression.Algorithm) -> Bool {
        withUnsafePointer(to: head) { edits.editFields(of: $0) }
        var lastVary: Int?
        var varyHasAcceptEncoding = false
        var etagSeen = false
        var i = 0
        while i < edits.fields.count {
            let field = edits.fields[i]
            defer { i += 1 }
            if field.deleted { continue }
            if field.knownName == .contentLength {
                edits.delete(at: i)
                continue
            }
            let name = edits.resolve(field.name, input)
            if !etagSeen && HTTPRuleBytes.equalsIgnoringCase(name, lowercase: HTTPRuleBytes.literal("etag")) {
                etagSeen = true
                let value = edits.resolve(field.value, input)
                if value.first == HTTPByte.quote {
                    guard let prefix = edits.store(HTTPRuleBytes.literal("W/")), edits.store(value) != nil else { return false }
                    edits.replaceValue(at: i, with: HTTPHeadEdits.Bytes(Int(prefix.start)..<edits.storage.count, inStorage: true))
                }
            } else if HTTPRuleBytes.equalsIgnoringCase(name, lowercase: HTTPRuleBytes.literal("vary")) {
                let value = edits.resolve(field.value, input)
                _ = HTTPFieldValue.forEachElement(value, 0..<value.count) { element in
                    if HTTPRuleBytes.equalsIgnoringCase(HTTPRuleBytes.slice(value, element), lowercase: HTTPRuleBytes.literal("accept-encoding")) {
                        varyHasAcceptEncoding = true
                    }
                    return !varyHasAcceptEncoding
                }
                lastVary = i
            }
        }
        if !head.isChunked {
            guard let name = edits.store(HTTPRuleBytes.literal("Transfer-Encoding")),
                  let value = edits.store(HTTPRuleBytes.literal("chunked")) else { return false }
            edits.append(name: name, value: value, knownName: .transferEncoding)
        }
        if !varyHasAcceptEncoding {
            if let lastVary {
                let value = edits.resolve(edits.fields[lastVary].value, input)
                let start = edits.storage.count
                if value.isEmpty {
                    guard edits.store(HTTPRuleBytes.literal("Accept-Encoding")) != nil else { return false }
                } else {
                    guard edits.store(value) != nil, edits.store(HTTPRuleBytes.literal(", Accept-Encoding")) != nil else { return false }
                }
                edits.replaceValue(at: lastVary, with: HTTPHeadEdits.Bytes(start..<edits.storage.count, inStorage: true))
            } else {
                guard let name = edits.store(HTTPRuleBytes.literal("Vary")),
                      let value = edits.store(HTTPRuleBytes.literal("Accept-Encoding")) else { return false }
                edits.append(name: name, value: value, knownName: .other)
            }
        }
        if algorithm != .identity {
            guard let name = edits.store(HTTPRuleBytes.literal("Content-Encoding")) else { return false }
            let token: StaticString = algorithm == .gzip ? "gzip" : "deflate"
            guard let value = edits.store(HTTPRuleBytes.literal(token)) else { return false }
            edits.append(name: name, value: value, knownName: .other)
        }
        return !edits.failed
    }

    /// Removes every Accept-Encoding field from the request sent to the server (`compression offload`).
    static func removeAcceptEncoding(_ head: borrowing HTTPHead, input: UnsafeRawBufferPointer, edits: HTTPHeadEdits) {
        withUnsafePointer(to: head) { edits.editFields(of: $0) }
        for i in edits.fields.indices where !edits.fields[i].deleted {
            if HTTPRuleBytes.equalsIgnoringCase(edits.resolve(edits.fields[i].name, input), lowercase: HTTPRuleBytes.literal("accept-encoding")) {
                edits.delete(at: i)
            }
        }
    }

    /// Calls `body` with the value of each field named `lowercase`, as the rules left the head
    /// (their edits when they made some), until it returns false.
    private static func forEachField(_ lowercase: StaticString, _ head: borrowing HTTPHead, _ input: UnsafeRawBufferPointer,
                                     _ edits: HTTPHeadEdits, _ body: (UnsafeRawBufferPointer) -> Bool) {
        let name = HTTPRuleBytes.literal(lowercase)
        if edits.fieldsEdited {
            for field in edits.fields where !field.deleted {
                if HTTPRuleBytes.equalsIgnoringCase(edits.resolve(field.name, input), lowercase: name),
                   !body(edits.resolve(field.value, input)) { return }
            }
        } else {
            for field in head.fields where HTTPRuleBytes.equalsIgnoringCase(HTTPRuleBytes.slice(input, field.name), lowercase: name) {
                if !body(HTTPRuleBytes.slice(input, field.value)) { return }
            }
        }
    }
}

extension Collection where Element == UInt8 {
    /// ASCII case-insensitive equality.
    fileprivate func elementsEqualIgnoringCase<Other: Collection>(_ other: Other) -> Bool where Other.Element == UInt8 {
        guard count == other.count else { return false }
        return zip(self, other).allSatisfy { HTTPByte.lowercased($0) == HTTPByte.lowercased($1) }
    }
}
