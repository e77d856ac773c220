import ConfigModel

/// An `if`/`unless` condition ready to evaluate: alternatives ORed, terms ANDed, each term's
/// criteria (a named ACL's lines) ORed, `!` negating a term and `unless` the whole. A plain value
/// over tables in the rule set's constants: evaluating it retains and copies nothing.
struct HTTPCompiledCondition {
    struct Term {
        let negated: Bool
        let criteria: UnsafeBufferPointer<HTTPCompiledCriterion>
    }

    let inverted: Bool
    /// The groups ORed, each the terms ANDed.
    let alternatives: UnsafeBufferPointer<UnsafeBufferPointer<Term>>

    init(_ condition: Condition, constants: HTTPRuleConstants) throws(ConfigError) {
        inverted = condition.inverted
        var alternatives: [UnsafeBufferPointer<Term>] = []
        for group in condition.alternatives {
            var terms: [Term] = []
            for term in group {
                var criteria: [HTTPCompiledCriterion] = []
                for criterion in term.criteria {
                    criteria.append(try HTTPCompiledCriterion(criterion, constants: constants))
                }
                terms.append(Term(negated: term.negated, criteria: constants.buffer(criteria)))
            }
            alternatives.append(constants.buffer(terms))
        }
        self.alternatives = constants.buffer(alternatives)
    }

    func evaluate(_ ev: HTTPEvaluation) -> Bool {
        for group in alternatives where HTTPCompiledCondition.all(group, ev) {
            return !inverted
        }
        return inverted
    }

    /// Whether every term of `group` holds.
    @inline(__always)
    private static func all(_ group: UnsafeBufferPointer<Term>, _ ev: HTTPEvaluation) -> Bool {
        for term in group {
            var matched = false
            for criterion in term.criteria where criterion.evaluate(ev) {
                matched = true
                break
            }
            if matched == term.negated { return false }
        }
        return true
    }
}

extension Optional where Wrapped == HTTPCompiledCondition {
    /// No condition always applies.
    @inline(__always)
    func evaluate(_ ev: HTTPEvaluation) -> Bool {
        guard let self else { return true }
        return self.evaluate(ev)
    }
}
