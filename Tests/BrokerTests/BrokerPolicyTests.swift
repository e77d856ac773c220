import Broker
import CLibEV
import ConfigModel
import Foundation
import Glibc
import Loader
import StrataTestSupport
import Testing

/// What the broker reads and binds for the serving process: what the configuration it read
/// names, and nothing else.
@Suite struct BrokerPolicyTests {
    static let config = """
        global
            crt-base /srv/certs
            user nobody
        frontend web
            bind 127.0.0.1:443 ssl crt site.pem
            bind :80
            bind ipv6@[::1]:8443,127.0.0.1:8444
            http-request return status 503 errorfile "errors/503.http"
            use_backend %[req.hdr(host),lower,map(/etc/strata/hosts.map,app)]
            http-request set-header X %[path,map_beg_int(maps/paths.map)] if { src,map_ip(nets.map) -m found }
            http-request set-header Y %[path,bitmap(/etc/not-a-map)]
            default_backend app
        backend app
            server a 127.0.0.1:9000 # crt /etc/shadow
        """

    static func policy() -> BrokerPolicy {
        var p = BrokerPolicy(arguments: ["/etc/strata/strata.cfg", "/etc/strata/conf.d"], workingDirectory: "/home/op",
                             firstLoadFiles: ["/etc/strata/old.pem"])
        p.begin()
        p.served("/etc/strata/strata.cfg", kind: .configuration, bytes: Array(config.utf8))
        return p
    }

    @Test func readsTheFilesTheConfigurationNames() {
        let p = Self.policy()
        #expect(p.mayRead("/etc/strata/strata.cfg"))
        #expect(p.mayRead("/etc/strata/conf.d/10-web.cfg"))
        #expect(p.mayRead("/srv/certs/site.pem"))           // crt-base + word
        #expect(p.mayRead("/srv/certs/site.pem.key"))       // the key beside it
        #expect(p.mayRead("/etc/strata/errors/503.http"))   // relative to the configuration's directory
        #expect(p.mayRead("/home/op/errors/503.http"))      // relative to the working directory
        #expect(p.mayRead("/home/op/./errors/../errors/503.http"))
        #expect(p.mayRead("/etc/strata/old.pem"))           // read by the first load
        #expect(p.mayRead("/etc/strata/hosts.map"))         // a map converter's file
        #expect(p.mayRead("/etc/strata/maps/paths.map"))
        #expect(p.mayRead("/home/op/nets.map"))
        #expect(!p.mayRead("/etc/not-a-map"))               // not a map converter
    }

    @Test func refusesWhatItDoesNotName() {
        let p = Self.policy()
        #expect(!p.mayRead("/etc/shadow"))                   // a comment is not a name
        #expect(!p.mayRead("/srv/certs/other.pem"))
        #expect(!p.mayRead("/etc/strata/conf.d/secret"))     // not a *.cfg of a -f directory
        #expect(!p.mayRead("/srv/certs/../../etc/shadow"))
        #expect(!p.mayRead("/etc/resolv.conf"))              // no parse-resolv-conf
        #expect(!p.mayList("/srv"))
        // A named file read as if it were a configuration names nothing.
        var chained = p
        chained.served("/srv/certs/site.pem", kind: .configuration, bytes: Array("crt /etc/shadow\n".utf8))
        #expect(!chained.mayRead("/etc/shadow"))
        #expect(p.mayList("/etc/strata/conf.d"))
        var listed = p
        listed.listed("/srv/certs")
        #expect(listed.mayRead("/srv/certs/other.pem"))
    }

    /// A server naming HAProxy 2.6's implicit `resolvers default` needs resolv.conf, as
    /// `parse-resolv-conf` does; naming another section does not.
    @Test func theImplicitDefaultResolversReadResolvConf() {
        func policy(_ line: String) -> BrokerPolicy {
            var p = BrokerPolicy(arguments: ["/etc/strata/strata.cfg"], workingDirectory: "/", firstLoadFiles: [])
            p.begin()
            p.served("/etc/strata/strata.cfg", kind: .configuration, bytes: Array("backend b\n    \(line)\n".utf8))
            return p
        }
        #expect(policy("server-template app 3 app:80 resolvers default init-addr none").mayRead("/etc/resolv.conf"))
        #expect(policy("server a app:80 resolvers default").mayRead("/etc/resolv.conf"))
        #expect(!policy("server a app:80 resolvers dns").mayRead("/etc/resolv.conf"))
        #expect(!policy("server default 127.0.0.1:80").mayRead("/etc/resolv.conf"))
    }

    @Test func aFailedLoadWidensNothingAndASuccessfulOneKeepsItsFiles() {
        var p = Self.policy()
        p.served("/srv/certs/site.pem", kind: .tls, bytes: Array("-----BEGIN CERTIFICATE-----".utf8))
        p.commit()
        p.begin()
        // The next load is a failed attempt with an edited file: its names count while it runs.
        p.served("/etc/strata/strata.cfg", kind: .configuration, bytes: Array("frontend f\n bind :81\n crt /srv/x.pem\n".utf8))
        #expect(p.mayRead("/srv/x.pem"))
        #expect(p.mayRead("/srv/certs/site.pem"))  // committed by the load before
        p.begin()
        #expect(!p.mayRead("/srv/x.pem"))
    }

    @Test func variablesInAWordAreExpandedWithStratasEnvironment() {
        var p = BrokerPolicy(arguments: ["/etc/strata/strata.cfg"], workingDirectory: "/", firstLoadFiles: [],
                             environment: ["CERTS": "/srv/tls"])
        p.begin()
        p.served("/etc/strata/strata.cfg", kind: .configuration,
                 bytes: Array("frontend f\n bind :443 ssl crt \"${CERTS}/a.pem\" crt ${UNSET}/b.pem\n".utf8))
        #expect(p.mayRead("/srv/tls/a.pem"))
        #expect(!p.mayRead("/b.pem"))
        #expect(!p.mayRead("/srv/tls/b.pem"))
    }

    @Test func bindsOnlyWhatABindLineNames() {
        let p = Self.policy()
        func key(_ a: IPAddress, _ port: UInt16) -> ListenerKey {
            ListenerKey(endpoint: SocketEndpoint(address: a, port: port), v6only: false, interface: nil, backlog: 1024, reusePort: true)
        }
        #expect(p.mayBind(key(.v4(0x7F00_0001), 443)))
        #expect(p.mayBind(key(.anyV4, 80)))
        #expect(p.mayBind(key(IPAddress("::1")!, 8443)))
        #expect(p.mayBind(key(.v4(0x7F00_0001), 8444)))
        #expect(!p.mayBind(key(.anyV4, 443)))           // 443 on 127.0.0.1 only
        #expect(!p.mayBind(key(.v4(0x7F00_0001), 22)))
        #expect(!p.mayBind(key(.v4(0x7F00_0001), 9000)))  // a server's port is not a bind
    }

    /// The broker's loop over a real socketpair, answered on a thread of this process: a bind the
    /// configuration names comes back as a listening fd, one it does not name is refused with
    /// EPERM, a file it does not name is refused, one it names is read.
    @Test func theBrokerAnswersOverASocketpair() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-broker-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (probe, free) = try TestSocket.listen(what: "a free port")
        close(probe)
        let cfg = directory.appendingPathComponent("strata.cfg").path
        try "frontend f\n    bind 127.0.0.1:\(free)\n    errorfile 503 named.http\n".write(toFile: cfg, atomically: true, encoding: .utf8)
        try "HTTP/1.0 503 x\r\n\r\n".write(toFile: directory.appendingPathComponent("named.http").path, atomically: true, encoding: .utf8)
        try "secret".write(toFile: directory.appendingPathComponent("other").path, atomically: true, encoding: .utf8)

        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | CLibEV_SOCK_CLOEXEC, 0, &pair) == 0)
        let policy = BrokerPolicy(arguments: [cfg], workingDirectory: directory.path, firstLoadFiles: [])
        let serverFD = pair[1]
        let thread = Thread { _ = Broker.answer(fd: serverFD, policy: policy) }
        thread.start()
        let client = BrokerClient.connected(fd: pair[0])
        defer { close(pair[0]) }

        var loader = ConfigLoader()
        loader.requiresListener = false
        client.loadBegins()
        guard case .success(let config) = client.read(cfg, .configuration) else { Issue.record("the -f file"); return }
        #expect(String(decoding: config, as: UTF8.self).contains("bind"))
        guard case .success(let named) = client.read(directory.appendingPathComponent("named.http").path, .httpMessage(bufferSize: 16384)) else {
            Issue.record("a named file was refused"); return
        }
        #expect(named.count == 18)
        guard case .failure(.refused(let why)) = client.read(directory.appendingPathComponent("other").path, .tls) else {
            Issue.record("a file the configuration does not name was read"); return
        }
        #expect(why.contains("does not name"))

        let named4 = ListenerKey(endpoint: SocketEndpoint(address: .v4(0x7F00_0001), port: free), v6only: false, interface: nil,
                                 backlog: 16, reusePort: true)
        switch client.bindListener(named4) {
        case .success(let fd):
            var type: Int32 = 0, on: Int32 = 0
            var len = socklen_t(4)
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len)
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len)
            #expect(type == Int32(SOCK_STREAM.rawValue) && on == 1)
            close(fd)
        case .failure(let e): Issue.record("the named bind failed: \(e)")
        }
        var other = named4
        other.endpoint.port = free == 65535 ? 65534 : free + 1
        switch client.bindListener(other) {
        case .success(let fd):
            close(fd)
            Issue.record("the broker bound a port no bind line names")
        case .failure(let e):
            #expect(e.errno == EPERM)
            #expect(e.call.contains("no bind line"))
        }
        #expect(client.userID("root") == 0)
    }
}
