import ConfigModel

/// A proxy's rule lines (`acl`, `http-request`, `redirect`, `use_backend`, `http-response`), each
/// as what it says apart from where it is written: a line that an edit above it moved is the
/// same line, and a changed line is found by its content. Rules are evaluated in order, so the
/// order counts too.
struct RuleLines {
    enum Line: Hashable {
        case acl(name: String, ACLCriterion)
        case request(HTTPRequestAction, Condition?)
        case redirect(Redirect, Condition?)
        case useBackend(String, Condition?)
        case response(HTTPResponseAction, Condition?)
        case afterResponse(HTTPResponseAction, Condition?)
        case tcpConnection(TCPRuleAction, Condition?)
        case tcpSession(TCPRuleAction, Condition?)
        case tcpContent(TCPRuleAction, Condition?)
        case tcpResponse(TCPRuleAction, Condition?)
    }

    private(set) var lines: [Line] = []
    private(set) var locations: [SourceLocation] = []

    init(_ http: HTTPSettings, _ tcp: TCPRules = TCPRules()) {
        for r in tcp.connection { add(.tcpConnection(r.action, r.condition?.planView), r.location) }
        for r in tcp.session { add(.tcpSession(r.action, r.condition?.planView), r.location) }
        for r in tcp.content { add(.tcpContent(r.action, r.condition?.planView), r.location) }
        for r in tcp.response { add(.tcpResponse(r.action, r.condition?.planView), r.location) }
        for acl in http.acls {
            for criterion in acl.criteria { add(.acl(name: acl.name, criterion.planView), criterion.location) }
        }
        for r in http.requestRules { add(.request(r.action, r.condition?.planView), r.location) }
        for r in http.redirectRules { add(.redirect(r.redirect, r.condition?.planView), r.location) }
        for r in http.backendRules { add(.useBackend(r.backend, r.condition?.planView), r.location) }
        for r in http.responseRules { add(.response(r.action, r.condition?.planView), r.location) }
        for r in http.afterResponseRules { add(.afterResponse(r.action, r.condition?.planView), r.location) }
    }

    private mutating func add(_ line: Line, _ location: SourceLocation) {
        lines.append(line)
        locations.append(location)
    }

    struct Difference: Equatable {
        /// The candidate's lines the running configuration does not have: added or edited.
        var changed: [SourceLocation]
        /// The running configuration's lines that an edit replaced, one for each changed line in order.
        var replaced: [SourceLocation]
        /// The running configuration's lines the candidate no longer has, beyond those replaced.
        var removed: [SourceLocation]
    }

    /// Where `new` differs from `old`, or nil when they say the same in the same order. The
    /// stretch between their common first and last lines holds the edit: in it, the candidate's
    /// lines that the running configuration does not have are changed, and the running
    /// configuration's lines the candidate does not have were replaced by them in order, or
    /// removed when there are more of them. When the stretch holds the same lines in another
    /// order, every line of it in the candidate is changed. Linear: lines are counted in a
    /// dictionary, never compared pairwise.
    static func difference(from old: RuleLines, to new: RuleLines) -> Difference? {
        guard old.lines != new.lines else { return nil }
        let a = old.lines, b = new.lines
        var head = 0
        while head < a.count && head < b.count && a[head] == b[head] { head += 1 }
        var tail = 0
        while tail < a.count - head && tail < b.count - head && a[a.count - 1 - tail] == b[b.count - 1 - tail] { tail += 1 }
        let oldRange = head..<(a.count - tail), newRange = head..<(b.count - tail)

        var oldCounts: [Line: Int] = [:]
        for i in oldRange { oldCounts[a[i], default: 0] += 1 }
        var newCounts: [Line: Int] = [:]
        for i in newRange { newCounts[b[i], default: 0] += 1 }
        var changed: [SourceLocation] = []
        for i in newRange {
            if let n = oldCounts[b[i]], n > 0 { oldCounts[b[i]] = n - 1 } else { changed.append(new.locations[i]) }
        }
        var removed: [SourceLocation] = []
        for i in oldRange {
            if let n = newCounts[a[i]], n > 0 { newCounts[a[i]] = n - 1 } else { removed.append(old.locations[i]) }
        }
        if changed.isEmpty && removed.isEmpty { changed = newRange.map { new.locations[$0] } }
        let replaced = Array(removed.prefix(changed.count))
        return Difference(changed: changed, replaced: replaced, removed: Array(removed.dropFirst(replaced.count)))
    }
}

extension ACLCriterion {
    var planView: ACLCriterion {
        var c = self
        c.location = .anywhere
        return c
    }
}

extension Condition {
    /// What the condition says: a named ACL by its name (its own `acl` lines are compared as
    /// lines of their own), an anonymous one (`{ path /x }`) by its criterion.
    var planView: Condition {
        var c = self
        c.alternatives = alternatives.map { terms in
            terms.map { term in
                var t = term
                t.criteria = term.name.hasPrefix("{") ? term.criteria.map(\.planView) : []
                return t
            }
        }
        return c
    }
}
