import Foundation
import Glibc
import StrataTestSupport
import Testing

/// A server run by the test process whose conversation is a closure of the test, one thread per
/// connection (the connection is closed when it returns).
final class ScriptedOrigin: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32

    init(_ talk: @escaping @Sendable (Int32) -> Void) throws {
        (fd, port) = try TestSocket.listen(what: "scripted origin")
        TestSocket.acceptLoop(fd, timeout: 5) { c in
            Thread {
                talk(c)
                close(c)
            }.start()
            return true
        }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}

/// `tcp-response inspect-delay` and `tcp-response content accept|reject|close` with the real
/// binary: the server's first bytes are held until a rule decides, `reject` keeps them from the
/// client, `close` ends the exchange after them, the client's bytes reach the server meanwhile.
@Suite(.serialized) struct TCPResponseRuleTests {
    static let rules = """
            tcp-response inspect-delay 600ms
            tcp-response content reject if { res.payload(0,4) -m str EVIL }
            tcp-response content close if { res.payload(0,3) -m str BYE }
            tcp-response content accept if { res.len ge 4 }
        """

    static func start(_ origin: ScriptedOrigin) throws -> (StrataProcess, UInt16) {
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: TCPProxyTests.config(listen: port, servers: ["server s 127.0.0.1:\(origin.port)"],
                                                                    extra: rules))
        #expect(strata.waitForAdmin())
        return (strata, port)
    }

    /// What a client connecting to `port` reads to the end, and how long it took.
    static func exchange(_ port: UInt16, send: String? = nil) throws -> (String, Double) {
        let fd = try #require(TestSocket.connect(port))
        defer { close(fd) }
        let start = Date()
        if let send { TestSocket.sendAll(fd, send) }
        let bytes = TestSocket.readToEnd(fd)
        return (String(decoding: bytes, as: UTF8.self), Date().timeIntervalSince(start))
    }

    @Test func rejectKeepsTheServersBytesFromTheClientEvenWhenTheyComeInPieces() throws {
        // "EV" alone matches nothing yet: the rule waits for four bytes rather than let it pass.
        let origin = try ScriptedOrigin { c in
            TestSocket.sendAll(c, "EV")
            usleep(200_000)
            TestSocket.sendAll(c, "IL secret\n")
            usleep(1_000_000)
        }
        let (strata, port) = try Self.start(origin)
        let (text, _) = try Self.exchange(port)
        #expect(text == "")
        #expect(strata.waitForOutput(" PD "), "\(strata.output.joined(separator: "\n"))")
        // Counted as a denied response (dresp) of the backend.
        let lines = try strata.admin("show stat").split(separator: "\n")
        let header = try #require(lines.first).dropFirst(2).split(separator: ",", omittingEmptySubsequences: false)
        let column = try #require(header.firstIndex(of: "dresp"))
        let backend = lines.first { $0.hasPrefix("app,BACKEND,") }
        #expect(backend?.split(separator: ",", omittingEmptySubsequences: false)[column] == "1")
    }

    @Test func acceptPassesTheResponseAndTheClientsBytesFlowMeanwhile() throws {
        // The server answers only once it has the client's request.
        let origin = try ScriptedOrigin { c in
            guard TestSocket.readLine(c) == "PING" else { return }
            TestSocket.sendAll(c, "PONG and more\n")
        }
        let (strata, port) = try Self.start(origin)
        defer { withExtendedLifetime(strata) {} }
        let (text, _) = try Self.exchange(port, send: "PING\n")
        #expect(text == "PONG and more\n")
    }

    @Test func inspectDelayWaitsForPayloadThenAccepts() throws {
        // Two bytes and silence: no rule can decide before the delay; then none matches (accept).
        let origin = try ScriptedOrigin { c in
            TestSocket.sendAll(c, "GO")
            usleep(4_000_000)
        }
        let (strata, port) = try Self.start(origin)
        defer { withExtendedLifetime(strata) {} }
        let fd = try #require(TestSocket.connect(port))
        defer { close(fd) }
        let start = Date()
        let first = TestSocket.read(fd, count: 2)
        let waited = Date().timeIntervalSince(start)
        #expect(String(decoding: first, as: UTF8.self) == "GO")
        #expect(waited >= 0.45, "the bytes came after \(waited)s, before the inspect delay")
        #expect(waited < 3.5, "the bytes came after \(waited)s, only when the server closed")
    }

    @Test func closeEndsTheExchangeAfterWhatTheServerSent() throws {
        // The server would keep its connection open for 5 s; `close` ends it at once.
        let origin = try ScriptedOrigin { c in
            TestSocket.sendAll(c, "BYE now\n")
            usleep(5_000_000)
        }
        let (strata, port) = try Self.start(origin)
        defer { withExtendedLifetime(strata) {} }
        let (text, took) = try Self.exchange(port)
        #expect(text == "BYE now\n")
        #expect(took < 4, "the client waited \(took)s for the end")
    }
}
