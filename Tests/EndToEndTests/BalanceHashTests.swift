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

    /// `hash-balance-factor`: a key whose server already holds more than its share of the
    /// sessions in flight goes on along the ring; without it the key stays on its server.
    @Test func aBalanceFactorBoundsAServersLoad() throws {
        let origins = try ["a", "b"].map { try TestHTTPOrigin($0) }
        let port = TestSocket.freePort(), plain = TestSocket.freePort()
        let servers = origins.map { "    server \($0.name) 127.0.0.1:\($0.port)" }.joined(separator: "\n")
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode http
                timeout connect 2s
                timeout client 20s
                timeout server 20s
                balance hdr(x-user)
                hash-type consistent
            frontend bounded
                bind 127.0.0.1:\(port)
                default_backend bounded
            frontend unbounded
                bind 127.0.0.1:\(plain)
                default_backend unbounded
            backend bounded
                hash-balance-factor 125
            \(servers)
            backend unbounded
            \(servers)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        /// Two slow requests with the same key at once: the origins that answered them.
        func twoAtOnce(_ port: UInt16, backend: String) throws -> Set<String> {
            final class Answers: @unchecked Sendable {
                let lock = NSLock()
                var origins: [String] = []
            }
            let answers = Answers()
            let group = DispatchGroup()
            for i in 0..<2 {
                group.enter()
                DispatchQueue.global().async {
                    if let answer = TestHTTPClient(port: port)?.get("/slow", headers: ["X-User: same"]) {
                        answers.lock.withLock { answers.origins.append(String(answer.body.prefix { $0 != "\n" })) }
                    }
                    group.leave()
                }
                // The second starts once the first holds its server (`show stat`'s scur).
                if i == 0 {
                    for _ in 0..<200 {
                        let rows = (try? strata.admin("show stat")) ?? ""
                        let busy = rows.split(separator: "\n").contains { row in
                            let f = row.split(separator: ",", omittingEmptySubsequences: false)
                            return f.count > 4 && f[0] == backend && f[1] == "BACKEND" && (Int(f[4]) ?? 0) > 0
                        }
                        if busy { break }
                        usleep(50_000)
                    }
                }
            }
            #expect(group.wait(timeout: .now() + 30) == .success)
            return Set(answers.lock.withLock { answers.origins })
        }
        #expect(try twoAtOnce(port, backend: "bounded").count == 2)
        #expect(try twoAtOnce(plain, backend: "unbounded").count == 1)
    }
}
