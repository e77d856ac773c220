import HTTP1
import ConfigModel

// `http-request normalize-uri`: each normalizer rewrites the part of the target HAProxy's does
// (src/uri_normalizer.c): the path for `path-*`, the path and query for `percent-*`, the query
// for `query-sort-by-name`, the fragment for `fragment-*`. The result is built in the scratch's
// text buffer and stored as the target edit, as `set-uri` does: nothing is allocated.

extension HTTPEvaluation {
    /// Applies `normalizer` to the request's target; false when a `strict` one refuses it (400).
    func normalizeURI(_ message: HTTPMessageView, _ normalizer: URINormalizer) -> Bool {
        let edits = message.edits
        let target = message.target
        let parts = HTTPTargetParts(target)
        guard let pathStart = parts.pathStart else { return true }
        let fragment = HTTPRuleBytes.firstIndex(of: 0x23, in: target, from: pathStart) ?? target.count
        let queryMark = parts.queryMark.flatMap { $0 < fragment ? $0 : nil }
        let pathEnd = queryMark ?? fragment
        let out = scratch.text
        let mark = out.count
        out.append(HTTPRuleBytes.slice(target, 0..<pathStart))
        switch normalizer {
        case .pathMergeSlashes, .pathStripDot, .pathStripDotDot:
            let path = HTTPRuleBytes.slice(target, pathStart..<pathEnd)
            switch normalizer {
            case .pathMergeSlashes: HTTPURINormalizer.mergeSlashes(path, out)
            case .pathStripDot: HTTPURINormalizer.stripDot(path, out)
            case .pathStripDotDot(let full): HTTPURINormalizer.stripDotDot(path, out, full: full)
            default: break
            }
            out.append(HTTPRuleBytes.slice(target, pathEnd..<target.count))
        case .percentDecodeUnreserved(let strict), .percentToUppercase(let strict):
            let decode = if case .percentDecodeUnreserved = normalizer { true } else { false }
            guard HTTPURINormalizer.percent(HTTPRuleBytes.slice(target, pathStart..<fragment), out, decode: decode) || !strict else {
                out.rewind(to: mark)
                return false
            }
            out.append(HTTPRuleBytes.slice(target, fragment..<target.count))
        case .querySortByName:
            guard let queryMark else {
                out.rewind(to: mark)
                return true
            }
            out.append(HTTPRuleBytes.slice(target, pathStart..<(queryMark + 1)))
            HTTPURINormalizer.sortQuery(HTTPRuleBytes.slice(target, (queryMark + 1)..<fragment), out)
            out.append(HTTPRuleBytes.slice(target, fragment..<target.count))
        case .fragmentStrip:
            out.append(HTTPRuleBytes.slice(target, pathStart..<fragment))
        case .fragmentEncode:
            out.append(HTTPRuleBytes.slice(target, pathStart..<fragment))
            for b in HTTPRuleBytes.slice(target, fragment..<target.count) {
                if b == 0x23 { out.append("%23") } else { out.append(byte: b) }
            }
        }
        guard !out.overflowed else {
            edits.failed = true
            return true
        }
        edits.target = edits.store(out.bytes(from: mark))
        out.rewind(to: mark)
        return true
    }
}

enum HTTPURINormalizer {
    static func mergeSlashes(_ path: UnsafeRawBufferPointer, _ out: HTTPScratchBuffer) {
        var previousSlash = false
        for b in path {
            let slash = b == HTTPByte.slash
            if !(slash && previousSlash) { out.append(byte: b) }
            previousSlash = slash
        }
    }

    /// `/./` becomes `/`, a final `/.` becomes `/`.
    static func stripDot(_ path: UnsafeRawBufferPointer, _ out: HTTPScratchBuffer) {
        let n = path.count
        var i = 0
        while i < n {
            if path[i] == HTTPByte.slash, i + 1 < n, path[i + 1] == 0x2E, i + 2 == n || path[i + 2] == HTTPByte.slash {
                if i + 2 == n { out.append(byte: HTTPByte.slash) }
                i += 2
                continue
            }
            out.append(byte: path[i])
            i += 1
        }
    }

    /// Segment by segment: a `..` removes the segment kept before it; with nothing (or a kept
    /// `..`) before it, it stays, or goes with `full`.
    static func stripDotDot(_ path: UnsafeRawBufferPointer, _ out: HTTPScratchBuffer, full: Bool) {
        guard path.first == HTTPByte.slash else {
            out.append(path)
            return
        }
        let start = out.count
        var i = 1
        while true {
            var j = i
            while j < path.count && path[j] != HTTPByte.slash { j += 1 }
            let segment = HTTPRuleBytes.slice(path, i..<j)
            if segment.count == 2 && segment[0] == 0x2E && segment[1] == 0x2E {
                let kept = out.bytes(from: start)
                var last = kept.count
                while last > 0 && kept[last - 1] != HTTPByte.slash { last -= 1 }
                let previous = HTTPRuleBytes.slice(kept, last..<kept.count)
                let previousIsDotDot = previous.count == 2 && previous[0] == 0x2E && previous[1] == 0x2E
                if last > 0 && !previousIsDotDot {
                    out.rewind(to: start + last - 1)
                } else if !full {
                    out.append("/..")
                }
            } else {
                out.append(byte: HTTPByte.slash)
                out.append(segment)
            }
            if j >= path.count { break }
            i = j + 1
        }
        if out.count == start { out.append(byte: HTTPByte.slash) }
    }

    /// `%xx` sequences: decoded when they stand for an unreserved character (`decode`), else
    /// their hex digits upper-cased. False when a `%` is not followed by two hex digits (those
    /// are copied as they are).
    static func percent(_ text: UnsafeRawBufferPointer, _ out: HTTPScratchBuffer, decode: Bool) -> Bool {
        var valid = true
        var i = 0
        while i < text.count {
            let b = text[i]
            guard b == 0x25 else {
                out.append(byte: b)
                i += 1
                continue
            }
            guard i + 2 < text.count, let high = hexValue(text[i + 1]), let low = hexValue(text[i + 2]) else {
                valid = false
                out.append(byte: b)
                i += 1
                continue
            }
            let value = high << 4 | low
            if decode {
                if isUnreserved(value) {
                    out.append(byte: value)
                } else {
                    out.append(HTTPRuleBytes.slice(text, i..<(i + 3)))
                }
            } else {
                out.append(byte: 0x25)
                out.append(byte: HTTPRules.hexDigit(high))
                out.append(byte: HTTPRules.hexDigit(low))
            }
            i += 3
        }
        return valid
    }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }

    /// RFC 3986's unreserved: ALPHA DIGIT - . _ ~
    static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F, 0x7E: true
        default: false
        }
    }

    /// The `&`-separated parameters, sorted by name (the bytes before `=`), equal names kept in
    /// their order.
    static func sortQuery(_ query: UnsafeRawBufferPointer, _ out: HTTPScratchBuffer) {
        var count = 1
        for b in query where b == 0x26 { count += 1 }
        withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: count) { params in
            var n = 0
            var start = 0
            for i in 0...query.count where i == query.count || query[i] == 0x26 {
                params.initializeElement(at: n, to: start..<i)
                n += 1
                start = i + 1
            }
            func name(_ r: Range<Int>) -> UnsafeRawBufferPointer {
                let p = HTTPRuleBytes.slice(query, r)
                return HTTPRuleBytes.slice(p, 0..<(HTTPRuleBytes.firstIndex(of: 0x3D, in: p, from: 0) ?? p.count))
            }
            // Insertion sort: stable, and queries are short.
            for i in 1..<max(n, 1) {
                let item = params[i]
                var j = i
                while j > 0 && less(name(item), name(params[j - 1])) {
                    params[j] = params[j - 1]
                    j -= 1
                }
                params[j] = item
            }
            for i in 0..<n {
                if i > 0 { out.append(byte: 0x26) }
                out.append(HTTPRuleBytes.slice(query, params[i]))
            }
            _ = params.deinitialize()
        }
    }

    private static func less(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let n = min(a.count, b.count)
        for i in 0..<n where a[i] != b[i] { return a[i] < b[i] }
        return a.count < b.count
    }
}
