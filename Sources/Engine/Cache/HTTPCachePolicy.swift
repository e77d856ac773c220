import HTTP1
import Glibc

/// What `http-request cache-use` learnt of the request, kept (in the connection's
/// `HTTPRuleScratch`) until its answer: the cache, the key, whether the request may be served from
/// the cache and whether its answer may be stored (HAProxy's TX_CACHE_IGNORE and TX_CACHEABLE).
/// Allocated once per connection, reused by each request.
final class HTTPCacheRequest {
    /// The cache of the first `cache-use` that ran for the request; nil: none ran.
    var cache: HTTPCache?
    /// The rule was a backend's: the backend counts the lookup.
    var byBackend = false
    /// `https://` + Host + URI, or the absolute URI; empty when the request has no Host.
    var key: [UInt8] = []
    var hash: UInt64 = 0
    /// Not served from the cache (not GET or HEAD, Authorization, Cache-Control no-cache…).
    var ignore = false
    /// May be stored (a safe method, no Authorization, no `Cache-Control: no-store`).
    var storable = false
    var method = HTTPMethod.get
    var variant = HTTPCacheVariant()
    /// Accept-Encoding could not be read (too many values): an answer varying on it is not stored.
    var variantFailed = false
    /// `http-response cache-store`: the cache the answer goes to.
    var storeIn: HTTPCache?
    /// What the answer's head said about storing it (`HTTPCachePolicy.storePlan`), and the head
    /// to store as it stood then, with the ETag's place in it.
    var plan: HTTPCacheStorePlan?
    var head: [UInt8] = []
    var etag: Range<Int>?

    func reset() {
        cache = nil
        storeIn = nil
        plan = nil
    }

    var keyBytes: UnsafeRawBufferPointer { key.withUnsafeBytes { $0 } }
}

/// How a stored answer is kept: its freshness and what a conditional request compares.
struct HTTPCacheStorePlan {
    var expire: Int
    var originAge: Int
    var lastModified: Int
    var signature: UInt8
    var variant: HTTPCacheVariant
}

/// HAProxy's rules for what its cache serves and stores (src/cache.c and
/// `http_check_request_for_cacheability` / `http_check_response_for_cacheability`).
enum HTTPCachePolicy {
    /// `cache-use`: the request's key and flags.
    static func prepare(_ request: HTTPMessageView, cache: HTTPCache, byBackend: Bool, into facts: HTTPCacheRequest) {
        guard facts.cache == nil else { return }
        facts.cache = cache
        facts.byBackend = byBackend
        let method = request.head.pointee.method
        facts.method = request.edits.method == nil ? method : HTTPCachePolicy.method(request.method)
        let safe: Bool
        switch facts.method {
        case .get, .head, .options, .trace: safe = true
        default: safe = false
        }
        facts.storable = safe
        facts.ignore = request.version != .http11 || (facts.method != .get && facts.method != .head)
        // Authorization: neither served nor stored.
        if request.hasField(HTTPRuleBytes.literal("authorization")) {
            facts.storable = false
            facts.ignore = true
        }
        var pragmaNoCache = false
        if let pragma = request.firstValue(of: HTTPRuleBytes.literal("pragma"), split: false),
           HTTPRuleBytes.equals(pragma, HTTPRuleBytes.literal("no-cache"), ignoreCase: true) {
            pragmaNoCache = true
        }
        var cacheControl = false
        _ = request.forEachValue(of: HTTPRuleBytes.literal("cache-control"), split: true) { v in
            cacheControl = true
            func starts(_ s: StaticString) -> Bool { HTTPRuleBytes.hasPrefix(v, HTTPRuleBytes.literal(s), ignoreCase: true) }
            if starts("max-age") || starts("no-cache") || starts("max-stale") || starts("min-fresh") {
                facts.ignore = true
            } else if starts("no-store") {
                facts.storable = false
            }
            return true
        }
        if !cacheControl && pragmaNoCache { facts.ignore = true }
        // The key: the absolute URI as it is, else `https://` + Host + the target.
        facts.key.removeAll(keepingCapacity: true)
        let target = request.target
        if target.first == UInt8(ascii: "/") || target.first == UInt8(ascii: "*") {
            if let host = request.firstValue(of: HTTPRuleBytes.literal("host"), split: false) {
                facts.key.append(contentsOf: HTTPRuleBytes.literal("https://"))
                facts.key.append(contentsOf: host)
                facts.key.append(contentsOf: target)
            }
        } else {
            facts.key.append(contentsOf: target)
        }
        facts.hash = facts.key.withUnsafeBytes { fnv1a($0) }
        // The secondary key, for an answer that varies (computed only where Vary is processed).
        facts.variant = HTTPCacheVariant()
        facts.variantFailed = false
        if cache.section.processVary {
            if let e = acceptedEncodings(request) { facts.variant.encodings = e } else { facts.variantFailed = true }
            if let r = request.firstValue(of: HTTPRuleBytes.literal("referer"), split: false) { facts.variant.referer = fnv1a(r) | 1 }
            if let o = request.firstValue(of: HTTPRuleBytes.literal("origin"), split: false) { facts.variant.origin = fnv1a(o) | 1 }
        }
    }

    private static func method(_ name: UnsafeRawBufferPointer) -> HTTPMethod {
        if HTTPRuleBytes.equals(name, HTTPRuleBytes.literal("GET")) { return .get }
        if HTTPRuleBytes.equals(name, HTTPRuleBytes.literal("HEAD")) { return .head }
        if HTTPRuleBytes.equals(name, HTTPRuleBytes.literal("POST")) { return .post }
        return .other
    }

    /// HAProxy's Accept-Encoding bitmap: every coding listed without a null weight, identity
    /// unless refused, all with `*`, all without the header; nil past 16 values.
    static func acceptedEncodings(_ request: HTTPMessageView) -> UInt32? {
        var accepted = HTTPCacheEncoding.identity
        var refused: UInt32 = ~0
        var count = 0
        let within = request.forEachValue(of: HTTPRuleBytes.literal("accept-encoding"), split: true) { v in
            count += 1
            guard count < 16 else { return false }
            guard !v.isEmpty else { return true }
            let (name, nullWeight) = coding(v)
            if let bit = HTTPCacheEncoding.bit(name) {
                if nullWeight { refused &= ~bit } else { accepted |= bit }
            } else {
                accepted |= HTTPCacheEncoding.other
            }
            return true
        }
        guard within else { return nil }
        if count == 0 { return ~0 }
        if accepted & HTTPCacheEncoding.star != 0 { accepted = ~0 }
        return accepted & refused
    }

    /// A coding's name and whether its weight is null (`;q=0`, `;q=0.0`…).
    private static func coding(_ v: UnsafeRawBufferPointer) -> (UnsafeRawBufferPointer, Bool) {
        guard let semicolon = HTTPRuleBytes.firstIndex(of: UInt8(ascii: ";"), in: v) else { return (v, false) }
        var end = semicolon
        while end > 0, v[end - 1] == UInt8(ascii: " ") || v[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        var i = semicolon + 1
        while i < v.count, v[i] == UInt8(ascii: " ") || v[i] == UInt8(ascii: "\t") { i += 1 }
        var nullWeight = false
        if i + 2 < v.count + 1, i + 1 < v.count, v[i] | 0x20 == UInt8(ascii: "q"), v[i + 1] == UInt8(ascii: "=") {
            var j = i + 2
            var zero = j < v.count && v[j] == UInt8(ascii: "0")
            j += 1
            if zero, j < v.count, v[j] == UInt8(ascii: ".") {
                j += 1
                while j < v.count, v[j] >= UInt8(ascii: "0"), v[j] <= UInt8(ascii: "9") {
                    if v[j] != UInt8(ascii: "0") { zero = false }
                    j += 1
                }
            }
            nullWeight = zero
        }
        return (UnsafeRawBufferPointer(rebasing: v[0..<end]), nullWeight)
    }

    /// `cache-store` on the answer's head (after the http-response rules): nil when it is not
    /// stored. A successful unsafe request drops its key's entries here.
    static func storePlan(_ response: HTTPMessageView, request facts: HTTPCacheRequest, cache: HTTPCache,
                          contentLength: UInt64?, now: Int) -> HTTPCacheStorePlan? {
        // The key is made by cache-use: without it nothing is stored.
        guard facts.cache != nil, !facts.key.isEmpty else { return nil }
        let status = response.status
        guard facts.method == .get else {
            switch facts.method {
            case .get, .head, .options, .trace: break
            default:
                if status >= 200 && status < 400 { cache.invalidate(hash: facts.hash, key: facts.keyBytes) }
            }
            return nil
        }
        guard status == 200 else { return nil }
        if let length = contentLength, Int(clamping: length) > cache.section.maxObjectSize { return nil }
        // Vary: only on the headers HAProxy knows, and only with process-vary.
        var signature: UInt8 = 0
        var varyKnown = true
        var varies = false
        _ = response.forEachValue(of: HTTPRuleBytes.literal("vary"), split: true) { v in
            varies = true
            if HTTPRuleBytes.equals(v, HTTPRuleBytes.literal("accept-encoding"), ignoreCase: true) {
                signature |= HTTPCacheVariant.acceptEncoding
            } else if HTTPRuleBytes.equals(v, HTTPRuleBytes.literal("referer"), ignoreCase: true) {
                signature |= HTTPCacheVariant.referer
            } else if HTTPRuleBytes.equals(v, HTTPRuleBytes.literal("origin"), ignoreCase: true) {
                signature |= HTTPCacheVariant.origin
            } else {
                varyKnown = false
                return false
            }
            return true
        }
        if varies && !cache.section.processVary { return nil }
        guard varyKnown else { return nil }
        var variant = facts.variant.reduced(to: signature)
        if signature & HTTPCacheVariant.acceptEncoding != 0 {
            guard !facts.variantFailed else { return nil }
            // The answer's own encodings: an unknown one is not stored.
            var encodings: UInt32 = 0
            var known = true
            _ = response.forEachValue(of: HTTPRuleBytes.literal("content-encoding"), split: true) { v in
                guard let bit = HTTPCacheEncoding.bit(coding(v).0) else { known = false; return false }
                encodings |= bit
                return true
            }
            guard known else { return nil }
            variant.encodings = encodings == 0 ? HTTPCacheEncoding.identity : encodings
        }
        guard let maxAge = cacheability(response, cache: cache, now: now),
              facts.storable || maxAge.isPublic else { return nil }
        // An Age the answer already has counts, and one past its own max age is stale.
        var originAge = 0
        if let age = response.firstValue(of: HTTPRuleBytes.literal("age"), split: false) {
            guard let a = HTTPRuleBytes.integer(age), a > 0 else { return nil }
            originAge = min(a, Int(Int32.max))
            if originAge > maxAge.declared { return nil }
        }
        var lastModified = 0
        if let v = response.firstValue(of: HTTPRuleBytes.literal("last-modified"), split: false), let t = HTTPDate.parse(v) {
            lastModified = t
        } else if let v = response.firstValue(of: HTTPRuleBytes.literal("date"), split: false), let t = HTTPDate.parse(v) {
            lastModified = t
        } else {
            lastModified = now
        }
        return HTTPCacheStorePlan(expire: now + maxAge.effective, originAge: originAge, lastModified: lastModified,
                                  signature: signature, variant: variant)
    }

    /// HAProxy's response cacheability and freshness: nil when the answer may not be stored, else
    /// how long it stays fresh (capped by `max-age`) and what it declared itself.
    /// `isPublic`: `Cache-Control: public`, which makes it storable whatever the request said.
    static func cacheability(_ response: HTTPMessageView, cache: HTTPCache, now: Int) -> (effective: Int, declared: Int, isPublic: Bool)? {
        if let pragma = response.firstValue(of: HTTPRuleBytes.literal("pragma"), split: false),
           HTTPRuleBytes.equals(pragma, HTTPRuleBytes.literal("no-cache"), ignoreCase: true) {
            return nil
        }
        var cacheable = true
        var cookieCacheable = true
        var freshness = false
        var nullMaxAge = false
        var sMaxAge: Int?
        var maxAge: Int?
        var invalid = false
        var isPublic = false
        _ = response.forEachValue(of: HTTPRuleBytes.literal("cache-control"), split: true) { v in
            func equals(_ s: StaticString) -> Bool { HTTPRuleBytes.equals(v, HTTPRuleBytes.literal(s), ignoreCase: true) }
            func starts(_ s: StaticString) -> Bool { HTTPRuleBytes.hasPrefix(v, HTTPRuleBytes.literal(s), ignoreCase: true) }
            if equals("public") {
                isPublic = true
                cacheable = true
                cookieCacheable = true
            } else if equals("max-age=0") {
                nullMaxAge = true
            } else if equals("no-cache=\"set-cookie\"") {
                cookieCacheable = false
            } else if equals("private") || starts("private=") || equals("no-cache") || starts("no-cache=")
                        || equals("no-store") || starts("no-store=") || equals("s-maxage=0") {
                cacheable = false
            } else if starts("s-maxage") {
                freshness = true
                nullMaxAge = false
                if let n = directive(v, 8) { sMaxAge = n } else { invalid = true }
            } else if starts("max-age") {
                freshness = true
                if let n = directive(v, 7) { maxAge = n } else { invalid = true }
            }
            return true
        }
        if nullMaxAge || !cacheable || !cookieCacheable || invalid { return nil }
        var expires: Int?
        if sMaxAge == nil && maxAge == nil, let e = response.firstValue(of: HTTPRuleBytes.literal("expires"), split: false) {
            // An invalid date is a date in the past (RFC 7234 §5.3).
            expires = HTTPDate.parse(e).map { max(0, $0 - now) } ?? 0
            freshness = true
        }
        if !freshness {
            // Without freshness, a validator (ETag or Last-Modified) is needed.
            guard response.hasField(HTTPRuleBytes.literal("etag")) || response.hasField(HTTPRuleBytes.literal("last-modified")) else {
                return nil
            }
        }
        let limit = cache.section.maxAge
        if let s = sMaxAge, s > 0 { return (min(s, limit), s, isPublic) }
        if let m = maxAge, m > 0 { return (min(m, limit), m, isPublic) }
        if let e = expires { return (min(e, limit), e, isPublic) }
        return (limit, Int(Int32.max), isPublic)
    }

    /// The number after `NAME=` (quoted or not) in a directive `NAME` of `count` bytes.
    private static func directive(_ v: UnsafeRawBufferPointer, _ count: Int) -> Int? {
        guard v.count > count + 1, v[count] == UInt8(ascii: "=") else { return nil }
        var i = count + 1
        if v[i] == UInt8(ascii: "\"") { i += 1 }
        var n = 0
        var digits = 0
        while i < v.count, v[i] >= UInt8(ascii: "0"), v[i] <= UInt8(ascii: "9"), digits < 10 {
            n = n * 10 + Int(v[i] - UInt8(ascii: "0"))
            i += 1
            digits += 1
        }
        return digits > 0 ? n : nil
    }

    /// HAProxy's 304 from the cache: an If-None-Match naming the stored ETag (weak comparison) or
    /// `*`; without If-None-Match, an If-Modified-Since not before the entry's date.
    static func notModified(_ request: HTTPMessageView, entry: HTTPCacheEntry) -> Bool {
        var sawIfNoneMatch = false
        var matched = false
        let etag = entry.etagValue
        _ = request.forEachValue(of: HTTPRuleBytes.literal("if-none-match"), split: true) { v in
            sawIfNoneMatch = true
            if HTTPRuleBytes.equals(v, HTTPRuleBytes.literal("*")) { matched = true; return false }
            if let etag, HTTPRuleBytes.equals(weak(v), weak(etag)) { matched = true; return false }
            return true
        }
        if matched { return true }
        if sawIfNoneMatch { return false }
        if let v = request.firstValue(of: HTTPRuleBytes.literal("if-modified-since"), split: false), let t = HTTPDate.parse(v) {
            return entry.lastModified <= t
        }
        return false
    }

    /// An entity tag without its `W/` prefix (the weak comparison).
    private static func weak(_ tag: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        if tag.count >= 2, tag[0] == UInt8(ascii: "W"), tag[1] == UInt8(ascii: "/") {
            return UnsafeRawBufferPointer(rebasing: tag[2...])
        }
        return tag
    }

    /// The wall clock in seconds: what entries' dates and ages are counted in (HAProxy's `date`).
    static func wallSeconds() -> Int { Int(time(nil)) }

    /// The head `cache-store` keeps: the answer as the http-response rules left it (before the
    /// persistence cookie and http-after-response, as HAProxy stores it when its action runs),
    /// without its hop-by-hop fields and Age (a hit says its own); nil when it does not fit
    /// `capacity` bytes or `max-object-size`.
    static func storedHead(_ response: HTTPMessageView, capacity: Int, limit: Int) -> (head: [UInt8], etag: Range<Int>?)? {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 1)
        defer { buffer.deallocate() }
        var writer = HTTPHeadWriter(into: buffer)
        let edits = response.edits
        if let status = edits.status {
            writer.write("HTTP/1.1 ")
            writer.writeDecimal(UInt64(max(status, 0)))
            writer.write(byte: HTTPByte.space)
            if let reason = edits.reason { writer.write(edits.resolve(reason, response.input)) } else { writer.write(HTTPErrorPages.reason(status)) }
            writer.write("\r\n")
        } else {
            writer.writeStartLine(response.head.pointee, from: response.input)
        }
        HTTPRuleSet.writeFields(&writer, response, upgrade: false)
        guard !writer.overflowed else { return nil }
        let written = UnsafeRawBufferPointer(rebasing: buffer[0..<writer.count])
        var head: [UInt8] = []
        head.reserveCapacity(written.count)
        var etag: Range<Int>?
        var start = 0
        var first = true
        while start < written.count {
            guard let nl = HTTPRuleBytes.firstIndex(of: UInt8(ascii: "\n"), in: written, from: start) else { break }
            let line = UnsafeRawBufferPointer(rebasing: written[start..<(nl + 1)])
            start = nl + 1
            if !first {
                func named(_ s: StaticString) -> Bool { HTTPRuleBytes.hasPrefix(line, HTTPRuleBytes.literal(s), ignoreCase: true) }
                if named("age:") { continue }
                if named("etag:") {
                    var v = 5
                    var end = line.count
                    while v < end, line[v] == UInt8(ascii: " ") || line[v] == UInt8(ascii: "\t") { v += 1 }
                    while end > v, line[end - 1] <= UInt8(ascii: " ") { end -= 1 }
                    etag = (head.count + v)..<(head.count + end)
                }
            }
            first = false
            head.append(contentsOf: line)
        }
        guard head.count <= limit else { return nil }
        return (head, etag)
    }

    /// FNV-1a, 64 bits: the key's hash (the key itself is compared on a lookup).
    static func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h &*= 0x0000_0100_0000_01B3
        }
        return h
    }

    static func fnv1a(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { fnv1a($0) } }
}

/// HTTP dates (RFC 9110 §5.6.7): IMF-fixdate, RFC 850 and asctime, as seconds since the epoch.
enum HTTPDate {
    static func parse(_ v: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        func skipSpaces() { while i < v.count, v[i] == UInt8(ascii: " ") { i += 1 } }
        func number(_ maxDigits: Int) -> Int? {
            var n = 0
            var d = 0
            while i < v.count, d < maxDigits, v[i] >= UInt8(ascii: "0"), v[i] <= UInt8(ascii: "9") {
                n = n * 10 + Int(v[i] - UInt8(ascii: "0"))
                i += 1
                d += 1
            }
            return d > 0 ? n : nil
        }
        func month() -> Int? {
            guard i + 3 <= v.count else { return nil }
            let names: [(UInt8, UInt8, UInt8)] = [
                (0x6A, 0x61, 0x6E), (0x66, 0x65, 0x62), (0x6D, 0x61, 0x72), (0x61, 0x70, 0x72), (0x6D, 0x61, 0x79), (0x6A, 0x75, 0x6E),
                (0x6A, 0x75, 0x6C), (0x61, 0x75, 0x67), (0x73, 0x65, 0x70), (0x6F, 0x63, 0x74), (0x6E, 0x6F, 0x76), (0x64, 0x65, 0x63),
            ]
            let m = (v[i] | 0x20, v[i + 1] | 0x20, v[i + 2] | 0x20)
            guard let index = names.firstIndex(where: { $0 == m }) else { return nil }
            i += 3
            return index
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < v.count, v[i] == c else { return false }
            i += 1
            return true
        }
        func time() -> (Int, Int, Int)? {
            guard let h = number(2), expect(UInt8(ascii: ":")), let m = number(2), expect(UInt8(ascii: ":")), let s = number(2),
                  h < 24, m < 60, s < 61 else { return nil }
            return (h, m, s)
        }
        // The day name, up to a comma (IMF-fixdate, RFC 850) or a space (asctime).
        while i < v.count, v[i] != UInt8(ascii: ","), v[i] != UInt8(ascii: " ") { i += 1 }
        guard i < v.count else { return nil }
        var year = 0, mon = 0, day = 0, hms = (0, 0, 0)
        if v[i] == UInt8(ascii: ",") {
            i += 1
            skipSpaces()
            guard let d = number(2) else { return nil }
            day = d
            if expect(UInt8(ascii: "-")) {
                // RFC 850: 06-Nov-94
                guard let m = month(), expect(UInt8(ascii: "-")), let y = number(4) else { return nil }
                mon = m
                year = y < 100 ? (y < 70 ? 2000 + y : 1900 + y) : y
            } else {
                skipSpaces()
                guard let m = month() else { return nil }
                skipSpaces()
                guard let y = number(4) else { return nil }
                mon = m
                year = y
            }
            skipSpaces()
            guard let t = time() else { return nil }
            hms = t
        } else {
            // asctime: Sun Nov  6 08:49:37 1994
            skipSpaces()
            guard let m = month() else { return nil }
            skipSpaces()
            guard let d = number(2) else { return nil }
            skipSpaces()
            guard let t = time() else { return nil }
            skipSpaces()
            guard let y = number(4) else { return nil }
            mon = m
            day = d
            hms = t
            year = y
        }
        guard day >= 1, day <= 31, year >= 1970, year < 10000 else { return nil }
        return days(year: year, month: mon + 1, day: day) * 86400 + hms.0 * 3600 + hms.1 * 60 + hms.2
    }

    /// Days since 1970-01-01 of a civil date (proleptic Gregorian).
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}
