import ConfigModel
import Glibc

/// The rules of HAProxy's protocol checks (`option redis-check` and the others), built as its
/// src/tcpcheck.c builds its predefined rule sets: the same bytes sent, the same answers expected,
/// the same statuses and info texts.
enum ProtocolCheckRules {
    /// The rules of one check; the ClientHello of `ssl-hello-chk` carries the time it is built at.
    static func steps(_ check: ProtocolCheck, now: UInt32 = UInt32(truncatingIfNeeded: time(nil))) -> [CompiledTCPStep] {
        switch check {
        case .sslHello:
            return [
                .send(sslHello(now: now)),
                .expect(ProtocolExpect(.prefix { $0[0] == 0x15 || $0[0] == 0x16 }, minRecv: 5,
                                       ok: .layer6OK, error: .layer6Response, timeout: .layer6Timeout)),
            ]
        case .redis:
            return [
                .send(Array("*1\r\n$4\r\nPING\r\n".utf8)),
                .expect(ProtocolExpect(.string(Array("+PONG\r\n".utf8)), error: .layer7Status,
                                       onSuccess: .text("Redis server is ok"), onError: .payload(from: 0, trim: false))),
            ]
        case .smtp(let command):
            return [
                .connect(port: nil),
                .expect(ProtocolExpect(.prefix { smtpReply($0, classes: [], separators: [0x20, 0x0D]) }, minRecv: 4,
                                       error: .layer7Response, onError: .payload(from: 0, trim: false))),
                .expect(ProtocolExpect(.prefix { smtpReply($0, classes: [0x32], separators: [0x20, 0x0D]) }, minRecv: 4,
                                       error: .layer7Status, onError: .payload(from: 4, trim: true), statusCode: true)),
                .send(Array("\(command)\r\n".utf8)),
                // The whole reply, continuation lines included (HAProxy waits for it, no min-recv).
                .expect(ProtocolExpect(.prefix(smtpMultilineReply), error: .layer7Status, onSuccess: .payload(from: 4, trim: true),
                                       onError: .payload(from: 4, trim: true), statusCode: true)),
                // A QUIT for a clean end of the session (HAProxy 2.6.9 on, its issue 1812).
                .send(Array("QUIT\r\n".utf8)),
                .expect(ProtocolExpect(.prefix { smtpReply($0, classes: [0x32], separators: [0x2D, 0x20, 0x0D]) }, minRecv: 4,
                                       error: .layer7Status, onSuccess: .payload(from: 4, trim: true),
                                       onError: .payload(from: 4, trim: true), statusCode: true)),
            ]
        case .pgsql(let user):
            // StartupMessage: length, protocol 3.0, "user" and the name, an empty parameter.
            let length = UInt32(15 + user.utf8.count)
            var startup = bigEndian(length)
            startup += [0x00, 0x03, 0x00, 0x00] + Array("user".utf8) + [0] + Array(user.utf8) + [0, 0]
            return [
                .connect(port: nil),
                .send(startup),
                .expect(ProtocolExpect(.prefix { $0[0] == UInt8(ascii: "E") }, negated: true, minRecv: 5,
                                       error: .layer7Response, onError: .payload(from: 6, trim: false, cut: false))),
                // An AuthenticationOk, or a request for a password (clear, MD5, SCM, GSS, SSPI, …).
                .expect(ProtocolExpect(.prefix { b in
                    b.count >= 9 && b[0] == 0x52 && b[1] == 0 && b[2] == 0 && b[3] == 0 && [0x08, 0x0A, 0x0C].contains(b[4])
                        && b[5] == 0 && b[6] == 0 && b[7] == 0 && [0, 2, 3, 4, 5, 6].contains(b[8])
                }, minRecv: 9, error: .layer7Status,
                onSuccess: .text("PostgreSQL server is ok"), onError: .text("PostgreSQL unknown error"))),
            ]
        case .mysql(let user, let post41):
            var steps: [CompiledTCPStep] = [.connect(port: nil)]
            if let user {
                steps.append(.send(mysqlLogin(user: user, post41: post41)))
                steps.append(.expect(ProtocolExpect(.mysqlHandshake)))
                steps.append(.expect(ProtocolExpect(.mysqlOK)))
            } else {
                steps.append(.expect(ProtocolExpect(.mysqlHandshake)))
            }
            return steps
        case .ldap:
            return [
                // An anonymous simple bind, LDAPv3, message id 1.
                .send([0x30, 0x0C, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00]),
                .expect(ProtocolExpect(.prefix { $0[0] == 0x30 }, minRecv: 14, onError: .text("Not LDAPv3 protocol"))),
                .expect(ProtocolExpect(.ldapBindResponse)),
            ]
        }
    }

    private static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    /// `^[0-9]{3}[ \r]` and the like: three digits (the first among `classes` when given), then one
    /// of `separators`.
    private static func smtpReply(_ b: [UInt8], classes: [UInt8], separators: [UInt8]) -> Bool {
        guard b.count >= 4 else { return false }
        let digits = b[0..<3].allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        return digits && (classes.isEmpty || classes.contains(b[0])) && separators.contains(b[3])
    }

    /// `^(2[0-9]{2}-[^\r]*\r\n)*2[0-9]{2}[ \r]`: 2xx continuation lines, then a last 2xx line.
    private static func smtpMultilineReply(_ b: [UInt8]) -> Bool {
        var p = 0
        while b.count >= p + 4, b[p] == 0x32, b[(p + 1)...(p + 2)].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            if b[p + 3] == 0x20 || b[p + 3] == 0x0D { return true }
            guard b[p + 3] == 0x2D, let cr = b[(p + 4)...].firstIndex(of: 0x0D), cr + 1 < b.count, b[cr + 1] == 0x0A else {
                return false
            }
            p = cr + 2
        }
        return false
    }

    /// HAProxy's SSLv3 ClientHello: 39 common ciphers, the time, a fixed random.
    static func sslHello(now: UInt32) -> [UInt8] {
        var hello: [UInt8] = [0x16, 0x03, 0x00, 0x00, 0x79, 0x01, 0x00, 0x00, 0x75, 0x03, 0x00]
        hello += bigEndian(now)
        hello += Array("HAPROXYSSLCHK\nHAPROXYSSLCHK\n".utf8)
        hello += [0x00, 0x00, 0x4E]
        for cipher in Array(0x01...0x1B) + Array(0x2F...0x3A) { hello += [0x00, UInt8(cipher)] }
        hello += [0x01, 0x00]
        return hello
    }

    /// A handshake response with no password (4.1 or 4.0 protocol), then COM_QUIT.
    static func mysqlLogin(user: String, post41: Bool) -> [UInt8] {
        let name = Array(user.utf8)
        var body: [UInt8]
        if post41 {
            body = [0x00, 0x82, 0x00, 0x00, 0x00, 0x80, 0x00, 0x01, 0x21] + [UInt8](repeating: 0, count: 23)
        } else {
            body = [0x00, 0x80, 0x00, 0x00, 0x01]
        }
        body += name + [0x00, 0x00]
        let n = body.count
        return [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), 0x01] + body + [0x01, 0x00, 0x00, 0x00, 0x01]
    }
}

/// An expect rule of a protocol check, with the options HAProxy's rule sets give theirs:
/// `min-recv`, `ok-status`/`error-status`/`tout-status`, `on-success`/`on-error` and `status-code`.
struct ProtocolExpect {
    enum Match {
        /// The bytes anywhere in the answer (`expect string`).
        case string([UInt8])
        /// A test of the answer's first bytes (the anchored regexes of HAProxy's rule sets).
        case prefix(([UInt8]) -> Bool)
        /// MySQL: the server's initial handshake packet (or its error packet).
        case mysqlHandshake
        /// MySQL: the packet after the handshake (OK, or an error such as access denied).
        case mysqlOK
        /// LDAP: a bind response whose result code is success.
        case ldapBindResponse
    }

    /// A text for the check's info: fixed, or the answer from an offset (HAProxy's
    /// `res.payload(N,0)`, `ltrim(' ')` when `trim`, `cut_crlf` when `cut`).
    enum Info {
        case none
        case text(String)
        case payload(from: Int, trim: Bool, cut: Bool = true)

        func text(_ input: [UInt8]) -> String {
            switch self {
            case .none: return ""
            case .text(let s): return s
            case .payload(let from, let trim, let cut):
                guard from < input.count else { return "" }
                var bytes = input[from...]
                if trim { bytes = bytes.drop { $0 == 0x20 } }
                // The info is a C string in HAProxy: it ends at a NUL.
                if let end = bytes.firstIndex(where: { $0 == 0 || (cut && ($0 == 0x0D || $0 == 0x0A)) }) {
                    bytes = bytes[..<end]
                }
                return String(decoding: bytes, as: UTF8.self)
            }
        }
    }

    let match: Match
    var negated = false
    var minRecv = -1
    var ok: HealthCheckStatus = .layer7OK
    var error: HealthCheckStatus = .layer7Response
    var timeout: HealthCheckStatus = .layer7Timeout
    var onSuccess: Info = .none
    var onError: Info = .none
    /// SMTP: the reply's first three bytes are the check's code.
    var statusCode = false

    init(_ match: Match, negated: Bool = false, minRecv: Int = -1, ok: HealthCheckStatus = .layer7OK,
         error: HealthCheckStatus = .layer7Response, timeout: HealthCheckStatus = .layer7Timeout,
         onSuccess: Info = .none, onError: Info = .none, statusCode: Bool = false) {
        self.match = match
        self.negated = negated
        self.minRecv = minRecv
        self.ok = ok
        self.error = error
        self.timeout = timeout
        self.onSuccess = onSuccess
        self.onError = onError
        self.statusCode = statusCode
    }

    enum Result {
        case wait
        /// The rule passed; its outcome if it is the last one (code and info).
        case passed(HealthCheckOutcome)
        case failed(HealthCheckOutcome)
    }

    /// HAProxy's tcpcheck_eval_expect (and its custom MySQL and LDAP functions) on `input`.
    func evaluate(_ input: [UInt8], lastRead: Bool) -> Result {
        let code = statusCode && input.count >= 3 ? Int(String(decoding: input[0..<3], as: UTF8.self)) ?? 0 : 0
        let matched: Bool
        switch match {
        case .mysqlHandshake:
            return ProtocolExpect.mysqlPacket(input, at: 0, lastRead: lastRead, ok: ok)
        case .mysqlOK:
            guard input.count >= 3 else { return lastRead ? .failed(HealthCheckOutcome(.layer7Response)) : .wait }
            let handshake = 4 + Int(input[0]) + Int(input[1]) << 8 + Int(input[2]) << 16
            return ProtocolExpect.mysqlPacket(input, at: handshake, lastRead: lastRead, ok: ok)
        case .ldapBindResponse:
            return ProtocolExpect.ldapBindResponse(input, lastRead: lastRead, ok: ok)
        case .string(let bytes):
            if !lastRead && input.count < bytes.count { return .wait }
            if !lastRead && minRecv > 0 && input.count < minRecv { return .wait }
            matched = input.firstRange(of: bytes) != nil
        case .prefix(let test):
            if !lastRead && minRecv > 0 && input.count < minRecv { return .wait }
            matched = !input.isEmpty && test(input)
        }
        if !matched && !lastRead && minRecv == -1 { return .wait }
        if matched != negated {
            return .passed(HealthCheckOutcome(ok, code: code, info: onSuccess.text(input)))
        }
        return .failed(HealthCheckOutcome(error, code: code, info: onError.text(input)))
    }

    /// tcpcheck_mysql_expect_packet: a whole packet at `offset`; an error packet (0xFF) fails with
    /// its error code and message; otherwise the server's version is the info.
    private static func mysqlPacket(_ b: [UInt8], at offset: Int, lastRead: Bool, ok: HealthCheckStatus) -> Result {
        guard b.count >= offset + 4 else { return lastRead ? .failed(HealthCheckOutcome(.layer7Response)) : .wait }
        let length = Int(b[offset]) + Int(b[offset + 1]) << 8 + Int(b[offset + 2]) << 16
        guard b.count >= offset + length + 4 else { return lastRead ? .failed(HealthCheckOutcome(.layer7Response)) : .wait }
        if length > 0 && b[offset + 4] == 0xFF {
            let code = b.count > offset + 6 ? Int(b[offset + 5]) + Int(b[offset + 6]) << 8 : 0
            let message = offset + 7 < b.count ? Info.payload(from: offset + 7, trim: false, cut: false).text(b) : ""
            return .failed(HealthCheckOutcome(.layer7Status, code: code, info: message))
        }
        return .passed(HealthCheckOutcome(ok, info: Info.payload(from: 5, trim: false, cut: false).text(b)))
    }

    /// tcpcheck_ldap_expect_bindrsp: LDAPMessage { messageID 1, bindResponse { resultCode … } }.
    private static func ldapBindResponse(_ b: [UInt8], lastRead: Bool, ok: HealthCheckStatus) -> Result {
        let notLDAP = Result.failed(HealthCheckOutcome(.layer7Response, info: "Not LDAPv3 protocol"))
        let tooShort = lastRead ? Result.failed(HealthCheckOutcome(.layer7Response)) : .wait
        guard b.count >= 2 else { return tooShort }
        var p = 1
        var lengthBytes = 0
        var length = 0
        if b[p] & 0x80 != 0 {
            lengthBytes = Int(b[p] & 0x7F)
            guard b.count >= 2 + lengthBytes else { return tooShort }
            switch lengthBytes {
            case 4: length = b[(p + 1)...(p + 4)].reduce(0) { $0 << 8 | Int($1) }
            case 2: length = b[(p + 1)...(p + 2)].reduce(0) { $0 << 8 | Int($1) }
            default: return notLDAP
            }
        } else {
            length = Int(b[p])
        }
        p += 1 + lengthBytes
        guard b.count >= 2 + lengthBytes + length else { return tooShort }
        guard b.count >= p + 4, Array(b[p..<(p + 4)]) == [0x02, 0x01, 0x01, 0x61] else { return notLDAP }
        p += 4
        guard p < b.count else { return notLDAP }
        p += 1 + (b[p] & 0x80 != 0 ? Int(b[p] & 0x7F) : 0)
        guard b.count >= p + 3, b[p] == 0x0A, b[p + 1] == 0x01 else { return notLDAP }
        let code = Int(b[p + 2])
        if code != 0 {
            return .failed(HealthCheckOutcome(.layer7Status, code: code,
                                              info: "See RFC: http://tools.ietf.org/html/rfc4511#section-4.1.9"))
        }
        return .passed(HealthCheckOutcome(ok, info: "Success"))
    }
}
