#if canImport(Glibc)
import Glibc
#endif

/// The PROXY protocol (haproxy.org's proxy-protocol.txt, versions 1 and 2): the header a load
/// balancer in front puts at the start of a connection to carry the client's addresses.
/// Pure values over bytes, no I/O: the parser reads untrusted input (fuzz/build.sh builds this
/// module alone for libFuzzer) and the writer makes what `send-proxy*` sends.

/// An address and port a header carries, in network byte order (4 bytes for IPv4, 16 for IPv6).
public struct ProxyAddress: Hashable, Sendable {
    public var bytes: [UInt8]
    public var port: UInt16

    public init(bytes: [UInt8], port: UInt16) {
        precondition(bytes.count == 4 || bytes.count == 16)
        self.bytes = bytes
        self.port = port
    }

    public var isV6: Bool { bytes.count == 16 }

    /// IPv4 as an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), IPv6 unchanged.
    public var mappedV6: [UInt8] {
        isV6 ? bytes : [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + bytes
    }
}

/// A complete header: what it says and how many bytes it took.
public struct ProxyHeader: Hashable, Sendable {
    /// 1 (text) or 2 (binary).
    public var version: Int
    /// The client's and the proxy's addresses; nil for v1 `UNKNOWN`, v2 `LOCAL` and the v2
    /// families strata does not carry (UNSPEC, UDP, UNIX): the connection keeps its own.
    public var source: ProxyAddress?
    public var destination: ProxyAddress?
    /// Bytes of the stream the header took (what follows is the client's payload).
    public var length: Int
    /// v2's PP2_TYPE_AUTHORITY (the host name the client used), when present.
    public var authority: [UInt8]?
    /// v2's TLVs in the order they came (`fc_pp_tlv`; the CRC32C one too).
    public var tlvs: [ProxyHeaderWriter.TLV]

    public init(version: Int, source: ProxyAddress?, destination: ProxyAddress?, length: Int, authority: [UInt8]? = nil,
                tlvs: [ProxyHeaderWriter.TLV] = []) {
        self.version = version
        self.source = source
        self.destination = destination
        self.length = length
        self.authority = authority
        self.tlvs = tlvs
    }

    /// The value of the first TLV of `type` (v2), nil without one.
    public func tlv(_ type: UInt8) -> [UInt8]? {
        tlvs.first { $0.type == type }?.value
    }
}

/// Why a header was refused (the connection is closed and counted).
public enum ProxyHeaderError: String, Hashable, Sendable {
    /// Neither `PROXY ` nor the v2 signature.
    case notProxy = "Received something which does not look like a PROXY protocol header"
    /// v1: no CRLF within 107 bytes; v2: longer than the limit.
    case tooLong = "PROXY protocol header is too long"
    /// v1: a protocol, address or port that does not parse.
    case malformedV1 = "Received an invalid PROXY protocol header"
    /// v2: a version other than 2, or a command other than LOCAL and PROXY.
    case unsupportedVersion = "Received an unsupported PROXY protocol version or command"
    /// v2: an address block shorter than its family needs, a TLV overrunning the header, a
    /// unique ID over 128 bytes, a checksum that does not match.
    case malformedV2 = "Received an invalid PROXY protocol v2 header"
}

public enum ProxyHeaderParse: Hashable, Sendable {
    /// What was given is the start of a header: more bytes are needed.
    case needMore
    case complete(ProxyHeader)
    case invalid(ProxyHeaderError)
}

public enum ProxyHeaderParser {
    /// v1's longest line, CRLF included (the specification's 107 bytes).
    public static let maxV1Length = 107
    /// The 12 bytes every v2 header starts with.
    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix: [UInt8] = Array("PROXY ".utf8)

    /// Parses the start of a connection. `maxLength` bounds a v2 header (HAProxy reads it into one
    /// buffer: `tune.bufsize`); v1 is bounded by its own 107 bytes. Every answer depends only on
    /// the bytes given: feeding more bytes of the same stream never turns `invalid` or
    /// `complete` into something else.
    public static func parse(_ input: UnsafeRawBufferPointer, maxLength: Int = 16384) -> ProxyHeaderParse {
        let n = input.count
        if n == 0 { return .needMore }
        if input[0] == v2Signature[0] {
            for i in 0..<min(n, 12) where input[i] != v2Signature[i] { return .invalid(.notProxy) }
            if n < 16 { return .needMore }
            return parseV2(input, maxLength: maxLength)
        }
        for i in 0..<min(n, v1Prefix.count) where input[i] != v1Prefix[i] { return .invalid(.notProxy) }
        return parseV1(input)
    }

    // MARK: version 1

    private static func parseV1(_ input: UnsafeRawBufferPointer) -> ProxyHeaderParse {
        let limit = min(input.count, maxV1Length)
        var end = -1
        var i = v1Prefix.count
        while i < limit {
            let c = input[i]
            if c == 0x0A {
                // A bare LF is not a line end: the line is malformed.
                guard i > 0, input[i - 1] == 0x0D else { return .invalid(.malformedV1) }
                end = i - 1
                break
            }
            i += 1
        }
        if end < 0 {
            return input.count >= maxV1Length ? .invalid(.tooLong) : .needMore
        }
        let length = end + 2
        // The words between "PROXY " and CRLF, separated by single spaces.
        let line = UnsafeRawBufferPointer(rebasing: input[v1Prefix.count..<end])
        var words: [UnsafeRawBufferPointer] = []
        var start = 0
        for j in 0...line.count {
            if j == line.count || line[j] == UInt8(ascii: " ") {
                words.append(UnsafeRawBufferPointer(rebasing: line[start..<j]))
                start = j + 1
                if words.count > 5 { return .invalid(.malformedV1) }
            }
        }
        guard let proto = words.first else { return .invalid(.malformedV1) }
        if equal(proto, "UNKNOWN") {
            // The rest of the line is to be ignored (the specification's rule).
            return .complete(ProxyHeader(version: 1, source: nil, destination: nil, length: length))
        }
        let v6: Bool
        if equal(proto, "TCP4") { v6 = false } else if equal(proto, "TCP6") { v6 = true } else { return .invalid(.malformedV1) }
        guard words.count == 5,
              let src = address(words[1], v6: v6), let dst = address(words[2], v6: v6),
              let sport = port(words[3]), let dport = port(words[4])
        else { return .invalid(.malformedV1) }
        return .complete(ProxyHeader(version: 1, source: ProxyAddress(bytes: src, port: sport),
                                     destination: ProxyAddress(bytes: dst, port: dport), length: length))
    }

    private static func equal(_ word: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        let t = UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        return word.count == t.count && word.elementsEqual(t)
    }

    /// A decimal port 0…65535, one to five digits.
    private static func port(_ word: UnsafeRawBufferPointer) -> UInt16? {
        guard (1...5).contains(word.count) else { return nil }
        var v = 0
        for c in word {
            let d = Int(c) - 48
            guard d >= 0 && d < 10 else { return nil }
            v = v * 10 + d
        }
        return v <= 65535 ? UInt16(v) : nil
    }

    /// An IPv4 (dotted quad) or IPv6 address in text, through inet_pton.
    private static func address(_ word: UnsafeRawBufferPointer, v6: Bool) -> [UInt8]? {
        guard !word.isEmpty, word.count < 46 else { return nil }
        var text = [CChar](repeating: 0, count: 48)
        for (k, c) in word.enumerated() {
            guard c != 0 else { return nil }
            text[k] = CChar(bitPattern: c)
        }
        var out = [UInt8](repeating: 0, count: v6 ? 16 : 4)
        let ok = out.withUnsafeMutableBytes { inet_pton(v6 ? AF_INET6 : AF_INET, text, $0.baseAddress) }
        return ok == 1 ? out : nil
    }

    // MARK: version 2

    private static func parseV2(_ input: UnsafeRawBufferPointer, maxLength: Int) -> ProxyHeaderParse {
        let verCmd = input[12]
        guard verCmd >> 4 == 2, verCmd & 0x0F <= 1 else { return .invalid(.unsupportedVersion) }
        let length = 16 + (Int(input[14]) << 8 | Int(input[15]))
        guard length <= max(maxLength, 16) else { return .invalid(.tooLong) }
        guard input.count >= length else { return .needMore }
        let header = UnsafeRawBufferPointer(rebasing: input[0..<length])
        if verCmd & 0x0F == 0 {
            // LOCAL: the proxy's own connection (a health check); the addresses are ignored.
            return .complete(ProxyHeader(version: 2, source: nil, destination: nil, length: length))
        }
        var source: ProxyAddress?
        var destination: ProxyAddress?
        var tlvStart: Int
        switch input[13] {
        case 0x11:  // TCP over IPv4
            guard length >= 16 + 12 else { return .invalid(.malformedV2) }
            source = ProxyAddress(bytes: Array(header[16..<20]), port: be16(header, 24))
            destination = ProxyAddress(bytes: Array(header[20..<24]), port: be16(header, 26))
            tlvStart = 28
        case 0x21:  // TCP over IPv6
            guard length >= 16 + 36 else { return .invalid(.malformedV2) }
            source = ProxyAddress(bytes: Array(header[16..<32]), port: be16(header, 48))
            destination = ProxyAddress(bytes: Array(header[32..<48]), port: be16(header, 50))
            tlvStart = 52
        default:
            // UNSPEC, UDP, UNIX: the connection keeps its own addresses (HAProxy's rule), and
            // whatever follows is not read.
            return .complete(ProxyHeader(version: 2, source: nil, destination: nil, length: length))
        }
        var authority: [UInt8]?
        var tlvs: [ProxyHeaderWriter.TLV] = []
        while tlvStart < length {
            guard tlvStart + 3 <= length else { return .invalid(.malformedV2) }
            let type = header[tlvStart]
            let valueLength = Int(be16(header, tlvStart + 1))
            let value = tlvStart + 3
            guard value + valueLength <= length else { return .invalid(.malformedV2) }
            switch type {
            case 0x02:  // AUTHORITY
                guard valueLength <= 255 else { return .invalid(.malformedV2) }
                authority = Array(header[value..<(value + valueLength)])
            case 0x03:  // CRC32C of the whole header, this field zeroed
                guard valueLength == 4 else { return .invalid(.malformedV2) }
                let expected = UInt32(be16(header, value)) << 16 | UInt32(be16(header, value + 2))
                guard CRC32C.checksum(header, zeroing: value..<(value + 4)) == expected else {
                    return .invalid(.malformedV2)
                }
            case 0x05:  // UNIQUE_ID
                guard valueLength <= 128 else { return .invalid(.malformedV2) }
            default:
                break
            }
            tlvs.append(ProxyHeaderWriter.TLV(type: type, value: Array(header[value..<(value + valueLength)])))
            tlvStart = value + valueLength
        }
        return .complete(ProxyHeader(version: 2, source: source, destination: destination, length: length,
                                     authority: authority, tlvs: tlvs))
    }

    private static func be16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        UInt16(b[at]) << 8 | UInt16(b[at + 1])
    }
}

/// What `send-proxy`, `send-proxy-v2` and their options put on a server connection.
public enum ProxyHeaderWriter {
    /// v1: `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` (IPv4 beside IPv6 is written IPv4-mapped, as
    /// HAProxy does), `PROXY UNKNOWN\r\n` without addresses (a health check).
    public static func v1(source: ProxyAddress?, destination: ProxyAddress?) -> [UInt8] {
        guard let source, let destination else { return Array("PROXY UNKNOWN\r\n".utf8) }
        let v6 = source.isV6 || destination.isV6
        func text(_ a: ProxyAddress) -> String {
            let bytes = v6 ? a.mappedV6 : a.bytes
            var out = [CChar](repeating: 0, count: 64)
            _ = bytes.withUnsafeBytes { inet_ntop(v6 ? AF_INET6 : AF_INET, $0.baseAddress, &out, 64) }
            return String(cString: out)
        }
        let line = "PROXY \(v6 ? "TCP6" : "TCP4") \(text(source)) \(text(destination)) \(source.port) \(destination.port)\r\n"
        return Array(line.utf8)
    }

    /// A TLV of v2.
    public struct TLV: Hashable, Sendable {
        public var type: UInt8
        public var value: [UInt8]
        public init(type: UInt8, value: [UInt8]) {
            self.type = type
            self.value = value
        }

        public static let alpn: UInt8 = 0x01
        public static let authority: UInt8 = 0x02
        public static let crc32c: UInt8 = 0x03
        public static let uniqueID: UInt8 = 0x05
        public static let ssl: UInt8 = 0x20
        public static let sslVersion: UInt8 = 0x21
        public static let sslCN: UInt8 = 0x22
        public static let sslCipher: UInt8 = 0x23

        /// PP2_TYPE_SSL: `client` flags (0x01 SSL, 0x02 certificate on this connection, 0x04 in
        /// the session), `verify` (0: a certificate was presented and verified), then sub-TLVs.
        public static func ssl(client: UInt8, verify: UInt32, _ sub: [TLV]) -> TLV {
            var value: [UInt8] = [client, UInt8(verify >> 24), UInt8(verify >> 16 & 0xFF), UInt8(verify >> 8 & 0xFF),
                                  UInt8(verify & 0xFF)]
            for t in sub { value += t.encoded }
            return TLV(type: ssl, value: value)
        }

        var encoded: [UInt8] {
            [type, UInt8(value.count >> 8 & 0xFF), UInt8(value.count & 0xFF)] + value
        }
    }

    /// v2: PROXY with the TCP addresses (IPv6 when either is), or LOCAL without them (a health
    /// check); `tlvs` in order, and a CRC32C TLV first when `checksum` (HAProxy's order).
    public static func v2(source: ProxyAddress?, destination: ProxyAddress?, tlvs: [TLV] = [],
                          checksum: Bool = false) -> [UInt8] {
        var out = ProxyHeaderParser.v2Signature
        var body: [UInt8] = []
        if let source, let destination {
            out.append(0x21)
            let v6 = source.isV6 || destination.isV6
            out.append(v6 ? 0x21 : 0x11)
            body += v6 ? source.mappedV6 : source.bytes
            body += v6 ? destination.mappedV6 : destination.bytes
            body += [UInt8(source.port >> 8), UInt8(source.port & 0xFF), UInt8(destination.port >> 8),
                     UInt8(destination.port & 0xFF)]
        } else {
            out.append(0x20)
            out.append(0x00)
        }
        var crcAt = -1
        if checksum {
            crcAt = 16 + body.count + 3
            body += TLV(type: TLV.crc32c, value: [0, 0, 0, 0]).encoded
        }
        for t in tlvs { body += t.encoded }
        out += [UInt8(body.count >> 8 & 0xFF), UInt8(body.count & 0xFF)]
        out += body
        if crcAt >= 0 {
            let sum = out.withUnsafeBytes { CRC32C.checksum($0, zeroing: crcAt..<(crcAt + 4)) }
            out[crcAt] = UInt8(sum >> 24)
            out[crcAt + 1] = UInt8(sum >> 16 & 0xFF)
            out[crcAt + 2] = UInt8(sum >> 8 & 0xFF)
            out[crcAt + 3] = UInt8(sum & 0xFF)
        }
        return out
    }
}

/// CRC-32C (Castagnoli), as PP2_TYPE_CRC32C carries it.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// The checksum of `bytes`, reading the bytes of `zeroing` as zeros.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, zeroing: Range<Int> = 0..<0) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for i in 0..<bytes.count {
            let b = zeroing.contains(i) ? 0 : bytes[i]
            crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8)
        }
        return crc ^ 0xFFFF_FFFF
    }
}
