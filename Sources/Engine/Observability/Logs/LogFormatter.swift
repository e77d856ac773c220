import HTTP1
import ConfigModel
import Glibc
import Synchronization

/// A `log-format` compiled once (per proxy, per generation): literals as bytes, variables and
/// samples as cases, rendered into a buffer the formatter keeps (one loop uses a generation's
/// formatters). Separators follow HAProxy: one space, printed only after something was printed
/// since the last one (`last_isspace`), so an empty `%hr` leaves no double space and a format
/// never starts with a space.
final class LogFormatter {
    enum Variable {
        case clientIP, clientPort, frontendIP, frontendPort, backendSourceIP, backendSourcePort
        case serverIP, serverPort
        case frontendName, frontendTransport, backendName, serverName
        case acceptDate, requestDate, requestDateGMT, requestDateLocal, acceptDateGMT, acceptDateLocal
        case acceptTimestamp, acceptMilliseconds, pid, hostname
        case handshake, idle, requestTime, requestTotal, queue, connect, response, data, active, total
        case status, bytesOut, bytesIn, termination, terminationCookie, requestCookie, responseCookie
        case activeConnections, frontendConnections, backendConnections, serverConnections, retries
        case serverQueue, backendQueue
        case requestCaptures, requestCapturesCLF, responseCaptures, responseCapturesCLF
        case requestLine, method, uri, path, query, version, uniqueID, sslCipher, sslVersion
        case generation
        case unknown

        init(_ name: String) {
            switch name {
            case "ci": self = .clientIP
            case "cp": self = .clientPort
            case "fi": self = .frontendIP
            case "fp": self = .frontendPort
            case "bi": self = .backendSourceIP
            case "bp": self = .backendSourcePort
            case "si": self = .serverIP
            case "sp": self = .serverPort
            case "f": self = .frontendName
            case "ft": self = .frontendTransport
            case "b": self = .backendName
            case "s": self = .serverName
            case "t": self = .acceptDate
            case "tr": self = .requestDate
            case "trg": self = .requestDateGMT
            case "trl": self = .requestDateLocal
            case "T": self = .acceptDateGMT
            case "Tl": self = .acceptDateLocal
            case "Ts": self = .acceptTimestamp
            case "ms": self = .acceptMilliseconds
            case "pid": self = .pid
            case "H": self = .hostname
            case "Th": self = .handshake
            case "Ti": self = .idle
            case "TR": self = .requestTime
            case "Tq": self = .requestTotal
            case "Tw": self = .queue
            case "Tc": self = .connect
            case "Tr": self = .response
            case "Td": self = .data
            case "Ta": self = .active
            case "Tt": self = .total
            case "ST": self = .status
            case "B": self = .bytesOut
            case "U": self = .bytesIn
            case "ts": self = .termination
            case "tsc": self = .terminationCookie
            case "CC": self = .requestCookie
            case "CS": self = .responseCookie
            case "ac": self = .activeConnections
            case "fc": self = .frontendConnections
            case "bc": self = .backendConnections
            case "sc": self = .serverConnections
            case "rc": self = .retries
            case "sq": self = .serverQueue
            case "bq": self = .backendQueue
            case "hr": self = .requestCaptures
            case "hrl": self = .requestCapturesCLF
            case "hs": self = .responseCaptures
            case "hsl": self = .responseCapturesCLF
            case "r": self = .requestLine
            case "HM": self = .method
            case "HU": self = .uri
            case "HP": self = .path
            case "HQ": self = .query
            case "HV": self = .version
            case "ID": self = .uniqueID
            case "sslc": self = .sslCipher
            case "sslv": self = .sslVersion
            case "gen": self = .generation
            default: self = .unknown
            }
        }
    }

    /// What a `%[…]` can read at log time: the connection and the request line (the head's
    /// bytes are gone by then); other fetches print as absent.
    enum Sample {
        case source, sourcePort, destination, destinationPort
        case method, path, url, query, version, status
        /// `capture.req.ver`: the request line's last word whole (`HTTP/1.1`).
        case capturedVersion
        case constant(Bool)
        /// `str`, `int`, `env` (nil: not set).
        case literal(String?)
        case sslFrontend
        case tls(TLSSampleFetch)
        case uniqueID
        case connectionError(tlsOnly: Bool)
        /// `var(NAME)`, `var(NAME,DEFAULT)`.
        case variable(HTTPVariableKey, default: String?)
        case capturedRequest(Int), capturedResponse(Int)
        case unavailable
    }

    enum Op {
        case literal([UInt8])
        case separator
        case variable(Variable, LogFormatSpec.Flags)
        case sample(Sample, [SampleConverter], LogFormatSpec.Flags)
    }

    let ops: [Op]
    let source: String
    /// The format prints the address the client reached (`%fi`, `%fp`, `%[dst]`, `%[dst_port]`,
    /// or `%sp` of a server without a port).
    let needsLocalAddress: Bool
    /// `%ID` or `%[unique-id]`.
    let printsUniqueID: Bool
    private var out: [UInt8] = []

    init(_ spec: LogFormatSpec) {
        source = spec.source
        ops = spec.nodes.map { node in
            switch node {
            case .literal(let text): .literal(Array(text.utf8))
            case .separator: .separator
            case .variable(let name, let flags): .variable(Variable(name), flags)
            case .sample(let expression, let flags): .sample(LogFormatter.sample(expression.fetch), expression.converters, flags)
            }
        }
        needsLocalAddress = ops.contains { op in
            switch op {
            case .variable(.frontendIP, _), .variable(.frontendPort, _), .variable(.serverPort, _),
                 .sample(.destination, _, _), .sample(.destinationPort, _, _): true
            default: false
            }
        }
        printsUniqueID = ops.contains { op in
            switch op {
            case .variable(.uniqueID, _), .sample(.uniqueID, _, _): true
            default: false
            }
        }
        out.reserveCapacity(1024)
    }

    private static func sample(_ fetch: SampleFetch) -> Sample {
        switch fetch {
        case .source: .source
        case .sourcePort: .sourcePort
        case .destination: .destination
        case .destinationPort: .destinationPort
        case .method: .method
        case .path: .path
        case .url: .url
        case .query: .query
        case .requestVersion: .version
        case .status: .status
        case .constant(let b): .constant(b)
        case .receivedRequestLine(.method): .method
        case .receivedRequestLine(.uri): .url
        case .receivedRequestLine(.version): .capturedVersion
        case .literalString(let text): .literal(text)
        case .literalInteger(let n): .literal(String(n))
        case .environment(let name): .literal(getenv(name).map { String(cString: $0) })
        case .sslFrontend: .sslFrontend
        case .tls(let f): .tls(f)
        case .uniqueID: .uniqueID
        case .connectionError(let f): .connectionError(tlsOnly: f != .connection)
        case .variable(let name): .variable(HTTPVariableKey(name), default: nil)
        case .variableOrDefault(let name, let fallback): .variable(HTTPVariableKey(name), default: fallback)
        case .capturedRequest(let slot): .capturedRequest(slot)
        case .capturedResponse(let slot): .capturedResponse(slot)
        default: .unavailable
        }
    }

    /// The line for `record`; nil when a `+M` (mandatory) value is absent. Every data loop logs
    /// through the same formatter (one per proxy): its line buffer is taken under a lock.
    func format(_ record: LogRecord) -> String? {
        lock.withLock {
            out.removeAll(keepingCapacity: true)
            guard write(record) else { return nil }
            return String(decoding: out, as: UTF8.self)
        }
    }
    private let lock = Lock()

    // MARK: rendering

    private var lastWasSpace = true
    private var localResolved = false
    private var local: SocketEndpoint?

    private func write(_ r: LogRecord) -> Bool {
        lastWasSpace = true
        localResolved = false
        local = nil
        for op in ops {
            switch op {
            case .literal(let bytes):
                out.append(contentsOf: bytes)
                lastWasSpace = false
            case .separator:
                if !lastWasSpace {
                    out.append(0x20)
                    lastWasSpace = true
                }
            case .variable(let v, let flags):
                if !variable(v, flags, r) { return false }
            case .sample(let s, let converters, let flags):
                if !sample(s, converters, flags, r) { return false }
            }
        }
        return true
    }

    private func localEndpointOf(_ r: LogRecord) -> SocketEndpoint? {
        if let l = r.local { return l }
        if !localResolved {
            localResolved = true
            local = r.clientFD >= 0 ? localEndpoint(r.clientFD) : nil
        }
        return local
    }

    // Values.

    private func printed() { lastWasSpace = false }

    /// A string value with HAProxy's `lf_text`: quoted with `+Q`, escaped with `+E`, `-` (or `""`)
    /// when absent. Returns false for an absent `+M` value.
    /// A C string OpenSSL keeps (`%sslv`, `%sslc`), written without making a String.
    private func cText(_ s: UnsafePointer<CChar>?, _ flags: LogFormatSpec.Flags) -> Bool {
        guard let s else { return text(nil, flags) }
        textBytes(UnsafeRawBufferPointer(start: s, count: strlen(s)), flags)
        return true
    }

    private func text(_ s: String?, _ flags: LogFormatSpec.Flags) -> Bool {
        guard let s else {
            if flags.contains(.mandatory) { return false }
            out.append(contentsOf: flags.contains(.quote) ? [0x22, 0x22] : [0x2D])
            printed()
            return true
        }
        var value = s
        value.withUTF8 { textBytes(UnsafeRawBufferPointer($0), flags) }
        return true
    }

    private func textBytes(_ bytes: UnsafeRawBufferPointer, _ flags: LogFormatSpec.Flags) {
        if flags.contains(.quote) { out.append(0x22) }
        if flags.contains(.escape) {
            for b in bytes {
                if b == 0x22 || b == 0x5C || b == 0x5D { out.append(0x5C) }
                out.append(b)
            }
        } else {
            out.append(contentsOf: bytes)
        }
        if flags.contains(.quote) { out.append(0x22) }
        printed()
    }

    private func integer(_ v: Int, _ flags: LogFormatSpec.Flags = [], plus: Bool = false) {
        if plus { out.append(0x2B) }
        if flags.contains(.hex) && v >= 0 {
            appendHex(UInt64(v), minDigits: 1)
        } else {
            appendDecimal(v)
        }
        printed()
    }

    private func appendDecimal(_ v: Int) {
        if v < 0 {
            out.append(0x2D)
            appendUnsigned(UInt64(-v))
        } else {
            appendUnsigned(UInt64(v))
        }
    }

    func appendUnsigned(_ v: UInt64) {
        var divisor: UInt64 = 1
        while v / divisor >= 10 { divisor *= 10 }
        var x = v
        while divisor > 0 {
            out.append(0x30 + UInt8(x / divisor))
            x %= divisor
            divisor /= 10
        }
    }

    private func appendHex(_ v: UInt64, minDigits: Int) {
        let hex: [UInt8] = Array("0123456789ABCDEF".utf8)
        var digits: [UInt8] = []
        var x = v
        repeat {
            digits.append(hex[Int(x & 15)])
            x >>= 4
        } while x > 0
        while digits.count < minDigits { digits.append(0x30) }
        out.append(contentsOf: digits.reversed())
    }

    private func address(_ endpoint: SocketEndpoint?, _ flags: LogFormatSpec.Flags) -> Bool {
        guard let endpoint else { return text(nil, flags) }
        if flags.contains(.hex), case .v4(let a) = endpoint.address {
            if flags.contains(.quote) { out.append(0x22) }
            appendHex(UInt64(a), minDigits: 8)
            if flags.contains(.quote) { out.append(0x22) }
            printed()
            return true
        }
        return text(endpoint.address.description, flags)
    }

    private func port(_ endpoint: SocketEndpoint?, _ flags: LogFormatSpec.Flags) -> Bool {
        guard let endpoint else { return text(nil, flags) }
        if flags.contains(.hex) {
            appendHex(UInt64(endpoint.port), minDigits: 4)
            printed()
        } else {
            integer(Int(endpoint.port))
        }
        return true
    }

    private func captures(_ bytes: UnsafeRawBufferPointer?, clf: Bool, _ flags: LogFormatSpec.Flags) {
        // Absent or empty: nothing at all (HAProxy prints nothing without captures).
        guard let bytes, bytes.count > 0 else { return }
        guard clf else {
            out.append(contentsOf: bytes)
            printed()
            return
        }
        // `{a|b}` as `"a" "b"`.
        var inner = bytes
        if inner.first == 0x7B { inner = UnsafeRawBufferPointer(rebasing: inner.dropFirst()) }
        if inner.last == 0x7D { inner = UnsafeRawBufferPointer(rebasing: inner.dropLast()) }
        out.append(0x22)
        for b in inner {
            if b == 0x7C { out.append(contentsOf: [0x22, 0x20, 0x22]) } else { out.append(b) }
        }
        out.append(0x22)
        printed()
    }

    /// The words of the request line: method, target, version.
    private func requestWord(_ r: LogRecord, _ index: Int) -> Substring? {
        guard let line = r.requestLine else { return nil }
        let words = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        return index < words.count ? words[index] : nil
    }

    private static func pathPart(_ uri: Substring) -> Substring {
        var target = uri
        // Absolute form: the path starts after the authority.
        if !target.hasPrefix("/"), let colon = target.firstIndex(of: ":") {
            let after = target[target.index(after: colon)...]
            if after.hasPrefix("//") {
                let rest = after.dropFirst(2)
                target = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
            }
        }
        return target.firstIndex(of: "?").map { target[..<$0] } ?? target
    }

    private static func queryPart(_ uri: Substring) -> Substring? {
        uri.firstIndex(of: "?").map { uri[$0...] }
    }

    private func variable(_ v: Variable, _ flags: LogFormatSpec.Flags, _ r: LogRecord) -> Bool {
        switch v {
        case .clientIP: return address(r.client, flags)
        case .clientPort: return port(r.client, flags)
        case .frontendIP: return address(localEndpointOf(r), flags)
        case .frontendPort: return port(localEndpointOf(r), flags)
        case .backendSourceIP, .backendSourcePort: return text(nil, flags)
        case .serverIP:
            guard let s = r.server else { return text(nil, flags) }
            let moved = s.address
            return address(SocketEndpoint(address: moved.address, port: moved.port ?? 0), flags)
        case .serverPort:
            guard let s = r.server else { return text(nil, flags) }
            if let p = s.address.port { integer(Int(p), flags); return true }
            return port(localEndpointOf(r), flags)
        case .frontendName: return text(r.frontend.name, flags)
        case .frontendTransport: return text(r.isTLS ? r.frontend.name + "~" : r.frontend.name, flags)
        case .backendName: return text(r.backend?.name ?? r.frontend.name, flags)
        case .serverName:
            if r.server == nil, let applet = r.applet { return text(String(describing: applet), flags) }
            return text(r.server?.name ?? "<NOSRV>", flags)
        case .acceptDate: return raw(logDate(r.acceptDate))
        case .requestDate: return raw(logDate(r.requestDate))
        case .requestDateGMT: return raw(LogFormatter.zonedDate(r.requestDate, gmt: true))
        case .requestDateLocal: return raw(LogFormatter.zonedDate(r.requestDate, gmt: false))
        case .acceptDateGMT: return raw(LogFormatter.zonedDate(r.acceptDate, gmt: true))
        case .acceptDateLocal: return raw(LogFormatter.zonedDate(r.acceptDate, gmt: false))
        case .acceptTimestamp:
            integer(Int(r.acceptDate), flags)
        case .acceptMilliseconds:
            // As `%t` prints them (`logDate`).
            let ms = Int((r.acceptDate - Double(time_t(r.acceptDate))) * 1000)
            if flags.contains(.hex) {
                appendHex(UInt64(ms), minDigits: 2)
            } else {
                if ms < 100 { out.append(0x30) }
                if ms < 10 { out.append(0x30) }
                appendDecimal(ms)
            }
            printed()
        case .pid: integer(Int(getpid()), flags)
        case .hostname: return text(LogFormatter.hostname, flags)
        case .handshake: integer(r.handshake)
        case .idle: integer(r.idle)
        case .requestTime: integer(r.request)
        case .requestTotal: integer(r.request < 0 ? -1 : r.handshake + r.idle + r.request)
        case .queue: integer(r.queue)
        case .connect: integer(r.connect)
        case .response: integer(r.response)
        case .data:
            if r.total < 0 || r.response < 0 {
                integer(-1)
            } else {
                integer(max(0, r.total - max(r.handshake, 0) - max(r.idle, 0) - max(r.request, 0) - max(r.queue, 0)
                    - max(r.connect, 0) - r.response))
            }
        case .active: integer(r.active, plus: r.early)
        case .total: integer(r.total, plus: r.early)
        case .status: integer(r.mode == .tcp ? 0 : r.status)
        case .bytesOut:
            if r.early { out.append(0x2B) }
            appendUnsigned(r.bytesOut)
            printed()
        case .bytesIn:
            appendUnsigned(r.bytesIn)
            printed()
        case .termination:
            out.append(r.termination.cause)
            out.append(r.termination.phase)
            printed()
        case .terminationCookie:
            out.append(r.termination.cause)
            out.append(r.termination.phase)
            out.append(r.cookieFlags.0)
            out.append(r.cookieFlags.1)
            printed()
        case .sslCipher: return cText(r.tls?.cipherName, flags)
        case .sslVersion: return cText(r.tls?.protocolName, flags)
        case .uniqueID:
            guard let id = r.uniqueID else { return text(nil, flags) }
            textBytes(id, flags)
        case .requestCookie, .responseCookie:
            guard let cookie = v == .requestCookie ? r.requestCookie : r.responseCookie, cookie.count > 0 else {
                return text(nil, flags)
            }
            textBytes(cookie, flags)
        case .activeConnections: integer(r.activeConnections)
        case .frontendConnections: integer(r.frontendConnections)
        case .backendConnections: integer(r.backendConnections)
        case .serverConnections: integer(r.serverConnections)
        case .retries: integer(r.retries, plus: r.redispatched)
        case .serverQueue: integer(r.serverQueue)
        case .backendQueue: integer(r.backendQueue)
        case .requestCaptures: captures(r.requestCaptures, clf: false, flags)
        case .requestCapturesCLF: captures(r.requestCaptures, clf: true, flags)
        case .responseCaptures: captures(r.responseCaptures, clf: false, flags)
        case .responseCapturesCLF: captures(r.responseCaptures, clf: true, flags)
        case .requestLine: return text(r.requestLine ?? "<BADREQ>", flags)
        case .method: return text(requestWord(r, 0).map(String.init), flags)
        case .uri: return text(requestWord(r, 1).map(String.init), flags)
        case .path: return text(requestWord(r, 1).map { String(LogFormatter.pathPart($0)) }, flags)
        case .query: return text(requestWord(r, 1).flatMap { LogFormatter.queryPart($0).map(String.init) }, flags)
        case .version: return text(requestWord(r, 2).map(String.init), flags)
        case .generation: integer(r.generation, flags)
        case .unknown: break
        }
        return true
    }

    private func raw(_ s: String) -> Bool {
        out.append(contentsOf: s.utf8)
        printed()
        return true
    }

    private func sample(_ s: Sample, _ converters: [SampleConverter], _ flags: LogFormatSpec.Flags, _ r: LogRecord) -> Bool {
        var value: String?
        switch s {
        case .source: value = r.client.map { $0.address.description }
        case .sourcePort: value = r.client.map { String($0.port) }
        case .destination: value = localEndpointOf(r).map { $0.address.description }
        case .destinationPort: value = localEndpointOf(r).map { String($0.port) }
        case .method: value = requestWord(r, 0).map(String.init)
        case .url: value = requestWord(r, 1).map(String.init)
        case .path: value = requestWord(r, 1).map { String(LogFormatter.pathPart($0)) }
        case .query: value = requestWord(r, 1).flatMap { LogFormatter.queryPart($0).map { String($0.dropFirst()) } }
        case .version: value = requestWord(r, 2).map { $0.hasPrefix("HTTP/") ? String($0.dropFirst(5)) : String($0) }
        case .capturedVersion: value = requestWord(r, 2).map(String.init)
        case .status: value = r.mode == .http && r.status > 0 ? String(r.status) : nil
        case .constant(let b): value = b ? "1" : "0"
        case .literal(let text): value = text
        case .sslFrontend: value = r.isTLS ? "1" : "0"
        case .tls(let f): value = LogFormatter.tlsValue(f, r)
        case .uniqueID: value = r.uniqueID.map { String(decoding: $0, as: UTF8.self) }
        case .connectionError(let tlsOnly):
            // A line for a connection that failed (error-log-format) does not know its code.
            if r.connectionFailed || (tlsOnly && !r.isTLS) { return text(nil, flags) }
            // `hex` on an integer: its 8 bytes, big-endian (HAProxy's int to binary cast).
            value = converters.contains(.hex) ? "0000000000000000" : "0"
            return text(value, flags)
        case .variable(let key, let fallback):
            value = (r.variables ?? [:]).value(key)?.text ?? fallback
        case .capturedRequest(let slot): value = r.requestSlots?.value(slot).map { String(decoding: $0, as: UTF8.self) }
        case .capturedResponse(let slot): value = r.responseSlots?.value(slot).map { String(decoding: $0, as: UTF8.self) }
        case .unavailable: value = nil
        }
        if var v = value {
            for c in converters {
                switch c {
                case .lower: v = v.lowercased()
                case .upper: v = v.uppercased()
                case .json(let code):
                    // JSON log lines: what cannot be escaped (not UTF-8, with `utf8`) prints as absent.
                    guard let escaped = HTTPJSONEscape.escape(Array(v.utf8), code) else { return text(nil, flags) }
                    v = String(decoding: escaped, as: UTF8.self)
                default: break  // the Loader lets only case mappings and json into a log format
                }
            }
            value = v
        }
        return text(value, flags)
    }

    /// `%[ssl_fc_*]`, `%[ssl_c_*]`.
    static func tlsValue(_ f: TLSSampleFetch, _ r: LogRecord) -> String? {
        guard let tls = r.tls else { return f.isBoolean ? "0" : nil }
        func string(_ p: UnsafePointer<CChar>?) -> String? { p.map { String(cString: $0) } }
        switch f {
        case .serverName: return string(tls.serverName)
        case .protocolVersion: return string(tls.protocolName)
        case .cipher: return string(tls.cipherName)
        case .alpn: return tls.alpn.map { String(decoding: $0, as: UTF8.self) }
        case .resumed: return tls.sessionReused ? "1" : "0"
        case .clientCertificateUsed: return tls.hasPeerCertificate ? "1" : "0"
        case .clientCertificateVerify: return String(tls.peerVerifyResult)
        case .clientSubjectDN, .clientIssuerDN:
            return tls.peerName(issuer: f == .clientIssuerDN).map { String(decoding: $0, as: UTF8.self) }
        }
    }

    // MARK: dates

    static let hostname: String = {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        return String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// `%T`/`%trg` (GMT, `+0000`) and `%Tl`/`%trl` (local time with its offset):
    /// `10/Oct/2000:13:55:36 +0000`.
    static func zonedDate(_ seconds: Double, gmt: Bool) -> String {
        var t = time_t(seconds)
        var tm = Glibc.tm()
        if gmt { gmtime_r(&t, &tm) } else { localtime_r(&t, &tm) }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let offset = gmt ? 0 : tm.tm_gmtoff / 60
        let sign = offset < 0 ? "-" : "+"
        let o = abs(offset)
        let zone = "\(sign)\(LogSinks.two(Int32(o / 60)))\(LogSinks.two(Int32(o % 60)))"
        return "\(LogSinks.two(tm.tm_mday))/\(months[Int(tm.tm_mon)])/\(tm.tm_year + 1900):\(LogSinks.two(tm.tm_hour)):\(LogSinks.two(tm.tm_min)):\(LogSinks.two(tm.tm_sec)) \(zone)"
    }
}
