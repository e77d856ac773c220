import ConfigModel
import Glibc

/// The keywords of `defaults`, `frontend`, `backend` and `listen` sections that strata supports,
/// where each is allowed (HAProxy's keyword matrix, configuration.txt §4.1), and how each lands in
/// the model.
extension KeywordReader {
    private static let all: Set<SectionKind> = [.defaults, .frontend, .listen, .backend]
    private static let frontSide: Set<SectionKind> = [.defaults, .frontend, .listen]
    private static let backSide: Set<SectionKind> = [.defaults, .listen, .backend]

    /// Keyword -> sections allowing it, in the order of the documentation table.
    static let proxyKeywords: [(name: String, sections: Set<SectionKind>)] = [
        ("acl", [.frontend, .listen, .backend]),
        ("balance", backSide),
        ("bind", [.frontend, .listen]),
        ("capture", [.frontend, .listen]),
        ("compression", all),
        ("cookie", backSide),
        ("declare", [.frontend, .listen]),
        ("default-server", backSide),
        ("default_backend", frontSide),
        ("description", [.frontend, .listen, .backend]),
        ("disabled", all),
        ("enabled", all),
        ("error-log-format", frontSide),
        ("errorfile", all),
        ("errorfiles", all),
        ("errorloc", all),
        ("errorloc302", all),
        ("errorloc303", all),
        ("http-error", all),
        ("monitor-uri", [.defaults, .frontend, .listen]),
        ("monitor fail", [.frontend, .listen]),
        ("unique-id-format", frontSide),
        ("unique-id-header", frontSide),
        ("filter", [.frontend, .listen, .backend]),
        ("fullconn", backSide),
        ("hash-type", backSide),
        ("hash-balance-factor", [.defaults, .backend, .listen]),
        ("http-check", backSide),
        ("http-request", [.frontend, .listen, .backend]),
        ("http-response", [.frontend, .listen, .backend]),
        ("http-after-response", [.frontend, .listen, .backend]),
        ("http-reuse", backSide),
        ("id", [.frontend, .listen, .backend]),
        ("load-server-state-from-file", backSide),
        ("log", all),
        ("log-format", frontSide),
        ("log-format-sd", frontSide),
        ("log-tag", all),
        ("maxconn", frontSide),
        ("mode", all),
        ("option allbackups", backSide),
        ("option clitcpka", frontSide),
        ("option contstats", frontSide),
        ("option dontlog-normal", frontSide),
        ("option dontlognull", frontSide),
        ("option forwardfor", all),
        ("option forwarded", backSide),
        ("option http-buffer-request", all),
        ("option http-ignore-probes", frontSide),
        ("option http-no-delay", all),
        ("option http-pretend-keepalive", backSide),
        ("option http-keep-alive", all),
        ("option http-server-close", all),
        ("option httpchk", backSide),
        ("option ldap-check", backSide),
        ("option mysql-check", backSide),
        ("option pgsql-check", backSide),
        ("option redis-check", backSide),
        ("option smtpchk", backSide),
        ("option ssl-hello-chk", backSide),
        ("option httpclose", all),
        ("option httplog", frontSide),
        ("option httpslog", frontSide),
        ("option log-health-checks", backSide),
        ("option log-separate-errors", frontSide),
        ("option logasap", frontSide),
        ("option originalto", all),
        ("option prefer-last-server", backSide),
        ("option abortonclose", backSide),
        ("option redispatch", backSide),
        ("option persist", backSide),
        ("option splice-auto", all),
        ("option splice-request", all),
        ("option splice-response", all),
        ("option srvtcpka", backSide),
        ("option tcp-check", backSide),
        ("option tcpka", all),
        ("option tcplog", all),
        ("rate-limit", frontSide),
        ("redirect", [.frontend, .listen, .backend]),
        ("retries", backSide),
        ("source", backSide),
        ("server", [.listen, .backend]),
        ("server-template", [.listen, .backend]),
        ("server-state-file-name", backSide),
        ("stats admin", [.frontend, .listen, .backend]),
        ("stats auth", all),
        ("stats enable", all),
        ("stats hide-version", all),
        ("stats http-request", [.frontend, .listen, .backend]),
        ("stats scope", all),
        ("stats show-desc", all),
        ("stats show-legends", all),
        ("stats show-node", all),
        ("stats realm", all),
        ("stats refresh", all),
        ("stats uri", all),
        ("stick", [.listen, .backend]),
        ("stick-table", [.frontend, .listen, .backend]),
        ("tcp-check", backSide),
        ("tcp-request", all),
        ("tcp-response", backSide),
        ("timeout check", backSide),
        ("timeout client", frontSide),
        ("timeout client-fin", frontSide),
        ("timeout connect", backSide),
        ("timeout http-keep-alive", all),
        ("timeout http-request", all),
        ("timeout queue", backSide),
        ("timeout server", backSide),
        ("timeout server-fin", backSide),
        ("timeout tarpit", all),
        ("timeout tunnel", backSide),
        ("use_backend", [.frontend, .listen]),
    ]

    /// `proxyKeywords` by name, their sections as a bit mask: one lookup per line rather than a
    /// scan of the list, and no hashing of the section.
    static let proxyKeywordSections = KeywordTable<UInt8>(
        proxyKeywords.map { ($0.name, $0.sections.reduce(0) { $0 | $1.bit }) })

    /// Keywords that take HAProxy's `no` prefix.
    static let negatableProxyKeywords: Set<String> = [
        "log", "option clitcpka", "option dontlognull", "option redispatch", "option persist", "option srvtcpka",
        "option http-buffer-request", "option http-keep-alive", "option http-server-close", "option httpclose",
        "option allbackups", "option dontlog-normal", "option log-health-checks", "option log-separate-errors", "option logasap",
        "option contstats", "option prefer-last-server", "option abortonclose", "option splice-auto", "option splice-request",
        "option splice-response", "option forwarded", "option http-ignore-probes", "option http-no-delay",
        "option http-pretend-keepalive",
    ]

    static let balanceAlgorithms: [String: BalanceAlgorithm] = [
        "roundrobin": .roundRobin, "static-rr": .staticRoundRobin, "leastconn": .leastConnections,
        "first": .first, "source": .source,
    ]
    /// HAProxy's other algorithms: named as not supported yet rather than unknown.
    static let otherBalanceAlgorithms: Set<String> = [
        "rdp-cookie",
    ]

    func proxyKeyword(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        let section = draft.section
        // Only an error needs the section's keyword list (for "did you mean").
        var names: [String] { KeywordReader.proxyKeywords.filter { $0.sections.contains(section) }.map(\.name) }
        guard let sections = KeywordReader.proxyKeywordSections[line.keyword] else {
            throw unsupported(line, in: section, supported: names)
        }
        guard sections & section.bit != 0 else {
            // HAProxy ignores an `option` or a `timeout` its proxy has no use for (one of the
            // other side, in a frontend or a backend) with a warning: so does strata.
            if (section == .frontend || section == .backend) && sections & SectionKind.listen.bit != 0
                && (line.keyword.hasPrefix("option ") || line.keyword.hasPrefix("timeout ")) {
                let verb = line.keyword.hasPrefix("timeout ") ? "will be ignored" : "ignored"
                draft.lineWarnings.append(line.error("'\(line.keyword)' \(verb) because \(section.rawValue) '\(draft.proxy.name)' has no \(section == .backend ? "frontend" : "backend") capability"))
                return
            }
            let elsewhere = SectionKind.allCases.filter { sections & $0.bit != 0 }
            throw unsupported(line, in: section, supported: names, elsewhere: elsewhere)
        }
        if line.negated && !KeywordReader.negatableProxyKeywords.contains(line.keyword) {
            // HAProxy refuses `no option tcpka` too: its two halves are what can be turned off.
            let hint = line.keyword == "option tcpka" ? " (use 'no option clitcpka' and 'no option srvtcpka')" : ""
            throw line.error("'no' cannot be used with '\(line.keyword)'\(hint)")
        }

        switch line.keyword {
        case "mode":
            let mode = try line.argument(0, expecting: "tcp or http")
            try line.noArguments(after: 1)
            switch mode {
            case "tcp": draft.proxy.mode = .tcp
            case "http": draft.proxy.mode = .http
            default: throw line.error("'mode' expects tcp or http, got '\(mode)'")
            }

        case "bind":
            try bind(line, draft: &draft)

        case "server", "server-template":
            try server(line, draft: &draft)

        case "default-server":
            // A refused line leaves the defaults as they were.
            var options = draft.defaultServer
            var tls: ServerTLSDraft?
            _ = try serverOptions(line, from: 0, into: &options, tlsDefaults: draft.defaultServerTLSStorage, settings: &tls)
            draft.defaultServer = options
            if let tls { draft.defaultServerTLS = tls }

        case "filter":
            // `filter cache NAME`: the cache's filter declared explicitly, as HAProxy asks when a
            // proxy declares other filters; strata's cache needs no declaration, so the line
            // only names a cache.
            let kind = try line.argument(0, expecting: "a filter (cache)")
            guard kind == "cache" else {
                let known = ["compression", "trace", "spoe", "bwlim-in", "bwlim-out", "fcgi-app", "cache"]
                if known.contains(kind) { throw line.error("'filter \(kind)' is not supported yet") }
                throw line.error("'\(kind)' is not a filter" + KeywordSuggestion.clause(for: kind, among: known))
            }
            let name = try line.argument(1, expecting: "a cache name after 'cache'")
            try line.noArguments(after: 2)
            if draft.cacheFilters.contains(where: { $0.name == name }) {
                throw line.error("\(draft.proxy.name): multiple explicit declarations of the cache filter '\(name)'")
            }
            draft.cacheFilters.append((name, line.location))

        case "default_backend":
            let name = try line.argument(0, expecting: "a backend name")
            try line.noArguments(after: 1)
            draft.proxy.defaultBackend = name
            draft.proxy.defaultBackendLocation = line.location

        case "balance":
            let names = ["roundrobin", "static-rr", "leastconn", "first", "source", "random[(N)]", "uri", "url_param", "hdr(NAME)", "hash EXPR"]
            // A bare `balance` is roundrobin, as in HAProxy.
            let algorithm = line.optionalArgument(0) ?? "roundrobin"
            let base = algorithm.utf8.firstIndex(of: UInt8(ascii: "(")).map { String(algorithm[..<$0]) } ?? algorithm
            if KeywordReader.otherBalanceAlgorithms.contains(base) {
                throw line.error("'balance \(base)' is not supported yet (strata has \(KeywordLine.list(names)))")
            }
            if base == "random" {
                var draws = 2
                if algorithm != "random" {
                    guard algorithm.hasSuffix(")"), let n = Int(algorithm.dropFirst(7).dropLast()), n >= 1 else {
                        throw line.error("'balance random' expects a number of draws from 1 up in parentheses, got '\(algorithm)'")
                    }
                    draws = n
                }
                try line.noArguments(after: 1)
                draft.proxy.balance = .random(draws: draws)
                return
            }
            if base == "hash" {
                // The sample is read from the request, as an http-request rule reads it.
                let text = try line.argument(1, expecting: "a sample expression after 'hash' (for example hash req.cook(sid))")
                try line.noArguments(after: 2)
                do throws(ConfigError) {
                    draft.proxy.balance = .hash(try SampleParser.sampleForFormat(text, context: .httpRequest), source: text)
                } catch {
                    throw line.error("'balance hash': \(error.message)")
                }
                draft.noteHTTPOnly("balance hash", line.location)
                return
            }
            if base == "uri" || base == "url_param" || base == "hdr" {
                draft.proxy.balance = try hashBalance(line, base: base)
                draft.noteHTTPOnly("balance \(base)", line.location)
                return
            }
            guard let value = KeywordReader.balanceAlgorithms[algorithm] else {
                throw line.error("'balance' expects \(KeywordLine.list(names)), got '\(algorithm)'")
            }
            try line.noArguments(after: 1)
            draft.proxy.balance = value

        case "maxconn":
            draft.proxy.maxconn = try line.integer(0)
            try line.noArguments(after: 1)

        case "rate-limit":
            guard line.optionalArgument(0) == "sessions" else {
                throw line.error("'rate-limit' expects 'sessions' and a number (rate-limit sessions N)")
            }
            draft.proxy.sessionRateLimit = try line.integer(1, range: 0...Int(Int32.max))
            try line.noArguments(after: 2)
            if draft.proxy.sessionRateLimit == 0 { draft.proxy.sessionRateLimit = nil }  // 0: no limit (HAProxy's)

        case "fullconn":
            draft.proxy.fullconn = try line.integer(0)
            try line.noArguments(after: 1)

        case "retries":
            draft.proxy.retries = try line.integer(0)
            try line.noArguments(after: 1)

        case "option redispatch":
            if line.negated {
                try line.noArguments()
                draft.proxy.redispatch = nil
            } else {
                // Without an interval, HAProxy redispatches on the last retry (-1).
                draft.proxy.redispatch = -1
                if !line.args.isEmpty { draft.proxy.redispatch = try line.integer(0, range: Int.min...Int.max) }
                try line.noArguments(after: 1)
            }

        case "source":
            draft.proxy.source = try sourceAddress(line, at: 0)
            try line.noArguments(after: 1)

        case "option persist":
            try line.noArguments()
            draft.proxy.persist = !line.negated

        case "option tcpka":
            try line.noArguments()
            draft.proxy.tcpKeepAlive.client = true
            draft.proxy.tcpKeepAlive.server = true

        case "option clitcpka":
            try line.noArguments()
            draft.proxy.tcpKeepAlive.client = !line.negated

        case "option srvtcpka":
            try line.noArguments()
            draft.proxy.tcpKeepAlive.server = !line.negated

        case "option tcplog":
            try line.noArguments()
            draft.proxy.log.format = .tcplog
            draft.proxy.http.httpLog = false

        case "option dontlognull":
            try line.noArguments()
            draft.proxy.log.dontLogNull = !line.negated

        case "option splice-auto", "option splice-request", "option splice-response":
            // Mode tcp: strata splices adaptively by default (splice-auto); judged by the mode at the end.
            try line.noArguments()
            switch line.keyword {
            case "option splice-auto": draft.proxy.tcp.spliceAuto = !line.negated
            case "option splice-request": draft.proxy.tcp.spliceRequest = !line.negated
            default: draft.proxy.tcp.spliceResponse = !line.negated
            }
            if !line.negated { draft.spliceLines.append((line.keyword, line.location)) }

        case "option contstats":
            // strata's traffic counters are updated as bytes move, never only when a stream
            // ends: what this option asks HAProxy for is what strata always does.
            try line.noArguments()

        case "option abortonclose":
            try line.noArguments()
            draft.proxy.http.abortOnClose = !line.negated
            draft.abortOnClose = line.negated ? nil : (line.location, false)

        case "option prefer-last-server":
            try line.noArguments()
            draft.proxy.http.preferLastServer = !line.negated
            draft.preferLastServer = line.negated ? nil : line.location

        case "timeout client": draft.proxy.timeouts.client = try timeout(line)
        case "timeout client-fin": draft.proxy.timeouts.clientFin = try timeout(line)
        case "timeout connect": draft.proxy.timeouts.connect = try timeout(line)
        case "timeout queue": draft.proxy.timeouts.queue = try timeout(line)
        case "timeout server": draft.proxy.timeouts.server = try timeout(line)
        case "timeout server-fin": draft.proxy.timeouts.serverFin = try timeout(line)
        case "timeout tunnel": draft.proxy.timeouts.tunnel = try timeout(line)
        case "timeout tarpit": draft.proxy.timeouts.tarpit = try timeout(line)

        case "log":
            if line.negated {
                try line.noArguments()
                draft.logs = []
            } else if line.args.first == "global" {
                try line.noArguments(after: 1)
                draft.logs.append(.global)
            } else {
                draft.logs.append(.target(try logTarget(line)))
            }

        case "log-tag":
            draft.proxy.log.tag = try KeywordReader.logTag(line)

        case "description":
            draft.proxy.description = try line.text(expecting: "a text")

        case "disabled":
            try line.noArguments()
            draft.proxy.disabled = true

        case "enabled":
            try line.noArguments()
            draft.proxy.disabled = false

        case "id":
            draft.explicitID = try line.integer(0, range: 1...Int(Int32.max))
            try line.noArguments(after: 1)

        case "stick-table":
            try stickTable(line, draft: &draft)

        case "stick":
            try stickRule(line, draft: &draft)

        case "compression":
            try compression(line, draft: &draft)

        default:
            // The rarer keywords, in their own files.
            if try httpKeyword(line, draft: &draft) { return }
            if try tcpKeyword(line, draft: &draft) { return }
            if try checkKeyword(line, draft: &draft) { return }
            if try observabilityKeyword(line, draft: &draft) { return }
            throw unsupported(line, in: section, supported: names)
        }
    }

    /// `balance uri [whole]`, `balance url_param NAME`, `balance hdr(NAME)`.
    private func hashBalance(_ line: KeywordLine, base: String) throws(ConfigError) -> BalanceAlgorithm {
        let algorithm = line.args[line.args.startIndex]
        switch base {
        case "uri":
            guard algorithm == "uri" else { throw line.error("'balance' expects uri, got '\(algorithm)'") }
            var whole = false
            var i = 1
            while let option = line.optionalArgument(i) {
                switch option {
                case "whole": whole = true
                case "len", "depth", "path-only":
                    throw line.error("'balance uri \(option)' is not supported yet (strata has 'whole')")
                default: throw line.error("unexpected argument '\(option)' to 'balance uri' (expected 'whole')")
                }
                i += 1
            }
            return .uri(whole: whole)
        case "url_param":
            guard algorithm == "url_param" else { throw line.error("'balance' expects url_param NAME, got '\(algorithm)'") }
            let name = try line.argument(1, expecting: "a parameter name (balance url_param NAME)")
            if line.optionalArgument(2) == "check_post" {
                throw line.error("'balance url_param \(name) check_post' is not supported yet")
            }
            try line.noArguments(after: 2)
            return .urlParameter(name)
        default:
            guard algorithm.hasPrefix("hdr("), algorithm.hasSuffix(")"), algorithm.count > 5 else {
                throw line.error("'balance' expects hdr(NAME), got '\(algorithm)'")
            }
            if line.optionalArgument(1) == "use_domain_only" {
                throw line.error("'balance hdr use_domain_only' is not supported yet")
            }
            try line.noArguments(after: 1)
            return .header(String(algorithm.dropFirst(4).dropLast()))
        }
    }

    private func timeout(_ line: KeywordLine) throws(ConfigError) -> Int {
        let ms = try line.time(0)
        try line.noArguments(after: 1)
        return ms
    }

    // MARK: bind

    static let bindOptions = ["accept-proxy", "backlog", "interface", "name", "proto", "v4v6", "v6only"] + bindTLSOptions.sorted()
    /// HAProxy's other `bind` options: "not supported yet" rather than "unknown".
    static let otherBindOptions: Set<String> = [
        "accept-netscaler-cip", "accept-proxy", "allow-0rtt", "alpn", "ca-file", "ca-ignore-err",
        "ca-sign-file", "ca-sign-pass", "ciphers", "ciphersuites", "crl-file", "crt",
        "crt-ignore-err", "crt-list", "curves", "defer-accept", "ecdhe", "expose-fd", "force-sslv3",
        "force-tlsv10", "force-tlsv11", "force-tlsv12", "force-tlsv13", "generate-certificates", "gid",
        "group", "id", "level", "maxconn", "mode", "mss", "namespace", "nice", "no-ca-names", "no-sslv3",
        "no-tls-tickets", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13", "npn", "prefer-client-ciphers",
        "proto", "process", "quic-cc-algo", "quic-force-retry", "severity-output", "shards", "ssl",
        "ssl-max-ver", "ssl-min-ver", "strict-sni", "tcp-ut", "thread", "tls-ticket-keys",
        "transparent", "uid", "user", "verify",
    ]

    /// `source ADDR[:PORT]` (a backend's or a server's): an address literal, port 0 when none
    /// (the kernel's choice). `usesrc` (transparent proxying), `interface` and port ranges are
    /// refused; a port below 1024 needs root, which strata keeps only with no `user`/`uid`.
    func sourceAddress(_ line: KeywordLine, at index: Int) throws(ConfigError) -> SocketEndpoint {
        guard let text = line.optionalArgument(index) else { throw line.error("'source' expects an address (source ADDR[:PORT])") }
        if let next = line.optionalArgument(index + 1), next == "usesrc" || next == "interface" {
            throw line.error("'source … \(next)' is not supported yet (strata binds the source address only)")
        }
        let parts: AddressParser.Parts
        switch AddressParser.split(addresses.expanded(text)) {
        case .success(let p): parts = p
        case .failure(let message): throw line.error("'source': \(message)")
        }
        var port: UInt16 = 0
        if let portText = parts.port, portText != "0" {
            switch AddressParser.port(portText, in: text) {
            case .success(let p): port = p
            case .failure(let message): throw line.error("'source': \(message)")
            }
        }
        let host = parts.host == "*" ? "0.0.0.0" : parts.host
        guard let address = IPAddress(host) else {
            throw line.error("'source' expects an address literal, got '\(parts.host)'")
        }
        if port != 0 && port < 1024 && geteuid() != 0 {
            throw line.error("'source \(text)': a source port below 1024 needs strata to run as root")
        }
        return SocketEndpoint(address: address, port: port)
    }

    /// `ADDR:LOW-HIGH` on a bind: one address per port, as HAProxy listens on each port of the
    /// range. Anything else as it is.
    static func portRange(_ text: String, _ line: KeywordLine) throws(ConfigError) -> [String] {
        guard let colon = text.lastIndex(of: ":") else { return [text] }
        let port = text[text.index(after: colon)...]
        guard let dash = port.firstIndex(of: "-"), dash != port.startIndex else { return [text] }
        guard let low = Int(port[..<dash]), let high = Int(port[port.index(after: dash)...]),
              (1...65535).contains(low), (1...65535).contains(high) else {
            throw line.error("'bind': invalid port range '\(port)' in '\(text)' (expected LOW-HIGH, each from 1 to 65535)")
        }
        guard low <= high else {
            throw line.error("'bind': port range '\(port)' in '\(text)' ends before it starts")
        }
        let host = text[..<colon]
        return (low...high).map { "\(host):\($0)" }
    }

    private func bind(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        let list = try line.argument(0, expecting: "an address (bind ADDR:PORT[,ADDR:PORT...] [options])")
        var endpoints: [SocketEndpoint] = []
        var texts = list.utf8.contains(UInt8(ascii: ","))
            ? list.split(separator: ",", omittingEmptySubsequences: false).map(String.init) : [list]
        if list.utf8.contains(UInt8(ascii: "-")) {
            var expanded: [String] = []
            for text in texts { expanded += try KeywordReader.portRange(text, line) }
            texts = expanded
        }
        for text in texts {
            switch addresses.endpoint(text, allowAny: true) {
            case .success(let endpoint): endpoints.append(endpoint)
            case .failure(let message): throw line.error("'bind': \(message)")
            }
        }
        var template = Bind(location: line.location, endpoint: endpoints[0])
        // Made at the first TLS option: a plain bind line never builds one.
        var tls: BindTLS?
        var tlsEnabled = false
        var i = 1
        while let option = line.optionalArgument(i) {
            func value() throws(ConfigError) -> String {
                guard let v = line.optionalArgument(i + 1) else { throw line.error("'\(option)' on bind expects a value") }
                return v
            }
            switch option {
            case "v4v6": template.v6only = false
            case "v6only": template.v6only = true
            case "tfo": template.fastOpen = true
            case "backlog":
                template.backlog = try KeywordLine.integer(try value(), range: 1...Int(Int32.max), name: "backlog",
                                                           location: line.location)
                i += 1
            case "name": template.name = try value(); i += 1
            case "interface": template.interface = try value(); i += 1
            case "accept-proxy": template.acceptProxy = true
            case "proto":
                switch try value() {
                case "h2": template.forcesH2 = true
                case "h1": template.forcesH2 = false
                case let other: throw line.error("'proto \(other)' on bind is not supported (strata's listeners speak h1 or h2)")
                }
                i += 1
            case "process":
                // HAProxy 2.6 accepts a process set on bind lines with a warning; strata is one
                // process, so only the sets naming it mean what they say.
                let set = try value()
                guard ["1", "all", "odd", "1/all"].contains(set) else {
                    throw line.error("'process \(set)' on bind is not supported yet (strata is one process; 'process 1' and 'process all' are accepted)")
                }
                draft.warnings.append(line.error("'bind \(list)' in section '\(draft.section.rawValue)' : 'process \(set)' on 'bind' lines is deprecated and will be removed in 2.7."))
                i += 1
            default:
                if KeywordReader.bindTLSOptions.contains(option) {
                    var settings = tls ?? BindTLS()
                    try bindTLSOption(option, line, at: &i, tls: &settings, enabled: &tlsEnabled)
                    tls = settings
                    break
                }
                if KeywordReader.otherBindOptions.contains(option) {
                    throw line.error("'\(option)' on bind is not supported yet")
                }
                throw line.error("'\(option)' is not a bind option"
                    + KeywordSuggestion.clause(for: option, among: KeywordReader.bindOptions))
            }
            i += 1
        }
        var alpnOnly = tls
        alpnOnly?.alpn = []
        if let tls, !tlsEnabled, !tls.alpn.isEmpty, alpnOnly == BindTLS() {
            // HAProxy accepts `alpn` on a clear listener and does nothing with it.
            draft.warnings.append(line.error("'alpn' on a bind without 'ssl' has no effect (clear-text HTTP/2 is recognised by its preface, or forced with 'proto h2')"))
        } else if let tls {
            try finishBindTLS(tls, enabled: tlsEnabled, line: line)
            template.tls = tls
            draft.bindTLS = true
        }
        for endpoint in endpoints {
            var bind = template
            bind.endpoint = endpoint
            draft.proxy.binds.append(bind)
        }
    }

    // MARK: server

    static let serverOptionNames = [
        "addr", "agent-addr", "agent-check", "agent-inter", "agent-port", "agent-send", "backup", "check", "check-send-proxy", "cookie", "disabled", "downinter", "error-limit", "fall", "fastinter", "inter",
        "maxconn", "no-agent-check", "no-check", "no-check-send-proxy", "no-send-proxy", "no-send-proxy-v2", "observe", "on-error", "on-marked-down", "port",
        "proxy-v2-options", "rise", "send-proxy", "send-proxy-v2", "send-proxy-v2-ssl", "send-proxy-v2-ssl-cn", "slowstart", "maxqueue",
        "weight",
    ] + resolutionOptionNames
    /// HAProxy's other `server` options: "not supported yet" rather than "unknown".
    static let otherServerOptions: Set<String> = [
        "allow-0rtt", "alpn",
        "ca-file", "check-alpn", "check-proto", "check-ssl",
        "check-via-socks4", "ciphers", "ciphersuites", "crl-file", "crt", "enabled",
        "force-sslv3", "force-tlsv10", "force-tlsv11", "force-tlsv12",
        "force-tlsv13", "id", "log-proto", "max-reuse", "minconn",
        "namespace", "no-backup", "no-check-ssl", "no-send-proxy",
        "no-send-proxy-v2", "no-ssl", "no-ssl-reuse", "no-sslv3", "no-tfo", "no-tls-tickets", "no-tlsv10",
        "no-tlsv11", "no-tlsv12", "no-tlsv13", "no-verifyhost", "non-stick", "npn",
        "on-marked-up", "pool-low-conn", "pool-max-conn", "pool-purge-delay",
        "redir", "send-proxy", "send-proxy-v2", "send-proxy-v2-ssl", "send-proxy-v2-ssl-cn", "set-proxy-v2-tlv-fmt",
        "sni", "socks4", "ssl", "ssl-max-ver", "ssl-min-ver", "ssl-reuse", "stick",
        "tcp-ut", "tfo", "track", "verify", "verifyhost", "ws",
    ]

    /// The options of a `server` (from its third word) or `default-server` line, over those in
    /// `options` (the defaults), in place: ServerOptions is large enough for copies to show.
    func serverOptions(_ line: KeywordLine, from start: Int, into options: inout ServerOptions,
                       tlsDefaults: [ServerTLSDraft]) throws(ConfigError) -> ServerNotes
    {
        var tls: ServerTLSDraft?
        return try serverOptions(line, from: start, into: &options, tlsDefaults: tlsDefaults, settings: &tls)
    }

    /// The same, giving the line's TLS settings (made at its first TLS option, from the
    /// default-server's) for `default-server` to keep.
    /// `tlsDefaults` is the default-server's TLS settings, zero or one element.
    private func serverOptions(_ line: KeywordLine, from start: Int, into options: inout ServerOptions,
                               tlsDefaults: [ServerTLSDraft], settings tls: inout ServerTLSDraft?)
        throws(ConfigError) -> ServerNotes
    {
        var i = start
        while let option = line.optionalArgument(i) {
            switch option {
            case "slowstart":
                options.slowstart = try line.time(i + 1)
                i += 1
            case "maxqueue":
                options.maxqueue = try line.integer(i + 1, name: "maxqueue")
                i += 1
            case "weight":
                options.weight = try line.integer(i + 1, range: 0...256, name: "weight")
                i += 1
            case "maxconn":
                options.maxconn = try line.integer(i + 1, name: "maxconn")
                i += 1
            case "backup": options.backup = true
            case "disabled": options.disabled = true
            case "proto":
                // HAProxy's mux names: h2 (HTTP/2 without ALPN, h2c in clear), h1; fcgi is not.
                switch line.optionalArgument(i + 1) {
                case "h2": options.forcesH2 = true
                case "h1": options.forcesH2 = false
                case let other?: throw line.error("'proto \(other)' on server is not supported (strata speaks 'h2' and 'h1')")
                case nil: throw line.error("'proto' on server expects a protocol name ('h2' or 'h1')")
                }
                i += 1
            case "send-proxy", "send-proxy-v2", "send-proxy-v2-ssl", "send-proxy-v2-ssl-cn", "no-send-proxy",
                 "no-send-proxy-v2", "proxy-v2-options":
                try sendProxyOption(option, line, at: &i, into: &options.sendProxy)
            case "source":
                options.source = try sourceAddress(line, at: i + 1)
                i += 1
            case "cookie":
                guard let value = line.optionalArgument(i + 1), !value.isEmpty else {
                    throw line.error("'cookie' on server expects a value")
                }
                options.cookie = value
                i += 1
            default:
                if try serverCheckOption(option, line, at: &i, into: &options.check) { break }
                if try serverResolutionOption(option, line, at: &i, into: &options.resolution) { break }
                if KeywordReader.serverTLSOptions.contains(option) {
                    // Made at the first TLS option, from the default-server's TLS settings.
                    var draft = tls ?? tlsDefaults.first
                        ?? ServerTLSDraft(settings: options.tls ?? ServerTLS(), enabled: options.tls != nil, verifySet: false)
                    try serverTLSOption(option, line, at: &i, tls: &draft.settings, enabled: &draft.enabled,
                                        verifySet: &draft.verifySet)
                    tls = draft
                    break
                }
                if KeywordReader.otherServerOptions.contains(option) {
                    throw line.error("'\(option)' on server is not supported yet")
                }
                throw line.error("'\(option)' is not a server option"
                    + KeywordSuggestion.clause(for: option, among: KeywordReader.serverOptionNames))
            }
            i += 1
        }
        // HAProxy refuses an agent without a port to connect to (the check's `port` serves).
        if start > 0, options.check.agent.enabled, options.check.agent.port == nil, options.check.port == nil {
            throw line.error("server '\(line.optionalArgument(0) ?? "")' has 'agent-check' but no agent port (set 'agent-port', or the check's 'port')")
        }
        if options.sendProxy?.version == 0 && start > 0 {
            if line.args.contains("proxy-v2-options") {
                throw line.error("'proxy-v2-options' has no effect without 'send-proxy-v2' (on the line or its default-server)")
            }
            options.sendProxy = nil
        }
        if let tls {
            if tls.settings.checkSSL && !tls.enabled && start > 0 {
                throw line.error("'check-ssl' on a server without 'ssl' is not supported yet")
            }
            options.tls = tls.enabled ? tls.settings : nil
        }
        // Told from the settings read, not by comparing `options.tls` with nil: that would copy
        // the large optional on every server line.
        var notes: ServerNotes = []
        if options.cookie != nil { notes.insert(.cookie) }
        if options.check.observe == .layer7 { notes.insert(.observeLayer7) }
        let defaults = tlsDefaults.first
        if tls?.enabled ?? defaults?.enabled ?? false {
            notes.insert(.tls)
            if tls?.verifySet ?? defaults?.verifySet ?? false { notes.insert(.verifySet) }
        }
        return notes
    }
}

/// What a server line had that the end of the section checks (so that it looks at every server
/// only when one of them has it).
struct ServerNotes: OptionSet {
    let rawValue: UInt8
    static let cookie = ServerNotes(rawValue: 1)
    static let observeLayer7 = ServerNotes(rawValue: 2)
    static let tls = ServerNotes(rawValue: 4)
    static let verifySet = ServerNotes(rawValue: 8)
}
