/// Grammar pieces of field values (RFC 9110 §5.6): lists, tokens, parameters, quoted strings,
/// and the Content-Length number. All work on ranges of the caller's bytes.
package enum HTTPFieldValue {
    /// The first offset in `from..<end` that is not SP or HTAB.
    @inline(__always)
    static func skipWhitespace(_ input: UnsafeRawBufferPointer, _ from: Int, _ end: Int) -> Int {
        var p = from
        while p < end && HTTPByte.isWhitespace(input[p]) { p &+= 1 }
        return p
    }

    /// The first offset in `from..<end` that is not a tchar.
    @inline(__always)
    static func tokenEnd(_ input: UnsafeRawBufferPointer, _ from: Int, _ end: Int) -> Int {
        let token = HTTPByteClass.token
        var p = from
        while p < end && token.contains(input[p]) { p &+= 1 }
        return p
    }

    /// `range` without leading and trailing SP/HTAB.
    @inline(__always)
    package static func trim(_ input: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int> {
        let start = skipWhitespace(input, range.lowerBound, range.upperBound)
        var end = range.upperBound
        while end > start && HTTPByte.isWhitespace(input[end &- 1]) { end &-= 1 }
        return start..<end
    }

    /// The offset just after the quoted-string that starts (with its DQUOTE) at `from`, or nil.
    static func quotedStringEnd(_ input: UnsafeRawBufferPointer, _ from: Int, _ end: Int) -> Int? {
        var p = from &+ 1
        let text = HTTPByteClass.quotedText
        while p < end {
            let b = input[p]
            if b == HTTPByte.quote { return p &+ 1 }
            if b == HTTPByte.backslash {
                guard p &+ 1 < end, HTTPByte.isFieldContent(input[p &+ 1]) else { return nil }
                p &+= 2
            } else {
                guard text.contains(b) else { return nil }
                p &+= 1
            }
        }
        return nil
    }

    /// Calls `body` with each element of the comma-separated list in `range`, trimmed, empty ones
    /// included (RFC 9110 §5.6.1 has recipients skip them; callers decide). Commas inside quoted
    /// strings do not split. Stops and returns false as soon as `body` does.
    @inline(__always)
    package static func forEachElement(_ input: UnsafeRawBufferPointer, _ range: Range<Int>,
                               _ body: (Range<Int>) -> Bool) -> Bool {
        var start = range.lowerBound
        var p = start
        let end = range.upperBound
        while p < end {
            let b = input[p]
            if b == HTTPByte.comma {
                if !body(trim(input, start..<p)) { return false }
                p &+= 1
                start = p
            } else if b == HTTPByte.quote {
                // An unterminated quote runs to the end of the value; the element's own parser rejects it.
                p = quotedStringEnd(input, p, end) ?? end
            } else {
                p &+= 1
            }
        }
        return body(trim(input, start..<end))
    }

    /// Whether `input[from..<end]` is `*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`,
    /// with the value required when `valueRequired` (transfer-parameter) and optional otherwise
    /// (chunk-ext, RFC 9112 §7.1.1).
    static func isValidParameters(_ input: UnsafeRawBufferPointer, _ from: Int, _ end: Int,
                                  valueRequired: Bool) -> Bool {
        var p = from
        while true {
            if p == end { return true }
            // BWS before ";" is allowed; whitespace that ends the range is not.
            p = skipWhitespace(input, p, end)
            guard p < end, input[p] == HTTPByte.semicolon else { return false }
            p = skipWhitespace(input, p &+ 1, end)
            let nameEnd = tokenEnd(input, p, end)
            guard nameEnd > p else { return false }
            p = skipWhitespace(input, nameEnd, end)
            if p < end && input[p] == HTTPByte.equals {
                p = skipWhitespace(input, p &+ 1, end)
                guard p < end else { return false }
                if input[p] == HTTPByte.quote {
                    guard let q = quotedStringEnd(input, p, end) else { return false }
                    p = q
                } else {
                    let valueEnd = tokenEnd(input, p, end)
                    guard valueEnd > p else { return false }
                    p = valueEnd
                }
            } else if valueRequired {
                return false
            }
        }
    }

    /// The value of a Content-Length list element: 1*DIGIT, at most 2^63 - 1; nil otherwise.
    @inline(__always)
    static func contentLength(_ input: UnsafeRawBufferPointer, _ element: Range<Int>) -> UInt64? {
        guard !element.isEmpty else { return nil }
        let max = UInt64(Int64.max)
        var value: UInt64 = 0
        for p in element {
            let d = input[p] &- HTTPByte.zero
            guard d < 10 else { return nil }
            guard value <= (max - UInt64(d)) / 10 else { return nil }
            value = value * 10 + UInt64(d)
        }
        return value
    }
}
