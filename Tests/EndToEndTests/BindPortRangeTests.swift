import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `bind ADDR:LOW-HIGH` with the real binary: every port of the range accepts, and forwards.
@Suite struct BindPortRangeEndToEndTests {
    @Test func everyPortOfTheRangeForwards() throws {
        let origin = try TestHTTPOrigin("range")
        let ports = TestSocket.freePorts(count: 3)
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend fe
                bind 127.0.0.1:\(ports.lowerBound)-\(ports.upperBound)
                default_backend be
            backend be
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        for port in ports {
            let client = try #require(TestHTTPClient(port: port))
            let answer = try #require(client.get("/p\(port)"))
            #expect(answer.status == 200 && answer.body.contains("line=GET /p\(port) HTTP/1.1"), "\(answer.body)")
        }
        #expect(try strata.admin("show stat").split(separator: "\n").contains { $0.hasPrefix("fe,FRONTEND,") })
    }
}
