import ConfigModel
import Foundation
import Testing
@testable import Loader

/// `resolvers` sections, the resolution options of `server` and `default-server`, `init-addr`,
/// `server-template` and `-dr`: every keyword, and every error with its line.
@Suite struct ResolversKeywordTests {
    static let section = """
        resolvers dns
            nameserver ns1 10.0.0.53:53
        """

    @Test func resolversSectionKeywords() throws {
        let loaded = try load("""
            resolvers dns
                nameserver ns1 10.0.0.53:53
                nameserver ns2 tcp@10.0.0.54:5353
                nameserver ns3 [2001:db8::53]:53
                nameserver ns4 udp@localhost:53
                accepted_payload_size 8192
                resolve_retries 5
                timeout resolve 2s
                timeout retry 500ms
                hold nx 10s
                hold refused 11s
                hold timeout 12s
                hold other 13s
                hold valid 14s
                hold obsolete 15s
            resolvers other
                nameserver a 10.0.0.1:53
            """)
        let dns = try #require(loaded.config.resolvers(named: "dns"))
        #expect(dns.nameservers.map(\.id) == ["ns1", "ns2", "ns3", "ns4"])
        #expect(dns.nameservers.map(\.tcp) == [false, true, false, false])
        #expect(dns.nameservers.map(\.endpoint.description) == ["10.0.0.53:53", "10.0.0.54:5353", "[2001:db8::53]:53", "127.0.0.1:53"])
        #expect(dns.nameservers[1].location == SourceLocation(file: "test.cfg", line: 3))
        #expect(dns.acceptedPayloadSize == 8192 && dns.resolveRetries == 5)
        #expect(dns.timeoutResolve == 2000 && dns.timeoutRetry == 500)
        let h = dns.hold
        #expect([h.nx, h.refused, h.timeout, h.other, h.valid, h.obsolete] == [Int](arrayLiteral: 10_000, 11_000, 12_000, 13_000, 14_000, 15_000))
        #expect(loaded.config.resolvers.map(\.name) == ["dns", "other"])
        // HAProxy's defaults.
        let other = try #require(loaded.config.resolvers(named: "other"))
        #expect(other.acceptedPayloadSize == 512 && other.resolveRetries == 3 && other.timeoutResolve == 1000 && other.timeoutRetry == 1000)
        #expect([other.hold.nx, other.hold.valid, other.hold.obsolete] == [Int](arrayLiteral: 30_000, 10_000, 0))
    }

    @Test func resolversSectionErrors() {
        #expect(errors("resolvers\n") == ["test.cfg:1: 'resolvers' expects a name"])
        #expect(errors("resolvers a/b\n    nameserver n 10.0.0.1:53\n")
            == ["test.cfg:1: character '/' is not permitted in resolvers name 'a/b' (use letters, digits, '-', '_', '.' and ':')"])
        #expect(errors("resolvers a b\n    nameserver n 10.0.0.1:53\n") == ["test.cfg:1: unexpected argument 'b' to 'resolvers': expected NAME"])
        #expect(errors("resolvers a\n    nameserver n 10.0.0.1:53\nresolvers a\n    nameserver n 10.0.0.1:53\n")
            == ["test.cfg:3: resolvers 'a' has the same name as another resolvers section declared at test.cfg:1"])
        #expect(errors("resolvers a\n") == ["test.cfg:1: resolvers 'a' has no nameserver (add 'nameserver ID ADDR:PORT' or 'parse-resolv-conf')"])
        let lines: [(String, String)] = [
            ("nameserver", "'nameserver' expects a name and an address (nameserver ID ADDR:PORT)"),
            ("nameserver n", "'nameserver' expects an address after the name (nameserver ID ADDR:PORT)"),
            ("nameserver n 10.0.0.1", "'nameserver n': missing port in '10.0.0.1' (expected ADDR:PORT)"),
            ("nameserver n 10.0.0.1:53 extra", "unexpected argument 'extra' to 'nameserver'"),
            ("nameserver n/1 10.0.0.1:53", "character '/' is not permitted in nameserver name 'n/1'"),
            ("nameserver ns1 10.0.0.2:53", "nameserver 'ns1' has the same name as another nameserver declared at test.cfg:2"),
            ("nameserver n 10.0.0.1:99999", "'nameserver n': invalid port '99999' in '10.0.0.1:99999' (expected 1 to 65535)"),
            ("accepted_payload_size 11", "'accepted_payload_size' expects an integer from 12 to 65535, got '11'"),
            ("accepted_payload_size 65536", "'accepted_payload_size' expects an integer from 12 to 65535, got '65536'"),
            ("resolve_retries 0", "'resolve_retries' expects a positive integer, got '0'"),
            ("timeout resolve", "'timeout resolve' expects a time (for example 5s)"),
            ("timeout retry 0", "'timeout retry' expects a time greater than 0"),
            ("timeout retry 1x", "'timeout retry' expects a time, got '1x' (unknown unit 'x', expected us, ms, s, m, h or d)"),
            ("timeout", "'timeout' expects a name after it (for example 'timeout connect 5s')"),
            ("timeout connect 1s", "'timeout connect' is not supported in section 'resolvers'"),
            ("hold", "'hold' expects nx, other, refused, timeout, valid or obsolete"),
            ("hold forever 1s", "'hold' expects nx, other, refused, timeout, valid or obsolete, got 'forever'"),
            ("hold nx", "'hold nx' expects a time (for example 30s)"),
            ("hold nx soon", "'hold nx' expects a time, got 'soon' (not a number)"),
            ("hold nx 1s 2s", "unexpected argument '2s' to 'hold'"),
            ("parse-resolv-conf now", "unexpected argument 'now' to 'parse-resolv-conf'"),
            ("resolution_pool_size 10", "'resolution_pool_size' is not supported in section 'resolvers'"),
            ("hld nx 1s", "'hld' is not supported in section 'resolvers' (did you mean 'hold'?)"),
            ("no hold nx 1s", "'no' cannot be used with 'hold'"),
        ]
        for (line, message) in lines {
            #expect(errors(Self.section + "\n    " + line + "\n") == ["test.cfg:3: " + message], "\(line)")
        }
    }

    @Test func parseResolvConfAddsItsNameserversAndWarnsAboutTheRest() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-resolv-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("resolv.conf").path
        try """
            # a comment
            search example.com
            nameserver 10.0.0.53
            nameserver   2001:db8::53
            nameserver
            nameserver not-an-address
            nameservers 10.9.9.9
            nameserver 10.0.0.53
            nameserver 10.0.0.1
            """.write(toFile: path, atomically: true, encoding: .utf8)
        var loader = ConfigLoader(environment: [:], resolver: testResolver)
        loader.requiresListener = false
        loader.resolvConfPath = path
        let loaded = try loader.load(text: "resolvers dns\n    nameserver 10.0.0.1 10.0.0.1:5353\n    parse-resolv-conf\n", file: "test.cfg").get()
        let dns = try #require(loaded.config.resolvers(named: "dns"))
        // Each named after its address, on port 53, in the file's order (HAProxy's rules).
        #expect(dns.nameservers.map(\.id) == ["10.0.0.1", "10.0.0.53", "2001:db8::53"])
        #expect(dns.nameservers.map(\.endpoint.description) == ["10.0.0.1:5353", "10.0.0.53:53", "[2001:db8::53]:53"])
        #expect(dns.nameservers[1].location == SourceLocation(file: path, line: 3))
        #expect(loaded.warnings.map(\.description) == [
            "test.cfg:3: 'parse-resolv-conf': \(path):5: nameserver line is missing address",
            "test.cfg:3: 'parse-resolv-conf': \(path):6: address 'not-an-address' could not be recognized, nameserver skipped",
            "test.cfg:3: 'parse-resolv-conf': \(path):8: nameserver '10.0.0.53' is already declared at \(path):3, skipped",
            "test.cfg:3: 'parse-resolv-conf': \(path):9: nameserver '10.0.0.1' is already declared at test.cfg:2, skipped",
        ])
        loader.resolvConfPath = directory.appendingPathComponent("missing").path
        #expect(loader.load(text: "resolvers dns\n    parse-resolv-conf\n", file: "test.cfg").failureMessages
            == ["test.cfg:1: resolvers 'dns' has no nameserver (add 'nameserver ID ADDR:PORT' or 'parse-resolv-conf')",
                "test.cfg:2: 'parse-resolv-conf': cannot read \(loader.resolvConfPath): No such file or directory"])
    }

    /// HAProxy 2.6 has a `default` section made from resolv.conf: a server may name it without
    /// declaring it (docker-compose files do); a declared one wins.
    @Test func theDefaultSectionComesFromResolvConf() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-default-resolvers-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("resolv.conf").path
        try "nameserver 10.0.0.53\n".write(toFile: path, atomically: true, encoding: .utf8)
        var loader = ConfigLoader(environment: [:], resolver: testResolver)
        loader.requiresListener = false
        loader.resolvConfPath = path
        let text = "backend b\n    server-template app 3 app.internal:80 resolvers default init-addr none\n"
        let loaded = try loader.load(text: text, file: "test.cfg").get()
        let section = try #require(loaded.config.resolvers(named: "default"))
        #expect(section.nameservers.map(\.endpoint.description) == ["10.0.0.53:53"])
        let declared = try loader.load(text: "resolvers default\n    nameserver ns 10.1.1.1:53\n" + text, file: "test.cfg").get()
        #expect(declared.config.resolvers(named: "default")?.nameservers.map(\.id) == ["ns"])
        // Without a usable resolv.conf there is no such section, as in HAProxy.
        loader.resolvConfPath = directory.appendingPathComponent("missing").path
        #expect(loader.load(text: text, file: "test.cfg").failureMessages
            == ["test.cfg:2: backend 'b', server-template 'app': unable to find resolvers section 'default'"])
    }

    @Test func serverResolutionOptions() throws {
        let loaded = try load(Self.section + """

            backend b
                default-server resolvers dns resolve-prefer ipv4 init-addr none
                server a app.internal:80
                server b app.internal:80 resolve-prefer ipv6 resolve-net 10.0.0.0/8,fd00::/8 resolve-opts allow-dup-ip,ignore-weight
                server c app.internal:80 resolve-opts allow-dup-ip,prevent-dup-ip init-addr libc,10.0.0.9
                server d 10.0.0.7:80
            """)
        let servers = try #require(loaded.config.backend(named: "b")).servers
        let a = servers[0].options.resolution, b = servers[1].options.resolution, c = servers[2].options.resolution
        #expect(a.resolvers == "dns" && a.prefer == .ipv4 && a.initAddr == [InitAddrMethod.none])
        // `init-addr none`: no address, known by its name.
        #expect(!servers[0].hasAddress && servers[0].fqdn == "app.internal")
        #expect(b.prefer == .ipv6 && b.networks.map(\.description) == ["10.0.0.0/8", "fd00::/8"] && b.allowDuplicateAddress && b.ignoreWeight)
        #expect(!c.allowDuplicateAddress && !c.ignoreWeight)
        // `libc` first: the system's answer (the test resolver's), the server known by name.
        #expect(c.initAddr == [.libc, .address(IPAddress("10.0.0.9")!)])
        #expect(servers[2].hasAddress && servers[2].address == .v4(0x0a00_0005) && servers[2].fqdn == "app.internal")
        // An address literal needs no resolution: not known by name.
        #expect(servers[3].fqdn == nil && servers[3].hasAddress)
        // A name resolved once at load without resolvers or init-addr stays an address.
        let plain = try load("backend p\n    server a app.internal:80\n")
        #expect(try #require(plain.config.backend(named: "p")).servers[0].fqdn == nil)
    }

    @Test func initAddrMethodsAreTriedInOrder() throws {
        func server(_ options: String, host: String = "nowhere.internal") throws -> Server {
            try #require(try load(Self.section + "\nbackend b\n    server a \(host):80 \(options)\n").config.backend(named: "b")).servers[0]
        }
        // The configured address after a name that does not resolve, with HAProxy's warning.
        var loader = ConfigLoader(environment: [:], resolver: testResolver)
        loader.requiresListener = false
        let fallback = try loader.load(text: "backend b\n    server a nowhere.internal:80 init-addr libc,10.0.0.9\n", file: "test.cfg").get()
        #expect(fallback.config.proxies[0].servers[0].address == IPAddress("10.0.0.9"))
        #expect(fallback.warnings.map(\.description)
            == ["test.cfg:2: 'server a': could not resolve address 'nowhere.internal', falling back to configured address"])
        let none = try loader.load(text: "backend b\n    server a nowhere.internal:80 init-addr libc,none\n", file: "test.cfg").get()
        #expect(!none.config.proxies[0].servers[0].hasAddress)
        #expect(none.warnings.map(\.description) == ["test.cfg:2: 'server a': could not resolve address 'nowhere.internal', disabling server"])
        // `none` alone says nothing; an IP first wins over libc.
        #expect(try load("backend b\n    server a nowhere.internal:80 init-addr none\n").warnings.isEmpty)
        #expect(try server("init-addr 10.0.0.8,libc", host: "app.internal").address == IPAddress("10.0.0.8"))
        // With `resolvers` and no init-addr, HAProxy's default ends with `none`: no error.
        #expect(try !server("resolvers dns").hasAddress)
        // Without it, a name that does not resolve is the error it always was.
        #expect(errors("backend b\n    server a nowhere.internal:80 init-addr libc\n")
            == ["test.cfg:2: 'server a': could not resolve host name 'nowhere.internal'"])
        #expect(errors("backend b\n    server a nowhere.internal:80 init-addr last\n")
            == ["test.cfg:2: 'server a': no init-addr method found an address for 'nowhere.internal'"])
    }

    @Test func initAddrLastReadsTheServerStateFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-last-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let state = directory.appendingPathComponent("state").path
        try """
            1
            # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord
            1 b 1 a 10.1.2.3 2 0 1 1 5 1 0 0 0 0 0 0 nowhere.internal 80 -
            1 b 2 c - 2 0 1 1 5 1 0 0 0 0 0 0 nowhere.internal 80 -

            """.write(toFile: state, atomically: true, encoding: .utf8)
        let text = """
            global
                server-state-file \(state)
            backend b
                load-server-state-from-file global
                server a nowhere.internal:80 init-addr last,libc
                server c nowhere.internal:80 init-addr last,libc

            """
        // `a` finds its saved address; `c` saved none, and no other method finds one.
        #expect(errors(text) == ["test.cfg:6: 'server c': could not resolve host name 'nowhere.internal'"])
        let loaded = try load(text.replacingOccurrences(of: "    server c nowhere.internal:80 init-addr last,libc\n", with: ""))
        let a = try #require(loaded.config.backend(named: "b")).servers[0]
        #expect(a.address == IPAddress("10.1.2.3") && a.hasAddress && a.fqdn == "nowhere.internal")
    }

    @Test func serverResolutionOptionErrors() {
        let lines: [(String, String)] = [
            ("resolvers", "'resolvers' expects the name of a resolvers section"),
            ("resolve-prefer ipv5", "'resolve-prefer' expects ipv4 or ipv6, got 'ipv5'"),
            ("resolve-net 10.0.0.0/33", "'resolve-net': invalid network '10.0.0.0/33'"),
            ("resolve-net 10.0.0.0/8,,10.1.0.0/16", "'resolve-net': invalid network ''"),
            ("resolve-net 1.0.0.0/8,2.0.0.0/8,3.0.0.0/8,4.0.0.0/8,5.0.0.0/8,6.0.0.0/8", "'resolve-net' takes at most 5 networks, got 6"),
            ("resolve-opts allow-dup", "'resolve-opts': unknown option 'allow-dup' (expected allow-dup-ip, ignore-weight or prevent-dup-ip)"),
            ("init-addr", "'init-addr' expects methods among last, libc, none or an IP address (for example last,libc,none)"),
            ("init-addr libc,dns", "'init-addr': unknown method 'dns' (expected last, libc, none or an IP address)"),
            ("init-addr 10.0.0.1,10.0.0.2", "'init-addr': an initial address is already given, cannot add '10.0.0.2'"),
            ("init-addr libc,libc", "'init-addr' names 'libc' twice"),
            ("resolvers nowhere", "backend 'b', server 'a': unable to find resolvers section 'nowhere'"),
        ]
        for (option, message) in lines {
            #expect(errors(Self.section + "\nbackend b\n    server a app.internal:80 \(option)\n")
                == ["test.cfg:\(option.hasPrefix("resolvers nowhere") ? 4 : 4): " + message], "\(option)")
        }
        #expect(errors(Self.section + "\nbackend b\n    default-server init-addr bogus\n")
            == ["test.cfg:4: 'init-addr': unknown method 'bogus' (expected last, libc, none or an IP address)"])
    }

    @Test func serverTemplateMakesNumberedServers() throws {
        let loaded = try load(Self.section + """

            backend b
                server first 10.0.0.1:80
                server-template web 3 app.internal:8080 resolvers dns init-addr none weight 7 check
                server-template api 5-6 _http._tcp.api.internal resolvers dns
            """)
        let servers = try #require(loaded.config.backend(named: "b")).servers
        #expect(servers.map(\.name) == ["first", "web1", "web2", "web3", "api5", "api6"])
        #expect(servers.map(\.id) == [1, 2, 3, 4, 5, 6])
        #expect(servers[1...3].allSatisfy { $0.fqdn == "app.internal" && $0.port == 8080 && !$0.hasAddress && $0.options.weight == 7
            && $0.options.check.enabled })
        #expect(try #require(loaded.config.backend(named: "b")).serverTemplates
            == [ServerTemplate(prefix: "web", first: 1, last: 3, location: SourceLocation(file: "test.cfg", line: 5)),
                ServerTemplate(prefix: "api", first: 5, last: 6, location: SourceLocation(file: "test.cfg", line: 6))])
        // An SRV label: no address until the records come, no port of its own.
        #expect(servers[4...].allSatisfy { $0.fqdn == "_http._tcp.api.internal" && !$0.hasAddress && $0.port == nil })
        #expect(servers[4].location == SourceLocation(file: "test.cfg", line: 6))
    }

    @Test func serverTemplateErrors() {
        let lines: [(String, String)] = [
            ("server-template", "'server-template' expects a prefix, a number of servers and an address (server-template PREFIX NUM|FIRST-LAST FQDN[:PORT] [options])"),
            ("server-template web", "'server-template' expects a number of servers or a range FIRST-LAST after the prefix (server-template PREFIX NUM|FIRST-LAST FQDN[:PORT] [options])"),
            ("server-template web 3", "'server-template' expects an address after the range (server-template PREFIX NUM|FIRST-LAST FQDN[:PORT])"),
            ("server-template web 0 app.internal:80", "'server-template' expects a number of servers (1 or more) or a range FIRST-LAST, got '0'"),
            ("server-template web 5-2 app.internal:80", "'server-template' expects a number of servers (1 or more) or a range FIRST-LAST, got '5-2'"),
            ("server-template web x app.internal:80", "'server-template' expects a number of servers (1 or more) or a range FIRST-LAST, got 'x'"),
            ("server-template web 100000 app.internal:80", "'server-template' makes at most 65536 servers, '100000' makes 100000"),
            ("server-template w/b 2 app.internal:80 init-addr none", "character '/' is not permitted in server prefix 'w/b'"),
            ("server-template web 2 _http._tcp.app.internal init-addr none",
             "'server-template web': an SRV label ('_http._tcp.app.internal') is resolved at runtime and needs 'resolvers'"),
            ("server-template web 2 app.internal:80 init-addr none wieght 2", "'wieght' is not a server option (did you mean 'weight'?)"),
        ]
        for (line, message) in lines {
            #expect(errors(Self.section + "\nbackend b\n    \(line)\n") == ["test.cfg:4: " + message], "\(line)")
        }
        #expect(errors("frontend f\n    bind 127.0.0.1:1\n    default_backend b\n    server-template w 2 a.internal:80\nbackend b\n")
            == ["test.cfg:4: 'server-template' is not supported in section 'frontend' (only in listen, backend)"])
        // Names a template makes collide like any other.
        #expect(errors("backend b\n    server web2 10.0.0.1:80\n    server-template web 3 app.internal:80\n")
            == ["test.cfg:3: backend 'b' already has a server named 'web2' declared at test.cfg:2"])
        // A template with an unknown section is reported once.
        #expect(errors("backend b\n    server-template web 3 app.internal:80 resolvers nowhere\n")
            == ["test.cfg:2: backend 'b', server-template 'web': unable to find resolvers section 'nowhere'"])
    }

    @Test func dashDRMakesAnUnresolvableNameAWarning() throws {
        var loader = ConfigLoader(environment: [:], resolver: testResolver)
        loader.requiresListener = false
        let text = "backend b\n    server a nowhere.internal:80\n    server c app.internal:81\n"
        #expect(loader.load(text: text, file: "test.cfg").failureMessages
            == ["test.cfg:2: 'server a': could not resolve host name 'nowhere.internal'"])
        loader.resolutionFailuresWarn = true
        let loaded = try loader.load(text: text, file: "test.cfg").get()
        let servers = loaded.config.proxies[0].servers
        #expect(!servers[0].hasAddress && servers[0].fqdn == "nowhere.internal")
        // A name that resolves is unchanged (an address, not a name to follow).
        #expect(servers[1].hasAddress && servers[1].fqdn == nil)
        #expect(loaded.warnings.map(\.description) == ["test.cfg:2: 'server a': could not resolve address 'nowhere.internal', disabling server"])
    }

    @Test func runtimeServerWordsAreAServerLine() throws {
        let parser = RuntimeServerParser()
        let parsed = try parser.parse(["app/dyn", "10.0.0.5:8080", "weight", "3", "check", "inter", "2s", "maxconn", "10"]).get()
        #expect(parsed.backend == "app" && parsed.server.name == "dyn" && parsed.server.address == IPAddress("10.0.0.5"))
        #expect(parsed.server.port == 8080 && parsed.server.options.weight == 3 && parsed.server.options.check.interval == 2000)
        // A name is never resolved by the system: it waits for `resolvers` (or `set server … addr`).
        let named = try parser.parse(["app/dyn", "svc.internal:80", "resolvers", "dns"]).get()
        #expect(!named.server.hasAddress && named.server.fqdn == "svc.internal" && named.server.options.resolution.resolvers == "dns")
        #expect(parser.parse(["app"]).failureMessage == "Require 'backend/server'.")
        #expect(parser.parse(["app/"]).failureMessage == "Require 'backend/server'.")
        #expect(parser.parse(["app/dyn"]).failureMessage == "'server' expects <name> and <addr>[:<port>] as arguments.")
        #expect(parser.parse(["app/dyn", "10.0.0.5:80", "cookie", "c"]).failureMessage == "'cookie' option is not accepted for dynamic server")
        #expect(parser.parse(["app/dyn", "10.0.0.5:80", "ssl"]).failureMessage == "'ssl' option is not accepted for dynamic server")
        #expect(parser.parse(["app/dyn", "10.0.0.5:80", "init-addr", "libc"]).failureMessage == "'init-addr' option is not accepted for dynamic server")
        #expect(parser.parse(["app/dyn", "10.0.0.5:80", "wieght", "2"]).failureMessage == "'wieght' is not a server option (did you mean 'weight'?)")
        #expect(parser.parse(["app/dyn", "10.0.0.5:80", "weight", "999"]).failureMessage == "'weight' expects an integer from 0 to 256, got '999'")
        #expect(parser.parse(["app/d/x", "10.0.0.5:80"]).failureMessage == "character '/' is not permitted in server name 'd/x'")
        // HAProxy 2.6 takes the agent options at runtime too (the agent starts off: `enable agent`).
        let agent = try parser.parse(["app/dyn", "10.0.0.5:80", "agent-check", "agent-port", "9999", "agent-inter", "1s",
                                      "agent-addr", "10.0.0.6", "agent-send", "hi"]).get().server.options.check.agent
        #expect(agent.enabled && agent.port == 9999 && agent.interval == 1000 && agent.address == IPAddress("10.0.0.6")
                && agent.send == Array("hi".utf8))
        #expect(parser.parse(["app/dyn", "10.0.0.5:80", "agent-check"]).failureMessage
            == "server 'dyn' has 'agent-check' but no agent port (set 'agent-port', or the check's 'port')")
    }
}

extension Result where Failure == ConfigErrors {
    var failureMessages: [String] {
        if case .failure(let e) = self { return e.errors.map(\.description) }
        return []
    }
}

extension Result where Failure == RuntimeServerError {
    var failureMessage: String? {
        if case .failure(let e) = self { return e.message }
        return nil
    }
}
