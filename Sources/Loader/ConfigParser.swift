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
    /// What does not stop the load, as `file:line: message`: `-dr`, `parse-resolv-conf`, and what
    /// HAProxy 2.6 accepts and ignores with a warning (legacy process keywords), said the same way.
    var warnings: [ConfigError] = []
    var global = GlobalSettings()
    var defaults: [DefaultsSection] = []
    var drafts: [ProxyDraft] = []
    var resolvers: [ResolversSection] = []
    var userlists: [UserlistDraft] = []
    var peers: [PeersDraft] = []
    /// `-L NAME` on the command line.
    var localPeerOverride: String?
    /// `http-errors NAME` sections: their `errorfile` messages by status, where declared.
    var httpErrors: [(name: String, files: [Int: [UInt8]], location: SourceLocation)] = []
    /// `cache NAME` sections in file order ("" as the name of one whose header was wrong).
    var caches: [CacheDraft] = []
    private var section = Section.none

    private enum Section {
        case none
        case global
        case defaults(Int)
        case proxy(Int)
        case resolvers(Int)
        case userlist(Int)
        case peers(Int)
        case httpErrors(Int)
        case cache(Int)
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
        case UInt8(ascii: "g"), UInt8(ascii: "d"), UInt8(ascii: "f"), UInt8(ascii: "b"), UInt8(ascii: "l"),
            UInt8(ascii: "r"), UInt8(ascii: "u"), UInt8(ascii: "h"), UInt8(ascii: "p"), UInt8(ascii: "c"):
            break
        default: return false
        }
        switch word {
        case "global", "defaults", "frontend", "backend", "listen", "resolvers", "userlist", "http-errors", "peers", "cache": return true
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
        case "program", "ring", "mailers", "log-forward",
            "fcgi-app":
            return true
        default: return false
        }
    }

    init(environment: [String: String], resolver: HostResolver, paths: LoadPaths = LoadPaths(),
         resolutionFailuresWarn: Bool = false, resolvConfPath: String = "/etc/resolv.conf") {
        self.environment = environment
        self.reader = KeywordReader(addresses: AddressParser(resolver: resolver, environment: environment), paths: paths,
                                    resolutionFailuresWarn: resolutionFailuresWarn, resolvConfPath: resolvConfPath)
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
        reader.paths.location = location
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
            case .resolvers(let index):
                try reader.resolversKeyword(line, section: &resolvers[index], warnings: &warnings)
            case .userlist(let index):
                try KeywordReader.userlistKeyword(line, draft: &userlists[index])
            case .peers(let index):
                try peersKeyword(line, index: index)
            case .httpErrors(let index):
                guard line.keyword == "errorfile" else {
                    throw line.error("'\(line.keyword)' is not an http-errors keyword (the section has 'errorfile CODE FILE' lines)")
                }
                let (code, message) = try reader.errorFile(line)
                httpErrors[index].files[code] = message
            case .cache(let index):
                try KeywordReader.cacheKeyword(line, draft: &caches[index])
            case .defaults(let index):
                do throws(ConfigError) {
                    try reader.proxyKeyword(line, draft: &defaults[index].draft)
                } catch {
                    defaults[index].draft.failedKeywords.insert(line.keyword)
                    throw error
                }
                // A defaults line's notes are its own (said once, not per proxy inheriting it).
                if !defaults[index].draft.lineWarnings.isEmpty {
                    warnings += defaults[index].draft.lineWarnings
                    defaults[index].draft.lineWarnings = []
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
                if !drafts[index].lineWarnings.isEmpty {
                    warnings += drafts[index].lineWarnings
                    drafts[index].lineWarnings = []
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
        if kind == "resolvers" {
            startResolvers(words, location: location)
            return
        }
        if kind == "userlist" {
            startUserlist(words, location: location)
            return
        }
        if kind == "peers" {
            let earlier = words.count > 1 ? peers.first { $0.name == words[1] }?.location : nil
            guard let name = sectionName(words, location: location, kind: "peers", noun: "peers section",
                                         nameCharacters: true, earlier: earlier) else { return }
            peers.append(PeersDraft(name: name, location: location))
            section = .peers(peers.count - 1)
            return
        }
        if kind == "cache" {
            let earlier = words.count > 1 ? caches.first { $0.section.name == words[1] }?.section.location : nil
            guard let name = sectionName(words, location: location, kind: "cache", noun: "cache section",
                                         nameCharacters: false, earlier: earlier) else { return }
            caches.append(CacheDraft(section: CacheSection(name: name, location: location)))
            section = .cache(caches.count - 1)
            return
        }
        if kind == "http-errors" {
            if words.count != 2 {
                errors.append(ConfigError(location, "'http-errors' expects a name"))
                section = .unsupported
            } else if let earlier = httpErrors.first(where: { $0.name == words[1] }) {
                errors.append(ConfigError(location, "http-errors '\(words[1])' has the same name as another http-errors section declared at \(earlier.location)"))
                section = .unsupported
            } else {
                httpErrors.append((words[1], [:], location))
                section = .httpErrors(httpErrors.count - 1)
            }
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

    /// `resolvers NAME`: a name of proxy name characters, used once. A wrong header still opens
    /// the section (its lines are checked) but leaves it out of the configuration.
    private mutating func startResolvers(_ words: [String], location: SourceLocation) {
        let earlier = words.count > 1 ? resolvers.first { $0.name == words[1] }?.location : nil
        guard let name = sectionName(words, location: location, kind: "resolvers", noun: "resolvers section",
                                     nameCharacters: true, earlier: earlier)
        else { return }
        resolvers.append(ResolversSection(name: name, location: location))
        section = .resolvers(resolvers.count - 1)
    }

    /// `userlist NAME`: checked as `resolvers NAME` is (any characters).
    private mutating func startUserlist(_ words: [String], location: SourceLocation) {
        let earlier = words.count > 1 ? userlists.first { $0.userlist.name == words[1] }?.userlist.location : nil
        guard let name = sectionName(words, location: location, kind: "userlist", noun: "userlist",
                                     nameCharacters: false, earlier: earlier)
        else { return }
        userlists.append(UserlistDraft(userlist: Userlist(name: name, location: location)))
        section = .userlist(userlists.count - 1)
    }

    /// The NAME of a `KIND NAME` header: "" when the header is wrong (reported; the section is
    /// still read, then left out), nil without a name (reported; its lines are skipped).
    private mutating func sectionName(_ words: [String], location: SourceLocation, kind: String, noun: String,
                                      nameCharacters: Bool, earlier: SourceLocation?) -> String? {
        guard words.count > 1 else {
            errors.append(ConfigError(location, "'\(kind)' expects a name"))
            section = .unsupported
            return nil
        }
        let name = words[1]
        var valid = true
        if words.count > 2 {
            errors.append(ConfigError(location, "unexpected argument '\(words[2])' to '\(kind)': expected NAME"))
            valid = false
        }
        if nameCharacters, !KeywordReader.isName(name), let bad = name.first(where: { !KeywordReader.isNameCharacter($0) }) {
            errors.append(ConfigError(location,
                "character '\(bad)' is not permitted in \(kind) name '\(name)' (use letters, digits, '-', '_', '.' and ':')"))
            valid = false
        }
        if let previous = earlier {
            errors.append(ConfigError(location, "\(kind) '\(name)' has the same name as another \(noun) declared at \(previous)"))
            valid = false
        }
        return valid ? name : ""
    }

    /// `errorfiles` lines naming a section no `http-errors` has, or a code it does not define.
    func errorFileImportProblems() -> [ConfigError] {
        var problems: [ConfigError] = []
        for d in (drafts.indices.map { drafts[$0].errorFileImports } + defaults.map(\.draft.errorFileImports)) {
            for entry in d {
                guard let section = httpErrors.first(where: { $0.name == entry.name }) else {
                    problems.append(ConfigError(entry.location, "'errorfiles': unknown http-errors section '\(entry.name)'"))
                    continue
                }
                for code in entry.codes ?? [] where section.files[code] == nil && !entry.optional {
                    problems.append(ConfigError(entry.location, "'errorfiles': http-errors '\(entry.name)' has no errorfile for \(code)"))
                }
            }
        }
        // A line inherited by several proxies is reported once.
        var seen = Set<String>()
        return problems.filter { seen.insert($0.description).inserted }
    }

    // MARK: Result

    /// The configuration read so far, with `log global` expanded, proxy ids assigned and the global
    /// `noreuseport` applied. Proxies whose header was wrong are left out (their error is reported).
    func configuration() -> Config {
        build().config
    }

    /// Servers whose address only `init-addr last` may give, as indices into `build().config`'s
    /// proxies and their servers.
    func pendingLastAddresses() -> [(proxy: Int, server: Int, error: ConfigError)] {
        var out: [(proxy: Int, server: Int, error: ConfigError)] = []
        var p = 0
        for i in drafts.indices where drafts[i].valid {
            for pending in drafts[i].pendingLast { out.append((p, pending.server, pending.error)) }
            p += 1
        }
        return out
    }

    /// The configuration with, per proxy, the keywords whose line failed, and the names of the
    /// proxies left out: what the validator needs to report nothing twice.
    func build() -> (config: Config, failedKeywords: [Set<String>], droppedNames: Set<String>) {
        // Indexed access throughout: `for draft in drafts` would copy every draft and its proxy.
        var config = Config(global: global)
        config.maps = reader.paths.maps
        config.caches = caches.compactMap(\.complete)
        config.resolvers = resolvers.filter { !$0.name.isEmpty }
        // HAProxy 2.6 has a `default` section from resolv.conf unless the file declares one.
        if !config.resolvers.contains(where: { $0.name == "default" }),
           drafts.contains(where: { $0.proxy.servers.contains { $0.options.resolvers == "default" } }),
           let section = reader.defaultResolvers() {
            config.resolvers.append(section)
        }
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
            // `errorfiles NAME [CODE…]`: the section's messages, under the proxy's own `errorfile` lines.
            for entry in drafts[i].errorFileImports {
                guard let section = httpErrors.first(where: { $0.name == entry.name }) else { continue }
                for (code, message) in section.files where entry.codes?.contains(code) ?? true {
                    if drafts[i].ownErrorFiles.contains(code) { continue }
                    config.proxies[p].http.errorFiles[code] = message
                }
            }
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
            if config.proxies[p].log.tag == nil { config.proxies[p].log.tag = global.logTag }
            if global.noReusePort {
                for b in config.proxies[p].binds.indices { config.proxies[p].binds[b].reusePort = false }
            }
            failed.append(drafts[i].failedKeywords)
        }
        return (config, failed, dropped)
    }
}
