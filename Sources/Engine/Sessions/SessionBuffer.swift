/// Bytes in a pooled buffer: `[start, end)` are held. Buffers are taken when bytes arrive and
/// given back when empty, so an idle keep-alive connection holds none.
struct SessionBuffer {
    var base: UnsafeMutableRawPointer?
    var start = 0
    var end = 0

    var count: Int { end - start }
    var isEmpty: Bool { start == end }

    mutating func take(_ pool: BufferPool) -> UnsafeMutableRawPointer {
        if let base { return base }
        let b = pool.take()
        base = b
        return b
    }

    mutating func releaseIfEmpty(_ pool: BufferPool) {
        guard start == end, let b = base else { return }
        pool.give(b)
        base = nil
        start = 0
        end = 0
    }

    mutating func release(_ pool: BufferPool) {
        if let b = base { pool.give(b) }
        base = nil
        start = 0
        end = 0
    }

    /// Appends bytes (the caller made sure they fit).
    mutating func append(_ bytes: UnsafeRawBufferPointer, pool: BufferPool) {
        let b = take(pool)
        guard bytes.count > 0 else { return }
        (b + end).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        end += bytes.count
    }
}
