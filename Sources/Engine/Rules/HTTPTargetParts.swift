import HTTP1
/// The parts of a request target, as offsets into it (HAProxy's `http_parse_path`).
struct HTTPTargetParts {
    /// Where the path starts: the first `/` of an origin-form target, or the one after an
    /// absolute-form's authority; nil for `*`, authority-form, or an absolute-form without a path.
    var pathStart: Int?
    /// Where what the path replaces starts: the path, or the end of the scheme and authority.
    var afterAuthority: Int
    /// The `?` that starts the query, if any.
    var queryMark: Int?
    var end: Int

    init(_ target: UnsafeRawBufferPointer) {
        end = target.count
        afterAuthority = 0
        pathStart = nil
        queryMark = nil
        guard !target.isEmpty else { return }
        var p = 0
        if target[0] == HTTPByte.slash {
            pathStart = 0
        } else if target[0] == HTTPByte.asterisk {
            return
        } else if let schemeEnd = HTTPTargetParts.schemeEnd(target) {
            p = schemeEnd
            while p < end && target[p] != HTTPByte.slash && target[p] != HTTPByte.questionMark { p += 1 }
            afterAuthority = p
            if p < end && target[p] == HTTPByte.slash { pathStart = p }
        } else {
            return  // authority-form: no path, no query
        }
        queryMark = HTTPRuleBytes.firstIndex(of: HTTPByte.questionMark, in: target, from: p)
    }

    /// The offset after `scheme://` when the target starts with one.
    static func schemeEnd(_ target: UnsafeRawBufferPointer) -> Int? {
        var p = 0
        let scheme = HTTPByteClass.scheme
        guard HTTPByte.lowercased(target[0]) &- 0x61 < 26 else { return nil }
        while p < target.count && scheme.contains(target[p]) { p += 1 }
        guard p + 3 <= target.count, target[p] == HTTPByte.colon, target[p + 1] == HTTPByte.slash,
              target[p + 2] == HTTPByte.slash else { return nil }
        return p + 3
    }

    /// The path, without the query (HAProxy's `path`).
    var path: Range<Int>? {
        guard let pathStart else { return nil }
        return pathStart..<(queryMark ?? end)
    }

    /// The query, without its `?` (HAProxy's `query`: nil without a `?`).
    var query: Range<Int>? {
        guard let queryMark else { return nil }
        return (queryMark + 1)..<end
    }

    /// The path and the query, as a redirect carries them (`/` when there is no path).
    var pathAndQuery: Range<Int>? {
        guard let pathStart else { return nil }
        return pathStart..<end
    }
}

/// `url_param`: parameters in a query string, delimited by `&` or `;` (HAProxy's delimiters).
enum HTTPQueryParameters {
    /// Calls `body` with the value of each parameter named `name` (case-sensitive) in `query`.
    @discardableResult
    static func forEachValue(named name: UnsafeRawBufferPointer, in query: UnsafeRawBufferPointer,
                             _ body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        var p = 0
        let end = query.count
        while p <= end {
            var q = p
            while q < end && query[q] != 0x26 && query[q] != HTTPByte.semicolon { q += 1 }
            // query[p..<q] is one parameter.
            if q - p > name.count && query[p + name.count] == HTTPByte.equals
                && HTTPRuleBytes.matches(query, at: p, name, ignoreCase: false) {
                if !body(HTTPRuleBytes.slice(query, (p + name.count + 1)..<q)) { return false }
            }
            p = q + 1
        }
        return true
    }

    static func firstValue(named name: UnsafeRawBufferPointer, in query: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        var found: UnsafeRawBufferPointer?
        forEachValue(named: name, in: query) { value in
            found = value
            return false
        }
        return found
    }
}
