import HTTP1
import ConfigModel
import Glibc

/// The rewrites `http-request` and `http-response` rules make, recorded in the message's
/// `HTTPHeadEdits`. A rewrite that does not fit sets `edits.failed`.
extension HTTPEvaluation {
    enum TargetPart {
        case path, query, uri
    }

    /// `set-header` (`replacing`: every field of that name goes first) and `add-header`: the
    /// field is added at the end.
    func setHeader(_ message: HTTPMessageView, _ name: HTTPCompiledFieldName, _ value: HTTPCompiledFormat,
                   replacing: Bool) {
        let edits = message.edits
        guard let text = render(value, .fieldValue) else {
            edits.failed = true
            return
        }
        edits.editFields(of: message.head)
        if replacing { deleteFields(message, name.lowercase) }
        guard let n = edits.store(name.name), let v = edits.store(text) else { return }
        edits.append(name: n, value: v, knownName: name.knownName)
    }

    /// `del-header`.
    func deleteHeader(_ message: HTTPMessageView, _ name: HTTPCompiledFieldName) {
        guard message.hasField(name.lowercase) else { return }
        message.edits.editFields(of: message.head)
        deleteFields(message, name.lowercase)
    }

    private func deleteFields(_ message: HTTPMessageView, _ lowercaseName: UnsafeRawBufferPointer) {
        let edits = message.edits
        for i in 0..<edits.fields.count where !edits.fields[i].deleted {
            if HTTPRuleBytes.equalsIgnoringCase(edits.resolve(edits.fields[i].name, message.input), lowercase: lowercaseName) {
                edits.delete(at: i)
            }
        }
    }

    /// `replace-header` (the whole value of each field named so, when the regex matches in it, is
    /// replaced by the replacement with `\N` back-references) and `replace-value` (the same on
    /// each comma-separated value).
    func replaceHeader(_ message: HTTPMessageView, _ name: HTTPCompiledFieldName, _ regex: HTTPRegex,
                       _ replacement: HTTPCompiledFormat, eachValue: Bool) {
        guard message.hasField(name.lowercase) else { return }
        let edits = message.edits
        guard let template = render(replacement, .fieldValue) else {
            edits.failed = true
            return
        }
        edits.editFields(of: message.head)
        let out = scratch.text
        // Ask regexec for groups only when the replacement refers to some (glibc allocates to
        // extract them).
        let groupsUsed = HTTPEvaluation.hasBackReference(template) ? min(regex.groupCount + 1, HTTPRegex.maxGroups) : 1
        withUnsafeTemporaryAllocation(of: regmatch_t.self, capacity: HTTPRegex.maxGroups) { all in
            let groups = UnsafeMutableBufferPointer(rebasing: all[0..<groupsUsed])
            for i in 0..<edits.fields.count where !edits.fields[i].deleted {
                let field = edits.fields[i]
                guard HTTPRuleBytes.equalsIgnoringCase(edits.resolve(field.name, message.input), lowercase: name.lowercase)
                else { continue }
                let value = edits.resolve(field.value, message.input)
                let mark = out.count
                var changed = false
                if eachValue {
                    var last = 0
                    _ = HTTPFieldValue.forEachElement(value, 0..<value.count) { element in
                        out.append(HTTPRuleBytes.slice(value, last..<element.lowerBound))
                        let item = HTTPRuleBytes.slice(value, element)
                        if regex.match(item, into: groups) {
                            expand(template, groups: groups, subject: item)
                            changed = true
                        } else {
                            out.append(item)
                        }
                        last = element.upperBound
                        return true
                    }
                    out.append(HTTPRuleBytes.slice(value, last..<value.count))
                } else if regex.match(value, into: groups) {
                    expand(template, groups: groups, subject: value)
                    changed = true
                }
                guard changed else {
                    out.rewind(to: mark)
                    continue
                }
                guard !out.overflowed else {
                    edits.failed = true
                    return
                }
                guard let stored = edits.store(out.bytes(from: mark)) else { return }
                edits.replaceValue(at: i, with: stored)
                out.rewind(to: mark)
            }
        }
    }

    /// Whether `template` has a `\N` group reference.
    static func hasBackReference(_ template: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i + 1 < template.count {
            if template[i] == HTTPByte.backslash {
                if HTTPByte.isDigit(template[i + 1]) { return true }
                i += 2
            } else {
                i += 1
            }
        }
        return false
    }

    /// Appends `template` to the text buffer with `\0`…`\9` replaced by the groups of `subject`,
    /// `\xHH` by that byte and `\c` by `c` (HAProxy's `exp_replace`).
    private func expand(_ template: UnsafeRawBufferPointer, groups: UnsafeMutableBufferPointer<regmatch_t>,
                        subject: UnsafeRawBufferPointer) {
        let out = scratch.text
        var i = 0
        var run = 0
        while i < template.count {
            guard template[i] == HTTPByte.backslash, i + 1 < template.count else {
                i += 1
                continue
            }
            out.append(HTTPRuleBytes.slice(template, run..<i))
            let c = template[i + 1]
            if HTTPByte.isDigit(c) {
                let n = Int(c - HTTPByte.zero)
                if n < groups.count {
                    let g = groups[n]
                    if g.rm_so >= 0, g.rm_eo >= g.rm_so, Int(g.rm_eo) <= subject.count {
                        out.append(HTTPRuleBytes.slice(subject, Int(g.rm_so)..<Int(g.rm_eo)))
                    }
                }
                i += 2
            } else if c == 0x78, i + 3 < template.count, let h = HTTPByte.hexValue(template[i + 2]),
                      let l = HTTPByte.hexValue(template[i + 3]) {
                out.append(byte: h << 4 | l)
                i += 4
            } else {
                out.append(byte: c)
                i += 2
            }
            run = i
        }
        out.append(HTTPRuleBytes.slice(template, run..<template.count))
    }

    /// `set-path` (the query, and an absolute-form's scheme and authority, stay), `set-query` (a
    /// `?` is added when there was none and the value is not empty; an existing one stays even for
    /// an empty value) and `set-uri`.
    func rewriteTarget(_ message: HTTPMessageView, _ part: TargetPart, _ format: HTTPCompiledFormat) {
        let edits = message.edits
        guard let value = render(format, .requestLine) else {
            edits.failed = true
            return
        }
        let target = message.target
        let parts = HTTPTargetParts(target)
        let out = scratch.text
        let mark = out.count
        switch part {
        case .uri:
            out.append(value)
        case .path:
            let start = parts.pathStart ?? parts.afterAuthority
            let end = parts.queryMark ?? target.count
            if target.count == 1 && target[0] == HTTPByte.asterisk {
                out.append(value)
            } else {
                out.append(HTTPRuleBytes.slice(target, 0..<start))
                out.append(value)
                out.append(HTTPRuleBytes.slice(target, end..<target.count))
            }
        case .query:
            if let q = parts.queryMark {
                out.append(HTTPRuleBytes.slice(target, 0..<(q + 1)))
                out.append(value)
            } else {
                guard !value.isEmpty else { return }
                out.append(target)
                out.append(byte: HTTPByte.questionMark)
                out.append(value)
            }
        }
        guard !out.overflowed else {
            edits.failed = true
            return
        }
        edits.target = edits.store(out.bytes(from: mark))
        out.rewind(to: mark)
    }

    /// `replace-path`, `replace-pathq` and `replace-uri`: when `regex` matches the part of the
    /// target, the part is replaced by the expanded replacement (HAProxy's `exp_replace`: the
    /// template with `\N` groups, not a substitution inside the part); the rest of the target stays.
    func replaceTarget(_ message: HTTPMessageView, _ part: RequestTargetPart, _ regex: HTTPRegex,
                       _ replacement: HTTPCompiledFormat) {
        let edits = message.edits
        guard let template = render(replacement, .requestLine) else {
            edits.failed = true
            return
        }
        let target = message.target
        let parts = HTTPTargetParts(target)
        let range: Range<Int>
        switch part {
        case .uri: range = 0..<target.count
        case .path, .pathQuery:
            let start = parts.pathStart ?? parts.afterAuthority
            let end = part == .path ? (parts.queryMark ?? target.count) : target.count
            range = start..<max(start, end)
        }
        let subject = HTTPRuleBytes.slice(target, range)
        let out = scratch.text
        let mark = out.count
        let groupsUsed = HTTPEvaluation.hasBackReference(template) ? min(regex.groupCount + 1, HTTPRegex.maxGroups) : 1
        let matched = withUnsafeTemporaryAllocation(of: regmatch_t.self, capacity: HTTPRegex.maxGroups) { all in
            let groups = UnsafeMutableBufferPointer(rebasing: all[0..<groupsUsed])
            guard regex.match(subject, into: groups) else { return false }
            out.append(HTTPRuleBytes.slice(target, 0..<range.lowerBound))
            expand(template, groups: groups, subject: subject)
            out.append(HTTPRuleBytes.slice(target, range.upperBound..<target.count))
            return true
        }
        guard matched else { return }
        guard !out.overflowed else {
            edits.failed = true
            return
        }
        edits.target = edits.store(out.bytes(from: mark))
        out.rewind(to: mark)
    }

    /// `set-method`.
    func rewriteMethod(_ message: HTTPMessageView, _ format: HTTPCompiledFormat) {
        let edits = message.edits
        guard let value = render(format, .requestLine), !value.isEmpty else {
            edits.failed = true
            return
        }
        edits.method = edits.store(value)
    }
}
