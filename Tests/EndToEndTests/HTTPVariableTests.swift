import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `set-var`, `set-var-fmt`, `unset-var` and `var()`: carrying a request's value to its response
/// (where request fetches are gone), a connection's value across its requests (`sess`), and
/// values a later rule tests.
@Suite(.serialized) struct HTTPVariableTests {
    static func header(_ head: String, _ name: String) -> String? {
        head.split(separator: "\r\n").first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
            .map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) }
    }

    @Test func variablesCarryValuesBetweenRulesRequestsAndResponses() throws {
        let origin = try TestHTTPOrigin("app")
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
                http-request set-var(txn.host) req.hdr(host),lower
                http-request set-var(txn.path) path
                http-request set-var(sess.first) path if !{ var(sess.first) -m found }
                http-request set-var-fmt(txn.tag) "%[src] %[method]"
                http-request set-var(txn.drop) path if { path /x }
                http-request unset-var(txn.drop) if { path /x }
                http-request deny if { var(txn.path) -m beg /secret }
                http-request set-header X-Tag %[var(txn.tag)]
                http-response set-header X-Host %[var(txn.host)]
                http-response set-header X-First %[var(sess.first)]
                http-response set-header X-Was-Api yes if { var(txn.path) -m beg /api }
                http-response set-header X-Drop [%[var(txn.drop)]]
                default_backend app
            backend app
                server o 127.0.0.1:\(origin.port)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let client = try #require(TestHTTPClient(port: port))

        let first = try #require(client.get("/api/v1", host: "WWW.Example.COM"))
        #expect(first.status == 200)
        #expect(Self.header(first.head, "X-Host") == "www.example.com")
        #expect(Self.header(first.head, "X-First") == "/api/v1")
        #expect(Self.header(first.head, "X-Was-Api") == "yes")
        #expect(first.body.contains("h=X-Tag: 127.0.0.1 GET"), "\(first.body)")

        // The same connection: sess.first stays, the txn variables are the new request's.
        let second = try #require(client.get("/x", host: "other.test"))
        #expect(Self.header(second.head, "X-Host") == "other.test")
        #expect(Self.header(second.head, "X-First") == "/api/v1")
        #expect(Self.header(second.head, "X-Was-Api") == nil)
        #expect(Self.header(second.head, "X-Drop") == "[]")

        #expect(try #require(client.get("/secret/file")).status == 403)

        // Another connection has its own sess scope.
        let other = try #require(TestHTTPClient(port: port))
        #expect(Self.header(try #require(other.get("/second")).head, "X-First") == "/second")
    }

    @Test func wrongVariableNamesAreRefusedAtTheirLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-var-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cfg = """
            frontend fe
                mode http
                bind 127.0.0.1:1
                http-request set-var(tx.a) path
                http-request set-var(txn.a,ifexists) path
                http-response set-var(txn.b) path
                http-request deny if { var(txn) -m found }
                default_backend b
            backend b
                mode http
                server s 127.0.0.1:2
            """
        try Data(cfg.utf8).write(to: URL(fileURLWithPath: "\(dir)/v.cfg"))
        let out = runTool(StrataProcess.binary, ["-c", "-f", "\(dir)/v.cfg"])
        let text = out.stdout + out.stderr
        #expect(out.status != 0)
        #expect(text.contains("v.cfg:4: 'tx.a': a variable name starts with its scope"), "\(text)")
        #expect(text.contains("v.cfg:5: 'http-request set-var(txn.a,ifexists)': conditions after the variable name"), "\(text)")
        #expect(text.contains("v.cfg:6: 'http-response set-var(txn.b)': 'path' needs the HTTP request headers"), "\(text)")
        #expect(text.contains("v.cfg:7:"), "\(text)")
    }
}
