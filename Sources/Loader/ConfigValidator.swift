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
        proxyNames(config, &errors)
        proxyIDs(config, &errors)
        routes(config, failedKeywords: failedKeywords, droppedNames: droppedNames, &errors)
        serverNames(config, &errors)
        bindAddresses(config, &errors)
        return errors
    }

    private static func describe(_ proxy: Proxy) -> String { "\(proxy.kind.rawValue) '\(proxy.name)'" }

    /// Two proxies with a capability in common may not share a name; a frontend and a backend may
    /// (HAProxy keeps that for old configurations).
    private static func proxyNames(_ config: Config, _ errors: inout [ConfigError]) {
        var frontends: [String: Proxy] = [:]
        var backends: [String: Proxy] = [:]
        for proxy in config.proxies {
            let earlier = (proxy.isFrontend ? frontends[proxy.name] : nil) ?? (proxy.isBackend ? backends[proxy.name] : nil)
            if let earlier {
                errors.append(ConfigError(proxy.location,
                    "\(describe(proxy)) has the same name as \(describe(earlier)) declared at \(earlier.location)"))
                continue
            }
            if proxy.isFrontend { frontends[proxy.name] = proxy }
            if proxy.isBackend { backends[proxy.name] = proxy }
        }
    }

    private static func proxyIDs(_ config: Config, _ errors: inout [ConfigError]) {
        var seen: [Int: Proxy] = [:]
        for proxy in config.proxies {
            if let earlier = seen[proxy.id] {
                errors.append(ConfigError(proxy.location,
                    "\(describe(proxy)) has the same id \(proxy.id) as \(describe(earlier)) declared at \(earlier.location)"))
            } else {
                seen[proxy.id] = proxy
            }
        }
    }

    /// A frontend needs a `bind` to receive connections and somewhere to send them: strata routes
    /// by `default_backend` (content switching comes with `use_backend`), or a listen's own servers.
    private static func routes(_ config: Config, failedKeywords: [Set<String>], droppedNames: Set<String>,
                               _ errors: inout [ConfigError])
    {
        let backends = Set(config.proxies.filter(\.isBackend).map(\.name))
        for (index, proxy) in config.proxies.enumerated() where proxy.isFrontend {
            let failed = index < failedKeywords.count ? failedKeywords[index] : []
            if proxy.binds.isEmpty && !failed.contains("bind") {
                errors.append(ConfigError(proxy.location,
                    "\(describe(proxy)) has no 'bind' line (declare it as a backend if it should not listen)"))
            }
            if let name = proxy.defaultBackend {
                if !backends.contains(name) && !droppedNames.contains(name) {
                    errors.append(ConfigError(proxy.defaultBackendLocation ?? proxy.location,
                        "\(describe(proxy)): unable to find required default_backend: '\(name)'"))
                }
            } else if failed.contains("default_backend") || (proxy.kind == .listen && failed.contains("server")) {
                // The line that would have routed was refused and reported.
            } else if proxy.kind == .frontend {
                errors.append(ConfigError(proxy.location,
                    "\(describe(proxy)) has no default_backend: its connections would have nowhere to go"))
            } else if proxy.servers.isEmpty {
                errors.append(ConfigError(proxy.location,
                    "\(describe(proxy)) has no server and no default_backend: its connections would have nowhere to go"))
            }
        }
    }

    private static func serverNames(_ config: Config, _ errors: inout [ConfigError]) {
        for proxy in config.proxies where proxy.isBackend {
            var seen: [String: Server] = [:]
            for server in proxy.servers {
                if let earlier = seen[server.name] {
                    errors.append(ConfigError(server.location,
                        "\(describe(proxy)) already has a server named '\(server.name)' declared at \(earlier.location)"))
                } else {
                    seen[server.name] = server
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
        var seen: [Key: Bind] = [:]
        for proxy in config.proxies where !proxy.disabled {
            for bind in proxy.binds {
                let key = Key(endpoint: bind.endpoint, interface: bind.interface)
                if let earlier = seen[key] {
                    errors.append(ConfigError(bind.location,
                        "\(bind.endpoint) is already bound at \(earlier.location)"))
                } else {
                    seen[key] = bind
                }
            }
        }
    }
}
