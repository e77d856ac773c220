/// Byte-string keys to entry indexes, open addressing over one block of key bytes: a lookup
/// hashes the sample's bytes where they are (no key is built per request). The first index
/// inserted for a key stays (a map's first line with a key wins).
struct MapKeyTable {
    private struct Slot {
        var offset: Int32 = 0
        var length: Int32 = 0
        /// -1: empty.
        var index: Int32 = -1
    }

    private var storage: [UInt8] = []
    private var slots: [Slot]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int) {
        var size = 8
        while size < capacity * 2 { size <<= 1 }
        slots = [Slot](repeating: Slot(), count: size)
        mask = size - 1
    }

    static func hash(_ key: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// Adds `key` for `index` unless the key is there already.
    mutating func insert(_ key: [UInt8], index: Int) {
        if count * 2 >= slots.count { grow() }
        let found = key.withUnsafeBytes { find($0) }
        guard found == nil else { return }
        let offset = storage.count
        storage += key
        place(Slot(offset: Int32(offset), length: Int32(key.count), index: Int32(index)))
        count += 1
    }

    private mutating func place(_ slot: Slot) {
        let h = storage.withUnsafeBytes { MapKeyTable.hash(UnsafeRawBufferPointer(rebasing: $0[Int(slot.offset)..<Int(slot.offset + slot.length)])) }
        var i = h & mask
        while slots[i].index >= 0 { i = (i + 1) & mask }
        slots[i] = slot
    }

    private mutating func grow() {
        let old = slots
        slots = [Slot](repeating: Slot(), count: old.count * 2)
        mask = slots.count - 1
        for s in old where s.index >= 0 { place(s) }
    }

    /// The index of `key`, or nil.
    func find(_ key: UnsafeRawBufferPointer) -> Int? {
        guard count > 0 else { return nil }
        var i = MapKeyTable.hash(key) & mask
        return storage.withUnsafeBytes { bytes -> Int? in
            while true {
                let s = slots[i]
                if s.index < 0 { return nil }
                if Int(s.length) == key.count
                    && (key.count == 0 || memcmp(bytes.baseAddress! + Int(s.offset), key.baseAddress!, key.count) == 0)
                {
                    return Int(s.index)
                }
                i = (i + 1) & mask
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
