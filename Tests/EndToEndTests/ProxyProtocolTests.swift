import Foundation
import Glibc
import StrataTestSupport
import Testing

/// A raw server that records the first bytes of each connection (until the client pauses),
/// answers `ok` and closes: what a server behind `send-proxy*` receives.
final class HeaderRecorder: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    private let state = Guarded<[[UInt8]]>([])

    init() throws {
        (fd, port) = try TestSocket.listen(what: "header recorder")
        TestSocket.acceptLoop(fd, timeout: 30) { [self] c in
            Thread { [self] in
                TestSocket.setTimeout(c, seconds: 0.5)
                var got: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = recv(c, &buffer, buffer.count, 0)
                    if n <= 0 { break }
                    got += buffer[..<n]
                }
                state.withLock { $0.append(got) }
                _ = TestSocket.sendAll(c, "ok\n")
                close(c)
            }.start()
            return true
        }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    var received: [[UInt8]] { state.withLock { $0 } }
}

/// The PROXY protocol, v1 and v2: `accept-proxy` on bind and `tcp-request connection
/// expect-proxy layer4` (the carried addresses become `src`/`dst` in logs and X-Forwarded-For),
/// `send-proxy` and `send-proxy-v2` read by a raw server, malformed and slow headers.
@Suite(.serialized) struct ProxyProtocolTests {
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    static func httpConfig(port: UInt16, server: UInt16, bindOptions: String = "accept-proxy", extra: String = "",
                           clientTimeout: String = "5s") -> String {
        """
        global
            stats socket @ADMIN@ level admin
            log stdout format raw local0
            nbthread 2
        defaults
            mode http
            timeout connect 2s
            timeout client \(clientTimeout)
            timeout server 5s
            log global

        frontend web
            bind 127.0.0.1:\(port) \(bindOptions)
            log-format "req src=%ci:%cp dst=%fi:%fp fetch=%[src] %r"
            option forwardfor
        \(extra)
            default_backend app

        backend app
            server s1 127.0.0.1:\(server)
        """
    }

    /// Sends `header` and a request for `path` on a new connection; the answer's bytes.
    static func request(_ port: UInt16, header: [UInt8], path: String, from source: String? = nil) -> String {
        guard let fd = source.map({ TestSocket.connect(port, from: $0) }) ?? TestSocket.connect(port) else { return "" }
        defer { close(fd) }
        _ = TestSocket.sendAll(fd, header + Array("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        return String(decoding: TestSocket.readToEnd(fd), as: UTF8.self)
    }

    static func v2(command: UInt8 = 0x21, family: UInt8, addresses: [UInt8], tlvs: [UInt8] = []) -> [UInt8] {
        let body = addresses + tlvs
        return signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    @Test func acceptProxyV1AndV2CarryTheClientToLogsAndForwardedFor() throws {
        let server = try RecordingServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.httpConfig(port: port, server: server.port))
        #expect(strata.waitForAdmin())

        let ip6 = [UInt8](repeating: 0, count: 15) + [9]  // ::9
        let cases: [(name: String, header: [UInt8], forwarded: String, log: String)] = [
            ("v1-tcp4", Array("PROXY TCP4 203.0.113.9 198.51.100.2 40000 8443\r\n".utf8), "203.0.113.9",
             "src=203.0.113.9:40000 dst=198.51.100.2:8443 fetch=203.0.113.9"),
            ("v1-tcp6", Array("PROXY TCP6 2001:db8::5 2001:db8::1 1234 80\r\n".utf8), "2001:db8::5",
             "src=2001:db8::5:1234 dst=2001:db8::1:80 fetch=2001:db8::5"),
            ("v1-unknown", Array("PROXY UNKNOWN\r\n".utf8), "127.0.0.1", "src=127.0.0.1:"),
            ("v2-tcp4", Self.v2(family: 0x11, addresses: [192, 0, 2, 44, 10, 1, 1, 1, 0x15, 0xB3, 0, 80]), "192.0.2.44",
             "src=192.0.2.44:5555 dst=10.1.1.1:80 fetch=192.0.2.44"),
            ("v2-tcp6", Self.v2(family: 0x21, addresses: ip6 + ip6 + [0, 7, 0, 8],
                                tlvs: [0x04, 0, 2, 0, 0]),  // a NOOP TLV
             "::9", "src=::9:7 dst=::9:8 fetch=::9"),
            ("v2-local", Self.v2(command: 0x20, family: 0x00, addresses: []), "127.0.0.1", "src=127.0.0.1:"),
        ]
        for c in cases {
            let answer = Self.request(port, header: c.header, path: "/\(c.name)")
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(c.name): \(answer)")
            #expect(eventually { server.allBytes.contains("GET /\(c.name) HTTP/1.1") })
            let forwarded = server.streams.map { String(decoding: $0, as: UTF8.self) }
                .first { $0.contains("GET /\(c.name) ") }
            #expect(forwarded?.contains("X-Forwarded-For: \(c.forwarded)\r\n") == true, "\(c.name): \(forwarded ?? "-")")
            // The whole line: a line still being written may show its start only.
            #expect(eventually { strata.output.contains { $0.contains(c.log) && $0.contains("/\(c.name) ") } }, "\(c.name)")
        }
        // The payload after the header reached the server untouched: each stream is one whole request.
        #expect(server.verdictsSoFar.allSatisfy { $0 == .whole(count: 1) })
    }

    @Test func tcpRequestConnectionSetSrcAndSetDstPortAreTheConnectionsFromThen() throws {
        let server = try RecordingServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.httpConfig(port: port, server: server.port, bindOptions: "", extra: """
                tcp-request connection set-src src,ipmask(24)
                tcp-request connection set-dst-port int(8443)
                tcp-request connection reject if { src 10.0.0.0/8 }
            """))
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        #expect(Self.request(port, header: [], path: "/masked", from: "127.0.0.9").hasPrefix("HTTP/1.1 200"))
        #expect(eventually { server.allBytes.contains("GET /masked HTTP/1.1") })
        let forwarded = server.streams.map { String(decoding: $0, as: UTF8.self) }.first { $0.contains("GET /masked ") } ?? ""
        #expect(forwarded.contains("X-Forwarded-For: 127.0.0.0\r\n"), "\(forwarded)")
        #expect(eventually { strata.output.contains { $0.contains("src=127.0.0.0:") && $0.contains(":8443 fetch=127.0.0.0 GET /masked ") } },
                "\(strata.output.suffix(3))")
    }

    @Test func theHeadersTLVsAreFetches() throws {
        let server = try RecordingServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.httpConfig(port: port, server: server.port, extra: """
                http-request set-header X-PP %[fc_rcvd_proxy]
                http-request set-header X-PP-ID %[fc_pp_unique_id]
                http-request set-header X-PP-Authority %[fc_pp_authority]
                http-request set-header X-PP-TLV %[fc_pp_tlv(0xE0)]
                http-request set-header X-PP-Named %[fc_pp_tlv(UNIQUE_ID)]
                http-request deny deny_status 403 if { path /needs-id } !{ fc_pp_unique_id -m found }
            """))
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        func tlv(_ type: UInt8, _ value: String) -> [UInt8] { [type, 0, UInt8(value.utf8.count)] + Array(value.utf8) }
        let addresses: [UInt8] = [192, 0, 2, 44, 10, 1, 1, 1, 0x15, 0xB3, 0, 80]
        let header = Self.v2(family: 0x11, addresses: addresses,
                             tlvs: tlv(0x02, "shop.example") + tlv(0x05, "circuit-42") + tlv(0xE0, "custom"))
        #expect(Self.request(port, header: header, path: "/with").hasPrefix("HTTP/1.1 200"))
        #expect(eventually { server.allBytes.contains("GET /with HTTP/1.1") })
        let with = server.streams.map { String(decoding: $0, as: UTF8.self) }.first { $0.contains("GET /with ") } ?? ""
        #expect(with.contains("X-PP: 1\r\n") && with.contains("X-PP-ID: circuit-42\r\n"), "\(with)")
        #expect(with.contains("X-PP-Authority: shop.example\r\n") && with.contains("X-PP-TLV: custom\r\n"))
        #expect(with.contains("X-PP-Named: circuit-42\r\n"))
        // A header without those TLVs: no ID, and the rule that needs one refuses.
        let bare = Self.v2(family: 0x11, addresses: addresses)
        #expect(Self.request(port, header: bare, path: "/needs-id").hasPrefix("HTTP/1.1 403"))
        #expect(Self.request(port, header: bare, path: "/bare").hasPrefix("HTTP/1.1 200"))
        #expect(eventually { server.allBytes.contains("GET /bare HTTP/1.1") })
        let without = server.streams.map { String(decoding: $0, as: UTF8.self) }.first { $0.contains("GET /bare ") } ?? ""
        #expect(without.contains("X-PP: 1\r\n") && !without.contains("X-PP-ID: c"), "\(without)")
    }

    /// `bind … ssl accept-proxy`: the header comes in clear before the TLS handshake, which must
    /// find the ClientHello untouched after it.
    @Test func acceptProxyBeforeTLS() throws {
        let pki = TLSTestPKI.shared
        let server = try RecordingServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.httpConfig(port: port, server: server.port,
                                                               bindOptions: "ssl crt \(pki.path("a.pem")) accept-proxy"))
        #expect(strata.waitForAdmin())
        let header = Self.v2(family: 0x11, addresses: [198, 51, 100, 77, 127, 0, 0, 1, 0x30, 0x39, 1, 0xBB])
        let client = try #require(TLSTestClient(port: port, serverName: "a.test", prefix: header))
        #expect(client.get("/tls")?.contains("ok") == true)
        #expect(client.peerSubject.contains("CN=a.test"))
        #expect(strata.waitForOutput("src=198.51.100.77:12345 dst=127.0.0.1:443 fetch=198.51.100.77"))
        #expect(server.allBytes.contains("X-Forwarded-For: 198.51.100.77\r\n"))
    }

    @Test func malformedHeadersCloseAndAreCounted() throws {
        let server = try RecordingServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.httpConfig(port: port, server: server.port))
        #expect(strata.waitForAdmin())
        let bad: [[UInt8]] = [
            Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8),              // no header at all
            Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n".utf8),        // port out of range
            Array("PROXY TCP4 1.2.3.4\n".utf8),                         // bare LF
            Self.signature + [0x31, 0x11, 0, 12] + [UInt8](repeating: 1, count: 12),  // version 3
            Self.v2(family: 0x11, addresses: [1, 2, 3, 4]),              // TCP4 without its 12 bytes
        ]
        for header in bad {
            let fd = try #require(TestSocket.connect(port))
            _ = TestSocket.sendAll(fd, header)
            // Closed without an answer.
            #expect(TestSocket.readToEnd(fd).isEmpty)
            close(fd)
        }
        #expect(strata.waitForOutput("does not look like a PROXY protocol header"))
        #expect(strata.waitForOutput("invalid PROXY protocol header"))
        #expect(strata.waitForOutput("unsupported PROXY protocol version"))
        #expect(server.connectionCount == 0)
        // Counted as request errors of the frontend (HAProxy's ereq).
        #expect(eventually { (try? Self.stat(strata, proxy: "web", field: "ereq")) == "5" })
    }

    @Test func aConnectionThatNeverSendsItsHeaderClosesAtTimeoutClient() throws {
        let server = try RecordingServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.httpConfig(port: port, server: server.port, clientTimeout: "1s"))
        #expect(strata.waitForAdmin())
        let fd = try #require(TestSocket.connect(port))
        defer { close(fd) }
        // The start of a header, then nothing.
        _ = TestSocket.sendAll(fd, "PROXY TCP4 ")
        let start = Date()
        #expect(TestSocket.readToEnd(fd).isEmpty)
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed > 0.8 && elapsed < 4, "closed after \(elapsed) s")
        #expect(strata.waitForOutput("Timeout while waiting for PROXY protocol header"))
        #expect(server.connectionCount == 0)
        // While it waited it counted as a session of its generation; none is left.
        #expect(eventually { (try? strata.generations().first?.sessions) == 0 })
    }

    @Test func expectProxyAndRejectBySource() throws {
        let server = try RecordingServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.httpConfig(port: port, server: server.port, bindOptions: "", extra: """
                tcp-request connection reject if { src 127.0.0.3 }
                tcp-request connection expect-proxy layer4 if { src 127.0.0.2 }
                tcp-request content reject if { src 127.0.0.4 } || { src 198.18.0.9 }
            """))
        #expect(strata.waitForAdmin())
        // 127.0.0.1: no header expected.
        #expect(Self.request(port, header: [], path: "/plain").hasPrefix("HTTP/1.1 200"))
        // 127.0.0.2: a trusted balancer, whose header is read.
        let viaBalancer = Self.request(port, header: Array("PROXY TCP4 198.18.0.1 127.0.0.1 999 80\r\n".utf8),
                                       path: "/balanced", from: "127.0.0.2")
        #expect(viaBalancer.hasPrefix("HTTP/1.1 200"))
        #expect(strata.waitForOutput("src=198.18.0.1:999"))
        // 127.0.0.3: rejected at once, nothing read, nothing logged, counted as a denied connection.
        #expect(Self.request(port, header: [], path: "/rejected", from: "127.0.0.3").isEmpty)
        #expect(eventually { (try? Self.stat(strata, proxy: "web", field: "dcon")) == "1" })
        #expect(!server.allBytes.contains("/rejected"))
        // tcp-request content in mode http: per request, on the (carried) source; closed without
        // an answer, counted as a denied request.
        #expect(Self.request(port, header: [], path: "/content", from: "127.0.0.4").isEmpty)
        #expect(Self.request(port, header: Array("PROXY TCP4 198.18.0.9 127.0.0.1 999 80\r\n".utf8),
                             path: "/content-carried", from: "127.0.0.2").isEmpty)
        #expect(eventually { (try? Self.stat(strata, proxy: "web", field: "dreq")) == "2" })
        #expect(!server.allBytes.contains("/content"))
        #expect(strata.waitForOutput("src=198.18.0.9:999"))  // logged, as HAProxy logs a rejected request
        let forwarded = server.streams.map { String(decoding: $0, as: UTF8.self) }
        #expect(forwarded.contains { $0.contains("/balanced") && $0.contains("X-Forwarded-For: 198.18.0.1\r\n") })
        #expect(forwarded.contains { $0.contains("/plain") && $0.contains("X-Forwarded-For: 127.0.0.1\r\n") })
    }

    @Test func sendProxyV1AndV2AreWhatTheServerReadsFirst() throws {
        let recorder = try HeaderRecorder()
        let p1 = TestSocket.freePort(), p2 = TestSocket.freePort(), p3 = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode tcp
                timeout connect 2s
                timeout client 5s
                timeout server 5s

            listen v1
                bind 127.0.0.1:\(p1)
                server s1 127.0.0.1:\(recorder.port) send-proxy

            listen v2
                bind 127.0.0.1:\(p2)
                server s1 127.0.0.1:\(recorder.port) send-proxy-v2

            listen v2crc
                bind 127.0.0.1:\(p3) accept-proxy
                default-server proxy-v2-options crc32c
                server s1 127.0.0.1:\(recorder.port) send-proxy-v2
            """)
        #expect(strata.waitForAdmin())
        func exchange(_ port: UInt16, from source: String, prefix: [UInt8] = []) -> (local: UInt16, answer: String) {
            guard let fd = TestSocket.connect(port, from: source) else { return (0, "") }
            defer { close(fd) }
            var addr = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
            _ = TestSocket.sendAll(fd, prefix + Array("hello".utf8))
            return (UInt16(bigEndian: addr.sin_port), TestSocket.readLine(fd) ?? "")
        }
        let a = exchange(p1, from: "127.0.0.2")
        #expect(a.answer == "ok")
        #expect(eventually { recorder.received.count == 1 })
        let first = String(decoding: recorder.received[0], as: UTF8.self)
        #expect(first == "PROXY TCP4 127.0.0.2 127.0.0.1 \(a.local) \(p1)\r\nhello")

        let b = exchange(p2, from: "127.0.0.3")
        #expect(b.answer == "ok")
        #expect(eventually { recorder.received.count == 2 })
        let expected = Self.signature + [0x21, 0x11, 0, 12, 127, 0, 0, 3, 127, 0, 0, 1,
                                         UInt8(b.local >> 8), UInt8(b.local & 0xFF), UInt8(p2 >> 8), UInt8(p2 & 0xFF)]
        #expect(recorder.received[1] == expected + Array("hello".utf8))

        // Addresses carried in: out again, with a CRC32C TLV (type 3) over the header.
        let c = exchange(p3, from: "127.0.0.1", prefix: Array("PROXY TCP4 192.0.2.1 192.0.2.2 1111 2222\r\n".utf8))
        #expect(c.answer == "ok")
        #expect(eventually { recorder.received.count == 3 })
        let third = recorder.received[2]
        #expect(third.count == 16 + 12 + 7 + 5)
        #expect(Array(third.prefix(28)) == Self.signature + [0x21, 0x11, 0, 19, 192, 0, 2, 1, 192, 0, 2, 2, 0x04, 0x57, 0x08, 0xAE])
        #expect(Array(third[28..<31]) == [0x03, 0, 4])
        #expect(Array(third.suffix(5)) == Array("hello".utf8))
    }

    /// A field of `show stat` for the FRONTEND row of `proxy`.
    static func stat(_ strata: StrataProcess, proxy: String, field: String) throws -> String? {
        let lines = try strata.admin("show stat").split(separator: "\n").map(String.init)
        guard let header = lines.first?.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false),
              let column = header.firstIndex(of: Substring(field)) else { return nil }
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            if fields.count > column, fields[0] == proxy, fields[1] == "FRONTEND" { return String(fields[column]) }
        }
        return nil
    }
}
