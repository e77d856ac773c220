import ConfigModel
import Testing
@testable import Loader

/// `http-request reject|set-nice`, `option http-ignore-probes|http-no-delay|http-pretend-keepalive|
/// httpslog`, `log-tag` and `monitor fail`: where each lands, the notes for those that change
/// nothing in strata, and bad lines at their file:line.
@Suite struct HTTPOptionKeywordTests {
    static let text = """
        global
            log-tag edge
        defaults
            mode http
            option http-no-delay
            option http-pretend-keepalive
        frontend web
            bind 127.0.0.1:8080
            option http-ignore-probes
            option httpslog
            monitor-uri /health
            monitor fail unless { hdr(x-ok) yes }
            http-request reject if { path /r }
            http-request set-nice 10 if { path /n }
            default_backend b
        backend b
            log-tag back
            server s 127.0.0.1:9000
        """

    @Test func linesLandWhereTheEngineReadsThem() throws {
        let loaded = try load(Self.text)
        #expect(loaded.config.global.logTag == "edge")
        let web = try #require(loaded.config.proxy(named: "web"))
        #expect(web.log.tag == "edge")  // the global one, the proxy having none
        #expect(try #require(loaded.config.proxy(named: "b")).log.tag == "back")
        guard case .custom(let format) = web.log.format else {
            Issue.record("option httpslog sets no format")
            return
        }
        #expect(format.source == LogFormatSpec.httpsLogText)
        #expect(web.http.requestRules.map(\.action) == [.reject])  // set-nice keeps no rule
        let monitor = try #require(web.http.monitorFail)
        #expect(monitor.inverted)
        #expect(monitor.alternatives.first?.first?.criteria.first?.sample.fetch == .header("x-ok", occurrence: nil))
    }

    @Test func optionsThatChangeNothingSaySoAtTheirLine() throws {
        let notes = try load(Self.text).warnings.map(\.description)
        #expect(notes.contains("test.cfg:5: 'option http-no-delay' changes nothing: strata sends every message at once (TCP_NODELAY, no MSG_MORE) on every connection"))
        #expect(notes.contains("test.cfg:6: 'option http-pretend-keepalive' changes nothing: with 'option http-server-close' strata still sends 'Connection: close' to the server"))
        #expect(notes.contains("test.cfg:9: 'option http-ignore-probes' changes nothing: strata never answers, logs or counts a connection that sent nothing"))
        #expect(notes.contains("test.cfg:14: 'http-request set-nice' changes nothing: strata runs every request at the same priority"))
    }

    @Test func badLinesFailAtTheirLine() {
        let lines: [(String, String)] = [
            ("http-request set-nice 5000", "test.cfg:4: 'http-request' expects an integer from -1024 to 1024, got '5000'"),
            ("http-request set-nice 1 when x", "test.cfg:4: unexpected argument 'when' to 'http-request set-nice'"),
            ("http-request reject now", "test.cfg:4: unexpected argument 'now' to 'http-request reject'"),
            ("monitor fail", "test.cfg:4: 'monitor fail' expects 'if' or 'unless' and a condition"),
            ("monitor pass if TRUE", "test.cfg:4: 'monitor pass' is not supported"),
            ("option httpslog clf", "test.cfg:4: unexpected argument 'clf' to 'option httpslog'"),
            ("log-tag", "test.cfg:4: 'log-tag' expects a tag"),
            ("log-tag \"two words\"", "test.cfg:4: 'log-tag': 'two words' is not a syslog tag"),
        ]
        for (line, message) in lines {
            let found = errors("""
                frontend web
                    mode http
                    bind 127.0.0.1:8080
                    \(line)
                    http-request deny
                """)
            #expect(found.contains { $0.hasPrefix(message) }, "\(line): \(found)")
        }
        #expect(errors("""
            backend b
                mode http
                monitor fail if TRUE
                server s 127.0.0.1:9000
            """).contains { $0.hasPrefix("test.cfg:3: 'monitor fail' is not supported in section 'backend'") })
    }

    @Test func normalizeURILines() throws {
        let web = try #require(try load("""
            frontend web
                mode http
                bind 127.0.0.1:8080
                http-request normalize-uri path-strip-dotdot
                http-request normalize-uri path-strip-dotdot full if { path_beg /api }
                http-request normalize-uri percent-decode-unreserved strict
                http-request normalize-uri fragment-encode
                http-request deny
            """).config.proxy(named: "web"))
        #expect(web.http.requestRules.prefix(4).map(\.action) == [
            .normalizeURI(.pathStripDotDot(full: false)), .normalizeURI(.pathStripDotDot(full: true)),
            .normalizeURI(.percentDecodeUnreserved(strict: true)), .normalizeURI(.fragmentEncode),
        ])
        #expect(web.http.requestRules[1].condition != nil)
        let bad = errors("""
            frontend web
                mode http
                bind 127.0.0.1:8080
                http-request normalize-uri path-sideways
                http-request normalize-uri path-merge-slashes full
                http-request deny
            """)
        #expect(bad.contains { $0.hasPrefix("test.cfg:4: 'http-request normalize-uri': unknown normalizer 'path-sideways'") }, "\(bad)")
        #expect(bad.contains { $0.hasPrefix("test.cfg:5: unexpected argument 'full' to 'http-request normalize-uri'") }, "\(bad)")
    }

    @Test func waitForBodyLines() throws {
        let web = try #require(try load("""
            frontend web
                mode http
                bind 127.0.0.1:8080
                http-request wait-for-body time 1s
                http-request wait-for-body time 200ms at-least 16k if METH_POST
                http-request deny
            """).config.proxy(named: "web"))
        #expect(web.http.requestRules.prefix(2).map(\.action) == [
            .waitForBody(time: 1000, atLeast: nil), .waitForBody(time: 200, atLeast: 16384),
        ])
        let bad = errors("""
            frontend web
                mode http
                bind 127.0.0.1:8080
                http-request wait-for-body 1s
                http-request wait-for-body time 1s at-least lots
                http-request deny
            """)
        #expect(bad.contains("test.cfg:4: 'http-request wait-for-body' expects 'time T' (for example time 1s)"), "\(bad)")
        #expect(bad.contains { $0.hasPrefix("test.cfg:5: 'http-request wait-for-body': 'at-least' expects a size, got 'lots'") }, "\(bad)")
    }

    /// HAProxy's HTTPS fields in a log-format of one's own, `,hex` included.
    @Test func theHTTPSFieldsInALogFormat() throws {
        let web = try #require(try load("""
            frontend web
                mode http
                bind 127.0.0.1:8080
                log-format "%ci %[fc_err]/%[ssl_fc_err,hex]/%[ssl_c_err]/%[ssl_c_ca_err]"
                http-request deny
            """).config.proxy(named: "web"))
        guard case .custom(let format) = web.log.format else {
            Issue.record("no log-format")
            return
        }
        #expect(format.nodes.contains(.sample(SampleExpression(fetch: .connectionError(.tls), converters: [.hex]), [])))
        #expect(errors("""
            frontend web
                mode http
                bind 127.0.0.1:8080
                log-format "%[src,hex]"
                http-request deny
            """) == ["test.cfg:4: 'src,hex': a log line applies lower, upper and json only (other converters work in rules)"])
    }
}
