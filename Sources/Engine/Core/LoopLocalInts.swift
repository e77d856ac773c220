/// Integers one loop writes and other threads read (per-loop counters and published gauges), in
/// whole cache lines of their own: blocks of different loops are allocated one after the other,
/// and two of them sharing a line would turn every counter store into a cross-core miss (false
/// sharing) for both loops.
enum LoopLocalInts {
    static let cacheLine = 64
    static let perLine = cacheLine / MemoryLayout<Int>.stride

    /// `count` zeroed integers, starting on a cache line and padded to a whole number of lines.
    static func allocate(_ count: Int) -> UnsafeMutablePointer<Int> {
        let rounded = (max(count, 1) + perLine - 1) / perLine * perLine
        let raw = UnsafeMutableRawPointer.allocate(byteCount: rounded * MemoryLayout<Int>.stride, alignment: cacheLine)
        let ints = raw.bindMemory(to: Int.self, capacity: rounded)
        ints.initialize(repeating: 0, count: rounded)
        return ints
    }

    static func deallocate(_ ints: UnsafeMutablePointer<Int>) {
        UnsafeMutableRawPointer(ints).deallocate()
    }
}
