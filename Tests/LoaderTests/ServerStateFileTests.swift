import ConfigModel
import Glibc
import Testing

@testable import Loader

/// HAProxy's server-state file (version 1): reading it as HAProxy 2.6 does, and matching its lines
/// to a configuration's servers with `load-server-state-from-file global|local`.
@Suite struct ServerStateFileTests {
    static let header = "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port"

    /// What HAProxy 2.6.12 wrote (`show servers state`) after `set server web/w1 state maint`,
    /// `set server web/w2 weight 10`, `set server web/w3 state drain`, `set server web/w4 state
    /// ready` (a `disabled` server), `set server api/a1 health down`, `disable health api/a1` and
    /// `set server web/w2 addr 127.0.0.2 port 9992`.
    static let haproxyDump = """
        1
        \(header)
        2 web 1 w1 127.0.0.1 0 1 1 1 0 1 0 0 0 0 0 0 - 9001 - 0 0 - - 0
        2 web 2 w2 127.0.0.2 2 0 10 20 1 1 0 2 0 0 0 0 - 9992 - 0 0 - - 0
        2 web 3 w3 127.0.0.1 2 8 1 1 0 1 0 2 0 0 0 0 localhost 9003 - 0 0 - - 0
        2 web 4 w4 127.0.0.1 2 4 1 1 0 1 0 0 8 0 0 0 - 9004 - 0 0 - - 0
        3 api 1 a1 127.0.0.1 0 0 1 1 0 6 3 0 2 0 0 0 - 9101 - 0 0 - - 0

        """

    static func config(_ mode: String, global: String = "server-state-file /state/global", extra: String = "") throws -> Config {
        try load("""
            global
                \(global)
            defaults
                mode http
                timeout connect 1s
                timeout client 1s
                timeout server 1s
                load-server-state-from-file \(mode)
            backend web
                server w1 127.0.0.1:9001
                server w2 127.0.0.1:9002 weight 20
                server w3 localhost:9003
                server w4 127.0.0.1:9004 disabled
            backend api
                server a1 127.0.0.1:9101 check inter 1h
            \(extra)
            frontend fe
                bind 127.0.0.1:18998
                default_backend web
            """).config
    }

    /// A reader over files held in memory (a missing one is ENOENT).
    static func files(_ table: [String: String]) -> (String) -> Result<[UInt8], ServerStateFile.ReadError> {
        { path in
            guard let text = table[path] else { return .failure(.init(errno: ENOENT)) }
            return .success(Array(text.utf8))
        }
    }

    static func line(_ text: String) -> String {
        text.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")
    }

    // MARK: the file

    @Test func readsHAProxysDumpLineByLine() throws {
        let file = try ServerStateFile.parse(Array(Self.haproxyDump.utf8)).get()
        #expect(file.version == 1)
        #expect(file.lines.map(\.number) == [2, 3, 4, 5, 6])
        #expect(file.lines.map { $0.fields[3] } == ["w1", "w2", "w3", "w4", "a1"])
        #expect(file.lines.allSatisfy { $0.fields.count == 25 })
    }

    @Test func versionEmptyAndCutLinesAreHAProxys() {
        #expect(ServerStateFile.parse([UInt8]()) == .failure(.empty))
        #expect(ServerStateFile.parse(Array("2\n".utf8)) == .failure(.noVersion))
        #expect(ServerStateFile.parse(Array("1".utf8)) == .failure(.noVersion))
        #expect(ServerStateFile.parse(Array("1 \n".utf8)) == .failure(.noVersion))
        #expect((try? ServerStateFile.parse(Array(" 1\n".utf8)).get())?.lines.count == 0)
        // The last line without its newline, too few fields, a line over 2,000 bytes: corrupted.
        let row = "1 be 1 s1 127.0.0.1 2 0 1 1 0 1 0 3 6 0 0 0 - 80 -"
        #expect(ServerStateFile.parse(Array("1\n\(row)".utf8)) == .failure(.corrupted(line: 1)))
        #expect(ServerStateFile.parse(Array("1\n# c\n\n\(row) \n1 be 2 s2 127.0.0.1 2\n".utf8)) == .failure(.corrupted(line: 4)))
        #expect(ServerStateFile.parse(Array("1\n\(row) \(String(repeating: "x", count: 2000))\n".utf8)) == .failure(.corrupted(line: 1)))
        // 20 fields are enough; past 25 the rest is ignored; blanks and tabs separate.
        let many = try? ServerStateFile.parse(Array("1\n\t\(row)\n\(row) 0 0 - - 0 extra more\n".utf8)).get()
        #expect(many?.lines.map(\.fields.count) == [20, 25])
    }

    @Test func lineValuesAreCheckedAsHAProxyDoes() throws {
        let row = "1 be 1 s1 - 9 64 300 1 x 21 5 3 32 0 2 0 bad/name 70000 -"
        let line = try #require(try ServerStateFile.parse(Array("1\n\(row)\n".utf8)).get().lines.first)
        let result = ServerStateFile.state(line, backend: "be", server: "s1")
        guard case .failure(let invalid) = result else { Issue.record("accepted \(result)"); return }
        #expect(invalid.text == ", invalid srv_op_state value '9', invalid srv_uweight value '300', invalid srv_last_time_change value 'x', invalid srv_check_status value '21', invalid srv_check_result value '5', invalid srv_check_state value '32', invalid bk_f_forced_id value '2', invalid srv_fqdn value 'bad/name', invalid srv_port value '70000'")
        // Inherited and FQDN admin flags are dropped, not refused; the port 0 is no port.
        let ok = try #require(try ServerStateFile.parse(Array("1\n1 be 1 s1 10.0.0.9 3 0x 7 7 12 7 2 1 6 0 0 0 - 0 -\n".utf8)).get().lines.first)
        let admin = try #require(try ServerStateFile.parse(Array("1\n1 be 1 s1 10.0.0.9 3 114 7 7 12 7 2 1 6 0 0 0 - 0 -\n".utf8)).get().lines.first)
        let state = try ServerStateFile.state(admin, backend: "be", server: "s1").get()
        #expect(state.adminState == 0 && state.operationalState == 3 && state.port == nil && state.address == IPAddress("10.0.0.9"))
        #expect(state.secondsSinceLastChange == 12 && state.checkStatus == 7 && state.checkHealth == 1 && state.checkState == 6)
        // strtol reads "0x" as 0.
        #expect((try? ServerStateFile.state(ok, backend: "be", server: "s1").get())?.adminState == 0)
    }

    // MARK: matching

    @Test func globalFileAppliesToTheServersItNames() throws {
        let config = try Self.config("global", global: "server-state-file global\n    server-state-base /state")
        let restore = ServerStateFile.restore(for: config, read: Self.files(["/state/global": Self.haproxyDump]))
        #expect(restore.files == ["/state/global"])
        #expect(restore.messages.isEmpty)
        #expect(restore.states.map { "\($0.backend)/\($0.server)" } == ["web/w1", "web/w2", "web/w3", "web/w4", "api/a1"])
        let w = Dictionary(uniqueKeysWithValues: restore.states.map { ($0.server, $0) })
        #expect(w["w1"]?.operationalState == 0 && w["w1"]?.adminState == 1)
        #expect(w["w2"]?.userWeight == 10 && w["w2"]?.initialWeight == 20 && w["w2"]?.port == 9992)
        // An address written in the configuration wins; a host name takes the saved address.
        #expect(w["w2"]?.address == nil)
        #expect(w["w3"]?.address == IPAddress("127.0.0.1") && w["w3"]?.adminState == 8)
        #expect(w["w4"]?.adminState == 4)
        #expect(w["a1"]?.checkState == 2 && w["a1"]?.checkStatus == 6)
    }

    @Test func globalFileProblemsAreHAProxysMessages() throws {
        let config = try Self.config("global")
        func messages(_ files: [String: String]) -> [String] {
            ServerStateFile.restore(for: config, read: Self.files(files)).messages.map(\.description)
        }
        #expect(messages([:]) == ["[NOTICE] config: Can't open global server state file '/state/global': No such file or directory"])
        #expect(messages(["/state/global": ""]) == ["[NOTICE] config: Empty global server state file '/state/global'."])
        #expect(messages(["/state/global": "x\n"]) == ["[WARNING] config: Can't get version of the global server state file '/state/global'."])
        // A corrupted line drops the whole file; a bad value drops its server only.
        let cut = Self.haproxyDump.replacingOccurrences(of: "9004 - 0 0 - - 0", with: "9004")
        #expect(messages(["/state/global": cut]) == ["[WARNING] config: corrupted global server state file '/state/global' at line 5."])
        #expect(ServerStateFile.restore(for: config, read: Self.files(["/state/global": cut])).states.isEmpty)
        let bad = Self.haproxyDump.replacingOccurrences(of: "2 web 2 w2 127.0.0.2 2 0 10 20", with: "2 web 2 w2 127.0.0.2 7 0 10 20")
        let r = ServerStateFile.restore(for: config, read: Self.files(["/state/global": bad]))
        #expect(r.messages.map(\.description) == ["[WARNING] server-state application failed for server 'web/w2', invalid srv_op_state value '7'"])
        #expect(r.states.map(\.server) == ["w1", "w3", "w4", "a1"])
        // Lines naming no server of the configuration are ignored without a word (HAProxy's).
        let other = Self.haproxyDump + "9 gone 1 g1 127.0.0.1 2 0 1 1 0 1 0 0 0 0 0 0 - 80 - 0 0 - - 0\n"
        #expect(messages(["/state/global": other]).isEmpty)
    }

    @Test func localFilesCheckTheBackendsIDAndName() throws {
        let config = try Self.config("none", global: "server-state-base /state/", extra: """
            backend pool
                load-server-state-from-file local
                server p1 127.0.0.1:9201
                server p2 127.0.0.1:9202
            backend named
                load-server-state-from-file local
                server-state-file-name /elsewhere/named.state
                server n1 127.0.0.1:9301
            """)
        let pool = try #require(config.backend(named: "pool"))
        let id = pool.id
        let text = """
            1
            \(Self.header)
            \(id) pool 1 p1 127.0.0.1 0 0 1 1 0 1 0 0 0 0 0 0 - 9201 - 0 0 - - 0
            \(id + 40) pool 2 p2 127.0.0.1 2 1 1 1 0 1 0 0 0 0 0 0 - 9202 - 0 0 - - 0
            \(id) web 3 p3 127.0.0.1 2 1 1 1 0 1 0 0 0 0 0 0 - 9203 - 0 0 - - 0
            \(id + 41) other 4 p4 127.0.0.1 2 1 1 1 0 1 0 0 0 0 0 0 - 9204 - 0 0 - - 0
            \(id) pool 5 p5 127.0.0.1 2 1 1 1 0 1 0 0 0 0 0 0 - 9205 - 0 0 - - 0

            """
        let restore = ServerStateFile.restore(for: config, read: Self.files(["/state/pool": text]))
        #expect(restore.files == ["/state/pool", "/elsewhere/named.state"])
        #expect(restore.states.map { "\($0.backend)/\($0.server):\($0.operationalState)/\($0.adminState)" } == ["pool/p1:0/0", "pool/p2:2/1"])
        #expect(restore.messages.map(\.description) == [
            "[WARNING] Proxy 'pool': backend ID mismatch: from server state file: '\(id + 40)', from running config '\(id)'",
            "[WARNING] Proxy 'pool': backend name mismatch: from server state file: 'web', from running config 'pool'",
            "[WARNING] Proxy 'pool': can't find server 'p5' in backend 'pool'",
            "[NOTICE] Proxy 'named': Can't open server state file '/elsewhere/named.state': No such file or directory.",
        ])
    }

    @Test func noFileIsReadWithoutLoadServerStateFromFile() throws {
        let config = try Self.config("none")
        var asked: [String] = []
        let restore = ServerStateFile.restore(for: config) { path in
            asked.append(path)
            return .failure(.init(errno: ENOENT))
        }
        #expect(asked.isEmpty && restore.states.isEmpty && restore.messages.isEmpty)
    }

    @Test func pathsFollowServerStateBase() {
        #expect(ServerStateFile.path("s", base: nil) == "s")
        #expect(ServerStateFile.path("s", base: "/b") == "/b/s")
        #expect(ServerStateFile.path("s", base: "/b/") == "/b/s")
        #expect(ServerStateFile.path("/abs/s", base: "/b") == "/abs/s")
    }
}
