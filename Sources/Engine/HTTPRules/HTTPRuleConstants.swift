/// Bytes that live as long as a rule set: header names, patterns, literals, bodies, error pages.
/// Each is its own allocation at a stable address, freed with the set; never mutated after
/// the set is built.
final class HTTPRuleConstants {
    private var blocks: [UnsafeMutableRawBufferPointer] = []

    func bytes(_ source: some Collection<UInt8>, lowercased: Bool = false) -> UnsafeRawBufferPointer {
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: max(source.count, 1), alignment: 1)
        var i = 0
        for b in source {
            block[i] = lowercased ? HTTPByte.lowercased(b) : b
            i += 1
        }
        blocks.append(block)
        return UnsafeRawBufferPointer(start: block.baseAddress, count: source.count)
    }

    func bytes(_ string: String, lowercased: Bool = false) -> UnsafeRawBufferPointer {
        bytes(Array(string.utf8), lowercased: lowercased)
    }

    deinit {
        for block in blocks { block.deallocate() }
    }
}
