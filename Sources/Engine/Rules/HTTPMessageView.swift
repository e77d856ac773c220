import HTTP1
import Glibc

/// A request or response head as the rules see it: the received bytes with the rewrites of
/// earlier rules applied. Lives for one call; holds no copy of the head.
struct HTTPMessageView {
    let input: UnsafeRawBufferPointer
    let head: UnsafePointer<HTTPHead>
    /// The message's edits, in the session's scratch (which the caller holds).
    unowned(unsafe) let edits: HTTPHeadEdits

    var method: UnsafeRawBufferPointer {
        if let m = edits.method { return edits.resolve(m, input) }
        return HTTPRuleBytes.slice(input, head.pointee.methodRange)
    }

    var target: UnsafeRawBufferPointer {
        if let t = edits.target { return edits.resolve(t, input) }
        return HTTPRuleBytes.slice(input, head.pointee.target)
    }

    var status: Int { edits.status ?? head.pointee.status }

    var version: HTTPVersion { head.pointee.version }

    /// Calls `body` with each field line (name, value) in order; returns false if `body` stopped
    /// the walk by returning false.
    @inline(__always)
    @discardableResult
    func forEachField(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Bool) -> Bool {
        if edits.fieldsEdited {
            for field in edits.fields where !field.deleted {
                if !body(edits.resolve(field.name, input), edits.resolve(field.value, input)) { return false }
            }
        } else {
            for field in head.pointee.fields {
                if !body(HTTPRuleBytes.slice(input, field.name), HTTPRuleBytes.slice(input, field.value)) { return false }
            }
        }
        return true
    }

    /// Calls `body` with each value of the fields named `lowercaseName`: whole lines, or with
    /// `split` each comma-separated element, trimmed (HAProxy's `hdr` versus `fhdr`). Returns false
    /// if `body` stopped the walk.
    @discardableResult
    func forEachValue(of lowercaseName: UnsafeRawBufferPointer, split: Bool,
                      _ body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        if edits.fieldsEdited {
            return forEachField { name, value in
                guard HTTPRuleBytes.equalsIgnoringCase(name, lowercase: lowercaseName) else { return true }
                return HTTPMessageView.forEachElement(value, split: split, body)
            }
        }
        // The received fields, read in place: lengths first, then the name's bytes.
        let nameCount = lowercaseName.count
        return head.pointee.fields.withUnsafeBufferPointer { fields -> Bool in
            for field in fields where Int(field.nameCount) == nameCount {
                guard HTTPRuleBytes.equalsIgnoringCase(HTTPRuleBytes.slice(input, field.name), lowercase: lowercaseName) else {
                    continue
                }
                if !HTTPMessageView.forEachElement(HTTPRuleBytes.slice(input, field.value), split: split, body) {
                    return false
                }
            }
            return true
        }
    }

    /// `body` with `value` (trimmed already), or with `split` each of its comma-separated elements.
    @inline(__always)
    private static func forEachElement(_ value: UnsafeRawBufferPointer, split: Bool,
                                       _ body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        if !split { return body(value) }
        // Without a comma, the value (trimmed) is its only element.
        if value.isEmpty || memchr(value.baseAddress!, Int32(HTTPByte.comma), value.count) == nil {
            return body(HTTPRuleBytes.slice(value, HTTPFieldValue.trim(value, 0..<value.count)))
        }
        return HTTPFieldValue.forEachElement(value, 0..<value.count) { element in
            body(HTTPRuleBytes.slice(value, element))
        }
    }

    /// How many values `forEachValue` gives.
    func valueCount(of lowercaseName: UnsafeRawBufferPointer, split: Bool) -> Int {
        var n = 0
        forEachValue(of: lowercaseName, split: split) { _ in
            n += 1
            return true
        }
        return n
    }

    /// The value at `occurrence` (1 the first, -1 the last, HAProxy's numbering), or nil.
    func value(of lowercaseName: UnsafeRawBufferPointer, split: Bool, occurrence: Int) -> UnsafeRawBufferPointer? {
        var wanted = occurrence
        if wanted < 0 {
            wanted += valueCount(of: lowercaseName, split: split) + 1
            guard wanted > 0 else { return nil }
        }
        var n = 0
        var found: UnsafeRawBufferPointer?
        forEachValue(of: lowercaseName, split: split) { value in
            n += 1
            if n == wanted {
                found = value
                return false
            }
            return true
        }
        return found
    }

    /// The last value, or nil.
    func lastValue(of lowercaseName: UnsafeRawBufferPointer, split: Bool) -> UnsafeRawBufferPointer? {
        var found: UnsafeRawBufferPointer?
        forEachValue(of: lowercaseName, split: split) { value in
            found = value
            return true
        }
        return found
    }

    /// The first value, or nil.
    func firstValue(of lowercaseName: UnsafeRawBufferPointer, split: Bool) -> UnsafeRawBufferPointer? {
        var found: UnsafeRawBufferPointer?
        forEachValue(of: lowercaseName, split: split) { value in
            found = value
            return false
        }
        return found
    }

    func hasField(_ lowercaseName: UnsafeRawBufferPointer) -> Bool {
        !forEachField { name, _ in !HTTPRuleBytes.equalsIgnoringCase(name, lowercase: lowercaseName) }
    }
}
