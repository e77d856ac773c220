import ConfigModel

/// Whether two proxies, servers or binds say the same wherever each is written: the equality
/// of their `planView`s, read field by field through pointers. A plan compares every proxy and
/// server of both configurations, and handing a whole `Proxy` or `Server` to a function (`==`
/// included) makes the compiler copy it first: a kilobyte and dozens of references each.
///
/// Each check names every stored property of its type, compared or left out on purpose, in
/// `fields`; a test holds them against the types' own, so that a field added to the model
/// cannot go unseen by plans.
enum PlanContent {
    static let proxyFields = [
        "name", "kind", "location", "id", "mode", "description", "disabled", "binds", "defaultBackend",
        "defaultBackendLocation", "maxconn", "sessionRateLimit", "servers", "balance", "fullconn", "retries", "redispatch", "persist", "source", "timeouts",
        "tcpKeepAlive", "log", "http", "tcp", "checks", "serverStateFile", "serverStateFileName", "stats",
        // Left out: a template line's servers are in `servers`, compared one by one.
        "serverTemplates",
        "stickTable", "stickRules",
    ]
    static let logFields = [
        "format", "targets", "dontLogNull", "structuredDataFormat", "errorFormat", "separateErrors", "logAsap",
        "dontLogNormal", "tag",
    ]
    static let httpFields = [
        "acls", "backendRules", "requestRules", "responseRules", "afterResponseRules", "redirectRules", "forwardFor", "originalTo", "forwarded",
        "connectionMode", "reuse", "captures", "cookieCapture", "responseCaptures", "httpLog", "httpLogCLF", "bufferRequest", "errorFiles", "cookie",
        "hashType", "hashBalanceFactor", "userlists", "preferLastServer", "abortOnClose", "monitorURI",
        "monitorFail", "uniqueIDFormat", "uniqueIDHeader", "compression",
    ]
    static let serverFields = ["name", "location", "id", "host", "address", "port", "options", "fqdn", "hasAddress"]
    /// `resolutionStorage`: `resolution` (resolvers, resolve-*, init-addr), compared as a value.
    static let serverOptionFields = ["weight", "slowstart", "maxqueue", "maxconn", "backup", "disabled", "cookie", "check", "tls", "resolutionStorage", "sendProxy", "forcesH2", "source"]
    static let serverCheckFields = [
        "enabled", "interval", "fastInterval", "downInterval", "rise", "fall", "port", "address", "observe",
        "errorLimit", "onError", "shutdownSessionsOnDown", "sendProxy", "agent",
    ]
    static let bindFields = [
        "location", "endpoint", "v6only", "backlog", "name", "interface", "reusePort", "tls", "acceptProxy",
        "fastOpen", "forcesH2",
    ]

    /// The proxy's own settings: what `Proxy.planView` keeps. Its place and id, binds, servers and
    /// rule lines are compared elsewhere.
    static func sameSettings(_ a: UnsafePointer<Proxy>, _ b: UnsafePointer<Proxy>) -> Bool {
        guard a.pointee.name == b.pointee.name, a.pointee.kind == b.pointee.kind, a.pointee.mode == b.pointee.mode,
              a.pointee.description == b.pointee.description, a.pointee.disabled == b.pointee.disabled,
              a.pointee.defaultBackend == b.pointee.defaultBackend, a.pointee.maxconn == b.pointee.maxconn,
              a.pointee.sessionRateLimit == b.pointee.sessionRateLimit,
              a.pointee.balance == b.pointee.balance, a.pointee.fullconn == b.pointee.fullconn,
              a.pointee.retries == b.pointee.retries, a.pointee.redispatch == b.pointee.redispatch,
              a.pointee.persist == b.pointee.persist, a.pointee.source == b.pointee.source,
              a.pointee.timeouts == b.pointee.timeouts, a.pointee.tcpKeepAlive == b.pointee.tcpKeepAlive,
              a.pointee.checks == b.pointee.checks, a.pointee.serverStateFile == b.pointee.serverStateFile,
              a.pointee.serverStateFileName == b.pointee.serverStateFileName,
              a.pointee.tcp.inspectDelay == b.pointee.tcp.inspectDelay, a.pointee.tcp.spliceAuto == b.pointee.tcp.spliceAuto,
              a.pointee.tcp.responseInspectDelay == b.pointee.tcp.responseInspectDelay,
              a.pointee.tcp.spliceRequest == b.pointee.tcp.spliceRequest,
              a.pointee.tcp.spliceResponse == b.pointee.tcp.spliceResponse
        else { return false }
        guard a.pointee.log.format == b.pointee.log.format, a.pointee.log.dontLogNull == b.pointee.log.dontLogNull,
              a.pointee.log.structuredDataFormat == b.pointee.log.structuredDataFormat,
              a.pointee.log.errorFormat == b.pointee.log.errorFormat,
              a.pointee.log.separateErrors == b.pointee.log.separateErrors, a.pointee.log.logAsap == b.pointee.log.logAsap,
              a.pointee.log.dontLogNormal == b.pointee.log.dontLogNormal, a.pointee.log.tag == b.pointee.log.tag
        else { return false }
        guard a.pointee.http.forwardFor == b.pointee.http.forwardFor, a.pointee.http.originalTo == b.pointee.http.originalTo,
              a.pointee.http.forwarded == b.pointee.http.forwarded,
              a.pointee.http.connectionMode == b.pointee.http.connectionMode, a.pointee.http.reuse == b.pointee.http.reuse,
              a.pointee.http.captures == b.pointee.http.captures, a.pointee.http.cookieCapture == b.pointee.http.cookieCapture,
              a.pointee.http.responseCaptures == b.pointee.http.responseCaptures, a.pointee.http.httpLog == b.pointee.http.httpLog,
              a.pointee.http.httpLogCLF == b.pointee.http.httpLogCLF,
              a.pointee.http.bufferRequest == b.pointee.http.bufferRequest,
              a.pointee.http.errorFiles == b.pointee.http.errorFiles, a.pointee.http.cookie == b.pointee.http.cookie,
              a.pointee.http.hashType == b.pointee.http.hashType,
              a.pointee.http.hashBalanceFactor == b.pointee.http.hashBalanceFactor,
              a.pointee.http.preferLastServer == b.pointee.http.preferLastServer,
              a.pointee.http.abortOnClose == b.pointee.http.abortOnClose,
              a.pointee.http.monitorURI == b.pointee.http.monitorURI,
              a.pointee.http.uniqueIDFormat == b.pointee.http.uniqueIDFormat,
              a.pointee.http.uniqueIDHeader == b.pointee.http.uniqueIDHeader,
              a.pointee.http.monitorFail?.planView == b.pointee.http.monitorFail?.planView,
              a.pointee.http.compression == b.pointee.http.compression
        else { return false }
        // A userlist's users, passwords and groups; where its section is written is not a change.
        if !(a.pointee.http.userlists == b.pointee.http.userlists) {
            func placeless(_ lists: [String: Userlist]) -> [String: Userlist] {
                lists.mapValues { var l = $0; l.location = .anywhere; return l }
            }
            if !(placeless(a.pointee.http.userlists) == placeless(b.pointee.http.userlists)) { return false }
        }
        // Items that carry their place: equal as they are, or once their places are set aside.
        if !(a.pointee.log.targets == b.pointee.log.targets)
            && !(a.pointee.log.targets.map(\.planView) == b.pointee.log.targets.map(\.planView)) { return false }
        if !(a.pointee.stickTable?.planView == b.pointee.stickTable?.planView) { return false }
        if !(a.pointee.stickRules == b.pointee.stickRules)
            && !(a.pointee.stickRules.map(\.planView) == b.pointee.stickRules.map(\.planView)) { return false }
        if !(a.pointee.stats == b.pointee.stats) {
            guard let x = a.pointee.stats, let y = b.pointee.stats else { return false }
            var (p, q) = (x, y)
            (p.location, p.admin, q.location, q.admin) = (.anywhere, p.admin?.planView, .anywhere, q.admin?.planView)
            (p.rules, q.rules) = (p.rules.map(\.planView), q.rules.map(\.planView))
            if !(p == q) { return false }
        }
        return true
    }

    /// The proxy's rule lines as they are, places included: when they differ, `RuleLines` tells
    /// a line that moved from one that changed.
    static func sameRuleLines(_ a: UnsafePointer<Proxy>, _ b: UnsafePointer<Proxy>) -> Bool {
        a.pointee.http.acls == b.pointee.http.acls && a.pointee.http.requestRules == b.pointee.http.requestRules
            && a.pointee.http.redirectRules == b.pointee.http.redirectRules
            && a.pointee.http.backendRules == b.pointee.http.backendRules
            && a.pointee.http.responseRules == b.pointee.http.responseRules
            && a.pointee.http.afterResponseRules == b.pointee.http.afterResponseRules
            && a.pointee.tcp.connection == b.pointee.tcp.connection && a.pointee.tcp.content == b.pointee.tcp.content
            && a.pointee.tcp.response == b.pointee.tcp.response && a.pointee.tcp.session == b.pointee.tcp.session
    }

    /// What `Server.planView` keeps: all but its place and id (its position in the backend).
    static func same(_ a: UnsafePointer<Server>, _ b: UnsafePointer<Server>) -> Bool {
        guard a.pointee.name == b.pointee.name, a.pointee.host == b.pointee.host, a.pointee.address == b.pointee.address,
              a.pointee.port == b.pointee.port, a.pointee.fqdn == b.pointee.fqdn, a.pointee.hasAddress == b.pointee.hasAddress,
              a.pointee.options.resolution == b.pointee.options.resolution,
              a.pointee.options.weight == b.pointee.options.weight,
              a.pointee.options.maxconn == b.pointee.options.maxconn, a.pointee.options.backup == b.pointee.options.backup,
              a.pointee.options.disabled == b.pointee.options.disabled, a.pointee.options.cookie == b.pointee.options.cookie,
              a.pointee.options.check.enabled == b.pointee.options.check.enabled,
              a.pointee.options.check.interval == b.pointee.options.check.interval,
              a.pointee.options.check.fastInterval == b.pointee.options.check.fastInterval,
              a.pointee.options.check.downInterval == b.pointee.options.check.downInterval,
              a.pointee.options.check.rise == b.pointee.options.check.rise,
              a.pointee.options.check.fall == b.pointee.options.check.fall,
              a.pointee.options.check.port == b.pointee.options.check.port,
              a.pointee.options.check.address == b.pointee.options.check.address,
              a.pointee.options.check.observe == b.pointee.options.check.observe,
              a.pointee.options.check.errorLimit == b.pointee.options.check.errorLimit,
              a.pointee.options.check.onError == b.pointee.options.check.onError,
              a.pointee.options.check.shutdownSessionsOnDown == b.pointee.options.check.shutdownSessionsOnDown,
              a.pointee.options.check.sendProxy == b.pointee.options.check.sendProxy,
              a.pointee.options.check.agent == b.pointee.options.check.agent,
              a.pointee.options.sendProxy == b.pointee.options.sendProxy,
              a.pointee.options.forcesH2 == b.pointee.options.forcesH2,
              a.pointee.options.source == b.pointee.options.source,
              a.pointee.options.slowstart == b.pointee.options.slowstart,
              a.pointee.options.maxqueue == b.pointee.options.maxqueue
        else { return false }
        // The TLS options' tags are read in place (`== nil` would copy them out first).
        if case .none = a.pointee.options.tls, case .none = b.pointee.options.tls { return true }
        // A client certificate (`ssl crt`) carries its place.
        return a.pointee.planView == b.pointee.planView
    }

    /// What `Bind.planView` keeps. Binds are few and small: taken as values.
    static func same(_ a: Bind, _ b: Bind) -> Bool {
        guard a.endpoint == b.endpoint, a.v6only == b.v6only, a.backlog == b.backlog, a.name == b.name,
              a.interface == b.interface, a.reusePort == b.reusePort, a.acceptProxy == b.acceptProxy,
              a.forcesH2 == b.forcesH2, a.fastOpen == b.fastOpen
        else { return false }
        // Certificates carry their place.
        return a.tls == b.tls || a.planView.tls == b.planView.tls
    }
}
