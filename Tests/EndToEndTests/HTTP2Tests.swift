import Foundation
import Glibc
import StrataTestSupport
import Testing

/// HTTP/2 to clients with the real binary: curl over TLS (ALPN) and with prior knowledge, h2load
/// through reloads, and a python `h2` client (PyPI's, Debian's python3-h2) for what needs
/// frame-level control: cookie crumbs, trailers, GOAWAY, and the attacks a listener must survive.
@Suite(.serialized, .enabled(if: TestTools.available(TestTools.hasOpenSSL && TestTools.hasCurl), "openssl or curl is not installed"))
struct HTTP2Tests {
    static let hasH2 = TestTools.pythonHas("h2")
    static let hasH2load = runTool("h2load", ["--version"]).status == 0
    let pki = TLSTestPKI.shared

    func config(tls: UInt16, h2c: UInt16, plain: UInt16, origin: UInt16, global: String = "", timeoutClient: String = "10s") -> String {
        """
        global
            stats socket @ADMIN@ level admin
            log stdout format raw local0
            crt-base \(pki.directory)
            nbthread 2
        \(global)
        defaults
            mode http
            timeout connect 2s
            timeout client \(timeoutClient)
            timeout server 10s
            log global
        frontend fe
            bind 127.0.0.1:\(tls) ssl crt default.pem alpn h2,http/1.1
            bind 127.0.0.1:\(h2c) proto h2
            bind 127.0.0.1:\(plain)
            log-format "%ft %ST %{+Q}r %HV"
            http-request set-header X-Via-Proto %[ssl_fc]
            http-request set-header X-Version %[req.ver]
            http-request set-header X-Is-H2 yes if HTTP_2.0
            http-request deny deny_status 403 if { path_beg /denied }
            default_backend be
        backend be
            server o 127.0.0.1:\(origin)
        """
    }

    struct Setup {
        let strata: StrataProcess
        let origin: TestHTTPOrigin
        let tls: UInt16
        let h2c: UInt16
        let plain: UInt16
    }

    func start(global: String = "", timeoutClient: String = "10s") throws -> Setup {
        let origin = try TestHTTPOrigin("h2")
        let tls = TestSocket.freePort(), h2c = TestSocket.freePort(), plain = TestSocket.freePort()
        let strata = try StrataProcess(config: config(tls: tls, h2c: h2c, plain: plain, origin: origin.port, global: global,
                                                      timeoutClient: timeoutClient))
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        return Setup(strata: strata, origin: origin, tls: tls, h2c: h2c, plain: plain)
    }

    func curl(_ arguments: [String]) -> (status: Int32, stdout: String, stderr: String) {
        runTool("curl", ["-sS", "--max-time", "10", "--cacert", pki.path("ca.pem")] + arguments)
    }

    @Test func curlOverTLSNegotiatesH2AndTheServerSeesHTTP11() throws {
        let s = try start()
        let url = "https://default.test:\(s.tls)/over-tls?q=1"
        let r = curl(["--http2", "-v", "--resolve", "default.test:\(s.tls):127.0.0.1", url])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("ALPN: server accepted h2"), "\(r.stderr)")
        #expect(r.stderr.contains("< HTTP/2 200"), "\(r.stderr)")
        // The origin got HTTP/1.1 with :authority as Host, and the rules ran (ssl_fc is true).
        #expect(r.stdout.contains("line=GET /over-tls?q=1 HTTP/1.1"), "\(r.stdout)")
        #expect(r.stdout.contains("h=host: default.test:\(s.tls)"), "\(r.stdout)")
        #expect(r.stdout.contains("h=X-Via-Proto: 1"), "\(r.stdout)")
        // req.ver and the HTTP_2.0 ACL say what the client spoke.
        #expect(r.stdout.contains("h=X-Version: 2.0"), "\(r.stdout)")
        #expect(r.stdout.contains("h=X-Is-H2: yes"), "\(r.stdout)")
        // Connection-specific fields never reach an h2 client (curl would refuse them).
        #expect(!r.stderr.lowercased().contains("< connection:"))
        #expect(s.strata.waitForOutput("fe~ 200 \"GET /over-tls?q=1 HTTP/2.0\" HTTP/2.0"), "\(s.strata.output.joined(separator: "\n"))")

        // The same listener still serves HTTP/1.1 clients.
        let h1 = curl(["--http1.1", "-v", "--resolve", "default.test:\(s.tls):127.0.0.1", "https://default.test:\(s.tls)/h1"])
        #expect(h1.stderr.contains("< HTTP/1.1 200"), "\(h1.stderr)")
        #expect(h1.stdout.contains("h=X-Version: 1.1") && !h1.stdout.contains("X-Is-H2"), "\(h1.stdout)")
        #expect(s.strata.waitForOutput("fe~ 200 \"GET /h1 HTTP/1.1\" HTTP/1.1"))

        // A local answer (deny) goes out as HTTP/2 too.
        let denied = curl(["--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", "--resolve",
                           "default.test:\(s.tls):127.0.0.1", "https://default.test:\(s.tls)/denied"])
        #expect(denied.stdout == "403 2", "\(denied.stdout) \(denied.stderr)")
    }

    @Test func priorKnowledgeBodiesBothWaysAndHead() throws {
        let s = try start()
        let base = "http://127.0.0.1:\(s.h2c)"
        // A body with its length, and one of unknown length (chunked to the origin).
        let posted = curl(["--http2-prior-knowledge", "-d", "0123456789", "\(base)/post"])
        #expect(posted.stdout.contains("line=POST /post HTTP/1.1"), "\(posted.stdout) \(posted.stderr)")
        #expect(posted.stdout.contains("body=10"))
        #expect(posted.stdout.contains("h=content-length: 10"))
        let streamed = runTool("sh", ["-c", "head -c 100000 /dev/zero | curl -sS --max-time 10 --http2-prior-knowledge -T - \(base)/upload"])
        #expect(streamed.stdout.contains("body=100000"), "\(streamed.stdout) \(streamed.stderr)")
        #expect(streamed.stdout.contains("h=transfer-encoding: chunked"))
        // A large answer crosses many DATA frames and flow-control windows intact.
        let big = curl(["--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{http_version}", "\(base)/big"])
        let expectedSize = 1 << 20
        let parts = big.stdout.split(separator: " ")
        #expect(parts.count == 3 && parts[0] == "200" && Int(parts[1])! > expectedSize && parts[2] == "2", "\(big.stdout) \(big.stderr)")
        // A chunked answer arrives whole; HEAD gets a head only.
        let chunked = curl(["--http2-prior-knowledge", "\(base)/chunked"])
        #expect(chunked.stdout.contains("line=GET /chunked HTTP/1.1"), "\(chunked.stdout)")
        let head = curl(["--http2-prior-knowledge", "-I", "\(base)/head"])
        #expect(head.stdout.hasPrefix("HTTP/2 200"), "\(head.stdout)")
        #expect(head.stdout.contains("content-length:"))
        // Several streams on one connection, each a request of its own.
        // (Over TLS: curl 7.88 fails to reuse an h2c connection with prior knowledge, whatever the server.)
        let resolve = ["--resolve", "default.test:\(s.tls):127.0.0.1"]
        let tlsBase = "https://default.test:\(s.tls)"
        let many = curl(["--http2", "-w", "%{http_version}\n"] + resolve + ["\(tlsBase)/a", "\(tlsBase)/b", "\(tlsBase)/c"])
        #expect(many.stdout.components(separatedBy: "origin=h2").count == 4, "\(many.stdout)")
        #expect(s.origin.heads.filter { $0.hasPrefix("GET /a ") || $0.hasPrefix("GET /b ") || $0.hasPrefix("GET /c ") }.count == 3)
    }

    @Test func countersArePerFrontendInShowStatAndTheExporter() throws {
        let origin = try TestHTTPOrigin("h2")
        let one = TestSocket.freePort(), two = TestSocket.freePort(), metrics = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend one
                bind 127.0.0.1:\(one) proto h2
                default_backend be
            frontend two
                bind 127.0.0.1:\(two) proto h2
                default_backend be
            frontend metrics
                bind 127.0.0.1:\(metrics)
                http-request use-service prometheus-exporter
            backend be
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        // Three connections (a stream each) to `one`, one to `two`.
        for _ in 0..<3 { #expect(curl(["--http2-prior-knowledge", "http://127.0.0.1:\(one)/a"]).stdout.contains("origin=h2")) }
        #expect(curl(["--http2-prior-knowledge", "http://127.0.0.1:\(two)/b"]).stdout.contains("origin=h2"))
        let text = try strata.admin("show stat")
        // HAProxy 2.6's columns: the per-module counters after a `-` column that every row fills with `-`.
        #expect(text.contains(",agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,"), "\(text.prefix(2000))")
        let (_, rows) = try ObservabilityStatsTests.parseCSV(text)
        func frontend(_ name: String) throws -> [String: String] {
            try #require(rows.first { $0["pxname"] == name && $0["svname"] == "FRONTEND" })
        }
        let (first, second) = (try frontend("one"), try frontend("two"))
        #expect(rows.allSatisfy { $0["-"] == "-" })
        // Closed connections: counted in total, none open (a connection's end is counted as it closes).
        #expect(try eventually { try ObservabilityStatsTests.parseCSV(strata.admin("show stat")).rows.first { $0["pxname"] == "one" && $0["svname"] == "FRONTEND" }?["h2_open_connections"] == "0" })
        #expect(first["h2_total_connections"] == "3" && first["h2_backend_total_streams"] == "3" && first["h2_headers_rcvd"] == "3", "\(first)")
        #expect(Int(first["h2_settings_rcvd"] ?? "") ?? 0 >= 3)
        #expect(second["h2_total_connections"] == "1" && second["h2_backend_total_streams"] == "1", "\(second)")
        #expect(try frontend("metrics")["h2_total_connections"] == "0")
        // The exporter: one series per frontend.
        let scrape = curl(["http://127.0.0.1:\(metrics)/metrics"]).stdout
        #expect(scrape.contains("strata_h2_frontend_total_connections_total{proxy=\"one\"} 3"), "\(scrape.split(separator: "\n").filter { $0.contains("_h2_") })")
        #expect(scrape.contains("strata_h2_frontend_backend_total_streams_total{proxy=\"two\"} 1"))
        #expect(scrape.contains("strata_h2_frontend_headers_rcvd_total{proxy=\"one\"} 3"))
        #expect(scrape.contains("strata_h2_backend_total_connections_total{proxy=\"be\"} 0"))
        // The process-wide figure is the sum.
        #expect(scrape.contains("strata_h2_connections_total 4"))
    }

    @Test func aClearListenerDetectsThePrefaceAndDropsAnH2CUpgrade() throws {
        let s = try start()
        // No `proto h2` on this bind: the preface itself says HTTP/2, as HAProxy detects it.
        let h2 = curl(["--http2-prior-knowledge", "-w", "%{http_version}", "http://127.0.0.1:\(s.plain)/preface"])
        #expect(h2.stdout.contains("line=GET /preface HTTP/1.1"), "\(h2.stdout) \(h2.stderr)")
        #expect(h2.stdout.hasSuffix("2"), "\(h2.stdout)")
        // `Upgrade: h2c` never reaches the server (h2c smuggling): the answer stays HTTP/1.1.
        let upgrade = curl(["--http2", "-w", "%{http_version}", "http://127.0.0.1:\(s.plain)/upgrade"])
        #expect(upgrade.stdout.contains("line=GET /upgrade HTTP/1.1"), "\(upgrade.stdout) \(upgrade.stderr)")
        #expect(!upgrade.stdout.lowercased().contains("h=upgrade:"), "\(upgrade.stdout)")
        #expect(!upgrade.stdout.lowercased().contains("http2-settings"), "\(upgrade.stdout)")
        #expect(upgrade.stdout.hasSuffix("1.1"), "\(upgrade.stdout)")
        // A websocket upgrade still passes.
        let ws = runTool("curl", ["-sS", "--max-time", "3", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Connection: Upgrade",
                                  "-H", "Upgrade: websocket", "http://127.0.0.1:\(s.plain)/ws"])
        #expect(ws.stdout == "101", "\(ws.stdout) \(ws.stderr)")
    }

    @Test(.enabled(if: TestTools.available(HTTP2Tests.hasH2), "python3 h2 is not installed (pip install h2)"))
    func cookieCrumbsJoinTrailersPassAndSettingsAreAnnounced() throws {
        let s = try start(global: "    tune.h2.max-concurrent-streams 7\n    tune.h2.initial-window-size 131072")
        let out = try h2Client(s.h2c, """
            settings = conn.remote_settings
            print("max_concurrent", settings.max_concurrent_streams)
            print("window", settings.initial_window_size)
            sid = request([(':method','GET'),(':path','/crumbs'),(':scheme','http'),(':authority','crumbs.test'),
                           ('cookie','a=1'),('cookie','b=2'),('te','trailers')])
            status, headers, body, trailers, reset = wait_stream(sid)
            print("status", status)
            print("body", body.decode())
            sid = request([(':method','GET'),(':path','/trailers'),(':scheme','http'),(':authority','t.test')])
            status, headers, body, trailers, reset = wait_stream(sid)
            print("trailers", sorted(trailers))
            print("content-type", dict(headers).get('content-type'))
            """)
        #expect(out.contains("max_concurrent 7"), "\(out)")
        #expect(out.contains("window 131072"), "\(out)")
        #expect(out.contains("status 200"), "\(out)")
        #expect(out.contains("h=cookie: a=1; b=2"), "\(out)")
        #expect(out.contains("h=host: crumbs.test"), "\(out)")
        #expect(!out.contains("h=te:"), "\(out)")
        #expect(out.contains("trailers [('grpc-message', 'fine'), ('grpc-status', '0')]"), "\(out)")
        #expect(out.contains("content-type application/grpc"), "\(out)")
    }

    @Test(.enabled(if: TestTools.available(HTTP2Tests.hasH2), "python3 h2 is not installed (pip install h2)"))
    func rapidResetEndsTheConnectionWithEnhanceYourCalm() throws {
        let s = try start()
        let out = try h2Client(s.h2c, """
            for i in range(2000):
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, [(':method','GET'),(':path','/slow'),(':scheme','http'),(':authority','x')])
                conn.reset_stream(sid)
                try:
                    sock.sendall(conn.data_to_send())
                except OSError:
                    break
            print("goaway", int(wait_goaway()))
            """)
        // ENHANCE_YOUR_CALM is 0xb.
        #expect(out.contains("goaway 11"), "\(out)")
        let info = try s.strata.admin("show info")
        #expect(info.contains("H2RapidResets: 1"), "\(info)")
        // The origin saw far fewer requests than were reset.
        #expect(s.origin.heads.count < 1000)
    }

    @Test(.enabled(if: TestTools.available(HTTP2Tests.hasH2), "python3 h2 is not installed (pip install h2)"))
    func pingFloodEndsTheConnection() throws {
        let s = try start()
        let out = try h2Client(s.h2c, """
            # In one write: the budget refills with time, so a slow sender would stay within it.
            for i in range(3000):
                conn.ping(b'%08d' % i)
            try:
                sock.sendall(conn.data_to_send())
            except OSError:
                pass
            print("goaway", int(wait_goaway()))
            """)
        #expect(out.contains("goaway 11"), "\(out)")
        #expect(try s.strata.admin("show info").contains("H2Floods: 1"))
    }

    @Test(.enabled(if: TestTools.available(HTTP2Tests.hasH2), "python3 h2 is not installed (pip install h2)"))
    func oversizedHeadersResetTheStreamOnlyAndContinuationFloodsEndTheConnection() throws {
        let s = try start()
        let out = try h2Client(s.h2c, """
            big = [('x-filler-%d' % i, 'v' * 1000) for i in range(40)]
            sid = request([(':method','GET'),(':path','/big-head'),(':scheme','http'),(':authority','x')] + big)
            status, headers, body, trailers, reset = wait_stream(sid)
            print("first reset", reset)
            sid = request([(':method','GET'),(':path','/after'),(':scheme','http'),(':authority','x')])
            status, headers, body, trailers, reset = wait_stream(sid)
            print("after status", status)
            # HEADERS without END_HEADERS, then CONTINUATION frames that never end the block.
            import struct
            def frame(kind, flags, stream, payload):
                return struct.pack('>I', len(payload))[1:] + bytes([kind, flags]) + struct.pack('>I', stream) + payload
            block = hpack.Encoder().encode([(':method','GET'),(':path','/c'),(':scheme','http'),(':authority','x')])
            raw = frame(1, 0, 101, block[:3])
            for i in range(200):
                raw += frame(9, 0, 101, b'\\x40\\x01a\\x01b')
            try:
                sock.sendall(raw)
            except OSError:
                pass
            print("closed", wait_closed())
            """)
        // INTERNAL_ERROR (2) on that stream alone.
        #expect(out.contains("first reset 2"), "\(out)")
        #expect(out.contains("after status 200"), "\(out)")
        #expect(out.contains("closed True"), "\(out)")
        #expect(!s.origin.heads.contains { $0.hasPrefix("GET /big-head") })
        let info = try s.strata.admin("show info")
        #expect(info.contains("H2OversizedHeaders: 1"), "\(info)")
    }

    @Test(.enabled(if: TestTools.available(HTTP2Tests.hasH2), "python3 h2 is not installed (pip install h2)"))
    func streamsBeyondTheConcurrentLimitAreRefused() throws {
        let s = try start(global: "    tune.h2.max-concurrent-streams 2")
        let out = try h2Client(s.h2c, """
            # Past the announced limit, with frames written by hand (the h2 library keeps to it).
            raw = raw_connect()
            for sid in (1, 3, 5, 7, 9):
                raw_request(raw, sid, '/slow')
            frames = raw_frames(raw, 4.5)
            answered = set(sid for kind, _, sid, _ in frames if kind == 1)
            refused = set((sid, int.from_bytes(p, 'big')) for kind, _, sid, p in frames if kind == 3)
            print("answered", len(answered))
            print("refused", len(refused), sorted(set(code for _, code in refused)))
            """)
        #expect(out.contains("answered 2"), "\(out)")
        // REFUSED_STREAM (7): the client may retry them elsewhere.
        #expect(out.contains("refused 3 [7]"), "\(out)")
    }

    @Test(.enabled(if: TestTools.available(HTTP2Tests.hasH2), "python3 h2 is not installed (pip install h2)"))
    func aClientThatNeverOpensItsWindowIsTimedOut() throws {
        let s = try start(timeoutClient: "1s")
        let out = try h2Client(s.h2c, settings: "{h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}", """
            sid = request([(':method','GET'),(':path','/big'),(':scheme','http'),(':authority','x')])
            status, headers, body, trailers, reset = wait_stream(sid, timeout=8)
            print("status", status, "bytes", len(body), "reset", reset)
            """)
        // The head arrived; no body could; the stream was ended by `timeout client`.
        #expect(out.contains("status 200 bytes 0 reset"), "\(out)")
        #expect(!out.contains("reset None"), "\(out)")
    }

    @Test(.enabled(if: TestTools.available(HTTP2Tests.hasH2), "python3 h2 is not installed (pip install h2)"))
    func aDroppedListenerSendsGoawayAndFinishesItsStreams() throws {
        let s = try start()
        // The python client keeps a stream in flight on the slow path while the listener goes.
        let strata = s.strata
        let origin = s.origin
        let reloader = Thread {
            // Once the stream is at the origin (it answers /slow after 3 s): a fixed delay raced
            // a python client slow to start on a loaded machine.
            _ = eventually(seconds: 15, every: 0.05) { origin.heads.contains { $0.contains("/slow") } }
            let cfg = self.config(tls: s.tls, h2c: TestSocket.freePort(), plain: s.plain, origin: origin.port)
            try? strata.write(cfg)
            strata.signal(SIGHUP)
        }
        reloader.start()
        // Frames by hand: the h2 library takes any GOAWAY for the connection's end.
        let out = try h2Client(s.h2c, """
            raw = raw_connect()
            raw_request(raw, 1, '/slow')
            frames = raw_frames(raw, 8)
            kinds = [(kind, sid) for kind, _, sid, _ in frames if kind in (0, 1, 7)]
            goaway = [p for kind, _, _, p in frames if kind == 7]
            print("goaway", [(int.from_bytes(p[:4], 'big'), int.from_bytes(p[4:8], 'big')) for p in goaway])
            print("after goaway", kinds[kinds.index((7, 0)):] if (7, 0) in kinds else None)
            print("ended", any(kind == 0 and flags & 1 and sid == 1 for kind, flags, sid, _ in frames))
            """)
        // GOAWAY names stream 1 as the last one, NO_ERROR; the answer to stream 1 follows it.
        #expect(out.contains("goaway [(1, 0)]"), "\(out)")
        #expect(out.contains("after goaway [(7, 0), (1, 1), (0, 1)"), "\(out)")
        #expect(out.contains("ended True"), "\(out)")
        #expect(strata.waitForOutput("generation 2 active"))
    }

    @Test(.enabled(if: TestTools.available(HTTP2Tests.hasH2load), "h2load is not installed (apt-get install nghttp2-client)"))
    func noStreamFailsWhileReloading() throws {
        let s = try start()
        let strata = s.strata
        let stop = Guarded(false)
        let reloader = Thread {
            for _ in 0..<20 {
                if stop.withLock({ $0 }) { break }
                strata.signal(SIGHUP)
                Thread.sleep(forTimeInterval: 0.15)
            }
        }
        reloader.start()
        let run = runTool("h2load", ["-n", "4000", "-c", "4", "-m", "10", "http://127.0.0.1:\(s.h2c)/load"], timeout: 60)
        stop.withLock { $0 = true }
        #expect(run.stdout.contains("4000 succeeded, 0 failed, 0 errored, 0 timeout"), "\(run.stdout) \(run.stderr)")
        #expect(strata.waitForOutput("generation 5 active"), "reloads happened during the run")
    }

    // MARK: the python client

    /// Runs `body` in a python `h2` client connected to `port` (h2c, prior knowledge), with helpers:
    /// `request(headers)` → stream id, `wait_stream(id)` → (status, headers, body, trailers,
    /// reset error or None), `wait_goaway()` → its error code, `wait_closed()` → True once the
    /// connection ended.
    func h2Client(_ port: UInt16, settings: String = "{}", _ body: String) throws -> String {
        let script = """
            import socket, sys, time
            import h2.connection, h2.config, h2.events, h2.settings, hpack
            sock = socket.create_connection(('127.0.0.1', \(port)))
            sock.settimeout(10)
            conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding='utf-8'))
            conn.initiate_connection()
            conn.update_settings(\(settings))
            sock.sendall(conn.data_to_send())
            streams = {}
            state = {'goaway': None, 'closed': False}
            def pump(timeout):
                sock.settimeout(timeout)
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    return
                except OSError:
                    data = b''
                if not data:
                    state['closed'] = True
                    return
                try:
                    events = conn.receive_data(data)
                except Exception as e:
                    state['closed'] = True
                    return
                for e in events:
                    sid = getattr(e, 'stream_id', None)
                    st = streams.setdefault(sid, {'status': None, 'headers': [], 'body': b'', 'trailers': [], 'reset': None, 'done': False})
                    if isinstance(e, h2.events.ResponseReceived):
                        st['headers'] = list(e.headers)
                        st['status'] = dict(e.headers).get(':status')
                    elif isinstance(e, h2.events.DataReceived):
                        st['body'] += e.data
                    elif isinstance(e, h2.events.TrailersReceived):
                        st['trailers'] = list(e.headers)
                    elif isinstance(e, h2.events.StreamEnded):
                        st['done'] = True
                    elif isinstance(e, h2.events.StreamReset):
                        st['reset'] = e.error_code
                        st['done'] = True
                    elif isinstance(e, h2.events.ConnectionTerminated):
                        state['goaway'] = e.error_code
                try:
                    out = conn.data_to_send()
                    if out:
                        sock.sendall(out)
                except Exception:
                    pass
            # The server's SETTINGS first.
            deadline = time.time() + 5
            while conn.remote_settings.max_concurrent_streams == 2**32 - 1 + 1 and time.time() < deadline:
                pump(0.2)
            pump(0.5)
            def request(headers, end_stream=True):
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, headers, end_stream=end_stream)
                sock.sendall(conn.data_to_send())
                return sid
            def wait_stream(sid, timeout=10):
                deadline = time.time() + timeout
                while time.time() < deadline and not state['closed']:
                    st = streams.get(sid)
                    if st and st['done']:
                        break
                    pump(0.2)
                st = streams.get(sid, {'status': None, 'headers': [], 'body': b'', 'trailers': [], 'reset': None})
                return st['status'], st['headers'], st['body'], st['trailers'], st['reset']
            def wait_goaway(timeout=10):
                deadline = time.time() + timeout
                while time.time() < deadline and state['goaway'] is None and not state['closed']:
                    pump(0.2)
                return state['goaway']
            import struct
            def frame(kind, flags, stream, payload):
                return struct.pack('>I', len(payload))[1:] + bytes([kind, flags]) + struct.pack('>I', stream) + payload
            def raw_connect():
                raw = socket.create_connection(('127.0.0.1', \(port)))
                raw.sendall(b'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n' + frame(4, 0, 0, b''))
                return raw
            raw_encoder = hpack.Encoder()
            def raw_request(raw, sid, path):
                block = raw_encoder.encode([(':method','GET'),(':path',path),(':scheme','http'),(':authority','x')])
                raw.sendall(frame(1, 5, sid, block))
            def raw_frames(raw, seconds):
                # Every frame until the connection closes or `seconds` pass: (type, flags, stream, payload).
                raw.settimeout(0.5)
                data = b''
                deadline = time.time() + seconds
                while time.time() < deadline:
                    try:
                        chunk = raw.recv(65536)
                    except socket.timeout:
                        continue
                    except OSError:
                        break
                    if not chunk:
                        break
                    data += chunk
                frames, i = [], 0
                while i + 9 <= len(data):
                    length = int.from_bytes(data[i:i+3], 'big')
                    frames.append((data[i+3], data[i+4], int.from_bytes(data[i+5:i+9], 'big') & 0x7fffffff, data[i+9:i+9+length]))
                    i += 9 + length
                return frames
            def wait_closed(timeout=10):
                deadline = time.time() + timeout
                while time.time() < deadline and not state['closed']:
                    pump(0.2)
                return state['closed']

            """ + body.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }.joined(separator: "\n")
        let r = try TestTools.python(script)
        return r.output
    }
}
