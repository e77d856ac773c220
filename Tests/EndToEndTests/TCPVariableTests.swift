import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `set-var`, `set-var-fmt`, `unset-var` and `capture` in TCP rules with the real binary: values
/// `use_backend` and the log line read in mode tcp, and in mode http the variables and captures
/// the HTTP rules, the server and the HTTP log line see.
@Suite(.serialized) struct TCPVariableTests {
    @Test func contentAndResponseVariablesRouteAndAreLoggedInModeTCP() throws {
        let plain = try TestBackend(.nameThenEcho("plain"))
        let special = try TestBackend(.nameThenEcho("special"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
                log stdout format raw local0
            defaults
                mode tcp
                timeout connect 2s
                timeout client 10s
                timeout server 10s
                log global
            frontend f
                bind 127.0.0.1:\(port)
                tcp-request inspect-delay 5s
                tcp-request content reject if { req.payload(0,4) -m bin 51554954 }
                tcp-request content set-var(sess.verb) req.payload(0,4)
                tcp-request content set-var(txn.client) src
                tcp-request content set-var-fmt(txn.tag) "v=%[var(sess.verb)]"
                tcp-request content set-var(txn.gone) src
                tcp-request content unset-var(txn.gone)
                tcp-request content capture req.payload(0,6) len 3
                use_backend special if { var(sess.verb) -m str PING }
                log-format "tcpvars verb=%[var(sess.verb)] client=%[var(txn.client)] tag=%[var(txn.tag)] gone=%[var(txn.gone)] greeting=%[var(res.greeting)] cap=%hr b=%b"
                default_backend plain
            backend plain
                server s 127.0.0.1:\(plain.port)
            backend special
                tcp-response inspect-delay 5s
                tcp-response content set-var(res.greeting) res.payload(0,7) if { res.payload(0,7) -m found }
                server s 127.0.0.1:\(special.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        func firstLine(_ text: String) -> String? {
            guard let fd = TestSocket.connect(port) else { return nil }
            defer { close(fd) }
            _ = TestSocket.sendAll(fd, text)
            return TestSocket.readLine(fd)
        }
        // The variable the first bytes set chooses the backend.
        #expect(firstLine("PING 1\n") == "special")
        #expect(strata.waitForOutput("tcpvars verb=PING client=127.0.0.1 tag=v=PING gone=- greeting=special cap={PIN} b=special"),
                "\(strata.output.joined(separator: "\n"))")
        #expect(firstLine("HELO 2\n") == "plain")
        #expect(strata.waitForOutput("tcpvars verb=HELO client=127.0.0.1 tag=v=HELO gone=- greeting=- cap={HEL} b=plain"),
                "\(strata.output.joined(separator: "\n"))")
        // Each session has its own variables: a rejected one logs none of another's.
        #expect(firstLine("QUIT\n") == nil)
        #expect(strata.waitForOutput("tcpvars verb=- client=- tag=- gone=- greeting=- cap={} b=f"),
                "\(strata.output.joined(separator: "\n"))")
    }

    @Test func sessionAndContentVariablesReachTheHTTPRulesAndTheHTTPLog() throws {
        let server = try RecordingServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
                log stdout format raw local0
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
                log global
            frontend web
                bind 127.0.0.1:\(port)
                capture request header Host len 20
                tcp-request session set-var(sess.client) src
                tcp-request session set-var-fmt(sess.greeting) "hi %[var(sess.client)]"
                tcp-request content set-var(txn.port) dst_port
                tcp-request content set-var(txn.gone) src
                tcp-request content unset-var(txn.gone)
                tcp-request content capture src len 9
                http-request set-header X-Client %[var(sess.client)]
                http-request set-header X-Port %[var(txn.port)]
                http-request set-header X-Gone [%[var(txn.gone)]]
                http-request deny if { path /deny } { var(sess.greeting) -m beg hi }
                log-format "httpvars sess=%[var(sess.client)] greeting=%[var(sess.greeting)] port=%[var(txn.port)] hr=%hr %r"
                default_backend app
            backend app
                server s1 127.0.0.1:\(server.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let fd = try #require(TestSocket.connect(port))
        defer { close(fd) }
        for path in ["/one", "/two"] {
            _ = TestSocket.sendAll(fd, "GET \(path) HTTP/1.1\r\nHost: x.test\r\n\r\n")
            #expect(TestSocket.readLine(fd)?.hasPrefix("HTTP/1.1 200") == true)
            while let line = TestSocket.readLine(fd), line != "\r" {}
            _ = TestSocket.read(fd, count: 2)  // the RecordingServer's body: "ok"
        }
        // Both requests of the connection see the session's variables and their own.
        #expect(eventually { server.allBytes.components(separatedBy: "X-Client: 127.0.0.1\r\n").count == 3 }, "\(server.allBytes)")
        #expect(server.allBytes.components(separatedBy: "X-Port: \(port)\r\n").count == 3)
        #expect(server.allBytes.contains("X-Gone: []\r\n"))
        for path in ["/one", "/two"] {
            #expect(strata.waitForOutput("httpvars sess=127.0.0.1 greeting=hi 127.0.0.1 port=\(port) hr={x.test|127.0.0.1} GET \(path) HTTP/1.1"),
                    "\(strata.output.joined(separator: "\n"))")
        }
        // An http-request rule reads a variable a session rule set.
        #expect(ProxyProtocolTests.request(port, header: [], path: "/deny").hasPrefix("HTTP/1.1 403"))
        #expect(!server.allBytes.contains("/deny"))
    }

    /// HTTP/2 (prior knowledge): each stream of the connection starts with the variables its
    /// `tcp-request session` rules set, and gets its own from `tcp-request content`.
    @Test func everyHTTP2StreamSeesTheSessionsVariables() throws {
        let server = try RecordingServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend web
                bind 127.0.0.1:\(port) proto h2
                tcp-request session set-var(sess.client) src
                tcp-request content set-var(txn.port) dst_port
                http-request set-header X-Client %[var(sess.client)]
                http-request set-header X-Port %[var(txn.port)]
                default_backend app
            backend app
                server s1 127.0.0.1:\(server.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        // Two streams on one connection (python's h2: curl 7.88 fails a second prior-knowledge
        // request on a reused connection before sending it).
        let client = """
            import socket, h2.connection, h2.config, h2.events
            s = socket.create_connection(("127.0.0.1", \(port))); s.settimeout(10)
            c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            c.initiate_connection(); s.sendall(c.data_to_send())
            for sid, path in ((1, "/one"), (3, "/two")):
                c.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "x")], end_stream=True)
                s.sendall(c.data_to_send())
                ended = False
                while not ended:
                    data = s.recv(65536)
                    if not data: raise SystemExit("closed")
                    for e in c.receive_data(data):
                        if isinstance(e, (h2.events.ConnectionTerminated, h2.events.StreamReset)): raise SystemExit(str(e))
                        ended = ended or isinstance(e, h2.events.StreamEnded)
                    s.sendall(c.data_to_send())
            print("done")
            """
        let result = runTool("python3", ["-c", client])
        #expect(result.stdout.contains("done"), "\(result.stderr)")
        #expect(eventually { server.allBytes.components(separatedBy: "X-Client: 127.0.0.1\r\n").count == 3 }, "\(server.allBytes)")
        #expect(server.allBytes.components(separatedBy: "X-Port: \(port)\r\n").count == 3)
    }
}
