import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `option abortonclose`: a queued request whose client closed its side is dropped before it
/// reaches a server; without the option it is served (HTTP allows a half-closed client).
@Suite(.serialized) struct HTTPAbortOnCloseTests {
    func run(abortOnClose: Bool) throws -> (answer: (status: Int, head: String, body: String)?, heads: Int) {
        let origin = try TestHTTPOrigin("a")
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 1s
                timeout client 10s
                timeout server 10s
                timeout queue 10s
            frontend fe
                bind 127.0.0.1:\(port)
                default_backend app
            backend app
                \(abortOnClose ? "option abortonclose" : "no option abortonclose")
                server a 127.0.0.1:\(origin.port) maxconn 1
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        // The one slot is taken by a request the origin answers after 3 s.
        let first = try #require(TestHTTPClient(port: port))
        first.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(eventually(seconds: 10) { origin.heads.count == 1 })
        // The second waits in the queue; its client closes its side.
        let second = try #require(TestHTTPClient(port: port))
        second.send("GET /queued HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(eventually(seconds: 10) { (try? strata.admin("show stat")).flatMap(Self.queued) == 1 })
        shutdown(second.fd, Int32(SHUT_WR))
        let answer = second.readResponse()
        #expect(first.readResponse()?.status == 200)
        return (answer, origin.heads.count)
    }

    /// `qcur` of the backend row.
    static func queued(_ stat: String) -> Int? {
        let lines = stat.split(separator: "\n")
        guard let header = lines.first?.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false),
              let q = header.firstIndex(of: "qcur"),
              let row = lines.first(where: { $0.hasPrefix("app,BACKEND,") }) else { return nil }
        return Int(row.split(separator: ",", omittingEmptySubsequences: false)[q])
    }

    @Test func aQueuedRequestWhoseClientClosedIsDropped() throws {
        let (answer, heads) = try run(abortOnClose: true)
        #expect(answer == nil)
        #expect(heads == 1)
    }

    @Test func withoutTheOptionItIsServed() throws {
        let (answer, heads) = try run(abortOnClose: false)
        #expect(answer?.status == 200)
        #expect(heads == 2)
    }
}
