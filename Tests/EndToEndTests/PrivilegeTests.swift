import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `user`/`group` and `chroot` with the privilege broker (as root: CI runs as root; elsewhere
/// each test is skipped with a message): the serving process keeps no privilege at all, and
/// still reloads onto a port below 1024 and reads files outside its chroot and root-only keys
/// through the broker; the broker refuses what the configuration does not name, and its death
/// stops reloads, not traffic.
@Suite(.serialized) struct PrivilegeTests {
    static var canRun: Bool {
        geteuid() == 0 && getpwnam("nobody") != nil && getgrnam("nogroup") != nil
    }

    static func skipUnlessRoot() -> Bool {
        if canRun { return true }
        print("skipped: the privilege tests need root and the accounts nobody/nogroup (CI runs as root)")
        return false
    }

    static func config(port: UInt16, server: UInt16, jail: String, more: String = "") -> String {
        """
        global
            stats socket @ADMIN@ level admin
            user nobody
            group nogroup
            chroot \(jail)
        defaults
            mode tcp
            timeout connect 2s
            timeout client 30s
            timeout server 30s

        listen app
            bind 127.0.0.1:\(port)
            server s1 127.0.0.1:\(server)
        \(more)
        """
    }

    static func name(_ port: UInt16) -> String? {
        guard let fd = TestSocket.connect(port) else { return nil }
        defer { close(fd) }
        return TestSocket.readLine(fd)
    }

    /// `Field:` of /proc/PID/status, its words.
    static func status(_ pid: Int32, _ field: String) -> [String] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return line.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        }
        return []
    }

    /// A port below 1024 nothing listens on.
    static func privilegedPort() throws -> UInt16 {
        for port in UInt16(600)...1000 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = port.bigEndian
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            } == 0
            close(fd)
            if ok { return port }
        }
        throw TestSocket.Failure(description: "no free port in 600-1000")
    }

    static func brokerPID(_ strata: StrataProcess) throws -> Int32? {
        let info = try strata.admin("show info")
        guard let line = info.split(separator: "\n").first(where: { $0.hasPrefix("Broker: running (pid ") }) else { return nil }
        return Int32(line.dropFirst("Broker: running (pid ".count).prefix { $0.isNumber })
    }

    @Test func theServingProcessKeepsNoPrivilegeAndReloadsThroughTheBroker() throws {
        guard Self.skipUnlessRoot() else { return }
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort()
        let jail = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: jail) }
        let strata = try StrataProcess(config: Self.config(port: port, server: a.port, jail: jail.path))
        #expect(strata.waitForAdmin())
        #expect(Self.name(port) == "a")

        let nobody = getpwnam("nobody")!.pointee.pw_uid, nogroup = getgrnam("nogroup")!.pointee.gr_gid
        #expect(Self.status(strata.pid, "Uid") == Array(repeating: "\(nobody)", count: 4))
        #expect(Self.status(strata.pid, "Gid") == Array(repeating: "\(nogroup)", count: 4))
        #expect(Self.status(strata.pid, "Groups") == ["\(nogroup)"])
        for caps in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"] {
            #expect(Self.status(strata.pid, caps) == ["0000000000000000"], "\(caps)")
        }
        #expect(Self.status(strata.pid, "NoNewPrivs") == ["1"])
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(strata.pid)/root") == jail.path)
        // Every loop thread too.
        for task in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(strata.pid)/task") {
            let text = try String(contentsOfFile: "/proc/\(strata.pid)/task/\(task)/status", encoding: .utf8)
            #expect(text.contains("CapEff:\t0000000000000000") && text.contains("NoNewPrivs:\t1"), "thread \(task)")
        }
        // The broker: root, only the capabilities it uses, no new privileges, not chrooted.
        let broker = try #require(try Self.brokerPID(strata))
        #expect(Self.status(broker, "Uid").first == "0")
        #expect(Self.status(broker, "NoNewPrivs") == ["1"])
        #expect(Self.status(broker, "CapEff") == ["0000000000002404"])  // NET_BIND_SERVICE, NET_RAW, DAC_READ_SEARCH
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(broker)/root") == "/")

        // A reload onto a port below 1024, with a certificate outside the chroot whose key only
        // root may read.
        let low = try Self.privilegedPort()
        let certs = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: certs) }
        let pki = TLSTestPKI.shared
        try Data(pki.bytes("a.crt")).write(to: certs.appendingPathComponent("site.pem"))
        let key = certs.appendingPathComponent("site.pem.key").path
        try Data(pki.bytes("a.key")).write(to: URL(fileURLWithPath: key))
        #expect(chmod(key, 0o600) == 0 && chown(key, 0, 0) == 0)
        #expect(chmod(certs.path, 0o700) == 0)
        let tlsPort = TestSocket.freePort()
        try strata.write(Self.config(port: port, server: a.port, jail: jail.path, more: """
            listen low
                bind 127.0.0.1:\(low)
                server s1 127.0.0.1:\(a.port)
            listen secure
                bind 127.0.0.1:\(tlsPort) ssl crt \(certs.path)/site.pem
                server s1 127.0.0.1:\(a.port)
            """))
        // A plan reads and test-binds through the broker too.
        let plan = try strata.admin("reload plan")
        #expect(plan.hasPrefix("Success=1"), "\(plan)")
        #expect(plan.contains("+ listener 127.0.0.1:\(low)"), "\(plan)")
        for _ in 0..<2 {  // the second reload reads the same files again, the key too
            let answer = try strata.admin("reload")
            #expect(answer.hasPrefix("Success=1"), "\(answer)")
        }
        #expect(Self.name(low) == "a")
        #expect(Self.name(port) == "a")
        #expect(TestSocket.connect(tlsPort).map { close($0); return true } ?? false)

        // A file the configuration does not name: the broker refuses it, and the reload fails.
        try strata.write(Self.config(port: port, server: a.port, jail: jail.path, more: """
            listen secure
                bind 127.0.0.1:\(tlsPort) ssl crt \(certs.path)/missing.pem
                server s1 127.0.0.1:\(a.port)
            """))
        let refused = try strata.admin("reload")
        #expect(refused.hasPrefix("Success=0"))
        #expect(refused.contains("missing.pem"), "\(refused)")
    }

    @Test func killingTheBrokerLeavesTrafficFlowingAndReloadsFailingClearly() throws {
        guard Self.skipUnlessRoot() else { return }
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort()
        let jail = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: jail) }
        let strata = try StrataProcess(config: Self.config(port: port, server: a.port, jail: jail.path))
        #expect(strata.waitForAdmin())
        let broker = try #require(try Self.brokerPID(strata))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(kill(broker, SIGKILL) == 0)
        #expect(strata.waitForOutput("privilege broker (pid \(broker)) has exited"))
        let info = try strata.admin("show info")
        #expect(info.contains("Broker: exited (pid \(broker), killed by signal 9)"), "\(info.split(separator: "\n").filter { $0.hasPrefix("Broker") })")
        for _ in 0..<20 { #expect(Self.name(port) == "a") }
        let answer = try strata.admin("reload")
        #expect(answer.hasPrefix("Success=0"))
        #expect(answer.contains("the privilege broker (pid \(broker)) has exited"), "\(answer)")
        #expect(answer.contains("restart"))
        #expect(Self.name(port) == "a")
        #expect(try strata.generations().map(\.id) == [2])
    }

    @Test func statsSocketUserGroupAndModeApplyToTheSocketFile() throws {
        guard Self.skipUnlessRoot() else { return }
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin user nobody group nogroup mode 660
            listen app
                mode tcp
                timeout connect 2s
                timeout client 30s
                timeout server 30s
                bind 127.0.0.1:\(port)
                server s1 127.0.0.1:\(a.port)
            """)
        #expect(strata.waitForAdmin())
        var st = stat()
        #expect(stat(strata.adminSocket, &st) == 0)
        #expect(st.st_uid == getpwnam("nobody")!.pointee.pw_uid)
        #expect(st.st_gid == getgrnam("nogroup")!.pointee.gr_gid)
        #expect(st.st_mode & 0o777 == 0o660)
    }
}
