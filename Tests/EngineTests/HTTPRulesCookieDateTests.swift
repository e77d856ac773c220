import ConfigModel
import Testing
@testable import Engine

/// `cookie … insert maxidle T maxlife T`: the inserted value carries its dates as HAProxy writes
/// them, and a cookie idle or alive too long no longer designates its server.
@Suite struct HTTPRulesCookieDateTests {
    static let t0 = 1_700_000_000  // "ZVPxA" as a HAProxy cookie date

    final class Clock: @unchecked Sendable {
        var now = HTTPRulesCookieDateTests.t0
    }

    func harness(maxIdle: Int?, maxLife: Int?, clock: Clock) throws -> RulesHarness {
        var cookie = CookiePersistence(name: "SRV", mode: .insert)
        cookie.indirect = true
        cookie.maxIdle = maxIdle.map { $0 * 1000 }
        cookie.maxLife = maxLife.map { $0 * 1000 }
        var proxy = httpProxy { $0.cookie = cookie }
        proxy.servers = [server("s1", cookie: "s1"), server("s2", cookie: "s2")]
        let harness = try RulesHarness(proxy)
        harness.scratch.clock = { clock.now }
        return harness
    }

    /// The server the request's cookie designates (every server usable).
    func designated(_ harness: RulesHarness, _ cookie: String?) -> Int? {
        var designated: Int?
        harness.beforeWrite = { backend, head, input in
            designated = backend.persistentServer(head, input: input, scratch: harness.scratch) { _ in true }
        }
        if let cookie {
            _ = harness.run("GET / HTTP/1.1", "Host: h", "Cookie: \(cookie)")
        } else {
            _ = harness.run("GET / HTTP/1.1", "Host: h")
        }
        return designated
    }

    /// The Set-Cookie the answer from `server` carries, or nil.
    func setCookie(_ harness: RulesHarness, server: Int) -> String? {
        let (_, out) = harness.respond("HTTP/1.1 200 OK", "Content-Length: 0", server: server)
        guard let out else { return nil }
        for line in out.split(separator: "\r\n") where line.hasPrefix("Set-Cookie: ") {
            return String(line.dropFirst(12))
        }
        return nil
    }

    @Test func datesAreHAProxys() {
        let out = HTTPScratchBuffer(capacity: 64)
        HTTPCookieDate.encode(Self.t0, into: out)
        HTTPCookieDate.encode(Self.t0 + 4, into: out)
        HTTPCookieDate.encode(Self.t0 - 3600, into: out)
        #expect(String(decoding: out.bytes(from: 0), as: UTF8.self) == "ZVPxAZVPxBZVPi8")
        Array("ZVPxA".utf8).withUnsafeBytes { bytes in
            #expect(HTTPCookieDate.decode(bytes) == (Self.t0 + 3) & ~3)
        }
        Array("ZVP!A".utf8).withUnsafeBytes { #expect(HTTPCookieDate.decode($0) == nil) }
        Array("ZVPx".utf8).withUnsafeBytes { #expect(HTTPCookieDate.decode($0) == nil) }
    }

    @Test func maxIdle() throws {
        let clock = Clock()
        let harness = try harness(maxIdle: 1800, maxLife: nil, clock: clock)
        // First visit: balanced; the cookie carries the last-seen date.
        #expect(designated(harness, nil) == nil)
        #expect(setCookie(harness, server: 1) == "SRV=s2|ZVPxA; path=/")
        // Within maxidle: s2 again. The date (rounded up to 4 seconds) is not past in the same
        // second, so no new cookie; it is refreshed once past.
        #expect(designated(harness, "SRV=s2|ZVPxA") == 1)
        #expect(setCookie(harness, server: 1) == nil)
        clock.now = Self.t0 + 2
        #expect(designated(harness, "SRV=s2|ZVPxA") == 1)
        #expect(setCookie(harness, server: 1) == "SRV=s2|ZVPxB; path=/")
        clock.now = Self.t0 + 600
        #expect(designated(harness, "SRV=s2|ZVPxA") == 1)
        #expect(setCookie(harness, server: 1) == "SRV=s2|ZVPzW; path=/")
        // Idle too long: the cookie is ignored, the request balanced, a new cookie set.
        clock.now = Self.t0 + 1800 + 8
        #expect(designated(harness, "SRV=s2|ZVPxA") == nil)
        #expect(setCookie(harness, server: 0)?.hasPrefix("SRV=s1|") == true)
        // A cookie without a date is taken, and gets one.
        clock.now = Self.t0
        #expect(designated(harness, "SRV=s1") == 0)
        #expect(setCookie(harness, server: 0) == "SRV=s1|ZVPxA; path=/")
        // A date more than a day ahead is ignored (the clock was fixed since).
        clock.now = Self.t0 - 86_400 - 3600
        #expect(designated(harness, "SRV=s2|ZVPxA") == nil)
        // Garbage after the bar is no date: taken, and dated.
        clock.now = Self.t0
        #expect(designated(harness, "SRV=s2|#") == 1)
        #expect(setCookie(harness, server: 1) == "SRV=s2|ZVPxA; path=/")
    }

    @Test func maxLife() throws {
        let clock = Clock()
        let harness = try harness(maxIdle: nil, maxLife: 3600, clock: clock)
        #expect(designated(harness, nil) == nil)
        #expect(setCookie(harness, server: 0) == "SRV=s1|ZVPxA|ZVPxA; path=/")
        // Later visits keep the first date, refresh the last one.
        clock.now = Self.t0 + 1800
        #expect(designated(harness, "SRV=s1|ZVPxA|ZVPxA") == 0)
        #expect(setCookie(harness, server: 0) == "SRV=s1|ZVP4C|ZVPxA; path=/")
        // Alive too long, however recently seen: balanced again, a new first date.
        clock.now = Self.t0 + 3600 + 8
        #expect(designated(harness, "SRV=s1|ZVP4C|ZVPxA") == nil)
        let fresh = setCookie(harness, server: 1)
        #expect(fresh?.hasPrefix("SRV=s2|") == true && fresh?.contains("ZVPxA") == false)
    }

    @Test func bothAndTheFirstMatchingCookieWins() throws {
        let clock = Clock()
        let harness = try harness(maxIdle: 600, maxLife: 7200, clock: clock)
        clock.now = Self.t0 + 900
        // The first SRV cookie is idle too long, the second one is fine: it designates s2.
        #expect(designated(harness, "SRV=s1|ZVPxA|ZVPxA; SRV=s2|ZVPzW|ZVPxA") == 1)
        // Its first date is kept in the refreshed cookie.
        #expect(setCookie(harness, server: 1) == "SRV=s2|ZVP0h|ZVPxA; path=/")
        // A last-seen date ahead of the clock (another proxy's) is not refreshed.
        #expect(designated(harness, "SRV=s2|ZVP4C|ZVPxA") == 1)
        #expect(setCookie(harness, server: 1) == nil)
    }

    @Test func datesRemovedFromTheConfigurationAreStrippedFromCookies() throws {
        let clock = Clock()
        let plain = try harness(maxIdle: nil, maxLife: nil, clock: clock)
        // Without maxidle/maxlife the dates are not read; the cookie still designates its server
        // and, as HAProxy does, is not set again.
        #expect(designated(plain, "SRV=s2|ZVPxA|ZVPxA") == 1)
        #expect(setCookie(plain, server: 1) == nil)
        // Without maxlife, a first date is dropped from the cookie.
        let idle = try harness(maxIdle: 3600, maxLife: nil, clock: clock)
        #expect(designated(idle, "SRV=s2|ZVPxB|ZVPxA") == 1)
        #expect(setCookie(idle, server: 1) == "SRV=s2|ZVPxA; path=/")
    }
}
