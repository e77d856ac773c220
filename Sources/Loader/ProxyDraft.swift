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

    /// Starts from a `defaults` section's settings, copying only what the proxy's capabilities use
    /// (HAProxy's rule): a backend takes no `default_backend`, a frontend no `balance`.
    mutating func inherit(from base: ProxyDraft) {
        let from = base.proxy
        proxy.mode = from.mode
        proxy.disabled = from.disabled
        logs = base.logs
        failedKeywords = base.failedKeywords
        proxy.log = from.log
        proxy.tcpKeepAlive = from.tcpKeepAlive
        if proxy.isFrontend {
            proxy.defaultBackend = from.defaultBackend
            proxy.defaultBackendLocation = from.defaultBackendLocation
            proxy.maxconn = from.maxconn
            proxy.timeouts.client = from.timeouts.client
            proxy.timeouts.clientFin = from.timeouts.clientFin
        }
        if proxy.isBackend {
            proxy.balance = from.balance
            proxy.fullconn = from.fullconn
            proxy.retries = from.retries
            proxy.redispatch = from.redispatch
            proxy.timeouts.connect = from.timeouts.connect
            proxy.timeouts.server = from.timeouts.server
            proxy.timeouts.queue = from.timeouts.queue
            proxy.timeouts.tunnel = from.timeouts.tunnel
            proxy.timeouts.serverFin = from.timeouts.serverFin
            defaultServer = base.defaultServer
        }
    }
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
