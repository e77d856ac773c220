import ConfigModel

/// An `if`/`unless` condition ready to evaluate: alternatives ORed, terms ANDed, each term's
/// criteria (a named ACL's lines) ORed, `!` negating a term and `unless` the whole.
struct HTTPCompiledCondition {
    struct Term {
        let negated: Bool
        let criteria: [HTTPCompiledCriterion]
    }

    let inverted: Bool
    let alternatives: [[Term]]

    init(_ condition: Condition, constants: HTTPRuleConstants) throws(ConfigError) {
        inverted = condition.inverted
        var alternatives: [[Term]] = []
        for group in condition.alternatives {
            var terms: [Term] = []
            for term in group {
                var criteria: [HTTPCompiledCriterion] = []
                for criterion in term.criteria {
                    criteria.append(try HTTPCompiledCriterion(criterion, constants: constants))
                }
                terms.append(Term(negated: term.negated, criteria: criteria))
            }
            alternatives.append(terms)
        }
        self.alternatives = alternatives
    }

    func evaluate(_ ev: HTTPEvaluation) -> Bool {
        var result = false
        for group in alternatives {
            var all = true
            for term in group {
                var matched = false
                for criterion in term.criteria where criterion.evaluate(ev) {
                    matched = true
                    break
                }
                if matched == term.negated {
                    all = false
                    break
                }
            }
            if all {
                result = true
                break
            }
        }
        return result != inverted
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
