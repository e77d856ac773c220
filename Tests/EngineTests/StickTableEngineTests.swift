import ConfigModel
import Testing
@testable import Engine

/// Stick tables without sockets: HAProxy's sliding-window rates, keys as each table type reads
/// and writes them, a full table making room (or not, with `nopurge`), and a reload keeping a
/// table only when its identity is unchanged.
@Suite struct StickTableEngineTests {
    static func table(_ type: StickKeyType = .ip, size: Int = 10, noPurge: Bool = false, len: Int = 4,
                      store: [StickDataItem] = [StickDataItem(.gpc0)]) -> StickTableConfig {
        var c = StickTableConfig(name: "t", location: SourceLocation(file: "test.cfg", line: 1), type: type, keyLength: len, size: size)
        c.noPurge = noPurge
        c.store = store
        return c
    }

    @Test func ratesAreTheCurrentPeriodPlusThePreviousWeighted() {
        var v = [0, 0, 0]
        let period = 10_000
        // The first event starts a period at its time.
        for _ in 0..<4 { StickTable.rateAdd(&v, 0, period: period, 1, 1_000_000) }
        #expect(StickTable.rate(v, 0, period: period, 1_000_000) == 4)
        #expect(StickTable.rate(v, 0, period: period, 1_009_999) == 4)
        // A quarter into the next period: 3/4 of the previous one still counts.
        #expect(StickTable.rate(v, 0, period: period, 1_012_500) == 3)
        StickTable.rateAdd(&v, 0, period: period, 2, 1_012_500)
        #expect(StickTable.rate(v, 0, period: period, 1_012_500) == 5)
        // Two periods later nothing is left.
        #expect(StickTable.rate(v, 0, period: period, 1_030_001) == 0)
        StickTable.rateAdd(&v, 0, period: period, 1, 1_050_000)
        #expect(StickTable.rate(v, 0, period: period, 1_050_000) == 1)
    }

    @Test func keysAsEachTypeReadsAndWritesThem() {
        let ip = StickTable(Self.table(.ip))
        #expect(ip.key(parsing: "10.1.2.3").map(ip.describe) == "10.1.2.3")
        #expect(ip.key(parsing: "::ffff:10.1.2.3") == ip.key(parsing: "10.1.2.3"))
        #expect(ip.key(parsing: "2001:db8::1") == nil)
        #expect(ip.key(parsing: "nope") == nil)
        let v6 = StickTable(Self.table(.ipv6, len: 16))
        #expect(v6.key(parsing: "2001:db8::1").map(v6.describe) == "2001:db8::1")
        #expect(v6.key(parsing: "10.1.2.3").map(v6.describe) == "::ffff:10.1.2.3")
        let int = StickTable(Self.table(.integer, len: 8))
        #expect(int.key(parsing: "-42").map(int.describe) == "-42")
        let string = StickTable(Self.table(.string, len: 5))
        #expect(string.key(parsing: "abcdefgh").map(string.describe) == "abcde")
        let binary = StickTable(Self.table(.binary, len: 3))
        #expect(binary.key(parsing: "0aff").map(binary.describe) == "0aff00")
        #expect(binary.key(parsing: "0g") == nil)
        // Longer than 16 bytes: kept whole.
        let long = StickTable(Self.table(.string, len: 40))
        let text = String(repeating: "x", count: 30)
        #expect(long.key(parsing: text).map(long.describe) == text)
    }

    /// Each entry keeps its own values (in its own allocation), found again by its key, long
    /// string keys included; a cleared entry's key makes a fresh one.
    @Test func entriesKeepTheirOwnValuesUnderTheirKeys() throws {
        let t = StickTable(Self.table(.string, size: 100, len: 40,
                                      store: [StickDataItem(.gpc0), StickDataItem(.httpRequestRate, period: 10_000), StickDataItem(.gpt0)]))
        let keys = (0..<50).map { "client-\($0)-" + String(repeating: "k", count: $0 % 2 == 0 ? 3 : 25) }
        for (i, text) in keys.enumerated() {
            #expect(t.set(key: try #require(t.key(parsing: text)), [(.gpc0, i), (.gpt0, 1000 + i)]))
        }
        for (i, text) in keys.enumerated() {
            let key = try #require(t.key(parsing: text))
            #expect(t.value(of: key, .gpc0) == i)
            #expect(t.value(of: key, .gpt0) == 1000 + i)
            #expect(t.value(of: key, .httpRequestRate) == 0)
            #expect(t.value(of: key, .gpc1) == nil)
        }
        let key3 = try #require(t.key(parsing: keys[3]))
        let tracked = try #require(t.track(key3, httpRequest: true, session: false))
        #expect(t.value(tracked, .httpRequestRate) == 1)
        #expect(t.value(of: try #require(t.key(parsing: keys[4])), .httpRequestRate) == 0)
        t.release(tracked)
        t.clear(key: try #require(t.key(parsing: keys[5])))
        #expect(t.used == 49)
        #expect(t.value(of: try #require(t.key(parsing: keys[5])), .gpc0) == nil)
        #expect(t.set(key: try #require(t.key(parsing: keys[5])), []))
        #expect(t.value(of: try #require(t.key(parsing: keys[5])), .gpc0) == 0)
    }

    @Test func aFullTableDropsItsLeastRecentlyUsedEntryUnlessNoPurge() throws {
        let t = StickTable(Self.table(size: 2))
        for (i, ip) in ["10.0.0.1", "10.0.0.2"].enumerated() {
            #expect(t.set(key: try #require(t.key(parsing: ip)), [(.gpc0, i)]))
        }
        // 10.0.0.1 is used again: 10.0.0.2 is the one to go.
        #expect(t.set(key: try #require(t.key(parsing: "10.0.0.1")), [(.gpc0, 7)]))
        #expect(t.set(key: try #require(t.key(parsing: "10.0.0.3")), [(.gpc0, 3)]))
        #expect(Set(t.rows().map { t.describe($0.key) }) == ["10.0.0.1", "10.0.0.3"])
        // An entry in use is never the one dropped.
        let key1 = try #require(t.key(parsing: "10.0.0.1"))
        let tracked = try #require(t.track(key1, httpRequest: false, session: false))
        #expect(t.set(key: try #require(t.key(parsing: "10.0.0.4")), []))
        #expect(Set(t.rows().map { t.describe($0.key) }) == ["10.0.0.1", "10.0.0.4"])
        t.release(tracked)

        let kept = StickTable(Self.table(size: 1, noPurge: true))
        #expect(kept.set(key: try #require(kept.key(parsing: "10.0.0.1")), []))
        #expect(!kept.set(key: try #require(kept.key(parsing: "10.0.0.2")), []))
        #expect(kept.used == 1)
    }

    @Test func aReloadKeepsATableOnlyWhenItsIdentityIsUnchanged() {
        let registry = StickTableRegistry()
        let first = registry.table(for: Self.table())
        #expect(!first.carried && !first.replaced)
        registry.adopt(["t": (first.table, Self.table())])
        var sameButExpire = Self.table()
        sameButExpire.expire = 5000
        let again = registry.table(for: sameButExpire)
        #expect(again.carried && again.table === first.table)
        for changed in [Self.table(size: 11), Self.table(.ipv6, len: 16), Self.table(store: [StickDataItem(.gpc1)]),
                        Self.table(store: [StickDataItem(.httpRequestRate, period: 1000)])] {
            let other = registry.table(for: changed)
            #expect(!other.carried && other.replaced && other.table !== first.table)
        }
    }
}
