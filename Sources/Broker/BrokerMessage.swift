// fuzz/build-broker.sh compiles this file with ConfigModel's and the Loader's file reading in one module.
#if !BROKER_FUZZ
import ConfigModel
import Loader
#endif

/// The privilege broker's protocol: typed, length-prefixed messages over a UNIX socketpair.
/// A frame is a 4-byte big-endian length (of what follows), a 1-byte type, then the payload.
/// The serving process sends one request and waits for its answer; an answer to `bind` carries
/// the listening fd as SCM_RIGHTS on its frame. Both directions are parsed here as plain values
/// (no I/O): the broker parses what a possibly compromised serving process sends, so the parser
/// refuses anything it does not expect, whole (a bad frame ends the connection).
public enum BrokerRequest: Hashable, Sendable {
    /// A load begins: the broker forgets the configuration it saw in the previous attempt.
    case begin
    /// The load that just read its files succeeded: those files stay readable for the next one.
    case commit
    case read(path: String, kind: FileKind)
    case list(path: String)
    /// `probe`: bind without listening, then close (a reload plan's test bind); no fd comes back.
    case bind(ListenerKey, probe: Bool)
    case user(String)
    case group(String)
}

public enum BrokerResponse: Hashable, Sendable {
    case done
    case bytes([UInt8])
    case names([String])
    /// An account's number; nil when it does not exist.
    case id(UInt32?)
    /// A `bind`'s socket: the fd travels beside the frame.
    case socket
    case failure(BrokerFailure)
}

/// Why the broker did not do what it was asked.
public struct BrokerFailure: Error, Hashable, Sendable {
    public enum Code: UInt8, Sendable {
        /// A system call failed with `errno` (for a bind: `call` names it).
        case system = 1
        case notRegular = 2
        case tooLarge = 3
        /// Not something the configuration names.
        case refused = 4
        case overBudget = 5
    }
    public var code: Code
    public var errno: Int32
    public var text: String

    public init(_ code: Code, errno: Int32 = 0, text: String = "") {
        self.code = code
        self.errno = errno
        self.text = text
    }
}

extension FileKind {
    var wire: (tag: UInt8, value: UInt32) {
        switch self {
        case .configuration: (1, 0)
        case .patterns: (2, 0)
        case .httpMessage(let size): (3, UInt32(clamping: size))
        case .tls: (4, 0)
        case .ticketKeys: (5, 0)
        case .serverState: (6, 0)
        case .resolvConf: (7, 0)
        }
    }

    init?(tag: UInt8, value: UInt32) {
        switch tag {
        case 1: self = .configuration
        case 2: self = .patterns
        // An errorfile is at most a buffer: 1 MiB bounds what a request can make the broker read.
        case 3 where value <= 1 << 20: self = .httpMessage(bufferSize: Int(value))
        case 4: self = .tls
        case 5: self = .ticketKeys
        case 6: self = .serverState
        case 7: self = .resolvConf
        default: return nil
        }
    }
}

/// Frames: encoding, and reading one from bytes as they arrive.
public enum BrokerFrame {
    /// The largest request: a path or a name is at most 4 KiB (PATH_MAX).
    public static let maxRequest = 8 << 10
    /// The largest answer: a file within the largest kind's limit (32 MiB), with room for the header.
    public static let maxResponse = (32 << 20) + 64 << 10
    static let maxPath = 4096

    public enum ParseError: Error, Hashable, Sendable {
        case tooLong(Int)
        case malformed(String)
    }

    // MARK: encoding

    public static func encode(_ request: BrokerRequest) -> [UInt8] {
        var w = Writer()
        switch request {
        case .begin: w.byte(1)
        case .commit: w.byte(2)
        case .read(let path, let kind):
            w.byte(3)
            w.byte(kind.wire.tag)
            w.u32(kind.wire.value)
            w.string(path)
        case .list(let path):
            w.byte(4)
            w.string(path)
        case .bind(let key, let probe):
            w.byte(5)
            w.byte((probe ? 1 : 0) | (key.v6only ? 2 : 0) | (key.reusePort ? 4 : 0))
            w.u32(UInt32(clamping: key.backlog))
            w.u16(key.endpoint.port)
            switch key.endpoint.address {
            case .v4(let a):
                w.byte(4)
                w.u32(a)
            case .v6(let b):
                w.byte(6)
                w.bytes.append(contentsOf: b)
            }
            w.string(key.interface ?? "")
        case .user(let name):
            w.byte(6)
            w.string(name)
        case .group(let name):
            w.byte(7)
            w.string(name)
        }
        return w.framed()
    }

    public static func encode(_ response: BrokerResponse) -> [UInt8] {
        var w = Writer()
        switch response {
        case .done: w.byte(0x80)
        case .bytes(let b):
            w.byte(0x81)
            w.bytes.append(contentsOf: b)
        case .names(let names):
            w.byte(0x82)
            w.u32(UInt32(names.count))
            for n in names { w.string(n) }
        case .id(let id):
            w.byte(0x83)
            w.byte(id == nil ? 0 : 1)
            w.u32(id ?? 0)
        case .socket: w.byte(0x84)
        case .failure(let f):
            w.byte(0x85)
            w.byte(f.code.rawValue)
            w.u32(UInt32(bitPattern: f.errno))
            w.string(String(decoding: f.text.utf8.prefix(1024), as: UTF8.self))
        }
        return w.framed()
    }

    // MARK: decoding

    /// The length a frame header announces, checked against `limit`; nil until 4 bytes are there.
    public static func length(_ header: some Collection<UInt8>, limit: Int) throws(ParseError) -> Int? {
        guard header.count >= 4 else { return nil }
        var n = 0
        for b in header.prefix(4) { n = n << 8 | Int(b) }
        guard n >= 1, n <= limit else { throw .tooLong(n) }
        return n
    }

    /// A request's body (what follows the length): the whole of it, or an error.
    public static func request(_ body: ArraySlice<UInt8>) throws(ParseError) -> BrokerRequest {
        var r = Reader(body)
        let type = try r.byte()
        let request: BrokerRequest
        switch type {
        case 1: request = .begin
        case 2: request = .commit
        case 3:
            let tag = try r.byte()
            let value = try r.u32()
            guard let kind = FileKind(tag: tag, value: value) else { throw .malformed("file kind \(tag)") }
            request = .read(path: try r.path(), kind: kind)
        case 4: request = .list(path: try r.path())
        case 5:
            let flags = try r.byte()
            guard flags & ~7 == 0 else { throw .malformed("bind flags \(flags)") }
            let backlog = try r.u32()
            guard backlog <= 1 << 20 else { throw .malformed("backlog \(backlog)") }
            let port = try r.u16()
            let address: IPAddress
            switch try r.byte() {
            case 4: address = .v4(try r.u32())
            case 6: address = .v6(Array(try r.take(16)))
            case let f: throw .malformed("address family \(f)")
            }
            let interface = try r.string(limit: 15)
            guard !interface.utf8.contains(0) else { throw .malformed("interface name") }
            let key = ListenerKey(endpoint: SocketEndpoint(address: address, port: port), v6only: flags & 2 != 0,
                                  interface: interface.isEmpty ? nil : interface, backlog: Int(backlog), reusePort: flags & 4 != 0)
            request = .bind(key, probe: flags & 1 != 0)
        case 6: request = .user(try r.string(limit: 256))
        case 7: request = .group(try r.string(limit: 256))
        default: throw .malformed("request type \(type)")
        }
        guard r.atEnd else { throw .malformed("\(r.remaining) bytes after the request") }
        return request
    }

    public static func response(_ body: ArraySlice<UInt8>) throws(ParseError) -> BrokerResponse {
        var r = Reader(body)
        let type = try r.byte()
        let response: BrokerResponse
        switch type {
        case 0x80: response = .done
        case 0x81: return .bytes(Array(r.rest()))
        case 0x82:
            let count = try r.u32()
            guard count <= 1 << 20 else { throw .malformed("\(count) names") }
            var names: [String] = []
            for _ in 0..<count { names.append(try r.string(limit: maxPath)) }
            response = .names(names)
        case 0x83:
            let present = try r.byte()
            let id = try r.u32()
            response = .id(present == 0 ? nil : id)
        case 0x84: response = .socket
        case 0x85:
            guard let code = BrokerFailure.Code(rawValue: try r.byte()) else { throw .malformed("failure code") }
            let e = Int32(bitPattern: try r.u32())
            response = .failure(BrokerFailure(code, errno: e, text: try r.string(limit: maxPath)))
        default: throw .malformed("response type \(type)")
        }
        guard r.atEnd else { throw .malformed("\(r.remaining) bytes after the response") }
        return response
    }

    // MARK: bytes

    struct Writer {
        var bytes: [UInt8] = [0, 0, 0, 0]
        mutating func byte(_ b: UInt8) { bytes.append(b) }
        mutating func u16(_ v: UInt16) { bytes += [UInt8(v >> 8), UInt8(v & 0xFF)] }
        mutating func u32(_ v: UInt32) { bytes += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        /// A 2-byte length, then the UTF-8.
        mutating func string(_ s: String) {
            let utf8 = Array(s.utf8.prefix(0xFFFF))
            u16(UInt16(utf8.count))
            bytes += utf8
        }
        func framed() -> [UInt8] {
            var out = bytes
            let n = UInt32(out.count - 4)
            out[0] = UInt8(n >> 24); out[1] = UInt8(n >> 16 & 0xFF); out[2] = UInt8(n >> 8 & 0xFF); out[3] = UInt8(n & 0xFF)
            return out
        }
    }

    struct Reader {
        var data: ArraySlice<UInt8>
        init(_ data: ArraySlice<UInt8>) { self.data = data }
        var atEnd: Bool { data.isEmpty }
        var remaining: Int { data.count }
        mutating func take(_ n: Int) throws(ParseError) -> ArraySlice<UInt8> {
            guard data.count >= n else { throw .malformed("truncated") }
            let out = data.prefix(n)
            data = data.dropFirst(n)
            return out
        }
        mutating func rest() -> ArraySlice<UInt8> {
            defer { data = data.suffix(0) }
            return data
        }
        mutating func byte() throws(ParseError) -> UInt8 { try take(1).first! }
        mutating func u16() throws(ParseError) -> UInt16 {
            let b = try take(2)
            return UInt16(b[b.startIndex]) << 8 | UInt16(b[b.startIndex + 1])
        }
        mutating func u32() throws(ParseError) -> UInt32 {
            var v: UInt32 = 0
            for b in try take(4) { v = v << 8 | UInt32(b) }
            return v
        }
        mutating func string(limit: Int) throws(ParseError) -> String {
            let n = Int(try u16())
            guard n <= limit else { throw .malformed("a string of \(n) bytes") }
            let bytes = try take(n)
            guard let s = String(validating: bytes, as: UTF8.self) else { throw .malformed("not UTF-8") }
            return s
        }
        /// A path: not empty, no NUL, at most PATH_MAX.
        mutating func path() throws(ParseError) -> String {
            let s = try string(limit: BrokerFrame.maxPath)
            guard !s.isEmpty, !s.utf8.contains(0) else { throw .malformed("path") }
            return s
        }
    }
}
