import HTTP1
import ConfigModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `cookie NAME insert|rewrite|prefix [indirect] [nocache] [httponly] [secure] [maxidle T]
/// [maxlife T]`, compiled.
struct HTTPCompiledCookie {
    let name: UnsafeRawBufferPointer
    let mode: CookiePersistence.Mode
    let indirect: Bool
    let nocache: Bool
    let httpOnly: Bool
    let secure: Bool
    /// `maxidle` and `maxlife` in seconds (0: not set). Insert mode only (the Loader refuses them
    /// elsewhere): the inserted value carries dates, `NAME=VALUE|LAST[|FIRST]`, see `HTTPCookieDate`.
    let maxIdle: Int
    let maxLife: Int

    init(_ cookie: CookiePersistence, constants: HTTPRuleConstants) {
        name = constants.bytes(cookie.name)
        mode = cookie.mode
        indirect = cookie.indirect
        nocache = cookie.nocache
        httpOnly = cookie.httpOnly
        secure = cookie.secure
        // HAProxy keeps them in seconds; a time below a second is a second.
        let dated = cookie.mode == .insert
        maxIdle = dated ? cookie.maxIdle.map { max(1, ($0 + 999) / 1000) } ?? 0 : 0
        maxLife = dated ? cookie.maxLife.map { max(1, ($0 + 999) / 1000) } ?? 0 : 0
    }

    var hasDates: Bool { maxIdle > 0 || maxLife > 0 }
}

/// The dates of a persistence cookie with `maxidle`/`maxlife`, as HAProxy writes them: after the
/// server's value, `|` and the last-seen date, then (with `maxlife`) `|` and the first-seen date.
/// A date is a UNIX time in 4-second units, 30 bits as 5 base64 characters, most significant first
/// (HAProxy's `s30tob64`/`b64tos30`), so cookies stay valid across HAProxy and strata.
enum HTTPCookieDate {
    static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    /// The 5 characters of `seconds`, rounded up to the next 4-second step as HAProxy does.
    static func encode(_ seconds: Int, into out: HTTPScratchBuffer) {
        encodeUnits((seconds + 3) >> 2, into: out)
    }

    /// The 5 characters of a date already in 4-second units.
    static func encodeUnits(_ units: Int, into out: HTTPScratchBuffer) {
        var v = units
        let table = alphabet.utf8Start
        for _ in 0..<5 {
            out.append(byte: table[(v >> 24) & 0x3F])
            v <<= 6
        }
    }

    /// The date in seconds of the 5 characters at the start of `bytes`, or nil if they are not
    /// base64 (or there are fewer than 5).
    static func decode(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 5 else { return nil }
        var v = 0
        for i in 0..<5 {
            let b = bytes[i]
            let d: Int
            switch b {
            case 0x41...0x5A: d = Int(b - 0x41)
            case 0x61...0x7A: d = Int(b - 0x61) + 26
            case 0x30...0x39: d = Int(b - 0x30) + 52
            case 0x2B: d = 62
            case 0x2F: d = 63
            default: return nil
            }
            v = v << 6 | d
        }
        return v << 2
    }

    /// The last-seen and first-seen dates (seconds, 0 when absent) after the server's value in
    /// `value`, whose first `|` is at `bar`.
    static func parse(_ value: UnsafeRawBufferPointer, bar: Int) -> (last: Int, first: Int) {
        var last = 0
        var first = 0
        let rest = HTTPRuleBytes.slice(value, (bar + 1)..<value.count)
        if let date = decode(rest), date > 0 { last = date }
        if let second = HTTPRuleBytes.firstIndex(of: 0x7C, in: rest), rest.count - second > 5,
           let date = decode(HTTPRuleBytes.slice(rest, (second + 1)..<rest.count)), date > 0 {
            first = date
        }
        return (last, first)
    }

    /// The wall clock in seconds.
    static func now() -> Int { Int(time(nil)) }
}

extension HTTPRuleSet {
    /// Cookie persistence, request side (call it on the backend's rule set, after
    /// `processRequest`): the index in the backend's `servers` of the first server, among those
    /// `isUsable` accepts, whose `cookie` value the request's persistence cookie carries, or nil
    /// (then balance as usual). Also edits the forwarded request as HAProxy does: in `insert`
    /// mode with `indirect` the persistence cookie is removed; in `prefix` mode the `VALUE~` prefix
    /// is stripped from it. The answer's `Set-Cookie` follows from `processResponse(server:)`.
    func persistentServer(_ head: borrowing HTTPHead, input: UnsafeRawBufferPointer, scratch: HTTPRuleScratch,
                                 isUsable: (Int) -> Bool) -> Int? {
        guard let cookie else { return nil }
        scratch.beginRule()
        return withUnsafePointer(to: head) { head -> Int? in
            let request = HTTPMessageView(input: input, head: head, edits: scratch.request)
            let cookieName = HTTPRuleBytes.literal("cookie")
            let removes = cookie.mode == .insert && cookie.indirect
            var designated: Int?
            var needsEdit = false
            var dates = (last: 0, first: 0)
            let now = cookie.hasDates ? scratch.clock?() ?? HTTPCookieDate.now() : 0
            request.forEachValue(of: cookieName, split: false) { value in
                HTTPCookieItem.forEach(in: value) { item in
                    guard HTTPRuleBytes.equals(HTTPRuleBytes.slice(value, item.name), cookie.name) else { return }
                    let v = HTTPRuleBytes.slice(value, item.value)
                    let delimiter: UInt8 = cookie.mode == .prefix ? 0x7E : 0x7C  // '~', or '|' before dates
                    let serverEnd = HTTPRuleBytes.firstIndex(of: delimiter, in: v) ?? v.count
                    if removes || (cookie.mode == .prefix && serverEnd < v.count) { needsEdit = true }
                    // The first cookie that designates a usable server wins (HAProxy's SF_ASSIGNED).
                    guard designated == nil else { return }
                    let serverValue = HTTPRuleBytes.slice(v, 0..<serverEnd)
                    guard !serverValue.isEmpty else { return }
                    var found = (last: 0, first: 0)
                    if cookie.hasDates, serverEnd < v.count {
                        found = HTTPCookieDate.parse(v, bar: serverEnd)
                        // Too old (maxlife), then idle too long (maxidle); a date more than a day
                        // ahead is ignored too (a clock fixed since). The cookie is then as absent.
                        if found.first != 0, cookie.maxLife > 0,
                           now - found.first > cookie.maxLife || found.first - now > 86400 { return }
                        if found.last != 0, cookie.maxIdle > 0,
                           now - found.last > cookie.maxIdle || found.last - now > 86400 { return }
                    }
                    for (i, candidate) in serverCookies.enumerated() {
                        if let candidate, HTTPRuleBytes.equals(candidate, serverValue), isUsable(i) {
                            designated = i
                            dates = found
                            break
                        }
                    }
                }
                return true
            }
            scratch.cookieServer = designated
            scratch.cookieLastDate = dates.last
            scratch.cookieFirstDate = dates.first
            if needsEdit { editRequestCookies(request, cookie, scratch) }
            return designated
        }
    }

    /// Rewrites every Cookie field carrying the persistence cookie: without it (insert +
    /// indirect), or with its server prefix stripped (prefix). The other cookies stay, joined by
    /// `; `; a field left empty is removed.
    private func editRequestCookies(_ request: HTTPMessageView, _ cookie: HTTPCompiledCookie, _ scratch: HTTPRuleScratch) {
        let edits = request.edits
        edits.editFields(of: request.head)
        let out = scratch.text
        for i in 0..<edits.fields.count where !edits.fields[i].deleted {
            let field = edits.fields[i]
            guard HTTPRuleBytes.equalsIgnoringCase(edits.resolve(field.name, request.input),
                                                   lowercase: HTTPRuleBytes.literal("cookie")) else { continue }
            let value = edits.resolve(field.value, request.input)
            let mark = out.count
            var changed = false
            var kept = 0
            var p = 0
            while p < value.count {
                let (parsed, next) = HTTPCookieItem.parse(value, from: p)
                let itemRange: Range<Int>
                var replacement: UnsafeRawBufferPointer?
                if let item = parsed {
                    itemRange = item.item
                    if HTTPRuleBytes.equals(HTTPRuleBytes.slice(value, item.name), cookie.name) {
                        if cookie.mode == .prefix {
                            let v = HTTPRuleBytes.slice(value, item.value)
                            if let tilde = HTTPRuleBytes.firstIndex(of: 0x7E, in: v) {
                                // NAME= then what follows the '~'.
                                if kept > 0 { out.append("; ") }
                                out.append(HTTPRuleBytes.slice(value, item.name.lowerBound..<item.value.lowerBound))
                                out.append(HTTPRuleBytes.slice(v, (tilde + 1)..<v.count))
                                kept += 1
                                changed = true
                                p = next
                                continue
                            }
                        } else if cookie.mode == .insert && cookie.indirect {
                            changed = true
                            p = next
                            continue
                        }
                    }
                } else {
                    // Something that is not a cookie (no '='): kept as it is.
                    var s = p
                    while s < value.count && HTTPByte.isWhitespace(value[s]) { s += 1 }
                    var e = min(next - 1, value.count)
                    while e > s && HTTPByte.isWhitespace(value[e - 1]) { e -= 1 }
                    itemRange = s..<e
                    if itemRange.isEmpty {
                        p = next
                        continue
                    }
                }
                replacement = HTTPRuleBytes.slice(value, itemRange)
                if kept > 0 { out.append("; ") }
                out.append(replacement!)
                kept += 1
                p = next
            }
            guard changed else {
                out.rewind(to: mark)
                continue
            }
            guard !out.overflowed else {
                edits.failed = true
                return
            }
            if kept == 0 {
                edits.delete(at: i)
            } else if let stored = edits.store(out.bytes(from: mark)) {
                edits.replaceValue(at: i, with: stored)
            }
            out.rewind(to: mark)
        }
    }

    /// Cookie persistence, response side (this is the backend's set): the server's own
    /// persistence cookie is deleted (insert, or indirect on a direct hit), rewritten (rewrite) or
    /// prefixed (prefix); in insert mode a `Set-Cookie: NAME=VALUE; path=/` is added when the request
    /// did not come with this server's cookie, with `Cache-control: private` for `nocache` when the
    /// response would otherwise be cacheable. With `maxidle`/`maxlife` the value carries its dates
    /// (`VALUE|LAST[|FIRST]`), and a cookie that came with this server's value is set again when
    /// its last-seen date is past (so at most every 4 seconds), when it lacks the dates the
    /// settings want, or carries a first date `maxlife` no longer wants (HAProxy's rules).
    func manageServerCookies(_ ev: HTTPEvaluation, server: Int?) {
        guard let cookie, let response = ev.response else { return }
        let scratch = ev.scratch
        let direct = server != nil && scratch.cookieServer == server
        let serverCookie = server.flatMap { $0 < serverCookies.count ? serverCookies[$0] : nil }
        let edits = response.edits
        let setCookie = HTTPRuleBytes.literal("set-cookie")

        if response.hasField(setCookie) {
            edits.editFields(of: response.head)
            let out = scratch.text
            for i in 0..<edits.fields.count where !edits.fields[i].deleted {
                let field = edits.fields[i]
                guard HTTPRuleBytes.equalsIgnoringCase(edits.resolve(field.name, response.input), lowercase: setCookie)
                else { continue }
                let value = edits.resolve(field.value, response.input)
                guard let item = HTTPCookieItem.parse(value, from: 0).cookie,
                      HTTPRuleBytes.equals(HTTPRuleBytes.slice(value, item.name), cookie.name) else { continue }
                if (server != nil && cookie.mode == .insert) || (direct && cookie.indirect) {
                    edits.delete(at: i)
                } else if let serverCookie, cookie.mode == .rewrite || cookie.mode == .prefix {
                    let mark = out.count
                    out.append(HTTPRuleBytes.slice(value, 0..<item.value.lowerBound))
                    out.append(serverCookie)
                    if cookie.mode == .prefix {
                        out.append(byte: 0x7E)
                        out.append(HTTPRuleBytes.slice(value, item.value.lowerBound..<value.count))
                    } else {
                        out.append(HTTPRuleBytes.slice(value, item.value.upperBound..<value.count))
                    }
                    guard !out.overflowed else {
                        edits.failed = true
                        return
                    }
                    if let stored = edits.store(out.bytes(from: mark)) { edits.replaceValue(at: i, with: stored) }
                    out.rewind(to: mark)
                }
            }
        }

        guard cookie.mode == .insert, server != nil else { return }
        let lastDate = direct ? scratch.cookieLastDate : 0
        let firstDate = direct ? scratch.cookieFirstDate : 0
        let now = cookie.hasDates ? scratch.clock?() ?? HTTPCookieDate.now() : 0
        let refresh = (cookie.maxIdle > 0 || lastDate != 0) && (lastDate == 0 || lastDate < now)
            || (cookie.maxLife > 0 && firstDate == 0)
            || (cookie.maxLife == 0 && firstDate != 0)
        guard !direct || refresh else { return }
        let out = scratch.text
        let mark = out.count
        out.append(cookie.name)
        if let serverCookie {
            out.append(byte: HTTPByte.equals)
            out.append(serverCookie)
            if cookie.hasDates {
                out.append(byte: 0x7C)
                HTTPCookieDate.encode(now, into: out)
                if cookie.maxLife > 0 {
                    out.append(byte: 0x7C)
                    if firstDate != 0 {
                        HTTPCookieDate.encodeUnits(firstDate >> 2, into: out)
                    } else {
                        HTTPCookieDate.encode(now, into: out)
                    }
                }
            }
            out.append("; path=/")
        } else {
            out.append("=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/")
        }
        if cookie.httpOnly { out.append("; HttpOnly") }
        if cookie.secure { out.append("; Secure") }
        guard !out.overflowed else {
            edits.failed = true
            return
        }
        let cacheable = cookie.nocache && HTTPRuleSet.isCacheable(response: response, requestCacheable: scratch.requestCacheable)
        edits.editFields(of: response.head)
        guard let name = edits.store(HTTPRuleBytes.literal("Set-Cookie")), let value = edits.store(out.bytes(from: mark))
        else { return }
        edits.append(name: name, value: value, knownName: .other)
        out.rewind(to: mark)
        if cacheable {
            guard let n = edits.store(HTTPRuleBytes.literal("Cache-control")),
                  let v = edits.store(HTTPRuleBytes.literal("private")) else { return }
            edits.append(name: n, value: v, knownName: .other)
        }
    }

    /// HAProxy's cacheability of a response (RFC 7234 as its `http_check_response_for_cacheability`
    /// reads it), starting from what the request allowed.
    static func isCacheable(response: HTTPMessageView, requestCacheable: Bool) -> Bool {
        var cacheable = requestCacheable
        switch response.status {
        case 200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501: break
        default: cacheable = false
        }
        if response.status < 200 { return false }
        if let pragma = response.firstValue(of: HTTPRuleBytes.literal("pragma"), split: false),
           HTTPRuleBytes.equals(pragma, HTTPRuleBytes.literal("no-cache"), ignoreCase: true) {
            return false
        }
        var freshness = false
        var nullMaxAge = false
        response.forEachValue(of: HTTPRuleBytes.literal("cache-control"), split: true) { v in
            func equals(_ s: StaticString) -> Bool { HTTPRuleBytes.equals(v, HTTPRuleBytes.literal(s), ignoreCase: true) }
            func starts(_ s: StaticString) -> Bool { HTTPRuleBytes.hasPrefix(v, HTTPRuleBytes.literal(s), ignoreCase: true) }
            if equals("public") {
                cacheable = true
            } else if equals("max-age=0") {
                nullMaxAge = true
            } else if equals("no-cache=\"set-cookie\"") {
                // Only the cookie is uncacheable.
            } else if equals("private") || starts("private=") || equals("no-cache") || starts("no-cache=")
                        || equals("no-store") || starts("no-store=") || equals("s-maxage=0") {
                cacheable = false
            } else if starts("s-maxage") {
                freshness = true
                nullMaxAge = false
            } else if starts("max-age") {
                freshness = true
            }
            return true
        }
        if nullMaxAge { cacheable = false }
        if !freshness { freshness = response.hasField(HTTPRuleBytes.literal("expires")) }
        if !freshness && !response.hasField(HTTPRuleBytes.literal("etag"))
            && !response.hasField(HTTPRuleBytes.literal("last-modified")) {
            cacheable = false
        }
        return cacheable
    }
}
