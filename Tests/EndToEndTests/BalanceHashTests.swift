import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `balance hash EXPR`: the sample's value hashed as HAProxy hashes it (so `hash req.hdr(X)`
/// picks what `hdr(X)` picks), the same key always to the same server, round robin without a value.
@Suite struct BalanceHashTests {
    @Test func theSampleChoosesTheServer() throws {
        let origins = try ["a", "b", "c"].map { try TestHTTPOrigin($0) }
        let port = TestSocket.freePort()
        let servers = origins.map { "    server \($0.name) 127.0.0.1:\($0.port)" }.joined(separator: "\n")
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
                use_backend byheader if { path_beg /hdr }
                use_backend lowered if { path_beg /low }
                default_backend byhash
            backend byhash
                balance hash req.hdr(x-user)
            \(servers)
            backend byheader
                balance hdr(x-user)
            \(servers)
            backend lowered
                balance hash req.hdr(x-user),lower
                hash-type consistent
            \(servers)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))
        func origin(_ path: String, _ user: String?) throws -> String {
            let answer = try #require(client.get(path, headers: user.map { ["X-User: \($0)"] } ?? []))
            return String(answer.body.prefix { $0 != "\n" })
        }
        var seen = Set<String>()
        for i in 0..<24 {
            let user = "user\(i)"
            let chosen = try origin("/x", user)
            seen.insert(chosen)
            // The same key again, and the header's own algorithm: the same server.
            #expect(try origin("/y", user) == chosen)
            #expect(try origin("/hdr", user) == chosen, "\(user)")
            // A converter in the expression: the lowered key goes where the lowered key goes.
            #expect(try origin("/low", user.uppercased()) == origin("/low", user))
        }
        #expect(seen.count >= 2, "\(seen)")
        // No value: round robin over the three.
        var spread = Set<String>()
        for _ in 0..<6 { spread.insert(try origin("/x", nil)) }
        #expect(spread.count == 3, "\(spread)")
    }
}
