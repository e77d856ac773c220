import HTTP1
/// One `name=value` of a Cookie or Set-Cookie field, as offsets into the field value.
struct HTTPCookieItem {
    /// The whole item, trimmed.
    var item: Range<Int>
    var name: Range<Int>
    var value: Range<Int>

    /// Calls `body` with each item of a `Cookie` value (`;`-separated; items without `=` and
    /// `$`-attributes are skipped, as HAProxy does).
    static func forEach(in value: UnsafeRawBufferPointer, _ body: (HTTPCookieItem) -> Void) {
        var p = 0
        while p < value.count {
            let item = parse(value, from: p)
            p = item.next
            if let cookie = item.cookie { body(cookie) }
        }
    }

    /// The item starting at `from` and the offset after its `;`.
    static func parse(_ value: UnsafeRawBufferPointer, from: Int) -> (cookie: HTTPCookieItem?, next: Int) {
        let end = value.count
        var p = from
        while p < end && HTTPByte.isWhitespace(value[p]) { p += 1 }
        let nameStart = p
        var nameEnd = p
        while p < end && value[p] != HTTPByte.equals && value[p] != HTTPByte.semicolon {
            if !HTTPByte.isWhitespace(value[p]) { nameEnd = p + 1 }
            p += 1
        }
        guard p < end, value[p] == HTTPByte.equals else {
            return (nil, p + 1)
        }
        p += 1
        while p < end && HTTPByte.isWhitespace(value[p]) { p += 1 }
        let valueStart = p
        var inQuotes = false
        while p < end {
            let b = value[p]
            if b == HTTPByte.quote { inQuotes.toggle() } else if b == HTTPByte.semicolon && !inQuotes { break }
            p += 1
        }
        var valueEnd = p
        while valueEnd > valueStart && HTTPByte.isWhitespace(value[valueEnd - 1]) { valueEnd -= 1 }
        let next = p + 1
        guard nameEnd > nameStart, value[nameStart] != 0x24 else { return (nil, next) }
        return (HTTPCookieItem(item: nameStart..<valueEnd, name: nameStart..<nameEnd, value: valueStart..<valueEnd), next)
    }
}
