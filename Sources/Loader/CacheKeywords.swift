import ConfigModel

/// A `cache NAME` section being read: the section, and what its end checks (HAProxy's
/// `cfg_post_parse_section_cache`: a size is required, `max-object-size` defaults to a 256th of
/// it and may not exceed half of it).
struct CacheDraft {
    var section: CacheSection
    /// `max-object-size` was written (else the default applies).
    var objectSizeGiven = false
    /// A line of the section failed: the section is left out (its error is reported).
    var failed = false

    /// The section as the configuration holds it; nil when it is incomplete or wrong.
    var complete: CacheSection? {
        guard !failed, !section.name.isEmpty, section.totalMaxSize > 0 else { return nil }
        var s = section
        if !objectSizeGiven { s.maxObjectSize = s.totalMaxSize >> 8 }
        guard s.maxObjectSize <= s.totalMaxSize / 2 else { return nil }
        return s
    }

    /// Why `complete` is nil, at the section's header.
    var problem: ConfigError? {
        guard !failed, !section.name.isEmpty else { return nil }
        if section.totalMaxSize <= 0 {
            return ConfigError(section.location, "cache '\(section.name)': size not specified ('total-max-size MEGABYTES' is required)")
        }
        if objectSizeGiven, section.maxObjectSize > section.totalMaxSize / 2 {
            return ConfigError(section.location, "cache '\(section.name)': 'max-object-size' is limited to half of 'total-max-size' (\(section.totalMaxSize / 2) bytes)")
        }
        return nil
    }
}

extension KeywordReader {
    static let cacheKeywords = ["total-max-size", "max-object-size", "max-age", "process-vary", "max-secondary-entries"]

    /// A line of a `cache` section (HAProxy's `cfg_parse_cache`; where it only warns about a wrong
    /// value and goes on with another, strata refuses the line).
    static func cacheKeyword(_ line: KeywordLine, draft: inout CacheDraft) throws(ConfigError) {
        do throws(ConfigError) {
            switch line.keyword {
            case "total-max-size":
                // Megabytes, at most what HAProxy's 32-bit block count takes.
                let megabytes = try line.integer(0, range: 1...4095, name: "total-max-size")
                try line.noArguments(after: 1)
                draft.section.totalMaxSize = megabytes << 20
            case "max-object-size":
                let bytes = try line.integer(0, range: 1...Int(UInt32.max), name: "max-object-size")
                try line.noArguments(after: 1)
                draft.section.maxObjectSize = bytes
                draft.objectSizeGiven = true
            case "max-age":
                let seconds = try line.integer(0, range: 0...Int(Int32.max), name: "max-age")
                try line.noArguments(after: 1)
                draft.section.maxAge = seconds
            case "process-vary":
                let value = try line.argument(0, expecting: "on or off")
                try line.noArguments(after: 1)
                switch value {
                case "on": draft.section.processVary = true
                case "off": draft.section.processVary = false
                default: throw line.error("'process-vary' expects on or off, got '\(value)'")
                }
            case "max-secondary-entries":
                let count = try line.integer(0, range: 1...Int(UInt32.max), name: "max-secondary-entries")
                try line.noArguments(after: 1)
                draft.section.maxSecondaryEntries = count
            case "early-hints":
                throw line.error("'early-hints' is not supported yet in section 'cache'")
            default:
                throw line.error("'\(line.keyword)' is not a cache keyword"
                    + KeywordSuggestion.clause(for: line.keyword, among: cacheKeywords))
            }
        } catch {
            draft.failed = true
            throw error
        }
    }
}

extension ConfigParser {
    /// Incomplete `cache` sections, and `cache-use`, `cache-store` and `filter cache` naming a
    /// cache no section declares (HAProxy's `post_check_cache`).
    func cacheProblems(_ config: Config) -> [ConfigError] {
        var problems = caches.compactMap(\.problem)
        // A section that failed is reported by its own line; its users are not reported again.
        let names = Set(caches.map(\.section.name))
        func check(_ name: String, _ location: SourceLocation, _ what: String) {
            guard !names.contains(name) else { return }
            problems.append(ConfigError(location, "\(what): unable to find cache '\(name)'"
                + KeywordSuggestion.clause(for: name, among: caches.map(\.section.name).filter { !$0.isEmpty })))
        }
        for p in config.proxies.indices {
            for rule in config.proxies[p].http.requestRules {
                if case .cacheUse(let name) = rule.action { check(name, rule.location, "'http-request cache-use'") }
            }
            for rule in config.proxies[p].http.responseRules {
                if case .cacheStore(let name) = rule.action { check(name, rule.location, "'http-response cache-store'") }
            }
        }
        for draft in drafts where draft.valid {
            for filter in draft.cacheFilters { check(filter.name, filter.location, "'filter cache'") }
        }
        return problems
    }
}
