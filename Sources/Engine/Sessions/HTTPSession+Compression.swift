import HTTP1
import CLibEV
import ConfigModel
import Glibc

/// `compression …` (HAProxy's compression filter): the request chooses the algorithm, the
/// response head decides, and the body is deflated from `serverIn` into `clientOut` as chunks.
/// While an answer is compressed, `[serverIn.start, responseParsed)` holds only body bytes not
/// yet given to zlib (framing is dropped as it is parsed): they wait there, with the server's
/// reads, while `clientOut` has no room.
extension HTTPSession {
    /// With the request's head and its backend: the algorithm Accept-Encoding allows, and with
    /// `compression offload` the request goes to the server without Accept-Encoding.
    func chooseCompression(_ input: UnsafeRawBufferPointer, frontend: Frontend, backend: Backend, scratch: HTTPRuleScratch) {
        let front = frontend.proxy.http.compression
        let back = backend.proxy.http.compression
        guard front != nil || back != nil else { return }
        let algorithms = back.map(\.algorithms).flatMap { $0.isEmpty ? nil : $0 } ?? front?.algorithms ?? []
        guard !algorithms.isEmpty,
              let chosen = HTTPCompressionRules.algorithm(requestParser.head, input: input, edits: scratch.request, algorithms: algorithms)
        else { return }
        transaction.compressionAlgorithm = chosen.algorithm
        if chosen.fromHeader && (front?.offload == true || back?.offload == true) {
            HTTPCompressionRules.removeAcceptEncoding(requestParser.head, input: input, edits: scratch.request)
        }
    }

    /// Whether the server's answer is to be compressed (read before the http-response rules,
    /// as HAProxy does).
    func responseCompresses(_ input: UnsafeRawBufferPointer) -> Bool {
        guard transaction.compressionAlgorithm != nil else { return false }
        // `maxcompcpuusage`: no new compression while the loops are busier than that (HAProxy's
        // idle check; strata measures the loops' idle time once a second).
        if let usage = generation?.config.config.global.maxCompressionCPUUsage, usage < 100,
           worker.engine.metrics.rates.loopsIdlePercent < 100 - usage { return false }
        let front = frontend?.proxy.http.compression
        let back = backend?.proxy.http.compression
        let types = back.map(\.types).flatMap { $0.isEmpty ? nil : $0 } ?? front?.types ?? []
        let minimumSize = back.map(\.minimumSize).flatMap { $0 == 0 ? nil : $0 } ?? front?.minimumSize ?? 0
        return HTTPCompressionRules.compresses(responseParser.head, input: input, method: transaction.method,
                                               requestVersion: transaction.version, types: types, minimumSize: minimumSize)
    }

    /// Starts compressing the answer whose head is being written: its compressor and the head's
    /// edits. An answer zlib cannot start for goes as it is (HAProxy's); false when the head's
    /// rewrite does not fit (its edits are then half made).
    func startCompression(_ input: UnsafeRawBufferPointer, scratch: HTTPRuleScratch) -> Bool {
        var length: UInt64?
        if case .contentLength(let n) = responseParser.head.framing { length = n }
        guard let algorithm = transaction.compressionAlgorithm, let global = generation?.config.config.global,
              let compressor = HTTPCompressor(algorithm, global: global, wholeLength: length, deflater: worker.wholeMessageDeflater)
        else { return true }
        guard HTTPCompressionRules.editResponseHead(responseParser.head, input: input, edits: scratch.response, algorithm: algorithm) else {
            return false
        }
        transaction.compressor = compressor
        return true
    }

    /// Moves the compressed answer along as far as `clientOut`'s room allows: the body bytes
    /// waiting, then what the parser finds next, a flush at the end of the bytes at hand, the
    /// finish and the last chunk at the end of the body.
    func pumpCompression() {
        guard let z = transaction.compressor else { return }
        while phase != .closed {
            switch z.state {
            case .flushing:
                guard emitCompressed(z, UnsafeRawBufferPointer(start: nil, count: 0), .sync).done else { return }
                z.needsFlush = false
                z.state = .streaming
            case .finishing:
                guard emitCompressed(z, UnsafeRawBufferPointer(start: nil, count: 0), .finish).done else { return }
                z.state = .lastChunk
            case .lastChunk:
                finishCompressedAnswer(z)
                return
            case .streaming:
                if responseParsed > serverIn.start, let base = serverIn.base {
                    let waiting = UnsafeRawBufferPointer(start: base + serverIn.start, count: responseParsed - serverIn.start)
                    serverIn.start += emitCompressed(z, waiting, .none).consumed
                    if serverIn.start < responseParsed { return }
                }
                let input = UnsafeRawBufferPointer(start: serverIn.base.map { $0 + responseParsed }, count: serverIn.end - responseParsed)
                let action = responseParser.parse(input, requestMethod: transaction.method)
                switch action {
                case .needMore:
                    guard z.needsFlush else { return }
                    z.state = .flushing
                case .body(let range):
                    responseParsed += range.count
                    z.needsFlush = true
                case .messageComplete(let framing):
                    let trailers = responseParser.trailerSection
                    if !trailers.isEmpty { z.trailers = Array(input[trailers]) }
                    responseParsed += framing
                    serverIn.start = responseParsed
                    z.state = .finishing
                case .error(let error):
                    responseFailed(error, input: input)
                    return
                default:
                    // Chunk framing: dropped, the answer is chunked anew.
                    responseParsed += action.consumed
                    serverIn.start = responseParsed
                }
            }
        }
    }

    /// Compresses `input` into a chunk at the end of `clientOut`. Returns the input consumed and
    /// whether the flush asked for is complete; nothing happens while `clientOut` lacks room.
    private func emitCompressed(_ z: HTTPCompressor, _ input: UnsafeRawBufferPointer, _ flush: HTTPCompressor.Flush)
        -> (consumed: Int, done: Bool)
    {
        let pool = loop.buffers
        let out = clientOut.take(pool)
        // The chunk-size line (8 hex digits cover any buffer size) and the CRLF after the data.
        let lineRoom = 10
        let room = pool.size - clientOut.end - lineRoom - 2
        guard room >= 64 else { return (0, false) }
        let chunk = out + clientOut.end
        let result = z.run(input, into: UnsafeMutableRawBufferPointer(start: chunk + lineRoom, count: room), flush)
        if result.produced > 0 {
            var digits = 1
            while result.produced >> (4 * digits) > 0 { digits += 1 }
            let lineLength = digits + 2
            if lineLength < lineRoom { memmove(chunk + lineLength, chunk + lineRoom, result.produced) }
            for i in 0..<digits {
                let nibble = UInt8((result.produced >> (4 * (digits - 1 - i))) & 0xF)
                chunk.storeBytes(of: HTTPRuleBytes.lowerHex(nibble), toByteOffset: i, as: UInt8.self)
            }
            chunk.storeBytes(of: HTTPByte.cr, toByteOffset: digits, as: UInt8.self)
            chunk.storeBytes(of: 0x0A, toByteOffset: digits + 1, as: UInt8.self)
            chunk.storeBytes(of: HTTPByte.cr, toByteOffset: lineLength + result.produced, as: UInt8.self)
            chunk.storeBytes(of: 0x0A, toByteOffset: lineLength + result.produced + 1, as: UInt8.self)
            let total = lineLength + result.produced + 2
            clientOut.end += total
            transaction.bytesToClient += UInt64(total)
            countOut(total)
        }
        if result.consumed > 0 || result.produced > 0 {
            if z.algorithm == .identity {
                frontend?.counters[loop].compressionBypassed += result.consumed
                backend?.counters[loop].compressionBypassed += result.consumed
            } else {
                frontend?.counters[loop].compressionIn += result.consumed
                backend?.counters[loop].compressionIn += result.consumed
                frontend?.counters[loop].compressionOut += result.produced
                backend?.counters[loop].compressionOut += result.produced
            }
        }
        return (result.consumed, result.done)
    }

    /// The last chunk and the server's trailers: the answer is complete, zlib's state freed.
    private func finishCompressedAnswer(_ z: HTTPCompressor) {
        let pool = loop.buffers
        let out = clientOut.take(pool)
        var writer = HTTPHeadWriter(into: UnsafeMutableRawBufferPointer(start: out + clientOut.end, count: pool.size - clientOut.end))
        z.trailers.withUnsafeBytes { writer.writeLastChunk(trailerSection: $0.isEmpty ? nil : $0) }
        guard !writer.overflowed else { return }  // room comes as clientOut drains
        clientOut.end += writer.count
        transaction.bytesToClient += UInt64(writer.count)
        countOut(writer.count)
        frontend?.counters[loop].compressedResponses += 1
        backend?.counters[loop].compressedResponses += 1
        transaction.compressor = nil
        transaction.responseComplete = true
    }
}
