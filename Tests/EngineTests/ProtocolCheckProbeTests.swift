import ConfigModel
import Testing

@testable import Engine

/// Protocol checks as plain values: where they wait, what passes, and HAProxy's words for failures.
@Suite struct ProtocolCheckProbeTests {
    static func feed(_ probe: inout HealthCheckProbe, _ bytes: [UInt8]) -> HealthCheckProbe.Action {
        bytes.withUnsafeBytes { probe.received($0) }
    }

    /// Starts `check` up to its first wait for the server (past its sends).
    static func started(_ check: ProtocolCheck) -> HealthCheckProbe {
        var p = HealthCheckProbe(kind: .protocolCheck(check))
        #expect(p.start() == .connect(port: nil))
        var action = p.connected()
        while case .send = action { action = p.sent() }
        #expect(action == .receive)
        return p
    }

    @Test func sslHelloTakesAnAlertAsAnSSLServer() {
        // An alert (0x15) says the server speaks TLS too: L6OK, as HAProxy's ^1[56].
        var alert = Self.started(.sslHello)
        #expect(Self.feed(&alert, [0x15, 0x03]) == .receive)  // min-recv 5
        #expect(Self.feed(&alert, [0x00, 0x00, 0x02, 0x02, 0x28]) == .done(HealthCheckOutcome(.layer6OK)))
        var http = Self.started(.sslHello)
        #expect(Self.feed(&http, Array("HTTP/1.1 400".utf8)) == .done(HealthCheckOutcome(.layer6Response)))
        #expect(http.timedOut(connecting: false) == HealthCheckOutcome(.layer6Timeout))
    }

    @Test func smtpWaitsForTheLastLineOfTheReply() {
        var p = HealthCheckProbe(kind: .protocolCheck(.smtp(command: "HELO localhost")))
        _ = p.start()
        #expect(p.connected() == .receive)
        #expect(Self.feed(&p, Array("220 mx ready\r\n".utf8)) == .send(Array("HELO localhost\r\n".utf8)))
        #expect(p.sent() == .receive)
        #expect(Self.feed(&p, Array("250-mx\r\n250-SIZE".utf8)) == .receive)
        #expect(Self.feed(&p, Array(" 10\r\n250 OK\r\n".utf8)) == .send(Array("QUIT\r\n".utf8)))
        #expect(p.sent() == .receive)
        #expect(Self.feed(&p, Array("221 bye\r\n".utf8)) == .done(HealthCheckOutcome(.layer7OK, code: 221, info: "bye")))

        // A banner that is not an SMTP reply at all: L7RSP with the line as info.
        var wrong = HealthCheckProbe(kind: .protocolCheck(.smtp(command: "HELO localhost")))
        _ = wrong.start()
        _ = wrong.connected()
        #expect(Self.feed(&wrong, Array("SSH-2.0-OpenSSH\r\n".utf8)) == .done(HealthCheckOutcome(.layer7Response, info: "SSH-2.0-OpenSSH")))
    }

    @Test func mysqlTruncatedOrEmptyAnswers() {
        var truncated = Self.started(.mysql(user: nil, post41: true))
        #expect(Self.feed(&truncated, [0x20, 0, 0, 0, 0x0A]) == .receive)
        #expect(truncated.inputEnded() == .done(HealthCheckOutcome(.layer7Response)))
        var empty = Self.started(.mysql(user: "u", post41: false))
        #expect(empty.inputEnded() == .done(HealthCheckOutcome(.layer7Response, info: "TCPCHK got an empty response at step 3")))
        // pre-41: length 7 + user, sequence 1, 2 capability bytes, 3 max-packet bytes.
        #expect(ProtocolCheckRules.mysqlLogin(user: "u", post41: false)
            == [0x08, 0, 0, 0x01, 0x00, 0x80, 0x00, 0x00, 0x01, 0x75, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01])
    }

    @Test func protocolCheckFailuresNameNoTCPCheckStep() {
        let p = Self.started(.redis)
        #expect(p.connectFailed(errno: 111).info == "Connection refused")
        #expect(p.timedOut(connecting: false) == HealthCheckOutcome(.layer7Timeout))
    }

    @Test func ldapLongFormLengthAndWrongMessage() {
        // A bind response whose length takes two bytes (0x82 0x00 0x0C), as some servers send.
        var long = Self.started(.ldap)
        #expect(Self.feed(&long, [0x30, 0x82, 0x00, 0x0C, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0A, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00])
            == .done(HealthCheckOutcome(.layer7OK, info: "Success")))
        var search = Self.started(.ldap)
        #expect(Self.feed(&search, [0x30, 0x0C, 0x02, 0x01, 0x01, 0x65, 0x07, 0x0A, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00])
            == .done(HealthCheckOutcome(.layer7Response, info: "Not LDAPv3 protocol")))
    }
}
