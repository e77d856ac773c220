import CLibEV

/// The HTTP/1.1 bytes a stream makes from the frames it receives, for its session to read: the
/// head the stream wrote, then the DATA payload as it came, in chunks when the message's length is
/// not known (an `H2Stream`'s request, an `H2ServerStream`'s answer).
struct H2InboundMessage {
    private(set) var bytes: [UInt8] = []
    private var read = 0
    /// The body goes chunked (set with the head that says so).
    var chunked = false
    /// DATA payload handed to the session but not yet acknowledged (WINDOW_UPDATE).
    private var unacknowledged = 0

    var available: Int { bytes.count - read }

    mutating func append(head: [UInt8]) { bytes.append(contentsOf: head) }

    mutating func append<C: Collection>(text: C) where C.Element == UInt8 { bytes.append(contentsOf: text) }

    /// A DATA frame's payload.
    mutating func append(data: UnsafeBufferPointer<UInt8>) {
        if chunked {
            bytes.append(contentsOf: String(data.count, radix: 16).utf8)
            bytes.append(contentsOf: "\r\n".utf8)
            bytes.append(contentsOf: data)
            bytes.append(contentsOf: "\r\n".utf8)
        } else {
            bytes.append(contentsOf: data)
        }
        unacknowledged += data.count
    }

    /// END_STREAM (after the payload, or the trailer section the caller appended).
    mutating func endChunks() {
        if chunked { bytes.append(contentsOf: "0\r\n\r\n".utf8) }
    }

    /// Copies up to `count` bytes to `buffer`: the count, and how many DATA bytes to acknowledge.
    mutating func take(_ buffer: UnsafeMutableRawPointer, _ count: Int) -> (count: Int, acknowledge: Int) {
        let n = min(count, available)
        guard n > 0 else { return (0, 0) }
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress! + read, byteCount: n) }
        read += n
        if read == bytes.count {
            bytes.removeAll(keepingCapacity: read <= 65536)
            read = 0
        }
        let acknowledge = min(unacknowledged, n)
        unacknowledged -= acknowledge
        return (n, acknowledge)
    }
}

/// Body bytes a stream sends as DATA frames (an `H2Stream`'s answer, an `H2ServerStream`'s
/// request), taken by libnghttp2's data provider, and the trailers that end them.
struct H2OutboundBody {
    private var bytes: [UInt8] = []
    private var start = 0
    /// No more bytes will come.
    var done = false
    var trailers: [(name: [UInt8], value: [UInt8])] = []
    /// libnghttp2 asked for bytes there were none of: resume the stream when some come.
    var deferred = false
    /// The writer was refused for lack of room: wake it when the body drains.
    var writerWaiting = false

    /// Body bytes held before the writer is told to wait.
    static let limit = 65536

    var isFull: Bool { bytes.count - start >= H2OutboundBody.limit }
    /// Every byte given is sent.
    var isDrained: Bool { start == bytes.count }

    mutating func append(_ raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw) }

    /// What libnghttp2's read callback returns for up to `length` bytes (the DATA flags set), and
    /// whether the waiting writer should be woken and the trailers submitted now.
    mutating func read(_ buffer: UnsafeMutablePointer<UInt8>, _ length: Int,
                       _ flags: UnsafeMutablePointer<UInt32>) -> (result: Int, wakeWriter: Bool, submitTrailers: Bool) {
        let n = min(length, bytes.count - start)
        var wake = false
        if n > 0 {
            bytes.withUnsafeBytes { UnsafeMutableRawPointer(buffer).copyMemory(from: $0.baseAddress! + start, byteCount: n) }
            start += n
            if start == bytes.count {
                bytes.removeAll(keepingCapacity: true)
                start = 0
            }
            if writerWaiting && !isFull {
                writerWaiting = false
                wake = true
            }
        }
        if done && isDrained {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            if !trailers.isEmpty { flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue }
            return (n, wake, !trailers.isEmpty)
        }
        if n == 0 {
            deferred = true
            return (Int(NGHTTP2_ERR_DEFERRED.rawValue), wake, false)
        }
        return (n, wake, false)
    }
}
