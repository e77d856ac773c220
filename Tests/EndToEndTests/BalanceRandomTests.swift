import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `balance random[(N)]`: each request draws N servers by weight and takes the least loaded.
@Suite struct BalanceRandomTests {
    @Test func requestsSpreadByWeight() throws {
        let light = try TestHTTPOrigin("light"), heavy = try TestHTTPOrigin("heavy")
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
                default_backend be
            backend be
                balance random(3)
                server light 127.0.0.1:\(light.port) weight 1
                server heavy 127.0.0.1:\(heavy.port) weight 4
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        var counts = ["light": 0, "heavy": 0]
        for i in 0..<300 {
            let answer = try #require(client.get("/r\(i)"))
            if answer.body.hasPrefix("origin=light") { counts["light", default: 0] += 1 }
            if answer.body.hasPrefix("origin=heavy") { counts["heavy", default: 0] += 1 }
        }
        // Both are chosen, the heavier far more often (expected about 1:4 when idle; the odds of
        // either bound failing by chance are below one in a billion).
        #expect(counts["light"]! + counts["heavy"]! == 300)
        #expect(counts["light"]! >= 10 && counts["heavy"]! > 2 * counts["light"]!, "\(counts)")
    }
}
