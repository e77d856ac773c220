import ConfigModel

/// What a reload would change, told before it is done (`reload plan`): the proxies, servers,
/// settings, rules and listeners added, removed or changed between the configuration serving now
/// and a candidate, and what the swap would do to live state (health states that reset, sessions
/// left draining). A value computed from two `Config`s and the engine's live facts, so it is
/// tested without sockets. Proxies and servers meet their counterparts by name (`IdentityMatch`:
/// at the same place, else through a dictionary): a plan is linear in the configuration's size,
/// as a reload is.
///
/// Lines are grouped, each group in file order: global settings; each proxy of the candidate
/// with its settings, rules and servers, then the proxies removed; listeners; what the swap does
/// to live state (`!`); the generations (`=`).
public struct ReloadPlan: Sendable {
    /// One line of the plan: `+ server app/s3`, `~ proxy web: timeout server 10s -> 30s`.
    struct Change: Hashable, Sendable {
        enum Mark: String, Hashable, Sendable {
            case added = "+"
            case removed = "-"
            case changed = "~"
            case kept = "="
            /// A consequence of the swap to know about (a state that resets, sessions draining).
            case notice = "!"
        }

        /// What a line is about, for tools.
        enum Kind: String, Hashable, Sendable {
            case proxy, server, listener, rules, settings, health, drain, generation
        }

        var mark: Mark
        var kind: Kind
        /// The line after its mark.
        var text: String
        /// The line's facts by name, in order: what `reload plan json` gives beside the line.
        var fields: [Field]

        init(_ mark: Mark, _ kind: Kind, _ text: String, _ fields: [Field] = []) {
            self.mark = mark
            self.kind = kind
            self.text = text
            self.fields = fields
        }

        var line: String { mark.rawValue + " " + text }

        /// A line about the configuration rather than about live state or the generations.
        var isConfigurationChange: Bool {
            (mark == .added || mark == .removed || mark == .changed)
        }
    }

    struct Field: Hashable, Sendable {
        enum Value: Hashable, Sendable {
            case string(String)
            case number(Int)
            case list([String])
        }
        var name: String
        var value: Value

        init(_ name: String, _ value: String) { self.init(name, .string(value)) }
        init(_ name: String, _ value: Int) { self.init(name, .number(value)) }
        init(_ name: String, _ value: [String]) { self.init(name, .list(value)) }
        init(_ name: String, _ value: Value) {
            self.name = name
            self.value = value
        }
    }

    /// What the engine knows that the configuration does not: which listening sockets are open
    /// (a reload keeps them), which generations are alive and how many sessions each still runs.
    public struct Facts: Sendable {
        struct LiveGeneration: Hashable, Sendable {
            var id: Int
            var state: GenerationState
            var sessions: Int
            var hash: String

            init(id: Int, state: GenerationState, sessions: Int, hash: String) {
                self.id = id
                self.state = state
                self.sessions = sessions
                self.hash = hash
            }
        }

        /// The generations alive now, oldest first; the active one is the current one.
        var generations: [LiveGeneration]
        /// The listener keys the process holds open: a reload reuses them instead of binding.
        var heldListeners: Set<ListenerKey>

        init(generations: [LiveGeneration], heldListeners: Set<ListenerKey>) {
            self.generations = generations
            self.heldListeners = heldListeners
        }

        /// The engine's facts now. On the loop's thread.
        public init(engine: Engine, heldListeners: [ListenerKey]) {
            self.init(generations: engine.generations.map {
                LiveGeneration(id: $0.id, state: $0.state, sessions: $0.sessions, hash: $0.hash)
            }, heldListeners: Set(heldListeners))
        }

        var current: LiveGeneration? { generations.last { $0.state == .active } }
    }

    /// Every line, in order. Empty when the candidate is refused.
    let changes: [Change]
    /// Why a reload would fail, each as a reload prints it (`file:line: message`). Empty when it
    /// would succeed.
    let errors: [ConfigError]
    let current: Facts.LiveGeneration?
    /// The candidate's content hash; nil when it was refused before it was hashed.
    let candidateHash: String?

    public var succeeds: Bool { errors.isEmpty }

    /// A candidate a reload would refuse: its errors, nothing else.
    public init(refusing errors: [ConfigError], candidateHash: String? = nil, facts: Facts) {
        self.changes = []
        self.errors = errors
        self.current = facts.current
        self.candidateHash = candidateHash
    }

    /// What a reload from `old` (nil: nothing serves) to `new` would change.
    public init(from old: Config?, to new: Config, candidateHash: String, facts: Facts) {
        var differ = ConfigDiffer(facts: facts)
        differ.compare(old ?? Config(), new)
        var changes = differ.proxyLines + differ.listenerLines + differ.notices
        if !changes.contains(where: \.isConfigurationChange) {
            changes.append(Change(.kept, .generation, "no change"))
        }
        let current = facts.current
        let from = current.map { "generation \($0.id) (hash \($0.hash))" } ?? "no generation"
        var fields: [Field] = []
        if let current { fields += [Field("generation", current.id), Field("hash", current.hash)] }
        fields.append(Field("candidate_hash", candidateHash))
        changes.append(Change(.kept, .generation, "\(from) -> candidate (hash \(candidateHash))", fields))
        self.changes = changes
        self.errors = []
        self.current = current
        self.candidateHash = candidateHash
    }

    /// The answer's lines: the changes, or the errors a reload would print and a last line.
    var lines: [String] {
        guard succeeds else {
            let from = current.map { "generation \($0.id) (hash \($0.hash))" } ?? "no generation"
            return errors.map(\.description) + ["= \(from) -> candidate refused: a reload would fail and change nothing"]
        }
        return changes.map(\.line)
    }

    public var text: String { lines.joined(separator: "\n") }
}

/// Walks two configurations side by side and writes the plan's lines. Matching is by identity:
/// a proxy by its kind and name, a server by its name in its backend, a listener by its key.
struct ConfigDiffer {
    let facts: ReloadPlan.Facts
    var proxyLines: [ReloadPlan.Change] = []
    var listenerLines: [ReloadPlan.Change] = []
    var notices: [ReloadPlan.Change] = []
    /// Built once per plan: a table of key paths and closures.
    private let proxySettings = PlanSetting<Proxy>.proxy
    private let serverSettings = PlanSetting<Server>.server
    /// The candidate's proxies, for `sharedNames`.
    private var candidateProxies: [Proxy] = []
    /// Names that a frontend and a backend share: their lines say which one they are about.
    /// Found the first time a line needs it.
    private var sharedNames: Set<String>?

    init(facts: ReloadPlan.Facts) {
        self.facts = facts
    }

    private struct ProxyKey: Hashable {
        var kind: ProxyKind
        var name: String
    }

    mutating func compare(_ old: Config, _ new: Config) {
        compareGlobal(old.global, new.global)
        compareResolvers(old.resolvers, new.resolvers)
        compareMaps(old.maps, new.maps)
        compareCaches(old.caches, new.caches)
        candidateProxies = new.proxies
        // Proxies are read through buffer pointers: reading a field through an array's subscript
        // may copy the whole Proxy (dozens of references), and a plan reads every one.
        old.proxies.withUnsafeBufferPointer { olds in
            new.proxies.withUnsafeBufferPointer { news in
                compareProxies(olds, news)
                compareListeners(olds, news)
            }
        }
        noteDrains(new.global)
    }

    private mutating func compareProxies(_ olds: UnsafeBufferPointer<Proxy>, _ news: UnsafeBufferPointer<Proxy>) {
        let match = IdentityMatch(old: olds.count, new: news.count,
                                  oldKey: { ProxyKey(kind: olds[$0].kind, name: olds[$0].name) },
                                  newKey: { ProxyKey(kind: news[$0].kind, name: news[$0].name) })
        for i in news.indices {
            let j = match.counterpart(of: i)
            if j < 0 {
                proxyLines.append(.init(.added, .proxy, "\(news[i].kind.rawValue) \(news[i].name)", proxyFields(news[i])))
            } else {
                compareProxy(olds.baseAddress! + j, news.baseAddress! + i)
            }
        }
        for j in olds.indices where !match.isMatched(j) {
            proxyLines.append(.init(.removed, .proxy, "\(olds[j].kind.rawValue) \(olds[j].name)", proxyFields(olds[j])))
        }
    }

    // MARK: global

    private mutating func compareGlobal(_ old: GlobalSettings, _ new: GlobalSettings) {
        guard old != new else { return }
        let (named, rest) = PlanSetting.compare(old.planView, new.planView, PlanSetting<GlobalSettings>.global)
        for (name, from, to) in named {
            let what = from == to ? "\(name) changed" : "\(name) \(from) -> \(to)"
            proxyLines.append(.init(.changed, .settings, "global: \(what)",
                                    [Field("section", "global"), Field("setting", name), Field("from", from), Field("to", to)]))
        }
        if rest {
            // Keywords that appeared or disappeared say where to look; else the section's file.
            let keywords = Set(old.locations.keys).symmetricDifference(new.locations.keys)
            var places = keywords.compactMap { new.locations[$0] ?? old.locations[$0] }
            if places.isEmpty, let any = (new.locations.values.min { $0.line < $1.line }) {
                places = [SourceLocation(file: any.file)]
            }
            let locations = places.sorted { ($0.file, $0.line) < ($1.file, $1.line) }.map(\.description)
            proxyLines.append(.init(.changed, .settings, "settings global" + ConfigDiffer.parenthesized(locations),
                                    [Field("section", "global"), Field("locations", locations)]))
        }
    }

    // MARK: maps

    /// Map files by path: added, removed, or with other bytes (the map then starts from its file:
    /// the admin socket's changes to it are not carried).
    private mutating func compareMaps(_ olds: [String: MapFile], _ news: [String: MapFile]) {
        for path in news.keys.sorted() {
            let map = news[path]!
            let fields = [Field("map", map.name), Field("entries", map.entries.count)]
            guard let old = olds[path] else {
                proxyLines.append(.init(.added, .settings, "map \(map.name) (\(map.entries.count) entries)", fields))
                continue
            }
            if old.digest != map.digest {
                proxyLines.append(.init(.changed, .settings,
                                        "map \(map.name): file changed (\(old.entries.count) -> \(map.entries.count) entries; changes made at runtime are dropped)",
                                        fields))
            }
        }
        for path in olds.keys.sorted() where news[path] == nil {
            proxyLines.append(.init(.removed, .settings, "map \(olds[path]!.name)", [Field("map", olds[path]!.name)]))
        }
    }

    // MARK: caches

    /// `cache` sections by name: added, removed, or changed (a line moved is no change); a
    /// changed section's store starts empty, an unchanged one keeps its entries.
    private mutating func compareCaches(_ olds: [CacheSection], _ news: [CacheSection]) {
        guard olds != news else { return }
        let before = Dictionary(olds.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let names = Set(news.map(\.name))
        for section in news {
            let fields = [Field("section", "cache \(section.name)")]
            guard let old = before[section.name] else {
                proxyLines.append(.init(.added, .settings, "cache \(section.name)", fields))
                continue
            }
            if old.settings != section.settings {
                proxyLines.append(.init(.changed, .settings, "settings cache \(section.name) (\(section.location)): its entries are dropped",
                                        fields + [Field("locations", [section.location.description])]))
            }
        }
        for section in olds where !names.contains(section.name) {
            proxyLines.append(.init(.removed, .settings, "cache \(section.name)", [Field("section", "cache \(section.name)")]))
        }
    }

    // MARK: resolvers

    /// `resolvers` sections by name: added, removed, or changed (a line moved is no change). A
    /// changed section applies at the swap: its nameservers and timers follow the new one.
    private mutating func compareResolvers(_ olds: [ResolversSection], _ news: [ResolversSection]) {
        guard olds != news else { return }
        func placeless(_ section: ResolversSection) -> ResolversSection {
            var s = section
            s.location = .anywhere
            s.nameservers = s.nameservers.map { var n = $0; n.location = .anywhere; return n }
            return s
        }
        let before = Dictionary(olds.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let names = Set(news.map(\.name))
        for section in news {
            let fields = [Field("section", "resolvers \(section.name)")]
            guard let old = before[section.name] else {
                proxyLines.append(.init(.added, .settings, "resolvers \(section.name)", fields))
                continue
            }
            if placeless(old) != placeless(section) {
                proxyLines.append(.init(.changed, .settings, "settings resolvers \(section.name) (\(section.location))",
                                        fields + [Field("locations", [section.location.description])]))
            }
        }
        for section in olds where !names.contains(section.name) {
            proxyLines.append(.init(.removed, .settings, "resolvers \(section.name)", [Field("section", "resolvers \(section.name)")]))
        }
    }

    // MARK: proxies

    private mutating func proxyName(_ proxy: Proxy) -> String {
        if sharedNames == nil {
            var names: [String: Int] = [:]
            for i in candidateProxies.indices { names[candidateProxies[i].name, default: 0] += 1 }
            sharedNames = Set(names.filter { $0.value > 1 }.keys)
        }
        return sharedNames!.contains(proxy.name) ? "\(proxy.name) (\(proxy.kind.rawValue))" : proxy.name
    }

    private func proxyFields(_ proxy: Proxy) -> [Field] {
        [Field("proxy", proxy.name), Field("proxy_kind", proxy.kind.rawValue)]
    }

    /// Through pointers: what is the same (nearly everything, in a plan) is read, never copied.
    private mutating func compareProxy(_ oldProxy: UnsafePointer<Proxy>, _ newProxy: UnsafePointer<Proxy>) {
        if !PlanContent.sameSettings(oldProxy, newProxy) { compareSettings(oldProxy.pointee, newProxy.pointee) }
        if !PlanContent.sameRuleLines(oldProxy, newProxy) { compareRules(oldProxy.pointee, newProxy.pointee) }
        if newProxy.pointee.isBackend {
            oldProxy.pointee.servers.withUnsafeBufferPointer { olds in
                newProxy.pointee.servers.withUnsafeBufferPointer { news in
                    compareServers(olds, news, backend: newProxy.pointee.name)
                }
            }
        }
    }

    /// Settings that changed. Out of line, as `compareServer` is: inlined, the caller would copy
    /// both proxies on every call.
    @inline(never)
    private mutating func compareSettings(_ old: Proxy, _ new: Proxy) {
        let (named, rest) = PlanSetting.compare(old.planView, new.planView, proxySettings)
        for (name, from, to) in named {
            let what = from == to ? "\(name) changed" : "\(name) \(from) -> \(to)"
            proxyLines.append(.init(.changed, .settings, "proxy \(proxyName(new)): \(what)",
                                    proxyFields(new) + [Field("setting", name), Field("from", from), Field("to", to)]))
        }
        if rest {
            proxyLines.append(.init(.changed, .settings, "settings \(new.kind.rawValue) \(new.name) (\(new.location))",
                                    proxyFields(new) + [Field("locations", [new.location.description])]))
        }
        // A table whose identity changed starts empty (StickTableRegistry keeps the others).
        if let before = old.stickTable, let after = new.stickTable, before.identity != after.identity {
            notices.append(.init(.notice, .settings, "stick-table \(after.name) starts empty (its type, key length, size or stored data changed)",
                                 proxyFields(new)))
        }
    }

    /// Rule lines that changed, or only moved (then nothing is said). Out of line, as above.
    @inline(never)
    private mutating func compareRules(_ old: Proxy, _ new: Proxy) {
        if let rules = RuleLines.difference(from: RuleLines(old.http, old.tcp), to: RuleLines(new.http, new.tcp)) {
            let lines = rules.changed.map(\.description), removed = rules.removed.map(\.description)
            let list = lines + removed.map { "removed \($0)" }
            proxyLines.append(.init(.changed, .rules, "rules \(new.kind.rawValue) \(new.name)" + ConfigDiffer.parenthesized(list),
                                    proxyFields(new) + [Field("lines", lines), Field("replaced", rules.replaced.map(\.description)),
                                                        Field("removed", removed)]))
        }
    }

    private static func parenthesized(_ items: [String]) -> String {
        items.isEmpty ? "" : " (" + items.joined(separator: ", ") + ")"
    }

    // MARK: servers

    private mutating func compareServers(_ olds: UnsafeBufferPointer<Server>, _ news: UnsafeBufferPointer<Server>, backend: String) {
        let match = IdentityMatch(old: olds.count, new: news.count, oldKey: { olds[$0].name }, newKey: { news[$0].name })
        for i in news.indices {
            let j = match.counterpart(of: i)
            guard j >= 0 else {
                proxyLines.append(.init(.added, .server, "server \(backend)/\(news[i].name)",
                                        [Field("backend", backend), Field("server", news[i].name)]))
                continue
            }
            if !PlanContent.same(olds.baseAddress! + j, news.baseAddress! + i) { compareServer(olds[j], news[i], backend: backend) }
        }
        for j in olds.indices where !match.isMatched(j) {
            let name = olds[j].name
            proxyLines.append(.init(.removed, .server, "server \(backend)/\(name)",
                                    [Field("backend", backend), Field("server", name)]))
        }
    }

    /// A server line that changed. Kept out of the loop above, which would otherwise copy every
    /// server on its way to here.
    @inline(never)
    private mutating func compareServer(_ old: Server, _ server: Server, backend: String) {
        let fields = [Field("backend", backend), Field("server", server.name)]
        let (named, rest) = PlanSetting.compare(old.planView, server.planView, serverSettings)
        for (name, from, to) in named {
            let what = from == to ? "\(name) changed" : "\(name) \(from) -> \(to)"
            proxyLines.append(.init(.changed, .server, "server \(backend)/\(server.name) \(what)",
                                    fields + [Field("setting", name), Field("from", from), Field("to", to)]))
        }
        if rest {
            proxyLines.append(.init(.changed, .server, "server \(backend)/\(server.name) settings (\(server.location))",
                                    fields + [Field("locations", [server.location.description])]))
        }
        // A server's state (health, admin state, runtime weight, counters) is carried by its
        // identity: backend, name, what it points at (its address, or the name it follows: the
        // address DNS gives a named server is not part of it) and port (`ServerIdentity`).
        // "address" is address and port, as in the `address` line above.
        if !ServerIdentity(backend: backend, server: old).matches(server) {
            let reason = old.fqdn != server.fqdn ? "name changed" : "address changed"
            notices.append(.init(.notice, .health, "health state of \(backend)/\(server.name) resets (\(reason))",
                                 fields + [Field("reason", reason)]))
        }
    }

    // MARK: listeners

    /// A `bind` line of an enabled frontend: its listener key, and where it is in the configuration.
    private struct ListenerLine {
        var key: ListenerKey
        var proxy: Int
        var bind: Int
    }

    /// The listening sockets of a configuration's enabled frontends, in bind order. Each key once:
    /// the loader refuses an address bound twice.
    private static func listeners(of proxies: UnsafeBufferPointer<Proxy>) -> [ListenerLine] {
        var out: [ListenerLine] = []
        for i in proxies.indices where proxies[i].kind != .backend && !proxies[i].disabled {
            for b in proxies[i].binds.indices {
                out.append(ListenerLine(key: ListenerKey(proxies[i].binds[b]), proxy: i, bind: b))
            }
        }
        return out
    }

    /// The address as written, with the options that make it another socket when they differ.
    static func listenerName(_ key: ListenerKey) -> String {
        var s = key.endpoint.description
        if key.v6only { s += " v6only" }
        if let interface = key.interface { s += " interface \(interface)" }
        if key.backlog != ListenerKey.defaultBacklog { s += " backlog \(key.backlog)" }
        if !key.reusePort { s += " noreuseport" }
        return s
    }

    private mutating func compareListeners(_ olds: UnsafeBufferPointer<Proxy>, _ news: UnsafeBufferPointer<Proxy>) {
        let before = ConfigDiffer.listeners(of: olds), after = ConfigDiffer.listeners(of: news)
        let match = IdentityMatch(old: before.count, new: after.count, oldKey: { before[$0].key }, newKey: { after[$0].key })
        let held = facts.heldListeners
        var kept = 0
        for i in after.indices {
            let l = after[i]
            let frontend = news[l.proxy].name
            let name = ConfigDiffer.listenerName(l.key)
            let fields = [Field("address", name), Field("frontend", frontend)]
            guard held.contains(l.key) else {
                listenerLines.append(.init(.added, .listener, "listener \(name) (frontend \(frontend)) will bind", fields))
                continue
            }
            kept += 1
            listenerLines.append(.init(.kept, .listener, "listener \(name) kept", fields))
            let j = match.counterpart(of: i)
            guard j >= 0 else { continue }
            let was = olds[before[j].proxy].name
            if was != frontend {
                listenerLines.append(.init(.changed, .listener, "listener \(name) frontend \(was) -> \(frontend)",
                                           fields + [Field("setting", "frontend"), Field("from", was), Field("to", frontend)]))
            }
            let oldBind = olds[before[j].proxy].binds[before[j].bind], newBind = news[l.proxy].binds[l.bind]
            if PlanContent.same(oldBind, newBind) { continue }
            let (a, b) = (oldBind.planView, newBind.planView)
            if (a.tls == nil) != (b.tls == nil) {
                let (from, to) = a.tls == nil ? ("off", "on") : ("on", "off")
                listenerLines.append(.init(.changed, .listener, "listener \(name) ssl \(from) -> \(to)",
                                           fields + [Field("setting", "ssl"), Field("from", from), Field("to", to)]))
            } else {
                // Certificates are read again on every load: a renewed one shows here.
                let what = a.tls != b.tls ? "ssl settings" : "settings"
                listenerLines.append(.init(.changed, .listener, "listener \(name) \(what) (\(newBind.location))",
                                           fields + [Field("setting", what), Field("locations", [newBind.location.description])]))
            }
        }
        // Every held socket is served by the candidate: none closes (the common case).
        guard kept < held.count else { return }
        // The others close: those of the configuration serving now in its order, then any other
        // (none, unless a listener outlived its configuration) by name.
        var serving = Set<ListenerKey>()
        serving.reserveCapacity(after.count)
        for l in after { serving.insert(l.key) }
        var closing: [(key: ListenerKey, frontend: String?)] = []
        for j in before.indices where held.contains(before[j].key) && !serving.contains(before[j].key) {
            closing.append((before[j].key, olds[before[j].proxy].name))
        }
        let listed = Set(closing.map(\.key))
        let others = held.filter { !serving.contains($0) && !listed.contains($0) }
            .sorted { ConfigDiffer.listenerName($0) < ConfigDiffer.listenerName($1) }
        closing += others.map { ($0, nil) }
        for (key, frontend) in closing {
            let name = ConfigDiffer.listenerName(key)
            listenerLines.append(.init(.removed, .listener, "listener \(name) will close after its queue",
                                       [Field("address", name)] + (frontend.map { [Field("frontend", $0)] } ?? [])))
        }
    }

    // MARK: live state

    /// After the swap every live generation drains; `max-generations` (the candidate's) closes
    /// the oldest at once when there would be too many, as `Engine.activate` does.
    private mutating func noteDrains(_ global: GlobalSettings) {
        let live = facts.generations.filter { $0.state == .active || $0.state == .draining }
        let killed = max(0, live.count + 1 - global.maxGenerations)
        for (i, g) in live.enumerated() {
            let fields = [Field("generation", g.id), Field("sessions", g.sessions)]
            if i < killed {
                notices.append(.init(.notice, .drain,
                                     "generation \(g.id) closes at once (max-generations \(global.maxGenerations)): \(g.sessions) sessions killed",
                                     fields + [Field("max_generations", global.maxGenerations)]))
            } else if g.sessions > 0 {
                notices.append(.init(.notice, .drain, "sessions draining: \(g.sessions) on generation \(g.id)", fields))
            }
        }
    }
}

private typealias Field = ReloadPlan.Field
