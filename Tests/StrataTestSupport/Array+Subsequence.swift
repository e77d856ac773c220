extension Array where Element == UInt8 {
    /// Where `s` first starts in these bytes (an HTTP head's end, `\r\n\r\n`), or nil.
    public func indexOfSubsequence(_ s: [UInt8]) -> Int? {
        guard !s.isEmpty, count >= s.count else { return nil }
        for i in 0...(count - s.count) where self[i] == s[0] && self[i..<i + s.count].elementsEqual(s) { return i }
        return nil
    }

    public func containsSubsequence(_ s: [UInt8]) -> Bool { indexOfSubsequence(s) != nil }
}
