import ConfigModel

/// The checks that need the whole configuration, as HAProxy makes them after reading its files:
/// names that refer to other sections, names and ids used twice, addresses bound twice, and
/// proxies that could never serve a connection.
enum ConfigValidator {
    /// `failedKeywords[i]` are the keywords whose line failed in `config.proxies[i]`, and
    /// `droppedNames` the proxies left out for a wrong header: absences they explain are not reported.
    static func validate(_ config: Config, failedKeywords: [Set<String>] = [], droppedNames: Set<String> = [])
        -> [ConfigError]
    {
        var errors: [ConfigError] = []
        let backends = proxyNames(config, &errors)
        proxyIDs(config, &errors)
        routes(config, backends: backends, failedKeywords: failedKeywords, droppedNames: droppedNames, &errors)
        serverNames(config, &errors)
        resolvers(config, &errors)
        bindAddresses(config, &errors)
        cpuMaps(config.global, &errors)
        return errors
    }

    /// `cpu-map` against an explicit `nbthread` (without one, the loops are one per CPU and the
    /// daemon checks the same at start): threads that do not exist, `auto:` pairs that do not pair.
    private static func cpuMaps(_ global: GlobalSettings, _ errors: inout [ConfigError]) {
        guard let threads = global.nbthread else { return }
        for map in global.cpuMaps {
            if case .ranges(let ranges) = map.threads, let high = ranges.map(\.upperBound).max(), high > threads {
                errors.append(ConfigError(map.location, "'cpu-map': thread \(high) is above nbthread \(threads)"))
            }
        }
        if case .failure(let e) = CPUMap.cpuSets(global.cpuMaps, threads: threads) {
            errors.append(ConfigError(e.location, String(e.description.dropFirst("\(e.location): ".count))))
        }
    }

    /// A configuration that would listen nowhere: HAProxy refuses it ("no listener") and so does
    /// strata, at start and on reload, so that a file emptied by mistake cannot take the service
    /// away. Unlike HAProxy, a `stats socket` does not count as a listener: it serves no traffic,
    /// and it is what a configuration reduced to its `global` section (a directory whose proxy
    /// files were removed) would keep.
    static func listenerProblem(_ config: Config, empty: Bool) -> String? {
        let proxies = config.proxies
        for index in proxies.indices where proxies[index].kind != .backend && !proxies[index].disabled {
            if !proxies[index].binds.isEmpty { return nil }
        }
        let why = if empty {
            "the configuration is empty"
        } else if proxies.contains(where: { $0.kind != .backend }) {
            "every frontend and listen section is disabled"
        } else {
            "there is no frontend or listen section"
        }
        return "no listener: \(why), so strata would serve nothing (a configuration needs a frontend or listen section with a 'bind' line)"
    }

    private static func describe(_ proxy: Proxy) -> String { "\(proxy.kind.rawValue) '\(proxy.name)'" }

    // The checks read stored fields as `config.proxies[i].field` rather than `for proxy in
    // config.proxies` or `proxies[i].isBackend`: either makes a copy of the whole Proxy (every
    // array and string in it retained and released), which costs more than the check itself on a
    // configuration of thousands of proxies.

    /// The first frontend-capable and backend-capable proxy of a name, as indices (-1: none),
    /// and whether any backend-capable proxy has it (a duplicate one included).
    struct NameUse {
        var frontend: Int32 = -1
        var backend: Int32 = -1
        var anyBackend = false
    }

    /// Two proxies with a capability in common may not share a name; a frontend and a backend may
    /// (HAProxy keeps that for old configurations). Returns the names in use, for `routes`.
    private static func proxyNames(_ config: Config, _ errors: inout [ConfigError]) -> [String: NameUse] {
        let proxies = config.proxies
        var names: [String: NameUse] = [:]
        names.reserveCapacity(proxies.count)
        for index in proxies.indices {
            let kind = proxies[index].kind
            // One lookup per proxy: the entry is read and updated in place.
            let earlier: Int32? = { (use: inout NameUse) -> Int32? in
                let isFrontend = kind != .backend, isBackend = kind != .frontend
                if isBackend { use.anyBackend = true }
                if isFrontend && use.frontend >= 0 { return use.frontend }
                if isBackend && use.backend >= 0 { return use.backend }
                if isFrontend { use.frontend = Int32(index) }
                if isBackend { use.backend = Int32(index) }
                return nil
            }(&names[proxies[index].name, default: NameUse()])
            if let earlier {
                let earlier = Int(earlier)
                errors.append(ConfigError(proxies[index].location,
                    "\(describe(proxies[index])) has the same name as \(describe(proxies[earlier])) declared at \(proxies[earlier].location)"))
            }
        }
        return names
    }

    private static func proxyIDs(_ config: Config, _ errors: inout [ConfigError]) {
        let proxies = config.proxies
        var seen: [Int: Int] = [:]
        seen.reserveCapacity(proxies.count)
        for index in proxies.indices {
            let id = proxies[index].id
            if let earlier = seen[id] {
                errors.append(ConfigError(proxies[index].location,
                    "\(describe(proxies[index])) has the same id \(id) as \(describe(proxies[earlier])) declared at \(proxies[earlier].location)"))
            } else {
                seen[id] = index
            }
        }
    }

    /// A frontend needs a `bind` to receive connections and somewhere to send them: strata routes
    /// by `default_backend` (content switching comes with `use_backend`), or a listen's own servers.
    private static func routes(_ config: Config, backends: [String: NameUse], failedKeywords: [Set<String>],
                               droppedNames: Set<String>, _ errors: inout [ConfigError])
    {
        let proxies = config.proxies
        for index in proxies.indices where proxies[index].kind != .backend {
            let failed = index < failedKeywords.count ? failedKeywords[index] : []
            if proxies[index].binds.isEmpty && !failed.contains("bind") {
                errors.append(ConfigError(proxies[index].location,
                    "\(describe(proxies[index])) has no 'bind' line (declare it as a backend if it should not listen)"))
            }
            if let name = proxies[index].defaultBackend {
                let location = proxies[index].defaultBackendLocation ?? proxies[index].location
                if backends[name]?.anyBackend != true && !droppedNames.contains(name) {
                    errors.append(ConfigError(location,
                        "\(describe(proxies[index])): unable to find required default_backend: '\(name)'"))
                } else if let b = backends[name], b.backend >= 0 {
                    modes(config, index, Int(b.backend), as: "as its default backend", at: location, &errors)
                }
            }
            do {
                for r in proxies[index].http.backendRules.indices where proxies[index].http.backendRules[r].dynamic == nil {
                    let name = proxies[index].http.backendRules[r].backend
                    let location = proxies[index].http.backendRules[r].location
                    if backends[name]?.anyBackend != true && !droppedNames.contains(name) {
                        errors.append(ConfigError(location,
                            "\(describe(proxies[index])): unable to find required use_backend: '\(name)'"))
                    } else if let b = backends[name], b.backend >= 0 {
                        modes(config, index, Int(b.backend), as: "in a 'use_backend' rule", at: location, &errors)
                    }
                }
            }
            if proxies[index].defaultBackend != nil {
                // Routed.
            } else if answersItself(proxies[index]) {
                // HTTP rules route or answer; a request none of them takes is answered 503.
            } else if failed.contains("default_backend") || failed.contains("use_backend")
                || failed.contains("http-request") || failed.contains("redirect") || (proxies[index].kind == .listen && failed.contains("server")) {
                // The line that would have routed was refused and reported.
            } else if proxies[index].kind == .frontend {
                errors.append(ConfigError(proxies[index].location,
                    "\(describe(proxies[index])) has no default_backend: its connections would have nowhere to go"))
            } else if proxies[index].servers.isEmpty {
                errors.append(ConfigError(proxies[index].location,
                    "\(describe(proxies[index])) has no server and no default_backend: its connections would have nowhere to go"))
            }
        }
    }

    /// `use_backend` rules, `http-request` rules (return, redirect, deny, use-service),
    /// `redirect` rules or a stats page: a frontend without default_backend still has somewhere
    /// to send requests.
    private static func answersItself(_ proxy: Proxy) -> Bool {
        !proxy.http.backendRules.isEmpty || !proxy.http.requestRules.isEmpty || !proxy.http.redirectRules.isEmpty
            || proxy.stats != nil
    }

    /// An HTTP frontend cannot hand its requests to a TCP backend (HAProxy refuses it); a TCP
    /// frontend's connection to an HTTP backend becomes an HTTP one.
    private static func modes(_ config: Config, _ frontend: Int, _ backend: Int, as use: String, at location: SourceLocation,
                              _ errors: inout [ConfigError])
    {
        let f = config.proxies[frontend].mode, b = config.proxies[backend].mode
        // A TCP frontend's connection going to an HTTP backend becomes an HTTP one (HAProxy's).
        guard f != b, f != .tcp else { return }
        let backendText = "\(b.rawValue) backend '\(config.proxies[backend].name)' (declared at \(config.proxies[backend].location))"
        errors.append(ConfigError(location,
            "\(f.rawValue) \(describe(config.proxies[frontend])) cannot use \(backendText) \(use) (see 'mode')"))
    }

    /// A `resolvers` section must have a nameserver (HAProxy would time every resolution out),
    /// and a server's `resolvers` must name one. A template line is reported once.
    private static func resolvers(_ config: Config, _ errors: inout [ConfigError]) {
        for section in config.resolvers where section.nameservers.isEmpty {
            errors.append(ConfigError(section.location,
                "resolvers '\(section.name)' has no nameserver (add 'nameserver ID ADDR:PORT' or 'parse-resolv-conf')"))
        }
        let names = Set(config.resolvers.map(\.name))
        let proxies = config.proxies
        for index in proxies.indices where proxies[index].kind != .frontend {
            var reported: SourceLocation?
            for s in proxies[index].servers.indices {
                guard let name = proxies[index].servers[s].options.resolvers, !names.contains(name) else { continue }
                let server = proxies[index].servers[s]
                guard reported != server.location else { continue }
                reported = server.location
                let template = proxies[index].serverTemplates.first { $0.location == server.location }
                let what = template.map { "server-template '\($0.prefix)'" } ?? "server '\(server.name)'"
                errors.append(ConfigError(server.location, "\(describe(proxies[index])), \(what): unable to find resolvers section '\(name)'"))
            }
        }
    }

    private static func serverNames(_ config: Config, _ errors: inout [ConfigError]) {
        let proxies = config.proxies
        var seen: [String: SourceLocation] = [:]
        for index in proxies.indices where proxies[index].kind != .frontend {
            let servers = proxies[index].servers
            func duplicate(_ s: Int, of earlier: SourceLocation) {
                errors.append(ConfigError(servers[s].location,
                    "\(describe(proxies[index])) already has a server named '\(servers[s].name)' declared at \(earlier)"))
            }
            if servers.count <= 16 {
                // A few servers: comparing names pairwise is cheaper than hashing them.
                for s in servers.indices {
                    var earlier = 0
                    while earlier < s && servers[earlier].name != servers[s].name { earlier += 1 }
                    if earlier < s { duplicate(s, of: servers[earlier].location) }
                }
                continue
            }
            seen.removeAll(keepingCapacity: true)
            for s in servers.indices {
                if let earlier = seen.updateValue(servers[s].location, forKey: servers[s].name) {
                    seen[servers[s].name] = earlier  // the first declaration stays the one named
                    duplicate(s, of: earlier)
                }
            }
        }
    }

    /// The same address and port on two `bind` lines would split connections between two proxies
    /// through SO_REUSEPORT without a word: refuse it. Disabled proxies do not listen.
    private static func bindAddresses(_ config: Config, _ errors: inout [ConfigError]) {
        struct Key: Hashable {
            var endpoint: SocketEndpoint
            var interface: String?
        }
        let proxies = config.proxies
        var seen: [Key: SourceLocation] = [:]
        seen.reserveCapacity(proxies.count)
        for index in proxies.indices where !proxies[index].disabled {
            let binds = proxies[index].binds
            for b in binds.indices {
                let key = Key(endpoint: binds[b].endpoint, interface: binds[b].interface)
                if let earlier = seen[key] {
                    errors.append(ConfigError(binds[b].location, "\(binds[b].endpoint) is already bound at \(earlier)"))
                } else {
                    seen[key] = binds[b].location
                }
            }
        }
    }
}
