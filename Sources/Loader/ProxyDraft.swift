import ConfigModel

/// The section kinds of HAProxy's language; a keyword is allowed in some of them.
enum SectionKind: String, Hashable, Sendable, CaseIterable {
    case global
    case defaults
    case frontend
    case listen
    case backend

    /// One bit per kind, for sets of sections tested on every line.
    var bit: UInt8 {
        switch self {
        case .global: 1
        case .defaults: 2
        case .frontend: 4
        case .listen: 8
        case .backend: 16
        }
    }

    init(_ kind: ProxyKind) {
        switch kind {
        case .frontend: self = .frontend
        case .backend: self = .backend
        case .listen: self = .listen
        }
    }
}

/// A `log` line of a proxy as written: `log global` is expanded once the whole configuration is
/// read, so the order of the `global` section does not matter.
enum ProxyLogEntry: Hashable, Sendable {
    case global
    case target(LogTarget)
}

/// A proxy (or a `defaults` section) while its lines are read: the model value plus what only
/// matters during parsing.
struct ProxyDraft {
    var proxy: Proxy
    var section: SectionKind
    /// `default-server` options, applied to the `server` lines after it.
    var defaultServer = ServerOptions()
    var logs: [ProxyLogEntry] = []
    /// The `id` keyword's value; others are numbered once every proxy is known.
    var explicitID: Int?
    /// False when the section header was wrong: its lines are still checked, the proxy is dropped.
    var valid = true
    /// Keywords whose line was refused (here or in the defaults inherited): the validator does not
    /// then also report their absence ("no bind" after a wrong `bind` line).
    var failedKeywords: Set<String> = []
    /// HTTP-only keywords written in this section (not inherited): each is refused when the
    /// proxy ends up in `mode tcp` (HAProxy ignores them with a warning).
    var httpOnlyLines: [(keyword: String, location: SourceLocation)] = []
    /// `tcp-request content` / `tcp-response content` lines, checked against the mode at the end.
    var tcpContentLines: [SourceLocation] = []
    /// `option prefer-last-server` (its line, or its defaults section's): judged by the mode at the end.
    var preferLastServer: SourceLocation?
    /// `set-map(FILE)`/`del-map(FILE)` rules: the file as written, resolved, and the line; each
    /// must be a map the configuration loads.
    var mapActions: [(written: String, file: String, location: SourceLocation)] = []
    /// `option abortonclose` (its line, or its defaults section's, then `inherited`): judged by the
    /// mode at the end.
    var abortOnClose: (location: SourceLocation, inherited: Bool)?
    /// Lines accepted with HAProxy 2.6's warning (`bind … process 1`).
    var warnings: [ConfigError] = []
    /// `option splice-*` lines of this section, and whether its defaults section had some
    /// (strata splices in mode tcp only).
    var spliceLines: [(keyword: String, location: SourceLocation)] = []
    var splicesInherited = false
    /// `proxy.http.acls` by name.
    var aclIndex: [String: Int] = [:]
    /// ACL names a condition has used: an `acl` line adding to one after that makes the rules
    /// take the final definition once the section is read (HAProxy shares the ACL).
    var usedACLs: Set<String> = []
    /// ACL names whose `acl` line was refused (and reported).
    var failedACLs: Set<String> = []
    var rebindACLs = false
    /// `stick-table … peers NAME`: checked against the `peers` sections at the end.
    var stickTablePeers: (name: String, location: SourceLocation)?
    /// `http-check` lines read before `option httpchk` (or without it: refused at the end).
    /// Stored as zero or one element: 8 bytes in every draft rather than the whole value
    /// (a draft is moved as a whole; most never have one).
    var pendingHTTPCheckStorage: [HTTPCheck] = []
    var pendingHTTPCheck: HTTPCheck? {
        get { pendingHTTPCheckStorage.first }
        set { pendingHTTPCheckStorage = newValue.map { [$0] } ?? [] }
    }
    /// The proxy has `http-check` / `tcp-check` lines of its own: those of its defaults section
    /// were dropped at the first one (HAProxy's rule).
    var ownHTTPCheck = false
    /// This proxy's `http-check send|expect` lines so far (`http-check connect` must come first).
    var httpCheckRules = 0
    var ownTCPCheck = false
    /// `tcp-check` rules, in order; they become the check once the section is read when
    /// `option tcp-check` is on.
    var tcpCheckSteps: [TCPCheckStep] = []
    /// The proxy's own `http-check` lines without `option httpchk` yet, and its `tcp-check` lines,
    /// for the end-of-section check that their option is on.
    var checkRuleLines: [(keyword: String, location: SourceLocation)] = []
    /// `default-server` TLS settings, kept even without `ssl` (a server line may turn it on);
    /// zero or one element, as `pendingHTTPCheckStorage`, and passed to every server line as it is.
    var defaultServerTLSStorage: [ServerTLSDraft] = []
    var defaultServerTLS: ServerTLSDraft? {
        get { defaultServerTLSStorage.first }
        set { defaultServerTLSStorage = newValue.map { [$0] } ?? [] }
    }
    /// Servers with TLS whose `verify` comes from the global `ssl-server-verify` (indices).
    var serverVerifyDefaulted: [Int] = []
    /// What the server lines had (see ServerNotes), and whether a bind has TLS.
    var serverNotes: ServerNotes = []
    var bindTLS = false
    /// Errors of the line being read before the one it throws (a `server` line reports its
    /// address and its options): the parser takes them after each line.
    var lineErrors: [ConfigError] = []
    /// Warnings of the line being read (`-dr`), taken by the parser after each line.
    var lineWarnings: [ConfigError] = []
    /// `errorfiles NAME [CODE…]` lines (applied once every `http-errors` section is read), and
    /// the codes the proxy's own `errorfile` lines set (those win over an import).
    /// `errorfiles NAME [CODE…]` lines, and `http-error … errorfiles NAME` (`optional`: a code the
    /// section lacks is no error).
    var errorFileImports: [(name: String, codes: [Int]?, location: SourceLocation, optional: Bool)] = []
    var ownErrorFiles: Set<Int> = []
    /// `filter cache NAME` lines: the explicit declaration of a cache's filter (checked against
    /// the `cache` sections once all are read).
    var cacheFilters: [(name: String, location: SourceLocation)] = []
    /// Servers (indices) whose address only `init-addr last` may still give: the server-state
    /// file is read once the whole configuration is, and `error` is reported if it has none.
    var pendingLast: [(server: Int, error: ConfigError)] = []

    init(name: String, section: SectionKind, location: SourceLocation) {
        let kind: ProxyKind =
            switch section {
            case .frontend: .frontend
            case .backend: .backend
            default: .listen
            }
        proxy = Proxy(name: name, kind: kind, location: location, id: 0)
        self.section = section
    }

    mutating func noteHTTPOnly(_ keyword: String, _ location: SourceLocation) {
        httpOnlyLines.append((keyword, location))
    }

    /// `acl NAME …`: a new ACL, or one more criterion ORed into an existing one.
    mutating func addACL(_ name: String, _ criterion: ACLCriterion) {
        if let index = aclIndex[name] {
            proxy.http.acls[index].criteria.append(criterion)
            if usedACLs.contains(name) { rebindACLs = true }
        } else {
            aclIndex[name] = proxy.http.acls.count
            proxy.http.acls.append(ACLDefinition(name: name, criteria: [criterion]))
        }
    }

    /// Starts from a `defaults` section's settings, copying only what the proxy's capabilities use
    /// (HAProxy's rule): a backend takes no `default_backend`, a frontend no `balance`.
    mutating func inherit(from sections: [DefaultsSection], _ index: Int) {
        // Field by field through the array: `let base = sections[index].draft` (or passing it as
        // an argument) would copy the whole draft, `let from = base.proxy` the whole Proxy.
        proxy.mode = sections[index].draft.proxy.mode
        proxy.disabled = sections[index].draft.proxy.disabled
        logs = sections[index].draft.logs
        failedKeywords = sections[index].draft.failedKeywords
        proxy.log = sections[index].draft.proxy.log
        proxy.tcpKeepAlive = sections[index].draft.proxy.tcpKeepAlive
        // HTTP options, errorfiles, cookie and hash type (a defaults section has no ACL or rule).
        proxy.http = sections[index].draft.proxy.http
        // The section's imports come along; its own `errorfile` lines are in `proxy.http`, where
        // the proxy's imports and lines may replace them (the proxy is the more specific).
        errorFileImports = sections[index].draft.errorFileImports
        proxy.timeouts.httpRequest = sections[index].draft.proxy.timeouts.httpRequest
        proxy.timeouts.httpKeepAlive = sections[index].draft.proxy.timeouts.httpKeepAlive
        proxy.timeouts.tarpit = sections[index].draft.proxy.timeouts.tarpit
        proxy.stats = sections[index].draft.proxy.stats
        // A defaults section has no tcp-request rule, only the inspect delays.
        proxy.tcp.inspectDelay = sections[index].draft.proxy.tcp.inspectDelay
        proxy.tcp.responseInspectDelay = sections[index].draft.proxy.tcp.responseInspectDelay
        preferLastServer = sections[index].draft.preferLastServer
        abortOnClose = sections[index].draft.abortOnClose.map { ($0.location, true) }
        proxy.tcp.spliceAuto = sections[index].draft.proxy.tcp.spliceAuto
        proxy.tcp.spliceRequest = sections[index].draft.proxy.tcp.spliceRequest
        proxy.tcp.spliceResponse = sections[index].draft.proxy.tcp.spliceResponse
        splicesInherited = !sections[index].draft.spliceLines.isEmpty || sections[index].draft.splicesInherited
        if proxy.kind != .backend {  // isFrontend, without copying the proxy to call it
            proxy.defaultBackend = sections[index].draft.proxy.defaultBackend
            proxy.defaultBackendLocation = sections[index].draft.proxy.defaultBackendLocation
            proxy.maxconn = sections[index].draft.proxy.maxconn
            proxy.sessionRateLimit = sections[index].draft.proxy.sessionRateLimit
            proxy.timeouts.client = sections[index].draft.proxy.timeouts.client
            proxy.timeouts.clientFin = sections[index].draft.proxy.timeouts.clientFin
        }
        if proxy.kind != .frontend {  // isBackend
            proxy.balance = sections[index].draft.proxy.balance
            proxy.fullconn = sections[index].draft.proxy.fullconn
            proxy.retries = sections[index].draft.proxy.retries
            proxy.redispatch = sections[index].draft.proxy.redispatch
            proxy.persist = sections[index].draft.proxy.persist
            proxy.source = sections[index].draft.proxy.source
            proxy.timeouts.connect = sections[index].draft.proxy.timeouts.connect
            proxy.timeouts.server = sections[index].draft.proxy.timeouts.server
            proxy.timeouts.queue = sections[index].draft.proxy.timeouts.queue
            proxy.timeouts.tunnel = sections[index].draft.proxy.timeouts.tunnel
            proxy.timeouts.serverFin = sections[index].draft.proxy.timeouts.serverFin
            defaultServer = sections[index].draft.defaultServer
            defaultServerTLSStorage = sections[index].draft.defaultServerTLSStorage
            proxy.checks = sections[index].draft.proxy.checks
            pendingHTTPCheckStorage = sections[index].draft.pendingHTTPCheckStorage
            tcpCheckSteps = sections[index].draft.tcpCheckSteps
            proxy.serverStateFile = sections[index].draft.proxy.serverStateFile
            proxy.serverStateFileName = sections[index].draft.proxy.serverStateFileName
        } else {
            proxy.http.cookie = nil
        }
    }
}

/// A server line's TLS settings while its options are read: `ssl` turns them on, and `verify`
/// may be left to the global `ssl-server-verify`.
struct ServerTLSDraft {
    var settings: ServerTLS
    var enabled: Bool
    var verifySet: Bool
}

/// A `defaults` section, named or anonymous.
struct DefaultsSection {
    var name: String?
    var location: SourceLocation
    var draft: ProxyDraft
    /// The first proxy that took this section as the latest one, and the first that named it with
    /// `from`: HAProxy refuses a section used both ways, since editing it for one surprises the other.
    var implicitUse: SourceLocation?
    var explicitUse: SourceLocation?
}
