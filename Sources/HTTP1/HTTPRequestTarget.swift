/// Request-target and Host validation (RFC 9112 §3.2, RFC 3986 §3.2.2).
///
/// Characters: the request line parser already admits printable ASCII except `#` in a target (no
/// space, CTL, DEL, non-ASCII byte, fragment). Inside that, RFC 3986 is not enforced character by
/// character in the path and query (`{`, `|`, `"` and friends are common in real queries and
/// harmless to a proxy that does not decode them; HAProxy does the same), but the authority parts
/// (Host, an authority-form target, an absolute-form's authority) are held to RFC 3986 exactly,
/// because the proxy routes on them.
package enum HTTPRequestTarget {
    /// The form of `input[target]` for `method`, and its authority, or nil when invalid.
    static func classify(_ input: UnsafeRawBufferPointer, _ target: Range<Int>, method: HTTPMethod)
        -> (form: HTTPRequestTargetForm, authority: Range<Int>?)?
    {
        guard !target.isEmpty else { return nil }
        let first = input[target.lowerBound]
        if method == .connect {
            // authority-form = uri-host ":" port, and only that.
            guard HTTPRequestTarget.isValidAuthority(input, target, requirePort: true) else { return nil }
            return (.authority, target)
        }
        if first == HTTPByte.slash { return (.origin, nil) }
        if first == HTTPByte.asterisk {
            guard target.count == 1, method == .options else { return nil }
            return (.asterisk, nil)
        }
        // absolute-form: a reverse proxy serves http and https only.
        var p = target.lowerBound
        if target.count >= 7 && input.httpEqualsLowercase(p..<p + 7, "http://") {
            p += 7
        } else if target.count >= 8 && input.httpEqualsLowercase(p..<p + 8, "https://") {
            p += 8
        } else {
            return nil
        }
        let authorityStart = p
        while p < target.upperBound {
            let b = input[p]
            if b == HTTPByte.slash || b == HTTPByte.questionMark { break }
            p += 1
        }
        let authority = authorityStart..<p
        // RFC 9110 §4.2.1: an http(s) URI with an empty host is invalid; §4.2.4: userinfo is an
        // error (`@` is not a reg-name character, so isValidAuthority rejects it).
        guard !authority.isEmpty,
              input[authority.lowerBound] != HTTPByte.colon,
              HTTPRequestTarget.isValidAuthority(input, authority, requirePort: false)
        else { return nil }
        return (.absolute, authority)
    }

    /// Whether an absolute-form's authority and the Host value name the same host and port:
    /// compared without case, a port the scheme implies (80 for http, 443 for https) being the same
    /// as none.
    static func sameAuthority(_ input: UnsafeRawBufferPointer, _ authority: Range<Int>, _ host: Range<Int>,
                              scheme target: Range<Int>) -> Bool {
        let https = HTTPByte.lowercased(input[target.lowerBound + 4]) == 0x73  // `https://`
        let a = withoutDefaultPort(input, authority, https: https)
        let h = withoutDefaultPort(input, host, https: https)
        guard a.count == h.count else { return false }
        var i = 0
        while i < a.count {
            if HTTPByte.lowercased(input[a.lowerBound + i]) != HTTPByte.lowercased(input[h.lowerBound + i]) { return false }
            i += 1
        }
        return true
    }

    private static func withoutDefaultPort(_ input: UnsafeRawBufferPointer, _ range: Range<Int>, https: Bool) -> Range<Int> {
        let suffix: StaticString = https ? ":443" : ":80"
        let n = suffix.utf8CodeUnitCount
        guard range.count > n, input.httpEqualsLowercase(range.upperBound - n..<range.upperBound, suffix) else { return range }
        return range.lowerBound..<range.upperBound - n
    }

    /// Whether `input[range]` is `uri-host [":" port]` (RFC 3986), with a non-empty host. An empty
    /// range is valid only when `allowEmpty` (a Host field may be empty, RFC 9112 §3.2).
    static func isValidAuthority(_ input: UnsafeRawBufferPointer, _ range: Range<Int>,
                                 requirePort: Bool, allowEmpty: Bool = false) -> Bool {
        if range.isEmpty { return allowEmpty && !requirePort }
        var p = range.lowerBound
        let end = range.upperBound
        if input[p] == HTTPByte.openBracket {
            // IP-literal = "[" ( IPv6address / IPvFuture ) "]"
            p += 1
            let start = p
            while p < end && input[p] != HTTPByte.closeBracket { p += 1 }
            guard p < end, isValidIPLiteral(input, start..<p) else { return false }
            p += 1
        } else {
            // reg-name (IPv4address is a reg-name too) = *( unreserved / pct-encoded / sub-delims )
            let start = p
            let regName = HTTPByteClass.regName
            while p < end {
                let b = input[p]
                if b == HTTPByte.colon { break }
                guard regName.contains(b) else { return false }
                if b == HTTPByte.percent {
                    guard p + 2 < end, HTTPByte.hexValue(input[p + 1]) != nil, HTTPByte.hexValue(input[p + 2]) != nil
                    else { return false }
                    p += 2
                }
                p += 1
            }
            guard p > start else { return false }
        }
        if p == end { return !requirePort }
        guard input[p] == HTTPByte.colon else { return false }
        p += 1
        // port = *DIGIT; an empty port is RFC 3986-valid, a port above 65535 is not a port.
        if p == end { return !requirePort }
        guard end - p <= 5 else { return false }
        var port = 0
        while p < end {
            let b = input[p]
            guard HTTPByte.isDigit(b) else { return false }
            port = port * 10 + Int(b - HTTPByte.zero)
            p += 1
        }
        return port <= 65535
    }

    /// IPv6address (characters only: HEXDIG, ":", ".", at least one ":") or IPvFuture
    /// ("v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )).
    static func isValidIPLiteral(_ input: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        guard !range.isEmpty else { return false }
        var p = range.lowerBound
        if input[p] | 0x20 == 0x76 {  // "v"
            p += 1
            let hexStart = p
            while p < range.upperBound && HTTPByte.hexValue(input[p]) != nil { p += 1 }
            guard p > hexStart, p < range.upperBound, input[p] == HTTPByte.dot else { return false }
            p += 1
            guard p < range.upperBound else { return false }
            let tail = HTTPByteClass.ipFuture
            while p < range.upperBound {
                guard tail.contains(input[p]) else { return false }
                p += 1
            }
            return true
        }
        var colons = 0
        while p < range.upperBound {
            let b = input[p]
            if b == HTTPByte.colon {
                colons += 1
            } else if b != HTTPByte.dot && HTTPByte.hexValue(b) == nil {
                return false
            }
            p += 1
        }
        return colons >= 2
    }
}
