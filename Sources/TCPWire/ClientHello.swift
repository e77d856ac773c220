/// The start of a TLS connection as a TLS-passthrough proxy reads it (`req.ssl_sni`,
/// `req.ssl_hello_type`, `req.ssl_ver`, `req.ssl_alpn`, `req.ssl_ec_ext`): the first handshake
/// message of the client's first bytes, which may span several TLS records and several TCP reads.
/// Untrusted input: every length is checked against what is there (fuzz/build.sh builds this
/// module alone for libFuzzer).

/// What the first bytes of a connection say about a TLS hello.
public enum ClientHelloParse: Hashable, Sendable {
    /// The bytes so far are the start of a TLS handshake message: more are needed.
    case needMore
    /// Not a TLS handshake (or a malformed one): the fetches have no value, however many bytes come.
    case notHello
    case complete(ClientHello)
}

/// A complete first handshake message.
public struct ClientHello: Hashable, Sendable {
    /// The handshake type: 1 ClientHello, 2 ServerHello.
    public var handshakeType: UInt8
    /// The record layer's version, as HAProxy's `req.ssl_ver` gives it: `(major << 16) | minor`.
    public var recordVersion: Int
    /// The version the hello asks for (`client_version`), the same way.
    public var helloVersion: Int
    /// The first `host_name` of the server_name extension, as sent.
    public var serverName: [UInt8]?
    /// The protocols of the ALPN extension, in order.
    public var alpn: [[UInt8]]
    /// The supported_groups (elliptic curves) extension is present.
    public var hasECExtension: Bool

    public init(handshakeType: UInt8, recordVersion: Int, helloVersion: Int, serverName: [UInt8]?, alpn: [[UInt8]],
                hasECExtension: Bool) {
        self.handshakeType = handshakeType
        self.recordVersion = recordVersion
        self.helloVersion = helloVersion
        self.serverName = serverName
        self.alpn = alpn
        self.hasECExtension = hasECExtension
    }
}

public enum ClientHelloParser {
    /// The largest handshake message strata waits for (a ClientHello with many extensions, post-
    /// quantum key shares included, stays well below; HAProxy reads what fits its buffer).
    public static let maxMessageLength = 16384

    /// Parses the first handshake message from the start of `input` (the client's bytes).
    public static func parse(_ input: UnsafeRawBufferPointer) -> ClientHelloParse {
        // Reassemble the handshake message from the records' payloads (a hello may be split).
        var message: [UInt8] = []
        var needed = -1  // the message's whole length once its 4-byte header is there
        var offset = 0
        var recordVersion = -1
        while true {
            guard offset + 5 <= input.count else { return .needMore }
            let contentType = input[offset]
            guard contentType == 0x16 else { return .notHello }
            let major = Int(input[offset + 1]), minor = Int(input[offset + 2])
            // SSLv3 and TLS records (SSLv2's format is not a hello anyone routes on).
            guard major == 3 else { return .notHello }
            if recordVersion < 0 { recordVersion = major << 16 | minor }
            let length = Int(input[offset + 3]) << 8 | Int(input[offset + 4])
            // An empty handshake record is not allowed (RFC 8446 §5.1); a record is at most 2^14
            // bytes (plus what compression would add in TLS 1.2: 2^14 + 2048).
            guard length > 0, length <= 16384 + 2048 else { return .notHello }
            let start = offset + 5
            let available = min(length, input.count - start)
            let takeUntil = needed < 0 ? available : min(available, needed - message.count)
            message.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[start..<(start + takeUntil)]))
            if needed < 0 && message.count >= 4 {
                needed = 4 + (Int(message[1]) << 16 | Int(message[2]) << 8 | Int(message[3]))
                guard needed <= maxMessageLength else { return .notHello }
                if message.count > needed { message.removeLast(message.count - needed) }
            }
            if needed >= 0 && message.count >= needed { break }
            // The record is not all there yet, or the message goes on in the next record.
            guard available == length else { return .needMore }
            offset = start + length
        }
        return message.withUnsafeBytes { hello(UnsafeRawBufferPointer($0), recordVersion: recordVersion) }
    }

    /// The handshake message `m` (type, 3-byte length, body), whole.
    private static func hello(_ m: UnsafeRawBufferPointer, recordVersion: Int) -> ClientHelloParse {
        let type = m[0]
        var result = ClientHello(handshakeType: type, recordVersion: recordVersion, helloVersion: 0, serverName: nil,
                                 alpn: [], hasECExtension: false)
        guard type == 1 else {
            // Another handshake message (a ServerHello when the client is a server's peer):
            // its type is all HAProxy gives of it.
            return .complete(result)
        }
        var r = Reader(m, from: 4)
        guard let major = r.byte(), let minor = r.byte() else { return .notHello }
        result.helloVersion = Int(major) << 16 | Int(minor)
        guard r.skip(32),  // random
              let sessionID = r.byte(), r.skip(Int(sessionID)),
              let suites = r.u16(), suites % 2 == 0, r.skip(Int(suites)),
              let compressions = r.byte(), r.skip(Int(compressions))
        else { return .notHello }
        if r.atEnd { return .complete(result) }  // no extensions
        guard let extensionsLength = r.u16(), r.remaining == Int(extensionsLength) else { return .notHello }
        while !r.atEnd {
            guard let type = r.u16(), let length = r.u16(), let body = r.take(Int(length)) else { return .notHello }
            var e = Reader(body, from: 0)
            switch type {
            case 0:  // server_name: a list of (type, name)
                guard let listLength = e.u16(), e.remaining == Int(listLength) else { return .notHello }
                while !e.atEnd {
                    guard let nameType = e.byte(), let nameLength = e.u16(), let name = e.take(Int(nameLength)) else {
                        return .notHello
                    }
                    if nameType == 0 && result.serverName == nil { result.serverName = Array(name) }
                }
            case 16:  // application_layer_protocol_negotiation: a list of 1-byte-length names
                guard let listLength = e.u16(), e.remaining == Int(listLength) else { return .notHello }
                while !e.atEnd {
                    guard let n = e.byte(), n > 0, let name = e.take(Int(n)) else { return .notHello }
                    result.alpn.append(Array(name))
                }
            case 10:  // supported_groups (elliptic_curves)
                result.hasECExtension = true
            default:
                break
            }
        }
        return .complete(result)
    }

    /// A cursor over bytes that answers nil rather than reading past the end.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var at: Int

        init(_ bytes: UnsafeRawBufferPointer, from: Int) {
            self.bytes = bytes
            at = from
        }

        var remaining: Int { bytes.count - at }
        var atEnd: Bool { at >= bytes.count }

        mutating func byte() -> UInt8? {
            guard at < bytes.count else { return nil }
            defer { at += 1 }
            return bytes[at]
        }

        mutating func u16() -> UInt16? {
            guard at + 2 <= bytes.count else { return nil }
            defer { at += 2 }
            return UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
        }

        mutating func skip(_ n: Int) -> Bool {
            guard n >= 0, at + n <= bytes.count else { return false }
            at += n
            return true
        }

        mutating func take(_ n: Int) -> UnsafeRawBufferPointer? {
            guard n >= 0, at + n <= bytes.count else { return nil }
            defer { at += n }
            return UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)])
        }
    }
}
