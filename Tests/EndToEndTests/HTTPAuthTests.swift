import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `userlist` sections with `http_auth`, `http_auth_group` and `http-request auth`, as real
/// configurations protect an admin path: a crypt(3) hash and an insecure password, groups on
/// either side.
@Suite(.serialized) struct HTTPAuthTests {
    static func basic(_ user: String, _ password: String) -> String {
        "Authorization: Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    @Test func credentialsAreCheckedAgainstTheUserlist() throws {
        let origin = try TestHTTPOrigin("app")
        let port = TestSocket.freePort()
        // "s3cret" hashed with SHA-512 crypt (openssl passwd -6 -salt abcdefgh s3cret).
        let hash = "$6$abcdefgh$Z7KfoKnKTSZrzo5VZ0YubGLQOj9ov6sHo9TmE3zIU/LHKhpE30zCnZ0mcIXYf9r9rQ4DYaXoxAFSPFlcWdxjB."
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
                acl authorized http_auth(people)
                acl admins http_auth_group(people) admin
                http-request auth realm "Private area" if !authorized
                http-request deny if { path_beg /admin } !admins
                http-request auth if { path_beg /again } !admins
                default_backend app
            backend app
                server o 127.0.0.1:\(origin.port)
            userlist people
                group admin users alice
                group staff
                user alice password \(hash)
                user bob insecure-password hunter2 groups staff
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))

        let none = try #require(client.get("/"))
        #expect(none.status == 401)
        #expect(none.head.lowercased().contains("www-authenticate: basic realm=\"private area\""), "\(none.head)")
        #expect(try #require(client.get("/", headers: [Self.basic("alice", "wrong")])).status == 401)
        #expect(try #require(client.get("/", headers: [Self.basic("bob", "hunter")])).status == 401)
        #expect(try #require(client.get("/", headers: [Self.basic("mallory", "hunter2")])).status == 401)
        #expect(try #require(client.get("/", headers: ["Authorization: Bearer abc"])).status == 401)

        let alice = try #require(client.get("/", headers: [Self.basic("alice", "s3cret")]))
        #expect(alice.status == 200)
        #expect(alice.body.contains("origin=app"))
        let bob = try #require(client.get("/", headers: [Self.basic("bob", "hunter2")]))
        #expect(bob.status == 200)
        // Groups: alice is an admin (from the group's line), bob only staff (from his own).
        #expect(try #require(client.get("/admin/x", headers: [Self.basic("alice", "s3cret")])).status == 200)
        #expect(try #require(client.get("/admin/x", headers: [Self.basic("bob", "hunter2")])).status == 403)
        // Without a realm, the proxy's name is the realm.
        let again = try #require(client.get("/again", headers: [Self.basic("bob", "hunter2")]))
        #expect(again.status == 401)
        #expect(again.head.lowercased().contains("www-authenticate: basic realm=\"fe\""), "\(again.head)")
    }
}
