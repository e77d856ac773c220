import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `http-request set-src`, `set-src-port`, `set-dst`, `set-dst-port`: the rules after them,
/// X-Forwarded-For and the log variables see the new values for that request; the next request
/// on the connection starts from the accepted addresses (HAProxy 2.6's behaviour, checked with it).
@Suite(.serialized) struct HTTPAddressActionTests {
    @Test func setSourceAndDestinationChangeWhatTheRequestSees() throws {
        let origin = try TestHTTPOrigin("app")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend fe
                bind 127.0.0.1:\(port)
                option forwardfor
                http-request set-var(txn.p0) src_port
                http-request set-src req.hdr(x-ip) if { req.hdr(x-ip) -m found }
                http-request set-header X-After-Src %[src]
                http-request set-src-port req.hdr(x-port) if { req.hdr(x-port) -m found }
                http-request set-dst req.hdr(x-dst) if { req.hdr(x-dst) -m found }
                http-request set-dst-port req.hdr(x-dport) if { req.hdr(x-dport) -m found }
                http-request set-header X-Addresses "%[src]:%[src_port] %[dst]:%[dst_port] %ci:%cp %fi:%fp"
                default_backend app
            backend app
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        func header(_ body: String, _ name: String) -> String? {
            body.split(separator: "\n").first { $0.hasPrefix("h=\(name): ") }.map { String($0.dropFirst(name.count + 4)) }
        }
        let first = try #require(client.get("/", headers: ["X-IP: 192.0.2.7", "X-Port: 4444", "X-Dst: 10.9.9.9", "X-DPort: 81"]))
        #expect(header(first.body, "X-After-Src") == "192.0.2.7", "\(first.body)")
        #expect(header(first.body, "X-Addresses") == "192.0.2.7:4444 10.9.9.9:81 192.0.2.7:4444 10.9.9.9:81", "\(first.body)")
        #expect(header(first.body, "X-Forwarded-For") == "192.0.2.7")

        // IPv6, and a value that is not an address: nothing changes.
        let six = try #require(client.get("/", headers: ["X-IP: 2001:db8::1"]))
        #expect(header(six.body, "X-After-Src") == "2001:db8::1", "\(six.body)")
        #expect(header(six.body, "X-Forwarded-For") == "2001:db8::1")
        let bogus = try #require(client.get("/", headers: ["X-IP: bogus", "X-Port: 70000"]))
        #expect(header(bogus.body, "X-After-Src") == "127.0.0.1", "\(bogus.body)")

        // The next request on the same connection starts from the accepted addresses.
        let plain = try #require(client.get("/"))
        #expect(header(plain.body, "X-Forwarded-For") == "127.0.0.1", "\(plain.body)")
        let addresses = try #require(header(plain.body, "X-Addresses"))
        #expect(addresses.hasPrefix("127.0.0.1:") && addresses.contains(" 127.0.0.1:\(port) "), "\(addresses)")
    }

    /// Behind `accept-proxy`, the next request starts from the PROXY header's addresses again.
    @Test func behindThePROXYProtocolTheHeadersAddressesComeBack() throws {
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend fe
                bind 127.0.0.1:\(port) accept-proxy
                http-request set-src req.hdr(x-ip) if { req.hdr(x-ip) -m found }
                http-request set-dst req.hdr(x-dst) if { req.hdr(x-dst) -m found }
                http-request return status 200 content-type text/plain lf-string "%[src]:%[src_port] %[dst]:%[dst_port]"
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        client.send("PROXY TCP4 203.0.113.9 198.51.100.2 40000 8443\r\n")
        #expect(try #require(client.get("/", headers: ["X-IP: 192.0.2.7", "X-Dst: 10.9.9.9"])).body == "192.0.2.7:40000 10.9.9.9:8443")
        #expect(try #require(client.get("/")).body == "203.0.113.9:40000 198.51.100.2:8443")
    }
}
