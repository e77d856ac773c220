import Foundation
import Glibc
import StrataTestSupport

/// A real DNS server for the service discovery tests: Debian's dnsmasq on 127.0.0.1 and a free
/// port, authoritative for `strata.test` (a name it does not know is NXDOMAIN, never forwarded),
/// answering from a hosts file the test rewrites (`setHosts`, then SIGHUP) and from fixed
/// `--host-record` and `--srv-host` records. Stopped when released.
final class TestDNSServer: @unchecked Sendable {
    static let binary: String? = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].first { FileManager.default.isExecutableFile(atPath: $0) }

    let port: UInt16
    let directory: URL
    private let hostsPath: String
    private let arguments: [String]
    private var pid: pid_t

    /// `hosts`: IP and name pairs served (and changed with `setHosts`); `srv`: SRV records as
    /// `(name, target, port, weight)`; `records`: fixed `name,IP` host records.
    init(hosts: [(String, String)] = [], srv: [(name: String, target: String, port: UInt16, weight: Int)] = [],
         records: [(String, String)] = []) throws {
        guard let binary = TestDNSServer.binary else { throw TestSocket.Failure(description: "dnsmasq is not installed") }
        directory = StrataProcess.makeDirectory()
        hostsPath = directory.appendingPathComponent("hosts").path
        try TestDNSServer.hostsText(hosts).write(toFile: hostsPath, atomically: true, encoding: .utf8)
        let fixed = ["--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=", "--user=root", "--no-resolv", "--no-hosts",
                     "--listen-address=127.0.0.1", "--bind-interfaces", "--local=/strata.test/", "--addn-hosts=\(hostsPath)",
                     "--local-ttl=0", "--log-facility=\(directory.path)/dnsmasq.log"]
            + srv.map { "--srv-host=\($0.name),\($0.target),\($0.port),0,\($0.weight)" }
            + records.map { "--host-record=\($0.0),\($0.1)" }
        // A port free for TCP may be taken for UDP: dnsmasq then exits at once, and another is tried.
        for _ in 0..<10 {
            let port = TestSocket.freePort()
            let arguments = [binary] + fixed + ["--port=\(port)"]
            let pid = try TestDNSServer.spawn(arguments)
            if eventually(seconds: 5, { !TestDNSServer.isRunning(pid) || TestDNSServer.answers(port: port) }), TestDNSServer.isRunning(pid) {
                self.port = port
                self.arguments = arguments
                self.pid = pid
                return
            }
            TestDNSServer.stop(pid)
        }
        throw TestSocket.Failure(description: "dnsmasq did not start")
    }

    deinit {
        TestDNSServer.stop(pid)
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts dnsmasq afresh on the same port, serving `hosts` (SIGHUP makes dnsmasq read its hosts
    /// file again, but a name it served stays known: it answers NODATA, never NXDOMAIN, for it).
    func restart(hosts: [(String, String)]) throws {
        TestDNSServer.stop(pid)
        try TestDNSServer.hostsText(hosts).write(toFile: hostsPath, atomically: true, encoding: .utf8)
        pid = try TestDNSServer.spawn(arguments)
        guard eventually(seconds: 5, { TestDNSServer.answers(port: port) }) else {
            throw TestSocket.Failure(description: "dnsmasq did not start again")
        }
    }

    /// posix_spawn with an empty signal mask and default dispositions: the test runner blocks
    /// signals, and a child inherits that (dnsmasq would then never see SIGHUP or SIGTERM).
    private static func spawn(_ arguments: [String]) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard status == 0 else { throw TestSocket.Failure(description: "dnsmasq: \(String(cString: strerror(status)))") }
        return pid
    }

    private static func isRunning(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }

    private static func stop(_ pid: pid_t) {
        kill(pid, SIGTERM)
        if !eventually(seconds: 5, { !isRunning(pid) }) {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    /// Serves these addresses from now on (dnsmasq reads its hosts file again on SIGHUP).
    func setHosts(_ hosts: [(String, String)]) throws {
        try TestDNSServer.hostsText(hosts).write(toFile: hostsPath, atomically: true, encoding: .utf8)
        kill(pid, SIGHUP)
    }

    private static func hostsText(_ hosts: [(String, String)]) -> String {
        hosts.map { "\($0.0) \($0.1)\n" }.joined()
    }

    /// Whether something answers DNS over UDP on the port (a query for `strata.test`'s SOA).
    private static func answers(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        TestSocket.setTimeout(fd, seconds: 0.2)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        let query: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                              6] + Array("strata".utf8) + [4] + Array("test".utf8) + [0, 0, 6, 0, 1]
        let sent = query.withUnsafeBytes { q in
            withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, q.baseAddress, q.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            } }
        }
        guard sent == query.count else { return false }
        var answer = [UInt8](repeating: 0, count: 512)
        return answer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } > 0
    }
}

/// An HTTP origin listening on every local address (0.0.0.0) of one port: it answers each request
/// with the address the connection reached (`127.0.0.12`), so a test sees which of a name's
/// addresses strata sent it to.
final class AddressOrigin: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    private let seen = Guarded<[String: Int]>([:])

    init(port: UInt16? = nil) throws {
        _ = TestSocket.fileLimitRaised
        let port = port ?? TestSocket.freePort()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = 0
        addr.sin_port = port.bigEndian
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0, listen(fd, 512) == 0 else {
            close(fd)
            throw TestSocket.Failure(description: "address origin bind: \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        self.port = port
        TestSocket.acceptLoop(fd, timeout: 30) { [self] c in
            Thread { [self] in self.serve(c) }.start()
            return true
        }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    /// Requests served, by the local address they reached.
    var requests: [String: Int] { seen.withLock { $0 } }

    /// `GET /held` is answered once `releaseHeld()` is called (a request kept in flight).
    private let held = Guarded(false)
    func releaseHeld() { held.withLock { $0 = true } }

    private func serve(_ c: Int32) {
        defer { close(c) }
        var local = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(c, $0, &len) } }
        let address = String(cString: inet_ntoa(local.sin_addr))
        let reader = HTTPTestReader(fd: c)
        while let head = reader.readHead() {
            if head.hasPrefix("GET /held ") {
                while !held.withLock({ $0 }) { usleep(10_000) }
            }
            seen.withLock { $0[address, default: 0] += 1 }
            guard TestSocket.sendAll(c, "HTTP/1.1 200 OK\r\nContent-Length: \(address.utf8.count)\r\n\r\n\(address)") else { return }
        }
    }
}
