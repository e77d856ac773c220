import ConfigModel
import Glibc

/// A stick table's key: up to 16 bytes inline (IPv4, IPv6, integers, short strings: no
/// allocation per lookup), longer keys as an array.
enum StickKey: Hashable {
    case small(UInt64, UInt64, UInt8)
    case large([UInt8])

    init(bytes: UnsafeRawBufferPointer) {
        if bytes.count <= 16 {
            var a: UInt64 = 0, b: UInt64 = 0
            for i in 0..<bytes.count {
                if i < 8 { a |= UInt64(bytes[i]) << (8 * UInt64(i)) } else { b |= UInt64(bytes[i]) << (8 * UInt64(i - 8)) }
            }
            self = .small(a, b, UInt8(bytes.count))
        } else {
            self = .large(Array(bytes))
        }
    }

    init(bytes: [UInt8]) {
        self = bytes.withUnsafeBytes { StickKey(bytes: $0) }
    }

    var bytes: [UInt8] {
        switch self {
        case .large(let b): return b
        case .small(let a, let b, let n):
            return (0..<Int(n)).map { i in i < 8 ? UInt8(truncatingIfNeeded: a >> (8 * UInt64(i))) : UInt8(truncatingIfNeeded: b >> (8 * UInt64(i - 8))) }
        }
    }
}

/// One entry: its key, who tracks it and when it was last touched, and after them, in the same
/// allocation, its stored values (`StickTable.offsets`: as many as the table's data types take),
/// so that an entry costs one allocation, as HAProxy's stksess with its data. Every field is
/// read and written under its table's lock only.
final class StickEntry: ManagedBuffer<StickEntry.Fields, Int> {
    struct Fields {
        var key: StickKey
        /// Sessions tracking the entry now (`use=`): an entry in use never expires nor is evicted.
        var trackers: Int32 = 0
        var listed = false
        /// Removed from its table (cleared, expired or evicted): trackers still holding it count
        /// into nothing the table shows.
        var removed = false
        /// Monotonic milliseconds of its last use: it expires at `touched + expire`.
        var touched = 0
        /// The table's list of entries not in use, least recently used first.
        var older: StickEntry?
        var newer: StickEntry?
    }

    /// An entry of `key` with `width` values, all 0.
    static func make(key: StickKey, width: Int) -> StickEntry {
        let e = unsafeDowncast(create(minimumCapacity: width) { _ in Fields(key: key) }, to: StickEntry.self)
        e.withUnsafeMutablePointerToElements { $0.initialize(repeating: 0, count: width) }
        return e
    }

    var key: StickKey {
        get { header.key }
        set { header.key = newValue }
    }
    var trackers: Int {
        get { Int(header.trackers) }
        set { header.trackers = Int32(truncatingIfNeeded: newValue) }
    }
    var touched: Int {
        get { header.touched }
        set { header.touched = newValue }
    }
    var older: StickEntry? {
        get { header.older }
        set { header.older = newValue }
    }
    var newer: StickEntry? {
        get { header.newer }
        set { header.newer = newValue }
    }
    var listed: Bool {
        get { header.listed }
        set { header.listed = newValue }
    }
    var removed: Bool {
        get { header.removed }
        set { header.removed = newValue }
    }
    /// The stored values (valid while the entry is alive: the caller holds it).
    var values: UnsafeMutablePointer<Int> { withUnsafeMutablePointerToElements { $0 } }
}

/// The table's index holds the entries themselves (8 bytes a slot), found by their key.
extension StickEntry: Hashable {
    static func == (a: StickEntry, b: StickEntry) -> Bool { a.header.key == b.header.key }
    func hash(into hasher: inout Hasher) { hasher.combine(header.key) }
}

/// A stick table (HAProxy's `stick-table`): keys to counters, shared by every event loop.
///
/// **Lock.** One pthread mutex per table (`lock`) guards the entries, their values and the
/// expiry list: a session takes it to track an entry (once), to read or change a counter (each
/// fetch or action), and to release it at its end. The critical sections are a hash lookup and
/// a few integer updates; nothing allocates under the lock except a new entry. Nothing else in
/// the data path takes it.
///
/// **Expiry.** Entries not in use sit in a list ordered by last use (every table has one
/// `expire`, so that order is the order they expire in): a touch moves an entry to the end, and
/// expiry pops from the front while the front has expired, O(1) per entry and never a scan. An
/// entry in use is off the list (it cannot expire, as in HAProxy) and goes back to its end,
/// touched, when its last tracker lets it go. Expired entries are removed before any lookup or
/// dump, and by the control loop's timer every second (`Engine.stickTables`): expiry is exact to
/// whoever looks, and memory is given back within a second.
///
/// **Reloads.** A table belongs to no generation: the engine keeps one per name and a new
/// generation whose table has the same identity (`StickTableConfig.identity`) takes the same
/// object, entries included (`StickTableRegistry`).
final class StickTable: @unchecked Sendable {
    let name: String
    let type: StickKeyType
    let keyLength: Int
    let size: Int
    let store: [StickDataItem]
    let identity: String
    /// Where each data type's value starts in `StickEntry.values` (-1: not stored). Counters take
    /// one slot, rates three (period start, current count, previous count).
    let offsets: [Int]
    let periods: [Int]
    let width: Int

    private let lock = Lock()
    /// The entries by key: a set of the entries (not a key-to-entry dictionary, which would
    /// keep every key twice and a slot three times as large), looked up through `probe`.
    private var entries: Set<StickEntry> = []
    /// An entry made once, given the key a lookup looks for (lock held).
    private let probe = StickEntry.make(key: .small(0, 0, 0), width: 0)
    private var oldest: StickEntry?
    private var newest: StickEntry?
    /// Milliseconds an entry lives after its last use (0: until evicted). Changed by a reload
    /// that keeps the table.
    private var expire: Int
    private var noPurge: Bool

    init(_ config: StickTableConfig) {
        name = config.name
        type = config.type
        keyLength = config.keyLength
        size = config.size
        store = config.store
        identity = config.identity
        expire = config.expire ?? 0
        noPurge = config.noPurge
        var offsets = [Int](repeating: -1, count: StickDataType.allCases.count)
        var periods = [Int](repeating: 0, count: StickDataType.allCases.count)
        var width = 0
        for item in config.store {
            offsets[item.type.index] = width
            periods[item.type.index] = item.period
            width += item.type.isRate ? 3 : 1
        }
        self.offsets = offsets
        self.periods = periods
        self.width = width
    }

    /// A reload kept the table: its new `expire` and `nopurge`.
    func update(_ config: StickTableConfig) {
        lock.withLock {
            expire = config.expire ?? 0
            noPurge = config.noPurge
        }
    }

    static func nowMS() -> Int { Int(MonotonicClock.now() * 1000) }

    func stores(_ type: StickDataType) -> Bool { offsets[type.index] >= 0 }

    // MARK: the list of entries not in use

    private func unlist(_ e: StickEntry) {
        guard e.listed else { return }
        if let o = e.older { o.newer = e.newer } else { oldest = e.newer }
        if let n = e.newer { n.older = e.older } else { newest = e.older }
        e.older = nil
        e.newer = nil
        e.listed = false
    }

    private func listAsNewest(_ e: StickEntry) {
        e.older = newest
        e.newer = nil
        if let n = newest { n.newer = e } else { oldest = e }
        newest = e
        e.listed = true
    }

    private func remove(_ e: StickEntry) {
        unlist(e)
        entries.remove(e)
        e.removed = true
    }

    /// `key`'s entry. Lock held.
    private func lookup(_ key: StickKey) -> StickEntry? {
        probe.key = key
        guard let i = entries.firstIndex(of: probe) else { return nil }
        return entries[i]
    }

    /// Removes the entries whose time is up. Lock held.
    private func purgeExpired(_ now: Int) {
        guard expire > 0 else { return }
        while let e = oldest, e.touched + expire <= now { remove(e) }
    }

    /// The entry of `key`, made when missing (nil: the table is full and `nopurge`). Lock held.
    private func entry(_ key: StickKey, now: Int) -> StickEntry? {
        purgeExpired(now)
        if let e = lookup(key) { return e }
        if entries.count >= size {
            // Full: the least recently used entry not in use makes room (HAProxy purges the
            // oldest unused entries), unless `nopurge`.
            guard !noPurge, let victim = oldest else { return nil }
            remove(victim)
        }
        let e = StickEntry.make(key: key, width: width)
        e.touched = now
        entries.insert(e)
        listAsNewest(e)
        return e
    }

    private func touch(_ e: StickEntry, _ now: Int) {
        e.touched = now
        if e.listed {
            unlist(e)
            listAsNewest(e)
        }
    }

    // MARK: values (lock held)

    private func add(_ e: StickEntry, _ type: StickDataType, _ n: Int, _ now: Int) {
        let o = offsets[type.index]
        guard o >= 0 else { return }
        if type.isRate {
            StickTable.rateAdd(e.values, o, period: periods[type.index], n, now)
        } else {
            e.values[o] &+= n
        }
    }

    private func read(_ e: StickEntry, _ type: StickDataType, _ now: Int) -> Int? {
        let o = offsets[type.index]
        guard o >= 0 else { return nil }
        return type.isRate ? StickTable.rate(e.values, o, period: periods[type.index], now) : e.values[o]
    }

    private func write(_ e: StickEntry, _ type: StickDataType, _ v: Int, _ now: Int) {
        let o = offsets[type.index]
        guard o >= 0 else { return }
        if type.isRate {
            e.values[o] = now
            e.values[o + 1] = v
            e.values[o + 2] = 0
        } else {
            e.values[o] = v
        }
    }

    /// HAProxy's `update_freq_ctr_period`: the period starts at the first event; an event more
    /// than a period after it starts the next period (the previous count is kept), more than
    /// two periods after, a fresh one.
    static func rateAdd(_ v: UnsafeMutablePointer<Int>, _ o: Int, period: Int, _ n: Int, _ now: Int) {
        if now - v[o] >= period {
            v[o + 2] = v[o + 1]
            v[o + 1] = 0
            v[o] += period
            if now - v[o] >= period {
                v[o + 2] = 0
                v[o] = now
            }
        }
        v[o + 1] &+= n
    }

    /// HAProxy's `read_freq_ctr_period`: the current count plus the previous one weighted by the
    /// part of the sliding window it still covers.
    static func rate(_ v: UnsafePointer<Int>, _ o: Int, period: Int, _ now: Int) -> Int {
        var current = v[o + 1]
        var past = v[o + 2]
        var remain = v[o] + period - now
        if remain < 0 {
            remain += period
            past = remain >= 0 ? current : 0
            current = 0
        }
        guard remain >= 0, period > 0 else { return current }
        return current + Int((Int64(past) * Int64(remain)) / Int64(period))
    }

    // MARK: what sessions do

    /// `track-sc*`: the entry of `key` (made if missing), in use by one more tracker, with its
    /// connection counters counted (HAProxy's `stream_track_stkctr`); `httpRequest`: the
    /// request being tracked counts too; `session`: a session starts with it (`tcp-request
    /// connection|content` tracking).
    func track(_ key: StickKey, httpRequest: Bool, session: Bool) -> StickEntry? {
        let now = StickTable.nowMS()
        return lock.withLock { () -> StickEntry? in
            guard let e = entry(key, now: now) else { return nil }
            e.trackers += 1
            unlist(e)
            e.touched = now
            add(e, .connCurrent, 1, now)
            add(e, .connCount, 1, now)
            add(e, .connRate, 1, now)
            if session {
                add(e, .sessionCount, 1, now)
                add(e, .sessionRate, 1, now)
            }
            if httpRequest {
                add(e, .httpRequestCount, 1, now)
                add(e, .httpRequestRate, 1, now)
            }
            return e
        }
    }

    /// The end of a request or a session on a tracked entry: its HTTP error and its bytes are
    /// counted, and (`release`) the tracker lets the entry go.
    func finish(_ e: StickEntry, error: Bool, bytesIn: Int, bytesOut: Int, release: Bool) {
        let now = StickTable.nowMS()
        lock.withLock {
            if error {
                add(e, .httpErrorCount, 1, now)
                add(e, .httpErrorRate, 1, now)
            }
            if bytesIn > 0 {
                add(e, .bytesInCount, bytesIn, now)
                add(e, .bytesInRate, bytesIn, now)
            }
            if bytesOut > 0 {
                add(e, .bytesOutCount, bytesOut, now)
                add(e, .bytesOutRate, bytesOut, now)
            }
            if release { releaseLocked(e, now) } else { touch(e, now) }
        }
    }

    /// A tracker lets `e` go: `conn_cur` drops, and the entry expires `expire` from now.
    func release(_ e: StickEntry) {
        let now = StickTable.nowMS()
        lock.withLock { releaseLocked(e, now) }
    }

    private func releaseLocked(_ e: StickEntry, _ now: Int) {
        add(e, .connCurrent, -1, now)
        let o = offsets[StickDataType.connCurrent.index]
        if o >= 0, e.values[o] < 0 { e.values[o] = 0 }
        e.trackers -= 1
        e.touched = now
        if e.trackers == 0, !e.removed { listAsNewest(e) }
    }

    /// Counts an event on a tracked entry (a session, another HTTP request).
    func count(_ e: StickEntry, _ type: StickDataType, _ n: Int, rate: StickDataType) {
        let now = StickTable.nowMS()
        lock.withLock {
            add(e, type, n, now)
            add(e, rate, n, now)
            touch(e, now)
        }
    }

    /// A stored value of a tracked entry (nil: not stored).
    func value(_ e: StickEntry, _ type: StickDataType) -> Int? {
        let now = StickTable.nowMS()
        return lock.withLock { read(e, type, now) }
    }

    /// The value stored for `key` (nil: no entry, or not stored); `src_*` and `table_*`.
    func value(of key: StickKey, _ type: StickDataType) -> Int? {
        let now = StickTable.nowMS()
        return lock.withLock {
            purgeExpired(now)
            guard let e = lookup(key) else { return nil }
            return read(e, type, now)
        }
    }

    /// `use=` of `key`'s entry (0 without one).
    func trackers(of key: StickKey) -> Int {
        lock.withLock { lookup(key)?.trackers ?? 0 }
    }

    func trackers(_ e: StickEntry) -> Int { lock.withLock { e.trackers } }

    /// `inc_gpc0`/`sc-inc-gpc0` (`gpc` 0 or 1): the new value; nil when the table stores neither
    /// the counter nor its rate. `key`'s entry is made when missing (HAProxy's `src_inc_gpc0`).
    func incrementGPC(_ gpc: Int, entry e: StickEntry?, key: StickKey? = nil) -> Int? {
        let counter: StickDataType = gpc == 0 ? .gpc0 : .gpc1
        let rate: StickDataType = gpc == 0 ? .gpc0Rate : .gpc1Rate
        guard stores(counter) || stores(rate) else { return nil }
        let now = StickTable.nowMS()
        return lock.withLock { () -> Int? in
            guard let e = e ?? key.flatMap({ entry($0, now: now) }) else { return nil }
            add(e, rate, 1, now)
            add(e, counter, 1, now)
            touch(e, now)
            return read(e, counter, now) ?? 0
        }
    }

    /// `clr_gpc0`: the value before, and 0 stored.
    func clearGPC(_ gpc: Int, entry e: StickEntry?, key: StickKey? = nil) -> Int? {
        let counter: StickDataType = gpc == 0 ? .gpc0 : .gpc1
        guard stores(counter) else { return nil }
        let now = StickTable.nowMS()
        return lock.withLock { () -> Int? in
            guard let e = e ?? key.flatMap({ entry($0, now: now) }) else { return nil }
            let before = read(e, counter, now)
            write(e, counter, 0, now)
            touch(e, now)
            return before
        }
    }

    /// `sc-set-gpt0`.
    func setGPT0(_ e: StickEntry, _ value: Int) {
        let now = StickTable.nowMS()
        lock.withLock {
            write(e, .gpt0, value, now)
            touch(e, now)
        }
    }

    // MARK: the admin socket

    /// One entry as `show table` prints it.
    struct Row {
        var id: UInt
        var key: StickKey
        var trackers: Int
        var expiresIn: Int
        /// The stored values in HAProxy's order.
        var values: [(StickDataItem, Int)]
    }

    var used: Int {
        let now = StickTable.nowMS()
        return lock.withLock {
            purgeExpired(now)
            return entries.count
        }
    }

    /// Every entry (or `key`'s), oldest use first.
    func rows(key: StickKey? = nil) -> [Row] {
        let now = StickTable.nowMS()
        return lock.withLock {
            purgeExpired(now)
            var list: [StickEntry]
            if let key {
                list = lookup(key).map { [$0] } ?? []
            } else {
                list = Array(entries)
                list.sort { $0.touched < $1.touched }
            }
            return list.map { e in
                Row(id: UInt(bitPattern: Unmanaged.passUnretained(e).toOpaque()), key: e.key, trackers: e.trackers,
                    expiresIn: expire > 0 ? max(0, e.touched + expire - now) : 0,
                    values: store.map { ($0, read(e, $0.type, now) ?? 0) })
            }
        }
    }

    /// `clear table NAME [key K]`: removes entries not in use (HAProxy keeps tracked ones).
    func clear(key: StickKey? = nil) {
        lock.withLock {
            if let key {
                if let e = lookup(key), e.trackers == 0 { remove(e) }
                return
            }
            for e in Array(entries) where e.trackers == 0 { remove(e) }
        }
    }

    /// `set table NAME key K data.FIELD V`: the entry is made when missing. False when the table
    /// is full (`nopurge`).
    func set(key: StickKey, _ values: [(StickDataType, Int)]) -> Bool {
        let now = StickTable.nowMS()
        return lock.withLock {
            guard let e = entry(key, now: now) else { return false }
            for (type, v) in values { write(e, type, v, now) }
            touch(e, now)
            return true
        }
    }

    /// The control loop's timer: removes what expired (nothing else looks at an idle table).
    func expireNow() {
        let now = StickTable.nowMS()
        lock.withLock { purgeExpired(now) }
    }

    // MARK: keys

    /// `text` as a key of this table (`show table … key K`), nil when it is not one.
    func key(parsing text: String) -> StickKey? {
        switch type {
        case .ip:
            guard let a = IPAddress(text) else { return nil }
            switch a {
            case .v4(let v): return StickTable.ipv4Key(v)
            case .v6: return key(address: HTTPAddressBits(a))
            }
        case .ipv6:
            guard let a = IPAddress(text) else { return nil }
            return key(address: HTTPAddressBits(a))
        case .integer:
            guard let n = Int(text) else { return nil }
            return key(integer: n)
        case .string:
            return key(bytes: Array(text.utf8))
        case .binary:
            var bytes: [UInt8] = []
            let digits = Array(text.utf8)
            guard digits.count % 2 == 0 else { return nil }
            var i = 0
            while i < digits.count {
                guard let b = UInt8(String(decoding: digits[i..<(i + 2)], as: UTF8.self), radix: 16) else { return nil }
                bytes.append(b)
                i += 2
            }
            return key(bytes: bytes)
        }
    }

    static func ipv4Key(_ v: UInt32) -> StickKey { .small(UInt64(v), 0, 4) }

    /// An address as a key: an `ip` table takes IPv4 (and IPv4-mapped IPv6), an `ipv6` table
    /// takes both (IPv4 mapped), as HAProxy converts them.
    func key(address a: HTTPAddressBits) -> StickKey? {
        switch type {
        case .ip:
            if !a.isV6 { return StickTable.ipv4Key(a.v4) }
            return a.mappedV4.map(StickTable.ipv4Key)
        case .ipv6:
            if a.isV6 { return .small(a.high, a.low, 16) }
            return .small(0, 0xFFFF_0000_0000 | UInt64(a.v4), 16)
        case .integer, .string, .binary:
            return nil
        }
    }

    func key(integer n: Int) -> StickKey? {
        type == .integer ? .small(UInt64(bitPattern: Int64(n)), 0, 8) : nil
    }

    /// String and binary keys: at most `keyLength` bytes (binary keys are padded with zeros to it).
    func key(bytes: UnsafeRawBufferPointer) -> StickKey? {
        switch type {
        case .string:
            return StickKey(bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<min(bytes.count, keyLength)]))
        case .binary:
            if bytes.count >= keyLength { return StickKey(bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<keyLength])) }
            var padded = [UInt8](repeating: 0, count: keyLength)
            for i in 0..<bytes.count { padded[i] = bytes[i] }
            return StickKey(bytes: padded)
        default:
            return nil
        }
    }

    func key(bytes: [UInt8]) -> StickKey? { bytes.withUnsafeBytes { key(bytes: $0) } }

    /// A key as `show table` writes it.
    func describe(_ key: StickKey) -> String {
        let b = key.bytes
        switch type {
        case .ip:
            guard case .small(let v, _, _) = key else { return "" }
            let a = UInt32(truncatingIfNeeded: v)
            return "\(a >> 24).\((a >> 16) & 0xFF).\((a >> 8) & 0xFF).\(a & 0xFF)"
        case .ipv6:
            // inet_ntop's text, as HAProxy prints it (`::ffff:10.1.2.3` for a mapped IPv4).
            guard case .small(let high, let low, _) = key else { return "" }
            var raw = (high.bigEndian, low.bigEndian)
            var buffer = [CChar](repeating: 0, count: 46)
            _ = withUnsafeBytes(of: &raw) { inet_ntop(AF_INET6, $0.baseAddress, &buffer, 46) }
            return String(cString: buffer)
        case .integer:
            guard case .small(let v, _, _) = key else { return "" }
            return String(Int64(bitPattern: v))
        case .string:
            return String(decoding: b, as: UTF8.self)
        case .binary:
            return b.map { String($0, radix: 16, uppercase: false).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        }
    }
}
