/// Writes a head (and chunked framing) into an output buffer the caller owns: the forwarded request
/// or response, with hop-by-hop fields removed and the proxy's own fields added. No Foundation, no
/// allocation; when the output is too small, `overflowed` becomes true and nothing more is written.
///
///     var writer = HTTPHeadWriter(into: out)
///     writer.writeStartLine(head, from: input)
///     writer.writeFields(head, from: input, removing: .hopByHop)
///     writer.writeField(name: "X-Forwarded-For", value: clientAddressBytes)
///     writer.writeField(name: "Connection", value: "keep-alive")
///     writer.writeEndOfHead()
///     guard !writer.overflowed else { … }  // writer.count bytes of out are the head
public struct HTTPHeadWriter {
    /// Which fields `writeFields` leaves out.
    public struct Removal: OptionSet, Hashable, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// Connection, Keep-Alive, Proxy-Connection, TE, and every field `Connection` names
        /// (RFC 9110 §7.6.1). Write your own `Connection` after.
        public static let connectionOptions = Removal(rawValue: 1 << 0)
        /// Upgrade (keep it when forwarding an upgrade: remove only `connectionOptions`' others, and write
        /// `Connection: upgrade` yourself).
        public static let upgrade = Removal(rawValue: 1 << 1)
        /// Transfer-Encoding (when the proxy re-frames the body).
        public static let transferEncoding = Removal(rawValue: 1 << 2)
        /// Content-Length (when the proxy re-frames the body).
        public static let contentLength = Removal(rawValue: 1 << 3)
        /// Host (when the proxy writes its own).
        public static let host = Removal(rawValue: 1 << 4)

        /// Everything hop-by-hop for a proxy that passes the body's framing through unchanged.
        public static let hopByHop: Removal = [.connectionOptions, .upgrade]
    }

    public let buffer: UnsafeMutableRawBufferPointer
    /// Bytes written so far, from the start of `buffer`.
    public private(set) var count = 0
    /// Whether something did not fit (the output is then incomplete and must not be sent).
    public private(set) var overflowed = false

    public init(into buffer: UnsafeMutableRawBufferPointer) {
        self.buffer = buffer
    }

    /// The bytes written.
    public var written: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: buffer[0..<count])
    }

    // MARK: Raw output

    @inline(__always)
    private mutating func reserve(_ n: Int) -> Bool {
        if overflowed || buffer.count - count < n {
            overflowed = true
            return false
        }
        return true
    }

    /// Appends bytes.
    public mutating func write(_ bytes: UnsafeRawBufferPointer) {
        guard reserve(bytes.count) else { return }
        if let source = bytes.baseAddress, bytes.count > 0 {
            (buffer.baseAddress! + count).copyMemory(from: source, byteCount: bytes.count)
        }
        count += bytes.count
    }

    /// Appends `input[range]`.
    @inline(__always)
    public mutating func write(_ input: UnsafeRawBufferPointer, _ range: Range<Int>) {
        write(UnsafeRawBufferPointer(rebasing: input[range]))
    }

    /// Appends a literal.
    public mutating func write(_ string: StaticString) {
        write(UnsafeRawBufferPointer(start: string.utf8Start, count: string.utf8CodeUnitCount))
    }

    /// Appends one byte.
    public mutating func write(byte: UInt8) {
        guard reserve(1) else { return }
        buffer[count] = byte
        count += 1
    }

    /// Appends a number in decimal.
    public mutating func writeDecimal(_ value: UInt64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: enough for 20 digits
        let n = withUnsafeMutableBytes(of: &digits) { scratch -> Int in
            var v = value
            var i = scratch.count
            repeat {
                i -= 1
                scratch[i] = UInt8(truncatingIfNeeded: v % 10) &+ HTTPByte.zero
                v /= 10
            } while v > 0
            let length = scratch.count - i
            if reserve(length) {
                buffer.baseAddress!.advanced(by: count)
                    .copyMemory(from: scratch.baseAddress! + i, byteCount: length)
            }
            return length
        }
        if !overflowed { count += n }
    }

    /// Appends a number in lowercase hex (chunk sizes).
    public mutating func writeHex(_ value: UInt64) {
        var shift = 60
        while shift > 0 && (value >> UInt64(shift)) & 0xF == 0 { shift -= 4 }
        guard reserve(shift / 4 + 1) else { return }
        while shift >= 0 {
            let nibble = UInt8((value >> UInt64(shift)) & 0xF)
            buffer[count] = nibble < 10 ? HTTPByte.zero &+ nibble : 0x61 &+ nibble &- 10
            count += 1
            shift -= 4
        }
    }

    // MARK: Heads

    /// The request line (`method SP target SP version`) or status line (`version SP status SP reason`),
    /// with CRLF, rebuilt from the parsed parts (the version as received unless given).
    @inline(__always)
    public mutating func writeStartLine(_ head: borrowing HTTPHead, from input: UnsafeRawBufferPointer,
                                        version: HTTPVersion? = nil) {
        let v = version ?? head.version
        if head.isRequest {
            write(input, head.methodRange)
            write(byte: HTTPByte.space)
            write(input, head.target)
            write(v == .http11 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n")
        } else {
            write(v == .http11 ? "HTTP/1.1 " : "HTTP/1.0 ")
            writeDecimal(UInt64(head.status))
            write(byte: HTTPByte.space)
            write(input, head.reason)
            write("\r\n")
        }
    }

    /// A request line with another target (a rewritten path), and CRLF.
    public mutating func writeRequestLine(_ head: HTTPHead, from input: UnsafeRawBufferPointer,
                                          target: UnsafeRawBufferPointer, version: HTTPVersion? = nil) {
        write(input, head.methodRange)
        write(byte: HTTPByte.space)
        write(target)
        write((version ?? head.version) == .http11 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n")
    }

    /// Every field of `head` as `name: value\r\n`, in order, except those `removing` selects and
    /// those `exclude` returns true for.
    /// Field lines already written `name: value\r\n` and next to each other in the input are copied
    /// together, with one copy per run of kept lines.
    public mutating func writeFields(_ head: borrowing HTTPHead, from input: UnsafeRawBufferPointer,
                                     removing: Removal = .hopByHop,
                                     excluding exclude: (HTTPField) -> Bool = { _ in false }) {
        var run = 0..<0
        var contentLengthWritten = false
        for field in head.fields {
            if HTTPHeadWriter.isRemoved(field, head, input, removing) || exclude(field) { continue }
            if head.contentLengthRepeated && field.knownName == .contentLength {
                // `Content-Length: 5, 5` or two equal lines leave as one field, as HAProxy does.
                write(input, run)
                run = 0..<0
                if !contentLengthWritten, let length = head.contentLength { writeField(name: "content-length", decimal: length) }
                contentLengthWritten = true
                continue
            }
            let name = field.name
            let value = field.value
            if value.lowerBound == name.upperBound &+ 2 && input[name.upperBound &+ 1] == HTTPByte.space
                && input[value.upperBound] == HTTPByte.cr {
                // The line is exactly `name: value\r\n`.
                let line = name.lowerBound..<(value.upperBound &+ 2)
                if line.lowerBound == run.upperBound {
                    run = run.lowerBound..<line.upperBound
                    continue
                }
                write(input, run)
                run = line
            } else {
                write(input, run)
                run = 0..<0
                writeField(field, from: input)
            }
        }
        write(input, run)
    }

    /// Fields (trailers, say) as `name: value\r\n`, except those `exclude` returns true for.
    public mutating func writeFields(_ fields: [HTTPField], from input: UnsafeRawBufferPointer,
                                     excluding exclude: (HTTPField) -> Bool = { _ in false }) {
        for field in fields where !exclude(field) {
            writeField(field, from: input)
        }
    }

    private static func isRemoved(_ field: HTTPField, _ head: HTTPHead, _ input: UnsafeRawBufferPointer,
                                  _ removing: Removal) -> Bool {
        switch field.knownName {
        case .connection, .keepAlive, .proxyConnection, .te:
            return removing.contains(.connectionOptions)
        case .upgrade:
            return removing.contains(.upgrade)
        case .transferEncoding:
            return removing.contains(.transferEncoding)
        case .contentLength:
            return removing.contains(.contentLength)
        case .host:
            return removing.contains(.host)
        default:
            guard removing.contains(.connectionOptions), !head.connectionTokens.isEmpty else { return false }
            for token in head.connectionTokens where input.httpTokensEqual(token, field.name) { return true }
            return false
        }
    }

    /// One parsed field as `name: value\r\n`.
    public mutating func writeField(_ field: HTTPField, from input: UnsafeRawBufferPointer) {
        write(input, field.name)
        write(": ")
        write(input, field.value)
        write("\r\n")
    }

    /// `name: value\r\n`. The value must be valid field content (the caller's own bytes).
    public mutating func writeField(name: StaticString, value: UnsafeRawBufferPointer) {
        write(name)
        write(": ")
        write(value)
        write("\r\n")
    }

    /// `name: value\r\n` with a literal value.
    public mutating func writeField(name: StaticString, value: StaticString) {
        write(name)
        write(": ")
        write(value)
        write("\r\n")
    }

    /// `name: value\r\n` with a decimal value (Content-Length).
    public mutating func writeField(name: StaticString, decimal value: UInt64) {
        write(name)
        write(": ")
        writeDecimal(value)
        write("\r\n")
    }

    /// The empty line that ends a head.
    public mutating func writeEndOfHead() {
        write("\r\n")
    }

    // MARK: Chunked framing

    /// `size-in-hex\r\n`, for re-chunking. `size` must not be 0 (use `writeLastChunk`).
    public mutating func writeChunkHeader(size: UInt64) {
        precondition(size > 0, "a chunk of size 0 is the last chunk")
        writeHex(size)
        write("\r\n")
    }

    /// The CRLF after a chunk's data.
    public mutating func writeChunkDataEnd() {
        write("\r\n")
    }

    /// `0\r\n`, the trailer section given (field lines with their CRLFs, e.g. `input[parser.trailerSection]`),
    /// and the final `\r\n`.
    public mutating func writeLastChunk(trailerSection: UnsafeRawBufferPointer? = nil) {
        write("0\r\n")
        if let trailerSection { write(trailerSection) }
        write("\r\n")
    }
}
