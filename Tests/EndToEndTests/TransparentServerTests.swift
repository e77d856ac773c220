import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `server NAME *:PORT` (or 0.0.0.0): the connection goes to the address the client connected
/// to, as HAProxy forwards to the original destination.
@Suite struct TransparentServerTests {
    @Test func aStarServerIsReachedAtTheClientsDestination() throws {
        // The origin listens on 127.0.0.2 only; strata on 127.0.0.2 and on 127.0.0.1.
        let (fd, originPort) = try TestSocket.listen(address: "127.0.0.2", what: "origin")
        defer { close(fd) }
        let seen = Guarded<[String]>([])
        TestSocket.acceptLoop(fd, timeout: 20) { c in
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = recv(c, &buffer, buffer.count, 0)
            seen.withLock { $0.append(String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self)) }
            _ = TestSocket.sendAll(c, "from-127.0.0.2\n")
            close(c)
            return true
        }
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode tcp
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            listen fe
                bind 127.0.0.2:\(port)
                bind 127.0.0.1:\(port)
                server dest *:\(originPort)
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        // Connected to 127.0.0.2: forwarded to 127.0.0.2's origin.
        let c = try #require(TestSocket.connect(port, host: "127.0.0.2"))
        _ = TestSocket.sendAll(c, "hello\n")
        #expect(String(decoding: TestSocket.readToEnd(c), as: UTF8.self) == "from-127.0.0.2\n")
        close(c)
        #expect(seen.withLock { $0 } == ["hello\n"])
        // Connected to 127.0.0.1: 127.0.0.1 has no such origin, the connection is refused.
        let other = try #require(TestSocket.connect(port, host: "127.0.0.1"))
        _ = TestSocket.sendAll(other, "hello\n")
        #expect(TestSocket.readToEnd(other).isEmpty)
        close(other)
        #expect(seen.withLock { $0.count } == 1)
    }
}

/// `set-dumpable`: the core size limit is raised to its hard limit (and PR_SET_DUMPABLE set, which
/// only shows after a change of uid).
@Suite struct SetDumpableTests {
    @Test func theCoreLimitIsRaised() throws {
        func coreLimit(_ pid: Int32) -> String? {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8) else { return nil }
            return text.split(separator: "\n").first { $0.hasPrefix("Max core file size") }
                .map { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2).joined(separator: " ") }
        }
        for dumpable in [false, true] {
            let strata = try StrataProcess(config: """
                global
                    stats socket @ADMIN@ level admin
                    \(dumpable ? "set-dumpable" : "")
                defaults
                    mode tcp
                    timeout connect 1s
                    timeout client 1s
                    timeout server 1s
                listen l
                    bind 127.0.0.1:\(TestSocket.freePort())
                    server s 127.0.0.1:1
                """, limits: ["-Sc 0"])
            #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
            let limit = try #require(coreLimit(strata.pid))
            let parts = limit.split(separator: " ")
            // Soft and hard: equal with set-dumpable, the soft 0 of `ulimit -Sc 0` without.
            #expect(parts.count == 2 && (dumpable ? parts[0] == parts[1] && parts[0] != "0" : parts[0] == "0"), "\(limit)")
        }
    }
}

/// `source ADDR[:PORT]` on a backend and on a server: the connection to the server leaves from
/// that address (the origin sees it as the peer).
@Suite struct SourceAddressTests {
    @Test func connectionsLeaveFromTheSourceAddress() throws {
        let (fd, originPort) = try TestSocket.listen(what: "origin")
        defer { close(fd) }
        let peers = Guarded<[String]>([])
        TestSocket.acceptLoop(fd, timeout: 20) { c in
            var addr = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(c, $0, &len) } }
            peers.withLock { $0.append(String(cString: inet_ntoa(addr.sin_addr))) }
            _ = TestSocket.sendAll(c, "hi\n")
            close(c)
            return true
        }
        let viaBackend = TestSocket.freePort(), viaServer = TestSocket.freePort()
        let strata = try StrataProcess(config: """
            global
                stats socket @ADMIN@ level admin
            defaults
                mode tcp
                timeout connect 2s
                timeout client 10s
                timeout server 10s
            listen backendwide
                bind 127.0.0.1:\(viaBackend)
                source 127.0.0.2
                server o 127.0.0.1:\(originPort)
            listen perserver
                bind 127.0.0.1:\(viaServer)
                source 127.0.0.2
                server o 127.0.0.1:\(originPort) source 127.0.0.3
            """)
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        for port in [viaBackend, viaServer] {
            let c = try #require(TestSocket.connect(port))
            #expect(String(decoding: TestSocket.readToEnd(c), as: UTF8.self) == "hi\n")
            close(c)
        }
        #expect(peers.withLock { $0 } == ["127.0.0.2", "127.0.0.3"])
    }
}
