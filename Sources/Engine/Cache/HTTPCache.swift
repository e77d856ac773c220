import ConfigModel
import Glibc
import Synchronization

/// One `cache` section's store (HAProxy's small object cache): answers by their key (the
/// request's `https://` + Host + URI, or its absolute URI), each with the variants its `Vary`
/// asked for. Shared by every event loop, behind one lock held for a dictionary lookup or an
/// insertion (HAProxy's cache takes its own locks the same way); an entry, once stored, never
/// changes, so a hit keeps it (a strong reference) while its bytes are sent, out of the lock.
///
/// It lives outside generations: a reload whose `cache` section is unchanged hands the same
/// object to the new generation (`Generation.init`), which is how its entries survive.
///
/// Memory is counted as HAProxy does, in 1 kB blocks of `total-max-size`; a store that does not
/// fit evicts the least recently used entries first.
final class HTTPCache: @unchecked Sendable {
    static let blockSize = 1024

    let section: CacheSection
    let totalBlocks: Int
    private let lock = Lock()
    // Guarded by `lock`.
    private var slots: [UInt64: [HTTPCacheEntry]] = [:]
    /// Least recently used first; a hit moves its entry to the end.
    private var oldest: HTTPCacheEntry?
    private var newest: HTTPCacheEntry?
    private var usedBlocksValue = 0

    init(_ section: CacheSection) {
        self.section = section
        totalBlocks = section.totalMaxSize / HTTPCache.blockSize
    }

    var usedBlocks: Int { lock.withLock { usedBlocksValue } }

    /// The fresh entry for a request, or nil. `key` is the request's key (see
    /// `HTTPCacheRequest`); `variant` its secondary key, used when the stored answer varies.
    func lookup(hash: UInt64, key: UnsafeRawBufferPointer, variant: HTTPCacheVariant, now: Int) -> HTTPCacheEntry? {
        lock.withLock { () -> HTTPCacheEntry? in
            guard let list = slots[hash] else { return nil }
            for entry in list where entry.expire > now && entry.matches(key) {
                guard entry.signature == 0 || entry.variant.accepts(variant, signature: entry.signature) else { continue }
                touch(entry)
                return entry
            }
            return nil
        }
    }

    /// Stores `entry` in place of the one it replaces (same key and variant); false when it could
    /// not be (its key already has `max-secondary-entries` variants, or it is bigger than the cache).
    @discardableResult
    func store(_ entry: HTTPCacheEntry, now: Int) -> Bool {
        guard entry.blocks <= totalBlocks else { return false }
        return lock.withLock { () -> Bool in
            var list = slots[entry.hash] ?? []
            // Expired entries and the one this answer replaces go.
            var i = 0
            while i < list.count {
                let old = list[i]
                if old.expire <= now || (old.matches(entry.key) && old.signature == entry.signature && old.variant == entry.variant) {
                    unlink(old)
                    list.remove(at: i)
                } else {
                    i += 1
                }
            }
            if entry.signature != 0 {
                let variants = list.reduce(0) { $0 + ($1.matches(entry.key) ? 1 : 0) }
                if variants >= section.maxSecondaryEntries {
                    slots[entry.hash] = list.isEmpty ? nil : list
                    return false
                }
            } else {
                // An answer that does not vary replaces every variant of its key.
                list.removeAll { old in
                    guard old.matches(entry.key) else { return false }
                    unlink(old)
                    return true
                }
            }
            list.append(entry)
            slots[entry.hash] = list
            link(entry)
            // Room is made by evicting the least recently used entries.
            while usedBlocksValue > totalBlocks, let victim = oldest, victim !== entry {
                remove(victim)
            }
            return true
        }
    }

    /// A successful unsafe request (POST, PUT, DELETE…) drops what the cache has for its key
    /// (RFC 7234 §4.4, as HAProxy).
    func invalidate(hash: UInt64, key: UnsafeRawBufferPointer) {
        lock.withLock {
            guard let list = slots[hash] else { return }
            for entry in list where entry.matches(key) { remove(entry) }
        }
    }

    /// The entries not expired, least recently used first (`show cache`).
    func liveEntries(now: Int) -> [HTTPCacheEntry] {
        lock.withLock {
            var out: [HTTPCacheEntry] = []
            var e = oldest
            while let entry = e {
                if entry.expire > now { out.append(entry) }
                e = entry.newer
            }
            return out
        }
    }

    // MARK: the LRU list (under the lock)

    private func link(_ entry: HTTPCacheEntry) {
        entry.older = newest
        entry.newer = nil
        newest?.newer = entry
        newest = entry
        if oldest == nil { oldest = entry }
        usedBlocksValue += entry.blocks
    }

    private func unlink(_ entry: HTTPCacheEntry) {
        if let o = entry.older { o.newer = entry.newer } else if oldest === entry { oldest = entry.newer }
        if let n = entry.newer { n.older = entry.older } else if newest === entry { newest = entry.older }
        entry.older = nil
        entry.newer = nil
        usedBlocksValue -= entry.blocks
    }

    private func touch(_ entry: HTTPCacheEntry) {
        guard newest !== entry else { return }
        unlink(entry)
        link(entry)
    }

    /// Unlinks and forgets an entry.
    private func remove(_ entry: HTTPCacheEntry) {
        unlink(entry)
        guard var list = slots[entry.hash] else { return }
        list.removeAll { $0 === entry }
        slots[entry.hash] = list.isEmpty ? nil : list
    }
}

/// A stored answer: its head as sent (the status line and the fields, each with its CRLF, without
/// the empty line; no Age, Connection or Keep-Alive), and its body as the server framed it.
/// Immutable once stored, except for its place in the LRU list (its cache's lock guards that).
final class HTTPCacheEntry: @unchecked Sendable {
    let hash: UInt64
    let key: [UInt8]
    /// The request headers the answer varies on (`HTTPCacheVariant.acceptEncoding`, …), 0 if none.
    let signature: UInt8
    /// The variant's key: the request's hashes of the varying headers, and for Accept-Encoding
    /// the encodings of the answer itself.
    let variant: HTTPCacheVariant
    private let storage: UnsafeMutableRawBufferPointer
    let headCount: Int
    /// Wall-clock seconds: when it was stored, when it stops being served.
    let storedAt: Int
    let expire: Int
    /// The Age the server's answer had (added to the time it spent here).
    let originAge: Int
    /// Last-Modified (else Date, else the time it was stored), for If-Modified-Since.
    let lastModified: Int
    /// The ETag field's value, within the head.
    let etag: Range<Int>?
    let blocks: Int
    /// Hits sending it now (HAProxy's refcount in `show cache`).
    private let sending = Atomic<Int>(0)
    var readers: Int { sending.load(ordering: .relaxed) }
    func beginSending() { sending.add(1, ordering: .relaxed) }
    func endSending() { sending.subtract(1, ordering: .relaxed) }
    // The LRU list (its cache's lock).
    var newer: HTTPCacheEntry?
    unowned(unsafe) var older: HTTPCacheEntry?

    init(hash: UInt64, key: [UInt8], signature: UInt8, variant: HTTPCacheVariant, head: UnsafeRawBufferPointer,
         body: [UInt8], storedAt: Int, expire: Int, originAge: Int, lastModified: Int, etag: Range<Int>?) {
        self.hash = hash
        self.key = key
        self.signature = signature
        self.variant = variant
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(head.count + body.count, 1), alignment: 1)
        if head.count > 0 { storage.baseAddress!.copyMemory(from: head.baseAddress!, byteCount: head.count) }
        body.withUnsafeBytes { b in
            if b.count > 0 { (storage.baseAddress! + head.count).copyMemory(from: b.baseAddress!, byteCount: b.count) }
        }
        self.storage = storage
        headCount = head.count
        self.storedAt = storedAt
        self.expire = expire
        self.originAge = originAge
        self.lastModified = lastModified
        self.etag = etag
        blocks = max(1, (head.count + body.count + HTTPCache.blockSize - 1) / HTTPCache.blockSize)
    }

    deinit { storage.deallocate() }

    var size: Int { storage.count }
    var head: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[0..<headCount]) }
    var body: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[headCount...]) }
    var etagValue: UnsafeRawBufferPointer? { etag.map { UnsafeRawBufferPointer(rebasing: storage[$0]) } }

    func matches(_ other: UnsafeRawBufferPointer) -> Bool {
        key.withUnsafeBytes { HTTPRuleBytes.equals($0, other) }
    }

    func matches(_ other: [UInt8]) -> Bool { key == other }

    /// The Age a hit says: the time spent here plus the Age the server gave.
    func age(now: Int) -> Int { min(max(0, now - storedAt) + originAge, Int(Int32.max)) }
}

/// A request's secondary key (HAProxy's, for the headers its Vary support knows): the encodings
/// Accept-Encoding accepts as a bitmap, and hashes of Referer and Origin (0 when absent).
struct HTTPCacheVariant: Hashable {
    static let acceptEncoding: UInt8 = 1
    static let referer: UInt8 = 2
    static let origin: UInt8 = 4

    var encodings: UInt32 = 0
    var referer: UInt64 = 0
    var origin: UInt64 = 0

    /// Only what `signature` varies on.
    func reduced(to signature: UInt8) -> HTTPCacheVariant {
        HTTPCacheVariant(encodings: signature & HTTPCacheVariant.acceptEncoding != 0 ? encodings : 0,
                         referer: signature & HTTPCacheVariant.referer != 0 ? referer : 0,
                         origin: signature & HTTPCacheVariant.origin != 0 ? origin : 0)
    }

    /// Whether a stored variant (self, its encodings the answer's) serves a request's: the
    /// answer's encodings are all ones the request accepts (an unknown one never is), and the
    /// other varying headers are equal.
    func accepts(_ request: HTTPCacheVariant, signature: UInt8) -> Bool {
        if signature & HTTPCacheVariant.acceptEncoding != 0 {
            guard encodings & HTTPCacheEncoding.other == 0, encodings & request.encodings == encodings else { return false }
        }
        if signature & HTTPCacheVariant.referer != 0, referer != request.referer { return false }
        if signature & HTTPCacheVariant.origin != 0, origin != request.origin { return false }
        return true
    }
}

/// HAProxy's content-coding bits (its `vary_encoding`).
enum HTTPCacheEncoding {
    static let gzip: UInt32 = 1 << 0
    static let deflate: UInt32 = 1 << 1
    static let br: UInt32 = 1 << 2
    static let compress: UInt32 = 1 << 3
    static let aes128gcm: UInt32 = 1 << 4
    static let exi: UInt32 = 1 << 5
    static let pack200gzip: UInt32 = 1 << 6
    static let zstd: UInt32 = 1 << 7
    static let identity: UInt32 = 1 << 8
    static let star: UInt32 = 1 << 9
    static let other: UInt32 = 1 << 10

    /// The bit of a coding's name (without parameters, any case); nil for one HAProxy does not know.
    static func bit(_ name: UnsafeRawBufferPointer) -> UInt32? {
        func named(_ s: StaticString) -> Bool { HTTPRuleBytes.equalsIgnoringCase(name, lowercase: HTTPRuleBytes.literal(s)) }
        if named("gzip") || named("x-gzip") { return gzip }
        if named("br") { return br }
        if named("deflate") { return deflate }
        if named("identity") { return identity }
        if named("zstd") { return zstd }
        if named("*") { return star }
        if named("compress") || named("x-compress") { return compress }
        if named("aes128gcm") { return aes128gcm }
        if named("exi") { return exi }
        if named("pack200-gzip") { return pack200gzip }
        return nil
    }
}
