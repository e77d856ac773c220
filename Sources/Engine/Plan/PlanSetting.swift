import ConfigModel

/// A setting a reload plan names when it changes (`timeout server 10s -> 30s`): how to read it
/// on a proxy, a server or the global section, and how to show it. What no named setting covers
/// is still compared, and reported as settings changed, so no change goes unsaid.
struct PlanSetting<Root> {
    let name: String
    /// The setting's values in `old` and `new` when they differ (equal texts: the values differ
    /// in what the text does not show, such as a file's contents).
    let difference: (_ old: Root, _ new: Root) -> (from: String, to: String)?
    /// Gives `old` the new value, so that what is left to compare is what no setting named.
    let align: (_ old: inout Root, _ new: Root) -> Void

    init<Value: Equatable>(_ name: String, _ path: WritableKeyPath<Root, Value>, _ show: @escaping (Value) -> String) {
        self.name = name
        difference = { old, new in
            old[keyPath: path] == new[keyPath: path] ? nil : (show(old[keyPath: path]), show(new[keyPath: path]))
        }
        align = { old, new in old[keyPath: path] = new[keyPath: path] }
    }

    init(_ name: String, difference: @escaping (Root, Root) -> (from: String, to: String)?,
         align: @escaping (inout Root, Root) -> Void) {
        self.name = name
        self.difference = difference
        self.align = align
    }

    /// The named settings that differ, in table order, and whether anything else differs too.
    static func compare(_ old: Root, _ new: Root, _ settings: [PlanSetting<Root>])
        -> (named: [(name: String, from: String, to: String)], rest: Bool) where Root: Equatable
    {
        var aligned = old
        var named: [(name: String, from: String, to: String)] = []
        for setting in settings {
            if let (from, to) = setting.difference(old, new) { named.append((setting.name, from, to)) }
            setting.align(&aligned, new)
        }
        return (named, aligned != new)
    }
}

// MARK: how values are shown

enum PlanText {
    /// A time as HAProxy writes it: the largest unit that divides it (`30s`, `1500ms`, `2m`).
    static func time(_ ms: Int?) -> String {
        guard let ms else { return "unset" }
        if ms == 0 { return "0" }
        for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where ms % size == 0 {
            return "\(ms / size)\(unit)"
        }
        return "\(ms)ms"
    }

    static func number(_ n: Int?) -> String { n.map(String.init) ?? "unset" }
    static func word(_ s: String?) -> String { s ?? "unset" }
    static func onOff(_ b: Bool) -> String { b ? "on" : "off" }

    static func forwarded(_ h: ForwardedHeader?) -> String {
        guard let h else { return "off" }
        var s = "header \(h.header)"
        if let except = h.except { s += " except \(except)" }
        if h.ifNone { s += " if-none" }
        return s
    }

    static func checks(_ kind: HealthCheckKind) -> String {
        switch kind {
        case .connect: "tcp connect"
        case .http(let c): "httpchk \(c.method) \(c.uri) \(c.version)" + (c.expectations.isEmpty ? "" : " (\(c.expectations.count) expect)")
        case .tcpCheck(let steps): "tcp-check (\(steps.count) rules)"
        case .protocolCheck(let check): check.keyword
        }
    }

    static func connectionMode(_ m: HTTPConnectionMode) -> String {
        switch m {
        case .keepAlive: "http-keep-alive"
        case .serverClose: "http-server-close"
        case .close: "httpclose"
        }
    }

    static func cookie(_ c: CookiePersistence?) -> String {
        guard let c else { return "off" }
        var words = [c.name, c.mode.rawValue]
        if c.indirect { words.append("indirect") }
        if c.nocache { words.append("nocache") }
        if c.httpOnly { words.append("httponly") }
        if c.secure { words.append("secure") }
        if let t = c.maxIdle { words.append("maxidle \(time(t))") }
        if let t = c.maxLife { words.append("maxlife \(time(t))") }
        return words.joined(separator: " ")
    }

    static func stats(_ s: StatsPage?) -> String { s.map { "uri \($0.uri)" } ?? "off" }

    static func redispatch(_ r: Int?) -> String {
        switch r {
        case nil: "off"
        case -1: "on"
        case let n?: "on (every \(n) retries)"
        }
    }

    /// A server's address and port as a connection uses them.
    static func address(_ s: Server) -> String {
        guard let port = s.port else { return s.address.description }
        return SocketEndpoint(address: s.address, port: port).description
    }
}

// MARK: the tables

extension PlanSetting where Root == Proxy {
    static var proxy: [PlanSetting<Proxy>] {
        [
            PlanSetting("mode", \.mode) { $0.rawValue },
            PlanSetting("balance", \.balance) { $0.description },
            PlanSetting("maxconn", \.maxconn, PlanText.number),
            PlanSetting("fullconn", \.fullconn, PlanText.number),
            PlanSetting("retries", \.retries) { String($0) },
            PlanSetting("option redispatch", \.redispatch, PlanText.redispatch),
            PlanSetting("option persist", \.persist, PlanText.onOff),
            PlanSetting("timeout connect", \.timeouts.connect, PlanText.time),
            PlanSetting("timeout client", \.timeouts.client, PlanText.time),
            PlanSetting("timeout server", \.timeouts.server, PlanText.time),
            PlanSetting("timeout queue", \.timeouts.queue, PlanText.time),
            PlanSetting("timeout tunnel", \.timeouts.tunnel, PlanText.time),
            PlanSetting("timeout client-fin", \.timeouts.clientFin, PlanText.time),
            PlanSetting("timeout server-fin", \.timeouts.serverFin, PlanText.time),
            PlanSetting("timeout http-request", \.timeouts.httpRequest, PlanText.time),
            PlanSetting("timeout http-keep-alive", \.timeouts.httpKeepAlive, PlanText.time),
            PlanSetting("timeout tarpit", \.timeouts.tarpit, PlanText.time),
            PlanSetting("timeout check", \.checks.timeout, PlanText.time),
            PlanSetting("default_backend", \.defaultBackend, PlanText.word),
            PlanSetting("description", \.description, PlanText.word),
            PlanSetting("disabled", \.disabled) { $0 ? "yes" : "no" },
            PlanSetting("option clitcpka", \.tcpKeepAlive.client, PlanText.onOff),
            PlanSetting("option srvtcpka", \.tcpKeepAlive.server, PlanText.onOff),
            PlanSetting("http connection mode", \.http.connectionMode, PlanText.connectionMode),
            PlanSetting("http-reuse", \.http.reuse) { $0.rawValue },
            PlanSetting("option forwardfor", \.http.forwardFor, PlanText.forwarded),
            PlanSetting("option originalto", \.http.originalTo, PlanText.forwarded),
            PlanSetting("option forwarded", \.http.forwarded) { o in
                guard let o else { return "off" }
                func word(_ on: Bool, _ name: String, _ e: SampleExpression?) -> String? {
                    guard on else { return nil }
                    return e.map { "\(name)-expr \($0)" } ?? name
                }
                return [word(o.proto, "proto", nil), word(o.host, "host", o.hostExpression), word(o.by, "by", o.byExpression),
                        word(o.byPort, "by_port", o.byPortExpression), word(o.client, "for", o.clientExpression),
                        word(o.clientPort, "for_port", o.clientPortExpression)].compactMap { $0 }.joined(separator: " ")
            },
            PlanSetting("option httplog", \.http.httpLog, PlanText.onOff),
            PlanSetting("log-tag", \.log.tag, PlanText.word),
            PlanSetting("unique-id-format", \.http.uniqueIDFormat) { $0?.source ?? "none" },
            PlanSetting("monitor fail", \.http.monitorFail) { c in
                guard let c else { return "none" }
                return (c.inverted ? "unless " : "if ") + c.alternatives.map { $0.map { ($0.negated ? "!" : "") + $0.name }.joined(separator: " ") }.joined(separator: " || ")
            },
            PlanSetting("unique-id-header", \.http.uniqueIDHeader) { $0 ?? "none" },
            PlanSetting("option httplog clf", \.http.httpLogCLF, PlanText.onOff),
            PlanSetting("option http-buffer-request", \.http.bufferRequest, PlanText.onOff),
            PlanSetting("cookie", \.http.cookie, PlanText.cookie),
            PlanSetting("hash-type", \.http.hashType) { $0.rawValue },
            PlanSetting("hash-balance-factor", \.http.hashBalanceFactor) { String($0) },
            PlanSetting("capture request header", \.http.captures) { c in
                c.isEmpty ? "none" : c.map { "\($0.name ?? "(slot)") len \($0.length)" }.joined(separator: ", ")
            },
            PlanSetting("capture response header", \.http.responseCaptures) { c in
                c.isEmpty ? "none" : c.map { "\($0.name ?? "(slot)") len \($0.length)" }.joined(separator: ", ")
            },
            PlanSetting("capture cookie", \.http.cookieCapture) { c in c.map { "\($0.name) len \($0.length)" } ?? "none" },
            PlanSetting("errorfile", \.http.errorFiles) { files in
                files.isEmpty ? "none" : files.keys.sorted().map(String.init).joined(separator: " ")
            },
            PlanSetting("health check", \.checks.kind, PlanText.checks),
            PlanSetting("option allbackups", \.checks.allBackups, PlanText.onOff),
            PlanSetting("option log-health-checks", \.checks.logHealthChecks, PlanText.onOff),
            PlanSetting("stats", \.stats, PlanText.stats),
            // A table whose identity changes starts empty on reload (see StickTable).
            PlanSetting("stick-table", \.stickTable) { t in
                guard let t else { return "none" }
                return "type \(t.type.rawValue) len \(t.keyLength) size \(t.size) expire \(t.expire.map { PlanText.time($0) } ?? "none")"
                    + (t.noPurge ? " nopurge" : "") + " store " + (t.store.isEmpty ? "nothing" : t.store.map { $0.type.isRate ? "\($0.type.rawValue)(\($0.period))" : $0.type.rawValue }.joined(separator: ","))
            },
        ]
    }
}

extension PlanSetting where Root == Server {
    static var server: [PlanSetting<Server>] {
        [
            PlanSetting("address", difference: { old, new in
                old.address == new.address && old.port == new.port ? nil : (PlanText.address(old), PlanText.address(new))
            }, align: { old, new in
                old.address = new.address
                old.port = new.port
            }),
            // The name a server follows (`resolvers`, `init-addr`, a template's FQDN or SRV label).
            PlanSetting("fqdn", \.fqdn, PlanText.word),
            PlanSetting("resolvers", difference: { old, new in
                old.options.resolvers == new.options.resolvers ? nil
                    : (PlanText.word(old.options.resolvers), PlanText.word(new.options.resolvers))
            }, align: { old, new in
                if old.options.resolvers != new.options.resolvers { old.options.resolution.resolvers = new.options.resolvers }
            }),
            PlanSetting("weight", \.options.weight) { String($0) },
            PlanSetting("maxconn", \.options.maxconn, PlanText.number),
            PlanSetting("backup", \.options.backup, PlanText.onOff),
            PlanSetting("disabled", \.options.disabled) { $0 ? "yes" : "no" },
            PlanSetting("cookie", \.options.cookie, PlanText.word),
            PlanSetting("check", \.options.check.enabled, PlanText.onOff),
            PlanSetting("inter", \.options.check.interval) { PlanText.time($0) },
            PlanSetting("rise", \.options.check.rise) { String($0) },
            PlanSetting("fall", \.options.check.fall) { String($0) },
            // On or off here; what changes inside TLS is left to the rest ("settings").
            PlanSetting("ssl", difference: { old, new in
                (old.options.tls == nil) == (new.options.tls == nil) ? nil
                    : (PlanText.onOff(old.options.tls != nil), PlanText.onOff(new.options.tls != nil))
            }, align: { old, new in
                if (old.options.tls == nil) != (new.options.tls == nil) { old.options.tls = new.options.tls }
            }),
        ]
    }
}

extension PlanSetting where Root == GlobalSettings {
    static var global: [PlanSetting<GlobalSettings>] {
        [
            PlanSetting("maxconn", \.maxconn, PlanText.number),
            PlanSetting("ulimit-n", \.fileLimit, PlanText.number),
            PlanSetting("hard-stop-after", \.hardStopAfter, PlanText.time),
            PlanSetting("max-generations", \.maxGenerations) { String($0) },
            PlanSetting("spread-checks", \.spreadChecks) { String($0) },
            PlanSetting("tune.http.maxhdr", \.maxHeaders) { String($0) },
            PlanSetting("stats timeout", \.statsTimeout) { PlanText.time($0) },
            PlanSetting("description", \.description, PlanText.word),
            PlanSetting("noreuseport", \.noReusePort, PlanText.onOff),
            PlanSetting("tune.ssl.cachesize", \.sslCacheSize) { String($0) },
            PlanSetting("tune.ssl.lifetime", \.sslLifetime) { PlanText.time($0) },
            PlanSetting("server-state-file", \.serverStateFile, PlanText.word),
            PlanSetting("server-state-base", \.serverStateBase, PlanText.word),
            PlanSetting("localpeer", \.localPeer, PlanText.word),
            PlanSetting("log-tag", \.logTag, PlanText.word),
        ]
    }
}

// MARK: values without their place in the files

extension SourceLocation {
    /// Stands for every location where two items are compared by what they say, not by where
    /// they are: a line moved by an edit above it is the same line.
    static let anywhere = SourceLocation(file: "")
}

extension GlobalSettings {
    var planView: GlobalSettings {
        var g = self
        g.locations = [:]
        g.logTargets = g.logTargets.map(\.planView)
        g.statsSockets = g.statsSockets.map { var s = $0; s.location = .anywhere; return s }
        g.cpuMaps = g.cpuMaps.map { var m = $0; m.location = .anywhere; return m }
        return g
    }
}

extension LogTarget {
    var planView: LogTarget {
        var t = self
        t.location = .anywhere
        return t
    }
}

extension Proxy {
    /// The proxy's own settings: without its place, id (its position), binds, servers (and the
    /// template lines that make some of them) and rule lines, which the plan compares one by one.
    var planView: Proxy {
        var p = self
        p.location = .anywhere
        p.id = 0
        p.binds = []
        p.servers = []
        p.defaultBackendLocation = nil
        p.serverTemplates = []
        p.http.acls = []
        p.http.backendRules = []
        p.http.requestRules = []
        p.http.responseRules = []
        p.http.afterResponseRules = []
        p.http.redirectRules = []
        p.tcp.connection = []
        p.tcp.content = []
        p.tcp.session = []
        p.tcp.response = []
        p.log.targets = p.log.targets.map(\.planView)
        p.stickTable = p.stickTable?.planView
        p.stickRules = p.stickRules.map(\.planView)
        if var stats = p.stats {
            stats.location = .anywhere
            stats.admin = stats.admin?.planView
            stats.rules = stats.rules.map(\.planView)
            p.stats = stats
        }
        return p
    }
}

extension Server {
    /// Without its place and id (its position in the backend).
    var planView: Server {
        var s = self
        s.location = .anywhere
        s.id = 0
        s.options.tls?.certificate?.location = .anywhere
        return s
    }
}

extension Bind {
    var planView: Bind {
        var b = self
        b.location = .anywhere
        if var tls = b.tls {
            tls.certificates = tls.certificates.map { var c = $0; c.location = .anywhere; return c }
            b.tls = tls
        }
        return b
    }
}

extension StickRule {
    /// Without its place (its condition's ACL criteria keep theirs: a moved rule with an
    /// anonymous ACL reads as changed).
    var planView: StickRule {
        var r = self
        r.location = .anywhere
        return r
    }
}

extension StickTableConfig {
    /// Without its place.
    var planView: StickTableConfig {
        var t = self
        t.location = .anywhere
        return t
    }
}

extension StatsRule {
    /// The rule without its place (a line moved changes nothing).
    var planView: StatsRule {
        StatsRule(location: .anywhere, action: action, condition: condition?.planView)
    }
}
