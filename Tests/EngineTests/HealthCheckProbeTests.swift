import ConfigModel
import Testing

@testable import Engine

/// Check protocols as plain values, no sockets: what they send, how they judge what comes back,
/// and HAProxy's words for each failure.
@Suite struct HealthCheckProbeTests {
    static func feed(_ probe: inout HealthCheckProbe, _ text: String) -> HealthCheckProbe.Action {
        Array(text.utf8).withUnsafeBytes { probe.received($0) }
    }

    /// Runs an HTTP check to its verdict on `response` (the server closes after it).
    static func http(_ response: String, configure: (inout HTTPCheck) -> Void = { _ in }) -> HealthCheckOutcome? {
        var check = HTTPCheck()
        configure(&check)
        var p = HealthCheckProbe(kind: .http(check))
        #expect(p.start() == .connect(port: nil))
        guard case .send = p.connected() else { return nil }
        #expect(p.sent() == .receive)
        var action = feed(&p, response)
        if action == .receive { action = p.inputEnded() }
        guard case .done(let outcome) = action else { return nil }
        return outcome
    }

    static func expect(_ kind: HTTPCheckExpectation.Kind, _ pattern: String, negated: Bool = false) -> (inout HTTPCheck) -> Void {
        { $0.expectations.append(HTTPCheckExpectation(kind: kind, pattern: pattern, negated: negated)) }
    }

    static let ok = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world"

    @Test func connectCheckPassesOnceConnected() {
        var p = HealthCheckProbe(kind: .connect)
        #expect(p.start() == .connect(port: nil))
        #expect(p.connected() == .done(HealthCheckOutcome(.layer4OK)))
        #expect(p.connectFailed(errno: 111) == HealthCheckOutcome(.layer4Connection, info: "Connection refused"))
        #expect(p.timedOut(connecting: true) == HealthCheckOutcome(.layer4Timeout))
    }

    @Test func httpRequestIsHAProxys() {
        #expect(String(decoding: HealthCheckProbe.request(HTTPCheck()), as: UTF8.self) == "OPTIONS / HTTP/1.0\r\n\r\n")
        var check = HTTPCheck()
        check.method = "GET"
        check.uri = "/health"
        check.version = "HTTP/1.1"
        check.headerList = [.init(name: "Host", value: "example.test")]
        #expect(String(decoding: HealthCheckProbe.request(check), as: UTF8.self)
            == "GET /health HTTP/1.1\r\nhost: example.test\r\nconnection: close\r\n\r\n")
    }

    @Test func httpDefaultExpectationIsAny2xxOr3xx() {
        #expect(Self.http(Self.ok) == HealthCheckOutcome(.layer7OK, code: 200))
        #expect(Self.http("HTTP/1.0 302 Found\r\n\r\n") == HealthCheckOutcome(.layer7OK, code: 302))
        #expect(Self.http("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            == HealthCheckOutcome(.layer7Status, code: 404, info: "Not Found"))
        #expect(Self.http("HTTP/1.1 503 Service Unavailable\r\n\r\n")
            == HealthCheckOutcome(.layer7Status, code: 503, info: "Service Unavailable"))
    }

    @Test func disableOn404MakesA404AConditionalPass() {
        let notFound = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        #expect(Self.http(notFound, configure: { $0.disableOn404 = true })
            == HealthCheckOutcome(.layer7ConditionalOK, code: 404, info: "Not Found"))
        #expect(Self.http(Self.ok, configure: { $0.disableOn404 = true }) == HealthCheckOutcome(.layer7OK, code: 200))
        #expect(Self.http("HTTP/1.1 503 Service Unavailable\r\n\r\n", configure: { $0.disableOn404 = true })?.status == .layer7Status)
    }

    @Test func httpStatusExpectations() {
        #expect(Self.http(Self.ok, configure: Self.expect(.status, "200"))?.status == .layer7OK)
        #expect(Self.http(Self.ok, configure: Self.expect(.status, "201"))
            == HealthCheckOutcome(.layer7Status, code: 200, info: "OK"))
        #expect(Self.http(Self.ok, configure: Self.expect(.status, "200", negated: true))
            == HealthCheckOutcome(.layer7Status, code: 200, info: "OK"))
        #expect(Self.http(Self.ok, configure: Self.expect(.status, "100-199,200-204"))?.status == .layer7OK)
        #expect(Self.http(Self.ok, configure: Self.expect(.statusRegex, "^2"))?.status == .layer7OK)
        #expect(Self.http(Self.ok, configure: Self.expect(.statusRegex, "^3"))?.status == .layer7Status)
    }

    @Test func httpBodyExpectations() {
        #expect(Self.http(Self.ok, configure: Self.expect(.string, "world")) == HealthCheckOutcome(.layer7OK, code: 200))
        #expect(Self.http(Self.ok, configure: Self.expect(.string, "nomatch"))
            == HealthCheckOutcome(.layer7Response, code: 200, info: "HTTP content check did not match"))
        #expect(Self.http(Self.ok, configure: Self.expect(.string, "hello", negated: true))
            == HealthCheckOutcome(.layer7Response, code: 200, info: "HTTP check matched unwanted content"))
        #expect(Self.http(Self.ok, configure: Self.expect(.stringRegex, "^hel+o w"))?.status == .layer7OK)
        #expect(Self.http(Self.ok, configure: Self.expect(.stringRegex, "^zz"))?.info == "HTTP content check did not match")
        #expect(Self.http("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", configure: Self.expect(.string, "x"))?.info
            == "HTTP content check could not find a response body")
        // A chunked body, and one delimited by the end of the connection.
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        #expect(Self.http(chunked, configure: Self.expect(.string, "o w"))?.status == .layer7OK)
        #expect(Self.http("HTTP/1.0 200 OK\r\n\r\nsome body", configure: Self.expect(.string, "body"))?.status == .layer7OK)
        // Every expectation must pass, in order.
        let both: (inout HTTPCheck) -> Void = { c in
            Self.expect(.status, "200")(&c)
            Self.expect(.string, "absent")(&c)
        }
        #expect(Self.http(Self.ok, configure: both)?.info == "HTTP content check did not match")
    }

    @Test func httpBodyExpectationWaitsForTheWholeBody() {
        var check = HTTPCheck()
        Self.expect(.string, "world")(&check)
        var p = HealthCheckProbe(kind: .http(check))
        _ = p.start()
        _ = p.connected()
        _ = p.sent()
        #expect(Self.feed(&p, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello") == .receive)
        #expect(Self.feed(&p, " world") == .done(HealthCheckOutcome(.layer7OK, code: 200)))
    }

    @Test func httpInvalidOrEmptyResponse() {
        #expect(Self.http("garbage\r\n\r\n") == HealthCheckOutcome(.layer7Response))
        #expect(Self.http("") == HealthCheckOutcome(.layer7Response))
    }

    static func tcpCheck(_ steps: [TCPCheckStep]) -> HealthCheckProbe { HealthCheckProbe(kind: .tcpCheck(steps)) }

    @Test func tcpCheckSendThenExpect() {
        var p = Self.tcpCheck([.send(Array("PING\r\n".utf8)), .expectString("+PONG", negated: false)])
        #expect(p.start() == .connect(port: nil))
        #expect(p.connected() == .send(Array("PING\r\n".utf8)))
        #expect(p.sent() == .receive)
        #expect(Self.feed(&p, "+PO") == .receive)
        #expect(Self.feed(&p, "NG\r\n") == .done(HealthCheckOutcome(.layer7OK, code: 0, info: "(tcp-check)")))
    }

    @Test func tcpCheckFailuresNameTheStep() {
        var p = Self.tcpCheck([.send(Array("PING\r\n".utf8)), .expectString("+PANG", negated: false)])
        _ = p.start()
        _ = p.connected()
        _ = p.sent()
        #expect(Self.feed(&p, "+PONG\r\n") == .receive)
        #expect(p.inputEnded() == .done(HealthCheckOutcome(.layer7Response, info: "TCPCHK did not match content '+PANG' at step 2")))
        #expect(p.timedOut(connecting: false) == HealthCheckOutcome(.layer7Timeout, info: " at step 2 of tcp-check (expect string '+PANG')"))
        #expect(p.socketError(errno: 104).info == "Connection reset by peer at step 2 of tcp-check (expect string '+PANG')")

        var negated = Self.tcpCheck([.send(Array("PING\r\n".utf8)), .expectString("PONG", negated: true)])
        _ = negated.start()
        _ = negated.connected()
        _ = negated.sent()
        #expect(Self.feed(&negated, "+PONG\r\n") == .done(HealthCheckOutcome(.layer7Response, info: "TCPCHK matched unwanted content 'PONG' at step 2")))

        var empty = Self.tcpCheck([.expectString("220", negated: false)])
        _ = empty.start()
        #expect(empty.connected() == .receive)
        #expect(empty.inputEnded() == .done(HealthCheckOutcome(.layer7Response, info: "TCPCHK got an empty response at step 1")))

        let refused = Self.tcpCheck([.send([1])])
        #expect(refused.connectFailed(errno: 111).info == "Connection refused at initial connection step of tcp-check")
    }

    @Test func tcpCheckBinaryRegexAndConnectRules() {
        var p = Self.tcpCheck([
            .connect(port: 9000), .sendBinary([0x50, 0x49]), .expectBinary([0x2b, 0x50], negated: false),
            .expectRegex("^\\+P[A-Z]+", negated: false), .connect(port: 9001), .expectBinary([0x00, 0xff], negated: false),
        ])
        #expect(p.start() == .connect(port: 9000))
        #expect(p.connected() == .send([0x50, 0x49]))
        #expect(p.sent() == .receive)
        // Both expectations judge the same bytes; then a new connection.
        #expect(Self.feed(&p, "+PONG") == .connect(port: 9001))
        #expect(p.connected() == .receive)
        #expect(Self.feed(&p, "xx") == .receive)
        #expect(p.timedOut(connecting: false).info == " at step 6 of tcp-check (expect binary '00FF')")
        #expect(p.inputEnded() == .done(HealthCheckOutcome(.layer7Response, info: "TCPCHK did not match content (binary) at step 6")))
        var connectOnly = Self.tcpCheck([.connect(port: nil)])
        _ = connectOnly.start()
        #expect(connectOnly.connected() == .done(HealthCheckOutcome(.layer4OK, info: "(tcp-check)")))
    }
}
