import Foundation
import Glibc
import StrataTestSupport
import Testing

/// A fake server for protocol checks, run by the test process (a thread per connection): `talk`
/// holds the conversation (what it reads, what it answers, healthy or not); the bytes each check
/// sent are recorded.
final class ProtocolOrigin: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    private struct State {
        var healthy: Bool
        var received: [[UInt8]] = []
    }
    private let state: Guarded<State>

    /// `talk(fd, healthy)` speaks to one check and returns what it read.
    init(healthy: Bool, _ talk: @escaping @Sendable (Int32, Bool) -> [UInt8]) throws {
        state = Guarded(State(healthy: healthy))
        (fd, port) = try TestSocket.listen(what: "protocol origin")
        TestSocket.acceptLoop(fd, timeout: 5) { [self] c in
            Thread { [self] in
                let read = talk(c, self.healthy)
                state.withLock { $0.received.append(read) }
                // Let the check read the answer before the close.
                usleep(20_000)
                close(c)
            }.start()
            return true
        }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    var healthy: Bool {
        get { state.withLock { $0.healthy } }
        set { state.withLock { $0.healthy = newValue } }
    }
    /// What each check sent, in order.
    var received: [[UInt8]] { state.withLock { $0.received } }
    var checks: Int { received.count }
}

/// `option redis-check`, `mysql-check`, `pgsql-check`, `smtpchk`, `ldap-check` and `ssl-hello-chk`
/// with the real binary: a fake server answering right keeps its server UP, one answering wrong
/// takes it DOWN with HAProxy's status and info; the bytes the checks send are HAProxy's.
@Suite(.serialized) struct ProtocolCheckTests {
    static func config(_ option: String, good: ProtocolOrigin, bad: ProtocolOrigin) -> String {
        """
        global
            stats socket @ADMIN@ level admin
        defaults
            mode tcp
            timeout connect 1s
            timeout check 5s
            timeout client 10s
            timeout server 10s
        listen be
            bind 127.0.0.1:\(TestSocket.freePort())
            \(option)
            default-server check inter 100ms rise 1 fall 1
            server good 127.0.0.1:\(good.port)
            server bad 127.0.0.1:\(bad.port)
        """
    }

    /// A column of `show stat` for server `server` of backend `be`.
    static func stat(_ strata: StrataProcess, _ server: String, _ field: String) throws -> String? {
        let lines = try strata.admin("show stat").split(separator: "\n").map(String.init)
        guard let header = lines.first?.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false),
              let column = header.firstIndex(of: Substring(field)) else { return nil }
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            // (`* ` marks a check in flight: the status is the last one's all the same.)
            if fields.count > column, fields[0] == "be", fields[1] == Substring(server) {
                let value = String(fields[column])
                return value.hasPrefix("* ") ? String(value.dropFirst(2)) : value
            }
        }
        return nil
    }

    /// Runs strata with `option`; the good server is UP after its checks, the bad one DOWN with
    /// `down` in the log line; `check_status` of `show stat` says `okStatus` and `downStatus`.
    static func run(_ option: String, good: ProtocolOrigin, bad: ProtocolOrigin,
                    okStatus: String, downStatus: String, down: String, up: String? = nil) throws -> StrataProcess {
        let strata = try StrataProcess(config: config(option, good: good, bad: bad))
        #expect(strata.waitForAdmin())
        #expect(try eventually { try strata.serversState("be")["bad"]?.operational == 0 })
        #expect(strata.waitForOutput("Server be/bad is DOWN, reason: \(down)", seconds: 30), "\(strata.output.joined(separator: "\n"))")
        #expect(try eventually { good.checks >= 2 })
        #expect(try strata.serversState("be")["good"]?.operational == 2)
        #expect(try eventually { try stat(strata, "good", "check_status") == okStatus })
        #expect(try stat(strata, "bad", "check_status") == downStatus)
        if let up {
            // The bad server heals: UP again with the check's success text.
            bad.healthy = true
            #expect(try eventually { try strata.serversState("be")["bad"]?.operational == 2 })
            #expect(strata.waitForOutput("Server be/bad is UP, reason: \(up)"), "\(strata.output.joined(separator: "\n"))")
        }
        return strata
    }

    @Test func redisCheckSendsPingAndWantsPong() throws {
        let talk: @Sendable (Int32, Bool) -> [UInt8] = { c, healthy in
            let read = TestSocket.read(c, count: 14)
            TestSocket.sendAll(c, healthy ? "+PONG\r\n" : "-LOADING Redis is loading the dataset in memory\r\n")
            return read
        }
        let good = try ProtocolOrigin(healthy: true, talk), bad = try ProtocolOrigin(healthy: false, talk)
        let strata = try Self.run("option redis-check", good: good, bad: bad, okStatus: "L7OK", downStatus: "L7STS",
                                  down: "Layer7 wrong status, code: 0, info: \"-LOADING Redis is loading the dataset in memory\"",
                                  up: "Layer7 check passed, code: 0, info: \"Redis server is ok\"")
        #expect(good.received.first == Array("*1\r\n$4\r\nPING\r\n".utf8))
        _ = strata
    }

    @Test func mysqlCheckLogsInAsItsUserAndQuits() throws {
        // A greeting (protocol 10, version), then the client's packets, then OK or access denied.
        let talk: @Sendable (Int32, Bool) -> [UInt8] = { c, healthy in
            let version = Array("8.0.36-fake".utf8) + [0]
            let greeting: [UInt8] = [0x0A] + version + [0x01, 0, 0, 0] + Array("abcdefgh".utf8) + [0]
            TestSocket.sendAll(c, [UInt8(greeting.count), 0, 0, 0] + greeting)
            let header = TestSocket.read(c, count: 4)
            guard header.count == 4 else { return header }
            let body = TestSocket.read(c, count: Int(header[0]) | Int(header[1]) << 8 | Int(header[2]) << 16)
            let quit = TestSocket.read(c, count: 5)
            if healthy {
                TestSocket.sendAll(c, [0x07, 0, 0, 0x02, 0, 0, 0, 0x02, 0, 0, 0])
            } else {
                let error: [UInt8] = [0xFF, 0x15, 0x04] + Array("#28000Access denied for user 'haproxy'".utf8)
                TestSocket.sendAll(c, [UInt8(error.count), 0, 0, 0x02] + error)
            }
            return header + body + quit
        }
        let good = try ProtocolOrigin(healthy: true, talk), bad = try ProtocolOrigin(healthy: false, talk)
        _ = try Self.run("option mysql-check user haproxy", good: good, bad: bad, okStatus: "L7OK", downStatus: "L7STS",
                         down: "Layer7 wrong status, code: 1045, info: \"#28000Access denied for user 'haproxy'\"",
                         up: "Layer7 check passed, code: 0, info: \"8.0.36-fake\"")
        // HAProxy's 4.1 handshake response: length 41, sequence 1, capabilities, max packet, UTF-8,
        // 23 zeros, the user, no password; then COM_QUIT.
        let expected: [UInt8] = [0x29, 0, 0, 0x01, 0x00, 0x82, 0x00, 0x00, 0x00, 0x80, 0x00, 0x01, 0x21]
            + [UInt8](repeating: 0, count: 23) + Array("haproxy".utf8) + [0, 0] + [0x01, 0, 0, 0, 0x01]
        #expect(good.received.first == expected)
    }

    @Test func mysqlCheckWithoutUserReadsTheGreetingOnly() throws {
        let talk: @Sendable (Int32, Bool) -> [UInt8] = { c, healthy in
            if healthy {
                let greeting: [UInt8] = [0x0A] + Array("5.7.44".utf8) + [0, 0x01, 0, 0, 0]
                TestSocket.sendAll(c, [UInt8(greeting.count), 0, 0, 0] + greeting)
            } else {
                let error: [UInt8] = [0xFF, 0x6A, 0x04] + Array("Host '127.0.0.1' is not allowed to connect".utf8)
                TestSocket.sendAll(c, [UInt8(error.count), 0, 0, 0] + error)
            }
            return TestSocket.readToEnd(c, limit: 64)
        }
        let good = try ProtocolOrigin(healthy: true, talk), bad = try ProtocolOrigin(healthy: false, talk)
        _ = try Self.run("option mysql-check", good: good, bad: bad, okStatus: "L7OK", downStatus: "L7STS",
                         down: "Layer7 wrong status, code: 1130, info: \"Host '127.0.0.1' is not allowed to connect\"")
        // Without a user, the check sends nothing: it reads the greeting and closes.
        #expect(good.received.first == [])
    }

    @Test func pgsqlCheckSendsAStartupMessageAndWantsAnAuthenticationRequest() throws {
        let talk: @Sendable (Int32, Bool) -> [UInt8] = { c, healthy in
            let length = TestSocket.read(c, count: 4)
            guard length.count == 4 else { return length }
            let rest = TestSocket.read(c, count: Int(length[2]) << 8 | Int(length[3]) - 4)
            if healthy {
                // AuthenticationMD5Password with its salt.
                TestSocket.sendAll(c, [0x52, 0, 0, 0, 0x0C, 0, 0, 0, 0x05, 1, 2, 3, 4])
            } else {
                let fields = Array("SFATAL\0C28000\0Mno pg_hba.conf entry for host\0\0".utf8)
                TestSocket.sendAll(c, [0x45, 0, 0, 0, UInt8(fields.count + 4)] + fields)
            }
            return length + rest
        }
        let good = try ProtocolOrigin(healthy: true, talk), bad = try ProtocolOrigin(healthy: false, talk)
        _ = try Self.run("option pgsql-check user haproxy", good: good, bad: bad, okStatus: "L7OK", downStatus: "L7RSP",
                         down: "Layer7 invalid response, info: \"FATAL\"",
                         up: "Layer7 check passed, code: 0, info: \"PostgreSQL server is ok\"")
        // Length 22, protocol 3.0, user=haproxy, the final empty name.
        #expect(good.received.first == [0, 0, 0, 22, 0, 3, 0, 0] + Array("user\0haproxy\0\0".utf8))
    }

    @Test func smtpCheckWantsA2xxBannerAndAnswer() throws {
        let talk: @Sendable (Int32, Bool) -> [UInt8] = { c, healthy in
            guard healthy else {
                TestSocket.sendAll(c, "554 mail.example.com no service here\r\n")
                return TestSocket.readToEnd(c, limit: 256)
            }
            TestSocket.sendAll(c, "220 mail.example.com ESMTP\r\n")
            let hello = TestSocket.readLine(c) ?? ""
            // The reply in two writes: the check waits for its last line.
            TestSocket.sendAll(c, "250-mail.example.com greets you\r\n")
            usleep(20_000)
            TestSocket.sendAll(c, "250-PIPELINING\r\n250 8BITMIME\r\n")
            let quit = TestSocket.readLine(c) ?? ""
            TestSocket.sendAll(c, "221 mail.example.com closing\r\n")
            return Array((hello + "\n" + quit + "\n").utf8)
        }
        let good = try ProtocolOrigin(healthy: true, talk), bad = try ProtocolOrigin(healthy: false, talk)
        _ = try Self.run("option smtpchk EHLO checker.example", good: good, bad: bad, okStatus: "L7OK", downStatus: "L7STS",
                         down: "Layer7 wrong status, code: 554, info: \"mail.example.com no service here\"",
                         up: "Layer7 check passed, code: 221, info: \"mail.example.com closing\"")
        #expect(good.received.first == Array("EHLO checker.example\r\nQUIT\r\n".utf8))
        // The bad server got nothing: the check stops at its banner.
        #expect(bad.received.first == [])
    }

    @Test func ldapCheckBindsAnonymouslyAndWantsSuccess() throws {
        let talk: @Sendable (Int32, Bool) -> [UInt8] = { c, healthy in
            let read = TestSocket.read(c, count: 14)
            // BindResponse, message 1: resultCode 0 (success) or 49 (invalidCredentials).
            TestSocket.sendAll(c, [0x30, 0x0C, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0A, 0x01, healthy ? 0 : 49, 0x04, 0x00, 0x04, 0x00])
            return read
        }
        let good = try ProtocolOrigin(healthy: true, talk), bad = try ProtocolOrigin(healthy: false, talk)
        _ = try Self.run("option ldap-check", good: good, bad: bad, okStatus: "L7OK", downStatus: "L7STS",
                         down: "Layer7 wrong status, code: 49, info: \"See RFC: http://tools.ietf.org/html/rfc4511#section-4.1.9\"",
                         up: "Layer7 check passed, code: 0, info: \"Success\"")
        #expect(good.received.first == [0x30, 0x0C, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00])
    }

    @Test func ldapCheckRefusesAnotherProtocol() throws {
        let talk: @Sendable (Int32, Bool) -> [UInt8] = { c, healthy in
            let read = TestSocket.read(c, count: 14)
            TestSocket.sendAll(c, healthy ? [0x30, 0x0C, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0A, 0x01, 0, 0x04, 0x00, 0x04, 0x00]
                                          : Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8))
            return read
        }
        let good = try ProtocolOrigin(healthy: true, talk), bad = try ProtocolOrigin(healthy: false, talk)
        _ = try Self.run("option ldap-check", good: good, bad: bad, okStatus: "L7OK", downStatus: "L7RSP",
                         down: "Layer7 invalid response, info: \"Not LDAPv3 protocol\"")
    }

    @Test func sslHelloCheckSendsAClientHelloAndWantsAHandshakeRecord() throws {
        let talk: @Sendable (Int32, Bool) -> [UInt8] = { c, healthy in
            let header = TestSocket.read(c, count: 5)
            guard header.count == 5 else { return header }
            let body = TestSocket.read(c, count: Int(header[3]) << 8 | Int(header[4]))
            // A ServerHelloDone record, or an HTTP server's answer.
            TestSocket.sendAll(c, healthy ? [0x16, 0x03, 0x00, 0x00, 0x04, 0x0E, 0x00, 0x00, 0x00]
                                          : Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8))
            return header + body
        }
        let good = try ProtocolOrigin(healthy: true, talk), bad = try ProtocolOrigin(healthy: false, talk)
        _ = try Self.run("option ssl-hello-chk", good: good, bad: bad, okStatus: "L6OK", downStatus: "L6RSP",
                         down: "Layer6 invalid response", up: "Layer6 check passed")
        let hello = try #require(good.received.first)
        // Record and handshake headers of an SSLv3 ClientHello of 0x79 bytes, the time, the random,
        // no session, 39 ciphers (0x0001-0x001B, 0x002F-0x003A), the null compression.
        #expect(hello.count == 5 + 0x79)
        #expect(Array(hello.prefix(11)) == [0x16, 0x03, 0x00, 0x00, 0x79, 0x01, 0x00, 0x00, 0x75, 0x03, 0x00])
        let seconds = Int(hello[11]) << 24 | Int(hello[12]) << 16 | Int(hello[13]) << 8 | Int(hello[14])
        #expect(abs(seconds - Int(Date().timeIntervalSince1970)) < 600)
        #expect(Array(hello[15..<43]) == Array("HAPROXYSSLCHK\nHAPROXYSSLCHK\n".utf8))
        #expect(Array(hello[43..<46]) == [0x00, 0x00, 0x4E])
        #expect(Array(hello[46..<50]) == [0x00, 0x01, 0x00, 0x02] && Array(hello[120..<124]) == [0x00, 0x39, 0x00, 0x3A])
        #expect(Array(hello.suffix(2)) == [0x01, 0x00])
    }

    @Test func aServerThatSaysNothingTimesOutWithTheCheckLayer() throws {
        // ssl-hello-chk waits at layer 6: its timeout is L6TOUT; a redis check's is L7TOUT.
        let silent: @Sendable (Int32, Bool) -> [UInt8] = { c, _ in
            TestSocket.readToEnd(c, limit: 200)
        }
        let mute = try ProtocolOrigin(healthy: false, silent)
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode tcp
                timeout connect 1s
                timeout client 10s
                timeout server 10s
                timeout check 200ms
            listen tls
                bind 127.0.0.1:\(TestSocket.freePort())
                option ssl-hello-chk
                server quiet 127.0.0.1:\(mute.port) check inter 100ms rise 1 fall 1
            listen redis
                bind 127.0.0.1:\(TestSocket.freePort())
                option redis-check
                server quiet 127.0.0.1:\(mute.port) check inter 100ms rise 1 fall 1
            """)
        #expect(strata.waitForAdmin())
        #expect(strata.waitForOutput("Server tls/quiet is DOWN, reason: Layer6 timeout"), "\(strata.output.joined(separator: "\n"))")
        #expect(strata.waitForOutput("Server redis/quiet is DOWN, reason: Layer7 timeout"), "\(strata.output.joined(separator: "\n"))")
    }

    @Test func checkSendProxyPutsAPROXYHeaderBeforeTheCheck() throws {
        // Reads up to the end of the redis PING; answers +PONG.
        let talk: @Sendable (Int32, Bool) -> [UInt8] = { c, _ in
            var read: [UInt8] = []
            while !read.ends(with: Array("PING\r\n".utf8)) {
                let more = TestSocket.read(c, count: 1)
                if more.isEmpty { return read }
                read += more
            }
            TestSocket.sendAll(c, "+PONG\r\n")
            return read
        }
        let v1 = try ProtocolOrigin(healthy: true, talk), v2 = try ProtocolOrigin(healthy: true, talk)
        let ownPort = try ProtocolOrigin(healthy: true, talk)
        let ping = Array("*1\r\n$4\r\nPING\r\n".utf8)
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode tcp
                timeout connect 1s
                timeout check 5s
                timeout client 10s
                timeout server 10s
            listen be
                bind 127.0.0.1:\(TestSocket.freePort())
                option redis-check
                default-server check inter 100ms rise 1 fall 1
                server v1 127.0.0.1:\(v1.port) check-send-proxy
                server v2 127.0.0.1:\(v2.port) send-proxy-v2 check-send-proxy addr 127.0.0.1
                server own 127.0.0.1:1 send-proxy port \(ownPort.port)
            """)
        #expect(strata.waitForAdmin())
        #expect(try eventually { v1.checks >= 2 && v2.checks >= 2 && ownPort.checks >= 2 })
        // Without send-proxy on the server: a v1 header for the checks only.
        #expect(v1.received.first == Array("PROXY UNKNOWN\r\n".utf8) + ping)
        // send-proxy-v2: a v2 LOCAL header, even with the check's own addr.
        let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        let second = try #require(v2.received.first)
        #expect(Array(second.prefix(14)) == signature + [0x20, 0x00])
        #expect(second.ends(with: ping))
        // A check with its own port and no check-send-proxy goes without the server's header.
        #expect(ownPort.received.first == ping)
        #expect(try strata.serversState("be").values.allSatisfy { $0.operational == 2 })
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
