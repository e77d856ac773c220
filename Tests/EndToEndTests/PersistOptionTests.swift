import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `option persist`: a persistence cookie keeps sending to its server while it is DOWN (not in
/// maintenance), as HAProxy does; without the option the request is balanced elsewhere.
@Suite(.serialized) struct PersistOptionTests {
    @Test func aCookieReachesItsDownServerOnlyWithOptionPersist() throws {
        let a = try TestHTTPOrigin("a"), b = try TestHTTPOrigin("b")
        let persist = TestSocket.freePort(), plain = TestSocket.freePort()
        func backend(_ name: String, _ option: String) -> String {
            """
            backend \(name)
                \(option)
                cookie SRV insert indirect
                server a 127.0.0.1:\(a.port) cookie a check inter 60s
                server b 127.0.0.1:\(b.port) cookie b check inter 60s
            """
        }
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            frontend persist
                bind 127.0.0.1:\(persist)
                default_backend withpersist
            frontend plain
                bind 127.0.0.1:\(plain)
                default_backend without
            \(backend("withpersist", "option persist"))
            \(backend("without", "no option persist"))
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        for be in ["withpersist", "without"] {
            var stat = ""
            #expect(eventually(seconds: 10) {
                stat = (try? strata.admin("show stat")) ?? ""
                return stat.split(separator: "\n").filter { $0.hasPrefix("\(be),a,") || $0.hasPrefix("\(be),b,") }
                    .map { $0.contains(",UP,") || $0.contains(",UP ") } == [true, true]
            }, "\(stat) \(strata.output.joined(separator: "\n"))")
            _ = try strata.admin("set server \(be)/a health down")
        }
        func origin(_ port: UInt16) throws -> String {
            let client = try #require(TestHTTPClient(port: port))
            let answer = try #require(client.get("/", headers: ["Cookie: SRV=a"]))
            return answer.body.hasPrefix("origin=a") ? "a" : "b"
        }
        // DOWN: the cookie still wins with option persist, not without it.
        #expect(try origin(persist) == "a")
        #expect(try origin(plain) == "b")
        // Maintenance: not even option persist sends there.
        _ = try strata.admin("set server withpersist/a state maint")
        #expect(try origin(persist) == "b")
    }
}
