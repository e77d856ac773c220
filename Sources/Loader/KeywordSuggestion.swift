/// "did you mean" for a keyword strata does not know: the closest supported keyword of the same
/// section, when it is within two edits or one of the two is a prefix of the other.
enum KeywordSuggestion {
    /// Linear in the word's length: a word whose length is more than two away from a candidate's
    /// is not within two edits of it, so the edit distance (quadratic) only runs on words about
    /// as short as a keyword; a prefix's distance is the difference in length. A 3 MB word is a
    /// few comparisons per candidate, not 3 MB times the candidate's length.
    static func nearest(to word: String, among candidates: [String]) -> String? {
        var best: (candidate: String, distance: Int)?
        let length = word.utf8.count
        for candidate in candidates where candidate != word {
            let other = candidate.utf8.count
            let distance: Int
            if min(length, other) >= 3,
               length <= other ? candidate.utf8.starts(with: word.utf8) : word.utf8.starts(with: candidate.utf8)
            {
                distance = abs(length - other)
            } else if abs(length - other) <= 2 {
                distance = levenshtein(word, candidate)
                guard distance <= 2 else { continue }
            } else {
                continue
            }
            if best == nil || distance < best!.distance { best = (candidate, distance) }
        }
        return best?.candidate
    }

    /// ` (did you mean 'X'?)`, or nothing.
    static func clause(for word: String, among candidates: [String]) -> String {
        nearest(to: word, among: candidates).map { " (did you mean '\($0)'?)" } ?? ""
    }

    static func levenshtein(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
