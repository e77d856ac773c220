import Foundation
import Glibc
import StrataTestSupport
import Synchronization
import Testing

/// A new strata takes the old one's listening sockets (`-x`, `expose-fd listeners`) and the old
/// one drains (`-sf`): the same kernel sockets throughout, so no connection is refused or reset.
@Suite(.serialized) struct BinaryUpgradeTests {
    static func config(port: UInt16) -> String {
        """
        global
            stats socket @ADMIN@ level admin expose-fd listeners
            nbthread 2
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
        frontend web
            bind 127.0.0.1:\(port)
            http-request return status 200 content-type text/plain string ok
        """
    }

    /// The inodes of the listening sockets on `port` (/proc/net/tcp, state 0A).
    static func listeningInodes(_ port: UInt16) -> Set<String> {
        // Read to the end: /proc gives its table a page per read, and a loaded machine has many sockets.
        let text = String(decoding: FileHandle(forReadingAtPath: "/proc/net/tcp")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        let hex = String(port, radix: 16, uppercase: true)
        let local = ":" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        var inodes: Set<String> = []
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ")
            if f.count > 9, f[1].hasSuffix(local), f[3] == "0A" { inodes.insert(String(f[9])) }
        }
        return inodes
    }

    /// One request on a new connection, `Connection: close`: true when answered 200 in full.
    static func request(_ port: UInt16) -> Bool {
        guard let fd = TestSocket.connect(port, timeout: 5) else { return false }
        defer { close(fd) }
        guard TestSocket.sendAll(fd, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n") else { return false }
        let answer = String(decoding: TestSocket.readToEnd(fd, limit: 4096), as: UTF8.self)
        return answer.hasPrefix("HTTP/1.1 200") && answer.hasSuffix("ok")
    }

    @Test func fiveTakeoversUnderLoadFailNoConnectionAndKeepTheSameSockets() throws {
        let port = TestSocket.freePort()
        var current = try StrataProcess(config: Self.config(port: port))
        #expect(current.waitForAdmin())
        #expect(Self.request(port))
        let before = Self.listeningInodes(port)
        #expect(before.count == 2)

        let stop = Atomic<Bool>(false)
        let done = Atomic<Int>(0), failed = Atomic<Int>(0)
        // Steady, not flat out: each connection leaves a TIME_WAIT entry, and the other tests
        // running beside this one need ephemeral ports too (about 600 connections a second).
        let clients = (0..<3).map { _ in
            Thread {
                while !stop.load(ordering: .relaxed) {
                    if Self.request(port) { done.add(1, ordering: .relaxed) } else { failed.add(1, ordering: .relaxed) }
                    usleep(5_000)
                }
            }
        }
        var finished: [Thread] = []
        for c in clients { c.start() }
        defer { stop.store(true, ordering: .relaxed) }
        usleep(200_000)
        var old: [StrataProcess] = []
        for round in 1...5 {
            let next = try StrataProcess(config: Self.config(port: port),
                                         arguments: ["-x", current.adminSocket, "-sf", "\(current.pid)"])
            #expect(next.waitForAdmin(), "round \(round): \(next.output)")
            #expect(next.waitForOutput("took 2 listening sockets (1 binds) over"), "round \(round): \(next.output)")
            #expect(current.waitForExit(seconds: 15) == 0, "round \(round): the old process drained and exited")
            #expect(Self.listeningInodes(port) == before, "round \(round)")
            old.append(current)
            current = next
            usleep(200_000)
        }
        stop.store(true, ordering: .relaxed)
        while clients.contains(where: { !$0.isFinished }) { usleep(10_000) }
        finished = clients
        print("5 takeovers: \(done.load(ordering: .relaxed)) requests answered, \(failed.load(ordering: .relaxed)) failed")
        #expect(failed.load(ordering: .relaxed) == 0, "\(failed.load(ordering: .relaxed)) failed of \(done.load(ordering: .relaxed))")
        #expect(done.load(ordering: .relaxed) > 50)
        #expect(Self.listeningInodes(port) == before)
        #expect(finished.count == 3)
        _ = old
    }

    @Test func withoutExposeFdTheSocketsAreNotHandedOver() throws {
        let port = TestSocket.freePort()
        let plain = Self.config(port: port).replacingOccurrences(of: " expose-fd listeners", with: "")
        let strata = try StrataProcess(config: plain)
        #expect(strata.waitForAdmin())
        let next = try StrataProcess(config: plain, arguments: ["-x", strata.adminSocket, "-sf", "\(strata.pid)"])
        #expect(next.waitForExit(seconds: 10) == 1)
        #expect(next.output.contains { $0.contains("-x: ") && $0.contains("expose-fd listeners") }, "\(next.output)")
        #expect(Self.request(port))  // the old one resumed (SIGTTIN)
    }
}
