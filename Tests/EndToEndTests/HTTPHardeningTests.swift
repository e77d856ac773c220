import Foundation
import Glibc
import StrataTestSupport
import Testing

/// What a server may receive through strata, checked byte for byte on a raw recording server:
/// only whole requests strata parsed — nothing of a refused one, never body bytes without their
/// head — and what a client gets when a server misbehaves.
@Suite(.serialized) struct HTTPHardeningTests {
    static func config(port: UInt16, server: UInt16, extra: String = "", timeouts: String = "") -> String {
        """
        global
            stats socket @ADMIN@ level admin
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
        \(timeouts)
        listen web
            bind 127.0.0.1:\(port)
        \(extra)
            server s1 127.0.0.1:\(server)
        """
    }

    /// The malformed chunked bodies of the report: each must be refused with nothing of it
    /// reaching a server.
    static let badBodies: [(String, String)] = [
        ("chunk shorter than its data", "3\r\nhello\r\n0\r\n\r\n"),
        ("chunk data not followed by CRLF", "5\r\nhelloXY0\r\n\r\n"),
        ("lone LF after the last chunk", "5\r\nhello\r\n0\r\n\n"),
        ("a trailer strata refuses", "5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"),
    ]

    static let chunkedHead = "POST /x HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"

    @Test(arguments: [true, false])
    func aRefusedChunkedBodyNeverReachesAServer(oneWrite: Bool) throws {
        let server = try RecordingServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, server: server.port))
        #expect(strata.waitForAdmin())
        for (name, body) in Self.badBodies {
            let client = try #require(TestHTTPClient(port: port))
            // A good request first, so a kept server connection exists for the bad one to land on.
            #expect(client.get("/first")?.status == 200, "\(name)")
            if oneWrite {
                client.send(Self.chunkedHead + body)
            } else {
                client.send(Self.chunkedHead)
                usleep(100_000)
                client.send(body)
            }
            let answer = client.readResponse()
            #expect(answer?.status == 400, "\(name): \(String(describing: answer?.head))")
            #expect(client.isClosedByPeer(), "\(name)")
        }
        // A connection ended by strata may stop inside a request it had started forwarding (a body
        // refused after its head left); everything else is whole requests, and no stream ever
        // carries chunk bytes outside a request.
        usleep(200_000)
        for (i, verdict) in server.verdictsSoFar.enumerated() {
            switch verdict {
            case .whole: break
            case .cutShort: #expect(!oneWrite, "a request refused in one read was started at the server (connection \(i))")
            case .invalid(let why): Issue.record("connection \(i) received bytes outside a request: \(why)")
            }
        }
        if oneWrite {
            // Refused as it arrived: not a byte of it left strata.
            #expect(!server.allBytes.contains("POST /x"))
            #expect(!server.allBytes.contains("hel"))
        }
        _ = strata
    }

    @Test func absoluteFormAndHostMustAgree() throws {
        let server = try RecordingServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, server: server.port))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        client.send("GET http://other.test/abs HTTP/1.1\r\nHost: a.test\r\n\r\n")
        #expect(client.readResponse()?.status == 400)
        #expect(!server.allBytes.contains("/abs"))
        // When they agree (case and the scheme's port aside), the request goes through as it came.
        let again = try #require(TestHTTPClient(port: port))
        again.send("GET http://A.test:80/abs HTTP/1.1\r\nHost: a.test\r\n\r\n")
        #expect(again.readResponse()?.status == 200)
        #expect(server.allBytes.contains("GET http://A.test:80/abs HTTP/1.1\r\n"))
        _ = strata
    }

    @Test func anUnknownMinorVersionIsServedAsHTTP11AndEqualLengthsMerge() throws {
        let server = try RecordingServer()
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, server: server.port))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        client.send("GET /v HTTP/1.2\r\nHost: a.test\r\n\r\n")
        #expect(client.readResponse()?.status == 200)
        #expect(server.allBytes.contains("GET /v HTTP/1.1\r\n"))
        client.send("POST /two HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5, 5\r\n\r\nhello")
        #expect(client.readResponse()?.status == 200)
        client.send("POST /lines HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello")
        #expect(client.readResponse()?.status == 200)
        let bytes = server.allBytes.lowercased()
        #expect(bytes.components(separatedBy: "content-length").count - 1 == 2)
        #expect(server.verdictsSoFar == [.whole(count: 3)])
        _ = strata
    }

    /// Answers HAProxy refuses: both framings, a status of 2000, a field name with a space.
    static let invalidAnswers = [
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nok",
    ]

    @Test func anInvalidAnswerIsA502AndTheNextRequestsAreServed() throws {
        let server = try RecordingServer { _, _, head in
            if let i = Int(head.split(separator: " ")[1].dropFirst(5)), head.hasPrefix("GET /bad-") {
                return .send(HTTPHardeningTests.invalidAnswers[i])
            }
            return .send(RecordingServer.ok)
        }
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, server: server.port))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        for i in Self.invalidAnswers.indices {
            #expect(client.get("/bad-\(i)")?.status == 502)
            // The client connection stays usable, and what succeeds is reported as such.
            for j in 0..<2 {
                let r = client.get("/good-\(i)-\(j)")
                #expect(r?.status == 200 && r?.body == "ok", "after invalid answer \(i): \(String(describing: r?.head))")
            }
        }
        _ = strata
    }

    @Test func aRequestRetriedOnAFreshConnectionIsAnswered() throws {
        // The first server connection answers one request, then reads nothing and closes a moment
        // later: strata sends the next (idempotent) request again on a new connection.
        let server = try RecordingServer { connection, request, _ in
            connection == 0 && request == 1 ? .silentThenClose(1) : .send(RecordingServer.ok)
        }
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, server: server.port))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        for path in ["/one", "/two", "/three"] {
            let r = client.get(path)
            #expect(r?.status == 200 && r?.body == "ok", "\(path): \(String(describing: r?.head))")
        }
        #expect(server.allBytes.components(separatedBy: "GET /two ").count - 1 == 2)
        #expect(server.allBytes.contains("GET /three "))
        _ = strata
    }

    @Test func aNonIdempotentRequestIsNotSentTwice() throws {
        let server = try RecordingServer { connection, request, _ in
            connection == 0 && request == 1 ? .silentThenClose(0.5) : .send(RecordingServer.ok)
        }
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, server: server.port))
        #expect(strata.waitForAdmin())
        let client = try #require(TestHTTPClient(port: port))
        #expect(client.get("/one")?.status == 200)
        client.send("POST /pay HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n")
        #expect(client.readResponse()?.status == 502)
        #expect(server.allBytes.components(separatedBy: "POST /pay ").count - 1 == 1)
        _ = strata
    }
}
