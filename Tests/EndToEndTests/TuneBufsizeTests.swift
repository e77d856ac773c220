import Foundation
import Glibc
import StrataTestSupport
import Testing

/// `tune.bufsize` sizes the process's I/O buffers: a head larger than the default 16 KB passes with
/// a larger setting, and a reload that changes it fails (restart to apply it).
@Suite(.serialized) struct TuneBufsizeTests {
    static func config(port: UInt16, bufsize: String, extra: String = "") -> String {
        """
        global
            stats socket @ADMIN@ level admin
            tune.bufsize \(bufsize)
            \(extra)
        defaults
            mode http
            timeout connect 2s
            timeout client 30s
            timeout server 30s

        frontend web
            bind 127.0.0.1:\(port)
            http-request return status 200 content-type text/plain string "ok"
        """
    }

    static func status(_ port: UInt16, headerBytes: Int) -> Int? {
        guard let client = TestHTTPClient(port: port) else { return nil }
        client.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: headerBytes))\r\n\r\n")
        return client.readResponse()?.status
    }

    @Test func theBufferSizeIsTheProcesssAndCannotChangeOnReload() throws {
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, bufsize: "32k"))
        #expect(strata.waitForAdmin())
        // 20 KB of head: more than the default buffers hold, within 32 KB.
        #expect(Self.status(port, headerBytes: 20_000) == 200)

        try strata.write(Self.config(port: port, bufsize: "16384"))
        let answer = try strata.admin("reload")
        #expect(answer.hasPrefix("Success=0"))
        #expect(answer.contains("\(strata.configPath):3: 'tune.bufsize' cannot change on reload, restart to apply it"))
        #expect(Self.status(port, headerBytes: 20_000) == 200)
        // The same size written another way is no change.
        try strata.write(Self.config(port: port, bufsize: "32768"))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(Self.status(port, headerBytes: 20_000) == 200)
    }

    /// `tune.maxrewrite`: room kept for rewrites, so a request head may take the buffer minus it.
    @Test func maxrewriteKeepsRoomForRewrites() throws {
        let kept = TestSocket.freePort(), plain = TestSocket.freePort()
        let withRoom = try StrataProcess(config: Self.config(port: kept, bufsize: "16384", extra: "tune.maxrewrite 4096"))
        let without = try StrataProcess(config: Self.config(port: plain, bufsize: "16384"))
        #expect(withRoom.waitForAdmin() && without.waitForAdmin())
        // 14 KB of head: within 16 KB, past 16 KB - 4 KB.
        #expect(Self.status(kept, headerBytes: 14_000) == 431)
        #expect(Self.status(plain, headerBytes: 14_000) == 200)
        #expect(Self.status(kept, headerBytes: 10_000) == 200)
    }
}
