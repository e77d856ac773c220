import ConfigModel

/// What only the end of the configuration can tell about the HTTP keywords and the checks: an
/// HTTP keyword in a proxy that ends in `mode tcp`, ACLs that lines added to after a rule used
/// them, `http-check` / `tcp-check` rules and the option that turns them on.
extension ConfigParser {
    /// Errors for HTTP keywords in TCP proxies, and the final ACL definitions in the conditions of
    /// `config` (built by `build()`: the valid drafts, in order).
    func finishHTTP(_ config: inout Config) -> [ConfigError] {
        var errors: [ConfigError] = []
        var p = 0
        for i in drafts.indices where drafts[i].valid {
            defer { p += 1 }
            if drafts[i].proxy.mode == .tcp { ConfigParser.httpInTCPMode(drafts[i], &errors) }
            if drafts[i].proxy.kind != .frontend { ConfigParser.checkRules(drafts[i], &errors) }
            if case .tcpCheck = drafts[i].proxy.checks.kind, p < config.proxies.count {
                config.proxies[p].checks.kind = .tcpCheck(drafts[i].tcpCheckSteps)
            }
            if drafts[i].rebindACLs, p < config.proxies.count { ConfigParser.rebindACLs(&config.proxies[p]) }
        }
        return errors
    }

    /// HAProxy ignores HTTP keywords in a TCP proxy with a warning; strata refuses them. Those a
    /// proxy inherits from a `defaults` section are not its lines: the engine ignores them in TCP.
    private static func httpInTCPMode(_ draft: borrowing ProxyDraft, _ errors: inout [ConfigError]) {
        guard !draft.httpOnlyLines.isEmpty || draft.proxy.kind != .frontend else { return }
        let what = "\(draft.proxy.kind.rawValue) '\(draft.proxy.name)'"
        for (keyword, location) in draft.httpOnlyLines {
            errors.append(ConfigError(location, "'\(keyword)' needs 'mode http' (\(what) is in mode tcp)"))
        }
        for s in draft.proxy.servers.indices where draft.proxy.servers[s].options.cookie != nil {
            errors.append(ConfigError(draft.proxy.servers[s].location,
                "'cookie' on server needs 'mode http' (\(what) is in mode tcp)"))
        }
        for s in draft.proxy.servers.indices where draft.proxy.servers[s].options.check.observe == .layer7 {
            errors.append(ConfigError(draft.proxy.servers[s].location,
                "'observe layer7' on server needs 'mode http' (\(what) is in mode tcp)"))
        }
    }

    /// HAProxy ignores `http-check` rules without `option httpchk` (and `tcp-check` rules without
    /// `option tcp-check`) with a warning; strata refuses them.
    private static func checkRules(_ draft: borrowing ProxyDraft, _ errors: inout [ConfigError]) {
        guard !draft.checkRuleLines.isEmpty else { return }
        let what = "\(draft.proxy.kind.rawValue) '\(draft.proxy.name)'"
        var http = false, tcp = false
        switch draft.proxy.checks.kind {
        case .http: http = true
        case .tcpCheck: tcp = true
        case .connect: break
        }
        for (keyword, location) in draft.checkRuleLines {
            if keyword == "http-check" && !http {
                errors.append(ConfigError(location, "'http-check' needs 'option httpchk' (\(what) has none)"))
            } else if keyword == "tcp-check" && !tcp {
                errors.append(ConfigError(location, "'tcp-check' needs 'option tcp-check' (\(what) has none)"))
            }
        }
    }

    /// Conditions take the final definition of the ACLs they name (lines may add to an ACL after
    /// a rule used it, as in HAProxy where the rule refers to the ACL itself).
    private static func rebindACLs(_ http: inout HTTPSettings) {
        var byName: [String: [ACLCriterion]] = [:]
        for acl in http.acls { byName[acl.name] = acl.criteria }
        func rebind(_ condition: inout Condition?) {
            guard var c = condition else { return }
            for a in c.alternatives.indices {
                for t in c.alternatives[a].indices {
                    if let criteria = byName[c.alternatives[a][t].name] { c.alternatives[a][t].criteria = criteria }
                }
            }
            condition = c
        }
        for r in http.requestRules.indices { rebind(&http.requestRules[r].condition) }
        for r in http.responseRules.indices { rebind(&http.responseRules[r].condition) }
        for r in http.redirectRules.indices { rebind(&http.redirectRules[r].condition) }
        for r in http.backendRules.indices { rebind(&http.backendRules[r].condition) }
    }

    private static func rebindACLs(_ proxy: inout Proxy) {
        rebindACLs(&proxy.http)
        guard proxy.stats?.admin != nil else { return }
        var settings = HTTPSettings()
        settings.acls = proxy.http.acls
        settings.requestRules = [HTTPRequestRule(location: proxy.location, action: .allow, condition: proxy.stats?.admin)]
        rebindACLs(&settings)
        proxy.stats?.admin = settings.requestRules[0].condition
    }
}
