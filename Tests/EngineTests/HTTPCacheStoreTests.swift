import ConfigModel
import Foundation
import Testing
@testable import Engine

/// The cache's store apart from sessions: memory bounded by `total-max-size` with the least
/// recently used entries evicted, variants bounded by `max-secondary-entries`, expiry, and
/// loops storing and looking up at once.
@Suite struct HTTPCacheStoreTests {
    static func entry(_ key: String, size: Int = 100, expire: Int = 1000, signature: UInt8 = 0,
                      variant: HTTPCacheVariant = HTTPCacheVariant()) -> HTTPCacheEntry {
        let k = Array(key.utf8)
        let head = Array("HTTP/1.1 200 OK\r\n".utf8)
        return head.withUnsafeBytes {
            HTTPCacheEntry(hash: HTTPCachePolicy.fnv1a(k), key: k, signature: signature, variant: variant, head: $0,
                           body: [UInt8](repeating: 0x61, count: size), storedAt: 0, expire: expire, originAge: 0,
                           lastModified: 0, etag: nil)
        }
    }

    static func find(_ cache: HTTPCache, _ key: String, variant: HTTPCacheVariant = HTTPCacheVariant(), now: Int = 1) -> HTTPCacheEntry? {
        let k = Array(key.utf8)
        return k.withUnsafeBytes { cache.lookup(hash: HTTPCachePolicy.fnv1a(k), key: $0, variant: variant, now: now) }
    }

    @Test func memoryIsBoundedAndTheLeastRecentlyUsedGoFirst() {
        let cache = HTTPCache(CacheSection(name: "c", location: SourceLocation(file: "t"), totalMaxSize: 1 << 20, maxObjectSize: 4096))
        #expect(cache.totalBlocks == 1024)
        for i in 0..<600 { cache.store(Self.entry("k\(i)", size: 1500), now: 1) }  // 2 blocks each
        #expect(cache.usedBlocks <= 1024)
        #expect(Self.find(cache, "k599") != nil)
        #expect(Self.find(cache, "k0") == nil)
        // A hit makes an entry the most recently used: it outlives those stored before it.
        _ = Self.find(cache, "k599")
        for i in 1000..<1500 {
            cache.store(Self.entry("k\(i)", size: 1500), now: 1)
            _ = Self.find(cache, "k599")
        }
        #expect(Self.find(cache, "k599") != nil)
        #expect(Self.find(cache, "k500") == nil)
        #expect(cache.usedBlocks <= 1024)
        // Expired entries are not served, and a store replaces its key's entry.
        #expect(Self.find(cache, "k599", now: 5000) == nil)
        cache.store(Self.entry("k599", size: 10, expire: 6000), now: 1)
        #expect(Self.find(cache, "k599", now: 5000)?.size == 17 + 10)
    }

    @Test func variantsAreBoundedByMaxSecondaryEntries() {
        var section = CacheSection(name: "c", location: SourceLocation(file: "t"), totalMaxSize: 1 << 20, maxObjectSize: 4096)
        section.maxSecondaryEntries = 3
        section.processVary = true
        let cache = HTTPCache(section)
        var stored = 0
        for i in 1...5 {
            let v = HTTPCacheVariant(encodings: 0, referer: 0, origin: UInt64(i))
            if cache.store(Self.entry("k", signature: HTTPCacheVariant.origin, variant: v), now: 1) { stored += 1 }
        }
        #expect(stored == 3)
        #expect(Self.find(cache, "k", variant: HTTPCacheVariant(encodings: 0, referer: 0, origin: 2)) != nil)
        #expect(Self.find(cache, "k", variant: HTTPCacheVariant(encodings: 0, referer: 0, origin: 5)) == nil)
        // The answer's coding must be one the request accepts.
        let gzip = HTTPCacheVariant(encodings: HTTPCacheEncoding.gzip, referer: 0, origin: 0)
        cache.store(Self.entry("ae", signature: HTTPCacheVariant.acceptEncoding, variant: gzip), now: 1)
        #expect(Self.find(cache, "ae", variant: HTTPCacheVariant(encodings: ~0, referer: 0, origin: 0)) != nil)
        #expect(Self.find(cache, "ae", variant: HTTPCacheVariant(encodings: HTTPCacheEncoding.identity, referer: 0, origin: 0)) == nil)
    }

    /// Every loop looks up and stores at once (ThreadSanitizer watches the suite).
    @Test func loopsShareTheStore() async {
        let cache = HTTPCache(CacheSection(name: "c", location: SourceLocation(file: "t"), totalMaxSize: 1 << 20, maxObjectSize: 4096))
        await withTaskGroup(of: Int.self) { group in
            for t in 0..<4 {
                group.addTask {
                    var hits = 0
                    for i in 0..<2000 {
                        let key = "k\((i * 7 + t) % 300)"
                        if let e = Self.find(cache, key) {
                            e.beginSending()
                            hits += e.body.count > 0 ? 1 : 0
                            e.endSending()
                        } else {
                            cache.store(Self.entry(key, size: 900 + i % 900), now: 1)
                        }
                    }
                    return hits
                }
            }
            var total = 0
            for await h in group { total += h }
            #expect(total > 0)
        }
        #expect(cache.usedBlocks <= cache.totalBlocks)
        #expect(cache.liveEntries(now: 1).allSatisfy { $0.readers == 0 })
    }
}
