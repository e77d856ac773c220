/// The capture slots of one direction of a request (HAProxy's `req_cap`/`res_cap`): a frontend's
/// `capture … header`, `declare capture` and `http-request capture … len` lines each own one,
/// numbered in the order of their lines. A slot holds at most its length, or nothing.
///
/// Kept in the connection's `HTTPRuleScratch`: the storage grows to the largest layout seen, then
/// requests reuse it (no allocation per request in steady state).
final class HTTPCaptureSlots {
    /// The slots of a frontend: where each one's bytes start in the storage, and its length.
    struct Layout {
        var offsets: [Int] = []
        var limits: [Int] = []
        var total = 0

        init(_ lengths: [Int] = []) {
            for length in lengths {
                offsets.append(total)
                limits.append(length)
                total += length
            }
        }
    }

    private var storage: UnsafeMutableRawPointer?
    private var capacity = 0
    private var layout = Layout()
    /// Each slot's byte count; -1 for an empty slot.
    private var counts: [Int] = []

    deinit { storage?.deallocate() }

    var count: Int { counts.count }

    /// A new request: the frontend's slots, all empty.
    func begin(_ layout: Layout) {
        self.layout = layout
        if layout.total > capacity {
            storage?.deallocate()
            storage = UnsafeMutableRawPointer.allocate(byteCount: layout.total, alignment: 8)
            capacity = layout.total
        }
        counts.removeAll(keepingCapacity: true)
        counts.append(contentsOf: repeatElement(-1, count: layout.limits.count))
    }

    /// Every slot empty again (a new answer from the server).
    func clear() {
        for i in counts.indices { counts[i] = -1 }
    }

    /// `bytes`, truncated to the slot's length, into slot `slot`; nothing when there is no such
    /// slot (a backend's rule naming a slot this frontend lacks, as HAProxy).
    func store(_ slot: Int, _ bytes: UnsafeRawBufferPointer) {
        guard slot >= 0, slot < counts.count else { return }
        let n = min(bytes.count, layout.limits[slot])
        if n > 0 { (storage! + layout.offsets[slot]).copyMemory(from: bytes.baseAddress!, byteCount: n) }
        counts[slot] = n
    }

    /// What slot `slot` holds; nil when it is empty or absent. Valid until the next `begin`.
    func value(_ slot: Int) -> UnsafeRawBufferPointer? {
        guard slot >= 0, slot < counts.count, counts[slot] >= 0 else { return nil }
        guard counts[slot] > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: storage! + layout.offsets[slot], count: counts[slot])
    }

    /// `{v1|v2}` into `out`, as `%hr`/`%hs` print the slots (HAProxy's log encoding: `"#{|}` and
    /// bytes outside printable ASCII written `#XX`); nothing without slots.
    func format(into out: HTTPScratchBuffer) {
        guard !counts.isEmpty else { return }
        out.append(byte: 0x7B)
        for i in counts.indices {
            if i > 0 { out.append(byte: 0x7C) }
            guard let value = value(i) else { continue }
            for b in value {
                if b < 0x20 || b >= 0x7F || b == 0x22 || b == 0x23 || b == 0x7B || b == 0x7C || b == 0x7D {
                    out.append(byte: 0x23)
                    out.append(byte: HTTPRules.hexDigit(b >> 4))
                    out.append(byte: HTTPRules.hexDigit(b & 0xF))
                } else {
                    out.append(byte: b)
                }
            }
        }
        out.append(byte: 0x7D)
    }
}
