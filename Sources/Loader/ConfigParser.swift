#if canImport(Glibc)
import Glibc
#endif
import ConfigModel

/// Reads configuration text line by line into the model: sections, keywords and their arguments.
/// Every error is collected with its line and reading goes on, so that one run reports them all.
/// Checks that need the whole configuration (names referenced across sections, duplicates) are
/// ConfigValidator's.
struct ConfigParser {
    let environment: [String: String]
    /// Reads keyword lines; kept apart from the parser's state so that a proxy being filled can be
    /// passed `inout` without copying the parser.
    let reader: KeywordReader

    private(set) var hash = ConfigHash()
    /// Lines with at least one word (not blank, not only a comment), in every file.
    private(set) var wordLines = 0
    var errors: [ConfigError] = []
    /// What HAProxy 2.6 accepts and ignores with a warning (legacy process keywords), said the same way.
    var warnings: [ConfigError] = []
    var global = GlobalSettings()
    var defaults: [DefaultsSection] = []
    var drafts: [ProxyDraft] = []
    private var section = Section.none

    private enum Section {
        case none
        case global
        case defaults(Int)
        case proxy(Int)
        /// A section HAProxy has and strata does not: reported once at its header, its lines skipped.
        case unsupported
    }

    static let proxySections: [String: SectionKind] = [
        "frontend": .frontend, "backend": .backend, "listen": .listen,
    ]
    /// `global`, `defaults` or a key of `proxySections`, without hashing: this runs for every line.
    static func isSectionHeader(_ word: String) -> Bool {
        // The first byte rules out most keywords before any comparison.
        switch word.utf8.first {
        case UInt8(ascii: "g"), UInt8(ascii: "d"), UInt8(ascii: "f"), UInt8(ascii: "b"), UInt8(ascii: "l"): break
        default: return false
        }
        switch word {
        case "global", "defaults", "frontend", "backend", "listen": return true
        default: return false
        }
    }

    /// HAProxy's other sections: recognized so that their lines are not each reported as unknown.
    /// A switch rather than a set: no hashing on every line.
    static func isUnsupportedSection(_ word: String) -> Bool {
        switch word.utf8.first {
        case UInt8(ascii: "r"), UInt8(ascii: "p"), UInt8(ascii: "u"), UInt8(ascii: "h"), UInt8(ascii: "m"),
            UInt8(ascii: "c"), UInt8(ascii: "l"), UInt8(ascii: "f"):
            break
        default: return false
        }
        switch word {
        case "resolvers", "peers", "userlist", "program", "http-errors", "ring", "mailers", "cache", "log-forward",
            "fcgi-app":
            return true
        default: return false
        }
    }

    init(environment: [String: String], resolver: HostResolver, paths: LoadPaths = LoadPaths()) {
        self.environment = environment
        self.reader = KeywordReader(addresses: AddressParser(resolver: resolver, environment: environment), paths: paths)
    }

    /// Reads one file's text. `file` is the name errors carry.
    mutating func parse(text: String, file: String) {
        var text = text
        text.withUTF8 { bytes in
            // Split on bytes: as Characters, "\r\n" is one grapheme that never equals "\n". A
            // last line without its newline counts, as does the empty one after a final newline.
            var number = 0
            var start = 0
            var words: [String] = []
            words.reserveCapacity(16)
            var cache = WordCache()
            while true {
                var end = bytes.count
                if start < end, let base = bytes.baseAddress,
                   let newline = memchr(base + start, Int32(UInt8(ascii: "\n")), end - start)
                {
                    end = base.distance(to: newline.assumingMemoryBound(to: UInt8.self))
                }
                number += 1
                words.removeAll(keepingCapacity: true)
                parse(line: UnsafeBufferPointer(rebasing: bytes[start..<end]), words: &words, cache: &cache,
                      number: number, file: file)
                if end == bytes.count { break }
                start = end + 1
            }
        }
    }

    private mutating func parse(line: UnsafeBufferPointer<UInt8>, words: inout [String], cache: inout WordCache,
                                number: Int, file: String)
    {
        do throws(ConfigTokenizer.Failure) {
            try ConfigTokenizer.tokenize(bytes: line, environment: environment, into: &words, cache: &cache)
        } catch {
            errors.append(ConfigError(SourceLocation(file: file, line: number), error.message))
            return
        }
        guard !words.isEmpty else { return }
        wordLines += 1
        hash.add(line: words)
        parse(words: words, location: SourceLocation(file: file, line: number))
    }

    private mutating func parse(words: [String], location: SourceLocation) {
        let first = words[0]
        if ConfigParser.isSectionHeader(first) {
            startSection(words, location: location)
            return
        }
        if ConfigParser.isUnsupportedSection(first) {
            errors.append(ConfigError(location, "section '\(first)' is not supported yet"))
            section = .unsupported
            return
        }
        let line = KeywordLine(words: words, location: location)
        do throws(ConfigError) {
            let inSection: Bool
            switch section {
            case .none, .unsupported: inSection = false
            default: inSection = true
            }
            // The keyword is a family's first word alone only when nothing follows it.
            if inSection, line.args.isEmpty, let example = KeywordLine.familyExamples[line.keyword] {
                // `option`, `timeout` or `stats` alone: say what follows rather than guess a keyword.
                throw line.error("'\(line.keyword)' expects a name after it (for example '\(example)')")
            }
            if inSection, let warning = try KeywordReader.legacyWarning(line, global: { if case .global = section { true } else { false } }()) {
                warnings.append(warning)
                return
            }
            switch section {
            case .none:
                throw line.error("'\(line.keyword)' is outside any section")
            case .unsupported:
                return
            case .global:
                try reader.globalKeyword(line, global: &global)
            case .defaults(let index):
                do throws(ConfigError) {
                    try reader.proxyKeyword(line, draft: &defaults[index].draft)
                } catch {
                    defaults[index].draft.failedKeywords.insert(line.keyword)
                    throw error
                }
            case .proxy(let index):
                do throws(ConfigError) {
                    try reader.proxyKeyword(line, draft: &drafts[index])
                } catch {
                    drafts[index].failedKeywords.insert(line.keyword)
                    errors += drafts[index].lineErrors
                    drafts[index].lineErrors = []
                    throw error
                }
            }
        } catch {
            errors.append(error)
        }
    }

    // MARK: Section headers

    private mutating func startSection(_ words: [String], location: SourceLocation) {
        let kind = words[0]
        if kind == "global" {
            section = .global
            if words.count > 1 { errors.append(ConfigError(location, "unexpected argument '\(words[1])' to 'global'")) }
            return
        }

        // `defaults [NAME] [from NAME]`, `frontend|backend|listen NAME [from NAME]`.
        var args = words.dropFirst()
        var name: String?
        var from: String?
        var valid = true
        if let next = args.first, !(kind == "defaults" && next == "from") {
            name = next
            args = args.dropFirst()
        }
        if args.first == "from" {
            if args.count < 2 {
                errors.append(ConfigError(location, "'from' expects the name of a defaults section"))
                valid = false
            } else {
                from = args[args.startIndex + 1]
            }
            args = args.dropFirst(2)
        }
        if let extra = args.first {
            let hint = kind == "defaults" ? "" : " (listening addresses go on 'bind' lines)"
            errors.append(ConfigError(location,
                "unexpected argument '\(extra)' to '\(kind)': expected \(kind == "defaults" ? "[NAME]" : "NAME") [from DEFAULTS]\(hint)"))
            valid = false
        }

        let sectionKind = ConfigParser.proxySections[kind] ?? .defaults
        if sectionKind != .defaults {
            if let proxyName = name {
                if !KeywordReader.isName(proxyName), let bad = proxyName.first(where: { !KeywordReader.isNameCharacter($0) }) {
                    errors.append(ConfigError(location,
                        "character '\(bad)' is not permitted in \(kind) name '\(proxyName)' (use letters, digits, '-', '_', '.' and ':')"))
                    valid = false
                }
            } else {
                errors.append(ConfigError(location, "'\(kind)' expects a name"))
                valid = false
            }
        }

        var draft = ProxyDraft(name: name ?? "", section: sectionKind, location: location)
        draft.valid = valid
        var base: Int?  // the defaults section to inherit from
        var what: String { sectionKind == .defaults ? "defaults section '\(name ?? "")'" : "\(kind) '\(name ?? "")'" }
        if let from {
            let matches = defaults.filter { $0.name == from }
            if matches.isEmpty {
                errors.append(ConfigError(location, "unable to find defaults section '\(from)' for \(what)"))
            } else if matches.count > 1 {
                errors.append(ConfigError(location,
                    "defaults section name '\(from)' is ambiguous: declared at \(matches[0].location) and \(matches[1].location)"))
            } else {
                let index = defaults.firstIndex { $0.name == from }!
                if let implicit = defaults[index].implicitUse {
                    errors.append(ConfigError(location, "defaults section '\(from)' (declared at \(defaults[index].location)) is used implicitly at \(implicit) and referenced with 'from' here: use 'from' everywhere, or add a last defaults section for the implicit uses"))
                }
                if defaults[index].explicitUse == nil { defaults[index].explicitUse = location }
                base = index
            }
        } else if sectionKind != .defaults, let index = defaults.indices.last {
            // A proxy starts from the latest defaults section before it; a defaults section starts afresh.
            if let explicit = defaults[index].explicitUse {
                errors.append(ConfigError(location, "defaults section '\(defaults[index].name ?? "")' (declared at \(defaults[index].location)) is referenced with 'from' at \(explicit) and used implicitly here: use 'from' everywhere, or add a last defaults section for the implicit uses"))
            }
            if defaults[index].implicitUse == nil { defaults[index].implicitUse = location }
            base = index
        }

        // A ProxyDraft is over a kilobyte with dozens of references in it: it is moved into its
        // array (`consume`) and inherits there, from the defaults read in place (the argument is
        // the array, not a copy of the draft), so no section copies a whole draft.
        if sectionKind == .defaults {
            if let base { draft.inherit(from: defaults, base) }
            defaults.append(DefaultsSection(name: name, location: location, draft: consume draft))
            section = .defaults(defaults.count - 1)
        } else {
            drafts.append(consume draft)
            if let base { drafts[drafts.count - 1].inherit(from: defaults, base) }
            section = .proxy(drafts.count - 1)
        }
    }

    // MARK: Result

    /// The configuration read so far, with `log global` expanded, proxy ids assigned and the global
    /// `noreuseport` applied. Proxies whose header was wrong are left out (their error is reported).
    func configuration() -> Config {
        build().config
    }

    /// The configuration with, per proxy, the keywords whose line failed, and the names of the
    /// proxies left out: what the validator needs to report nothing twice.
    func build() -> (config: Config, failedKeywords: [Set<String>], droppedNames: Set<String>) {
        // Indexed access throughout: `for draft in drafts` would copy every draft and its proxy.
        var config = Config(global: global)
        config.proxies.reserveCapacity(drafts.count)
        var failed: [Set<String>] = []
        failed.reserveCapacity(drafts.count)
        var explicitIDs = Set<Int>()
        for i in drafts.indices { if let id = drafts[i].explicitID { explicitIDs.insert(id) } }
        var dropped = Set<String>()
        var nextID = 1
        for i in drafts.indices {
            guard drafts[i].valid else {
                dropped.insert(drafts[i].proxy.name)
                continue
            }
            config.proxies.append(drafts[i].proxy)
            let p = config.proxies.count - 1
            if let id = drafts[i].explicitID {
                config.proxies[p].id = id
            } else {
                // HAProxy numbers the proxies without `id` with the lowest ids still free.
                while !explicitIDs.isEmpty && explicitIDs.contains(nextID) { nextID += 1 }
                config.proxies[p].id = nextID
                nextID += 1
            }
            if !drafts[i].logs.isEmpty {
                config.proxies[p].log.targets = drafts[i].logs.flatMap { entry -> [LogTarget] in
                    switch entry {
                    case .global: global.logTargets
                    case .target(let target): [target]
                    }
                }
            }
            if global.noReusePort {
                for b in config.proxies[p].binds.indices { config.proxies[p].binds[b].reusePort = false }
            }
            failed.append(drafts[i].failedKeywords)
        }
        return (config, failed, dropped)
    }
}
