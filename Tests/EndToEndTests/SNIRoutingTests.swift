import Foundation
import Glibc
import StrataTestSupport
import Testing

/// TLS passthrough routed by SNI in mode tcp: `tcp-request inspect-delay`, `tcp-request content
/// accept if { req_ssl_hello_type 1 }`, `use_backend … if { req_ssl_sni -i NAME }`. The TLS
/// servers behind are strata's own TLS frontends (each with its certificate and its answer), so
/// the clients are real TLS clients talking to the server their name chose, through the bytes
/// strata passed on untouched.
@Suite(.serialized) struct SNIRoutingTests {
    let pki = TLSTestPKI.shared

    func config(port: UInt16, a: UInt16, next: UInt16, other: UInt16, strict: UInt16, swap: Bool = false,
                delay: String = "1s") -> String {
        """
        global
            stats socket @ADMIN@ level admin
            log stdout format raw local0
        defaults
            timeout connect 2s
            timeout client 5s
            timeout server 5s
            log global

        frontend sni
            mode tcp
            bind 127.0.0.1:\(port)
            log-format "sni %b/%s %Tt"
            tcp-request inspect-delay \(delay)
            tcp-request content accept if { req_ssl_hello_type 1 }
            acl to_a req_ssl_sni -i A.TEST
            use_backend \(swap ? "to_next" : "to_a") if to_a
            use_backend \(swap ? "to_a" : "to_next") if { req.ssl_sni -i next.test }
            default_backend to_default

        frontend strict
            mode tcp
            bind 127.0.0.1:\(strict)
            log-format "strict %b/%s %Tt %ts"
            tcp-request inspect-delay \(delay)
            tcp-request content accept if { req_ssl_hello_type 1 }
            tcp-request content reject
            default_backend to_default

        backend to_a
            mode tcp
            server s 127.0.0.1:\(a)
        backend to_next
            mode tcp
            server s 127.0.0.1:\(next)
        backend to_default
            mode tcp
            server s 127.0.0.1:\(other)

        frontend tls_a
            mode http
            bind 127.0.0.1:\(a) ssl crt \(pki.path("a.pem"))
            http-request return status 200 content-type text/plain string "server a"
        frontend tls_next
            mode http
            bind 127.0.0.1:\(next) ssl crt \(pki.path("next.pem"))
            http-request return status 200 content-type text/plain string "server next"
        frontend tls_default
            mode http
            bind 127.0.0.1:\(other) ssl crt \(pki.path("default.pem"))
            http-request return status 200 content-type text/plain string "server default"
        """
    }

    /// The answer a real TLS client gets through `port` with `name` as its SNI, and the
    /// certificate that answered.
    static func fetch(_ port: UInt16, name: String?) -> (body: String?, subject: String) {
        guard let client = TLSTestClient(port: port, serverName: name) else { return (nil, "") }
        return (client.get("/"), client.peerSubject)
    }

    @Test func realTLSClientsAreRoutedByTheirServerName() throws {
        let ports = (0..<5).map { _ in TestSocket.freePort() }
        let strata = try StrataProcess(config: config(port: ports[0], a: ports[1], next: ports[2], other: ports[3], strict: ports[4]))
        #expect(strata.waitForAdmin())
        let a = Self.fetch(ports[0], name: "a.test")
        #expect(a.body == "server a")
        #expect(a.subject.contains("CN=a.test"))
        let next = Self.fetch(ports[0], name: "next.test")
        #expect(next.body == "server next")
        #expect(next.subject.contains("CN=next.test"))
        // Other names, and no name at all, go to the default backend.
        #expect(Self.fetch(ports[0], name: "unknown.test").body == "server default")
        #expect(Self.fetch(ports[0], name: nil).body == "server default")
        #expect(strata.waitForOutput("sni to_a/s"))
        #expect(strata.waitForOutput("sni to_next/s"))

        // The rules are the generation's: a reload that swaps the names routes new connections
        // the other way.
        try strata.write(config(port: ports[0], a: ports[1], next: ports[2], other: ports[3], strict: ports[4], swap: true))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(Self.fetch(ports[0], name: "a.test").body == "server next")
        #expect(Self.fetch(ports[0], name: "next.test").body == "server a")
    }

    @Test func aClientHelloSplitAcrossReadsIsWaitedFor() throws {
        let ports = (0..<5).map { _ in TestSocket.freePort() }
        let strata = try StrataProcess(config: config(port: ports[0], a: ports[1], next: ports[2], other: ports[3], strict: ports[4],
                                                      delay: "5s"))
        #expect(strata.waitForAdmin())
        // A hand-made ClientHello for next.test, in two TCP writes 300 ms apart, the split in the
        // middle of the server_name extension.
        let hello = Self.clientHello(serverName: "next.test")
        let fd = try #require(TestSocket.connect(ports[0]))
        defer { close(fd) }
        let cut = hello.count - 12
        _ = TestSocket.sendAll(fd, Array(hello[..<cut]))
        usleep(300_000)
        _ = TestSocket.sendAll(fd, Array(hello[cut...]))
        // The TLS server behind answers the (fake) hello with its own handshake or an alert: what
        // matters is where the bytes went.
        _ = TestSocket.read(fd, count: 1)
        shutdown(fd, Int32(SHUT_RDWR))
        #expect(strata.waitForOutput("sni to_next/s"))
    }

    @Test func aClientThatSendsNoHelloWaitsTheInspectDelay() throws {
        let ports = (0..<5).map { _ in TestSocket.freePort() }
        let strata = try StrataProcess(config: config(port: ports[0], a: ports[1], next: ports[2], other: ports[3], strict: ports[4]))
        #expect(strata.waitForAdmin())
        // Silent: after the 1 s delay no rule matched, HAProxy's default is accept: the default
        // backend, whose TLS server waits for a hello (then we close).
        let silent = try #require(TestSocket.connect(ports[0]))
        let start = Date()
        usleep(1_500_000)
        close(silent)
        #expect(strata.waitForOutput("sni to_default/s"))
        let line = try #require(strata.output.first { $0.hasPrefix("sni to_default/s") })
        // Routed at the delay (1 s), closed by us at 1.5 s: %Tt.
        let total = Int(line.split(separator: " ").last ?? "") ?? 0
        #expect(total >= 1400, "\(line)")
        #expect(Date().timeIntervalSince(start) >= 1.4)

        // Plain text is no TLS hello: known at once (no wait), the default backend too.
        let plain = try #require(TestSocket.connect(ports[0]))
        _ = TestSocket.sendAll(plain, "GET / HTTP/1.0\r\n\r\n")
        let before = strata.output.filter { $0.hasPrefix("sni to_default/s") }.count
        _ = TestSocket.readToEnd(plain)
        close(plain)
        #expect(eventually { strata.output.filter { $0.hasPrefix("sni to_default/s") }.count == before + 1 })

        // With `tcp-request content reject` after the accept rule, the silent client is closed
        // at the delay, and plain text at once; both counted as denied requests.
        let strict = try #require(TestSocket.connect(ports[4]))
        let t0 = Date()
        #expect(TestSocket.readToEnd(strict).isEmpty)
        let waited = Date().timeIntervalSince(t0)
        #expect(waited > 0.8 && waited < 4, "closed after \(waited) s")
        close(strict)
        let plainStrict = try #require(TestSocket.connect(ports[4]))
        _ = TestSocket.sendAll(plainStrict, "GET / HTTP/1.0\r\n\r\n")
        let t1 = Date()
        #expect(TestSocket.readToEnd(plainStrict).isEmpty)
        #expect(Date().timeIntervalSince(t1) < 0.8)
        close(plainStrict)
        #expect(strata.waitForOutput("strict strict/<NOSRV>"))
        #expect(eventually { strata.output.filter { $0.hasPrefix("strict strict/<NOSRV>") && $0.hasSuffix(" PR") }.count == 2 })
        #expect(eventually { (try? ProxyProtocolTests.stat(strata, proxy: "strict", field: "dreq")) == "2" })
        // Whereas a real client gets through the strict frontend.
        #expect(Self.fetch(ports[4], name: "a.test").body == "server default")
    }

    /// A TLS 1.2 ClientHello with a server_name extension.
    static func clientHello(serverName: String) -> [UInt8] {
        func u16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        let name = Array(serverName.utf8)
        let entry = [0] + u16(name.count) + name
        let sni = u16(0) + u16(entry.count + 2) + u16(entry.count) + entry
        let groups = u16(10) + u16(4) + u16(2) + u16(23)
        let ext = sni + groups
        var body: [UInt8] = [3, 3] + [UInt8](repeating: 0x42, count: 32) + [0] + u16(2) + [0xC0, 0x2F] + [1, 0]
        body += u16(ext.count) + ext
        let message = [1, 0] + u16(body.count) + body
        return [0x16, 3, 1] + u16(message.count) + message
    }
}
