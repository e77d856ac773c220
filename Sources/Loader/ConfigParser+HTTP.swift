import ConfigModel

/// What only the end of the configuration can tell about the HTTP keywords and the checks: an
/// HTTP keyword in a proxy that ends in `mode tcp`, ACLs that lines added to after a rule used
/// them, `http-check` / `tcp-check` rules and the option that turns them on.
extension ConfigParser {
    /// Errors for HTTP keywords in TCP proxies, and the final ACL definitions in the conditions of
    /// `config` (built by `build()`: the valid drafts, in order).
    func finishHTTP(_ config: inout Config, warnings: inout [ConfigError]) -> [ConfigError] {
        // Drafts are read field by field through the array: passing `drafts[i]` to a function
        // copies the whole draft, which costs more than these checks on thousands of proxies.
        var errors: [ConfigError] = []
        var p = 0
        for i in drafts.indices where drafts[i].valid {
            defer { p += 1 }
            if drafts[i].proxy.mode == .tcp
                && (!drafts[i].httpOnlyLines.isEmpty || !drafts[i].serverNotes.isDisjoint(with: [.cookie, .observeLayer7]))
            {
                httpInTCPMode(i, &errors, &warnings)
            }
            if !drafts[i].checkRuleLines.isEmpty { checkRules(i, &errors) }
            if drafts[i].proxy.isFrontend { captureSlots(i, &errors) }
            if p < config.proxies.count { resolveErrorFilesReplies(&config.proxies[p].http, &errors) }
            for (written, file, location) in drafts[i].mapActions where config.maps[file] == nil {
                errors.append(ConfigError(location,
                    "unable to find map '\(written)': set-map and del-map change a map a map converter of the configuration loads"))
            }
            if let location = drafts[i].preferLastServer, drafts[i].proxy.mode == .tcp, drafts[i].proxy.isBackend {
                // HAProxy 2.6 ignores it in mode tcp with this warning.
                warnings.append(ConfigError(location,
                    "'option prefer-last-server' ignored for \(drafts[i].proxy.kind == .listen ? "proxy" : "backend") '\(drafts[i].proxy.name)' as it requires HTTP mode."))
            }
            if let (location, inherited) = drafts[i].abortOnClose, drafts[i].proxy.mode == .tcp, drafts[i].proxy.isBackend {
                let what = "\(drafts[i].proxy.kind == .listen ? "proxy" : "backend") '\(drafts[i].proxy.name)'"
                if inherited {
                    warnings.append(ConfigError(location, "'option abortonclose' does nothing for \(what) in mode tcp (strata honors it in mode http only)"))
                } else {
                    errors.append(ConfigError(location, "'option abortonclose' is not supported yet in mode tcp (\(what); strata honors it in mode http)"))
                }
            }
            warnings += drafts[i].warnings
            if drafts[i].proxy.mode != .http {
                for bind in drafts[i].proxy.binds where bind.forcesH2 {
                    errors.append(ConfigError(bind.location, "'proto h2' needs mode http (\(drafts[i].proxy.kind.rawValue) '\(drafts[i].proxy.name)' is in mode tcp)"))
                }
            }
            if drafts[i].proxy.mode == .http {
                // HAProxy splices bodies in mode http too; strata does not (yet): a proxy's own line
                // is refused, one its defaults section gives it is said to do nothing there.
                for (keyword, location) in drafts[i].spliceLines {
                    errors.append(ConfigError(location, "'\(keyword)' is not supported yet in mode http (strata splices in mode tcp only)"))
                }
                if drafts[i].splicesInherited && drafts[i].spliceLines.isEmpty {
                    warnings.append(ConfigError(drafts[i].proxy.location,
                        "the 'option splice-*' of its defaults section have no effect on \(drafts[i].proxy.kind.rawValue) '\(drafts[i].proxy.name)': strata splices in mode tcp only"))
                }
            }
            if drafts[i].proxy.mode == .tcp, !drafts[i].proxy.http.backendRules.isEmpty || !drafts[i].tcpContentLines.isEmpty {
                tcpRuleFetches(i, &errors)
            } else if drafts[i].proxy.mode == .http, !drafts[i].tcpContentLines.isEmpty {
                httpTCPContentFetches(i, &errors)
            }
            if drafts[i].proxy.mode == .http, let first = drafts[i].proxy.tcp.response.first {
                // HAProxy runs them on the raw response before parsing it as HTTP.
                errors.append(ConfigError(first.location, "'tcp-response content' is not supported yet in mode http (strata applies it in mode tcp)"))
            }
            if case .tcpCheck = drafts[i].proxy.checks.kind, p < config.proxies.count {
                config.proxies[p].checks.kind = .tcpCheck(drafts[i].tcpCheckSteps)
            }
            if drafts[i].rebindACLs, p < config.proxies.count { ConfigParser.rebindACLs(&config.proxies[p]) }
            if p < config.proxies.count && (drafts[i].bindTLS || drafts[i].serverNotes.contains(.tls)) {
                applyTLSDefaults(&config.proxies[p], verifyDefaulted: drafts[i].serverVerifyDefaulted, &errors)
            }
            if p < config.proxies.count { h2Servers(config.proxies[p], &errors) }
        }
        return errors
    }

    /// `return … errorfiles NAME`: the section's message for the status, or the proxy's error
    /// answer when the section has none (HAProxy's fallback); an unknown section is an error.
    private func resolveErrorFilesReplies(_ http: inout HTTPSettings, _ errors: inout [ConfigError]) {
        func resolved(_ status: Int, _ body: ResponseBody, _ location: SourceLocation) -> ResponseBody {
            guard case .errorFilesSection(let name) = body else { return body }
            guard let section = httpErrors.first(where: { $0.name == name }) else {
                errors.append(ConfigError(location, "'errorfiles': unknown http-errors section '\(name)'"))
                return .errorPage
            }
            guard let message = section.files[status] else { return .errorPage }
            return .rawMessage(path: "errorfiles \(name)", contents: message)
        }
        for r in http.requestRules.indices {
            if case .returnResponse(let status, let type, let body, let headers) = http.requestRules[r].action,
               case .errorFilesSection = body {
                http.requestRules[r].action = .returnResponse(status: status, contentType: type, body: resolved(status, body, http.requestRules[r].location), headers: headers)
            }
        }
        for r in http.responseRules.indices {
            if case .returnResponse(let status, let type, let body, let headers) = http.responseRules[r].action,
               case .errorFilesSection = body {
                http.responseRules[r].action = .returnResponse(status: status, contentType: type,
                                                              body: resolved(status, body, http.responseRules[r].location), headers: headers)
            }
        }
    }

    /// The capture actions' `id N` of a frontend name one of its slots (HAProxy's check; a
    /// backend's are looked up in the frontend of each request, and skipped where it has none).
    private func captureSlots(_ i: Int, _ errors: inout [ConfigError]) {
        let http = drafts[i].proxy.http
        for rule in http.requestRules {
            if case .capture(_, let slot) = rule.action, slot >= http.captures.count {
                errors.append(ConfigError(rule.location, "unable to find capture id '\(slot)' referenced by http-request capture rule"))
            }
        }
        for (keyword, rules) in [("http-response", http.responseRules), ("http-after-response", http.afterResponseRules)] {
            for rule in rules {
                if case .capture(_, let slot) = rule.action, slot >= http.responseCaptures.count {
                    errors.append(ConfigError(rule.location, "unable to find capture id '\(slot)' referenced by \(keyword) capture rule"))
                }
            }
        }
    }

    /// HTTP/2 servers (`proto h2`, `alpn h2`): an HTTP backend's, each connection shared by the
    /// streams of many clients, so nothing may make a connection one client's.
    private func h2Servers(_ proxy: Proxy, _ errors: inout [ConfigError]) {
        for server in proxy.servers where server.options.speaksH2 {
            let what = "server '\(proxy.name)/\(server.name)'"
            if proxy.mode != .http {
                // (A TCP backend forwards bytes: h2 is the client's business.)
                if server.options.forcesH2 {
                    errors.append(ConfigError(server.location, "\(what): 'proto h2' needs mode http"))
                }
                continue
            }
            if server.options.sendProxy != nil {
                errors.append(ConfigError(server.location,
                    "\(what): 'send-proxy' on an HTTP/2 server is not supported yet (its connections carry many clients' streams)"))
            }
            if let sni = server.options.tls?.sni, !sni.isLiteral {
                errors.append(ConfigError(server.location,
                    "\(what): 'sni' from a fetch on an HTTP/2 server is not supported yet (its connections carry many requests)"))
            }
        }
    }

    /// The global `ssl-default-bind-*`, `ssl-default-server-*` and `ssl-server-verify` as the
    /// defaults of every TLS bind and server (applied once everything is read, so the global
    /// section may be anywhere), then what they must agree on.
    private func applyTLSDefaults(_ proxy: inout Proxy, verifyDefaulted: [Int], _ errors: inout [ConfigError]) {
        let g = global.tls
        for b in proxy.binds.indices where proxy.binds[b].tls != nil {
            var tls = proxy.binds[b].tls!
            let first = b == 0 || proxy.binds[b - 1].location != proxy.binds[b].location
            if let version = tls.disabledVersions.min(), first,
               tls.minVersion != nil || tls.maxVersion != nil || g.bindOptions.contains(where: { $0.hasPrefix("ssl-m") })
            {
                let flag = version == .sslv3 ? "no-sslv3" : "no-tlsv1\(version.rawValue.last!)"
                errors.append(ConfigError(proxy.binds[b].location,
                    "'\(flag)' would be ignored beside ssl-min-ver/ssl-max-ver (here or in ssl-default-bind-options): set the versions with those only"))
            }
            tls.ciphers = tls.ciphers ?? g.bindCiphers
            tls.ciphersuites = tls.ciphersuites ?? g.bindCiphersuites
            ConfigParser.apply(g.bindOptions, min: &tls.minVersion, max: &tls.maxVersion, disabled: &tls.disabledVersions,
                               noTickets: &tls.noTickets)
            if let min = tls.minVersion, let max = tls.maxVersion, min > max, first {
                errors.append(ConfigError(proxy.binds[b].location,
                    "'ssl-min-ver \(min.rawValue)' is above 'ssl-max-ver \(max.rawValue)' (with the global ssl-default-bind-options)"))
            }
            proxy.binds[b].tls = tls
        }
        let verify: TLSVerify = g.serverVerify == "none" ? .none : .required
        for s in verifyDefaulted where s < proxy.servers.count { proxy.servers[s].options.tls?.verify = verify }
        for s in proxy.servers.indices where proxy.servers[s].options.tls != nil {
            var tls = proxy.servers[s].options.tls!
            tls.ciphers = tls.ciphers ?? g.serverCiphers
            tls.ciphersuites = tls.ciphersuites ?? g.serverCiphersuites
            var disabled = Set<TLSVersion>(), noTickets = false
            ConfigParser.apply(g.serverOptions, min: &tls.minVersion, max: &tls.maxVersion, disabled: &disabled,
                               noTickets: &noTickets)
            let what = "server '\(proxy.name)/\(proxy.servers[s].name)'"
            if let min = tls.minVersion, let max = tls.maxVersion, min > max {
                errors.append(ConfigError(proxy.servers[s].location,
                    "\(what): 'ssl-min-ver \(min.rawValue)' is above 'ssl-max-ver \(max.rawValue)'"))
            }
            if tls.verify == .required && tls.caFile == nil {
                errors.append(ConfigError(proxy.servers[s].location,
                    "\(what): 'verify required' needs 'ca-file' (or 'verify none' on the line, or 'ssl-server-verify none' in global)"))
            }
            proxy.servers[s].options.tls = tls
        }
    }

    /// `ssl-min-ver V`, `ssl-max-ver V`, `no-tlsv1x`, `no-tls-tickets` of a global options list,
    /// where the line did not set them.
    private static func apply(_ options: [String], min: inout TLSVersion?, max: inout TLSVersion?,
                              disabled: inout Set<TLSVersion>, noTickets: inout Bool)
    {
        let lineMin = min, lineMax = max
        var flags = Set<TLSVersion>()
        for option in options {
            let words = option.split(separator: " ")
            switch words.first {
            case "ssl-min-ver": if lineMin == nil, words.count == 2 { min = TLSVersion(rawValue: String(words[1])) }
            case "ssl-max-ver": if lineMax == nil, words.count == 2 { max = TLSVersion(rawValue: String(words[1])) }
            case "no-sslv3": flags.insert(.sslv3)
            case "no-tlsv10": flags.insert(.tlsv10)
            case "no-tlsv11": flags.insert(.tlsv11)
            case "no-tlsv12": flags.insert(.tlsv12)
            case "no-tlsv13": flags.insert(.tlsv13)
            case "no-tls-tickets": noTickets = true
            default: break
            }
        }
        // HAProxy ignores the no-* flags once a minimum or maximum version is set.
        if min == nil && max == nil { disabled.formUnion(flags) }
    }

    /// In mode tcp, `use_backend` and `tcp-request content` conditions see the connection and the
    /// buffered payload: an HTTP fetch there never has a value (HAProxy warns), strata refuses it.
    private func tcpRuleFetches(_ i: Int, _ errors: inout [ConfigError]) {
        let proxy = drafts[i].proxy
        var rules: [(SourceLocation, Condition?)] = proxy.http.backendRules.map { ($0.location, $0.condition) }
        rules += proxy.tcp.content.map { ($0.location, $0.condition) }
        for (location, condition) in rules {
            guard let condition else { continue }
            for term in condition.alternatives.joined() {
                if let c = term.criteria.first(where: { !KeywordReader.isTCPFetch($0.sample.fetch, layer4Only: false) }) {
                    errors.append(ConfigError(location,
                        "'\(term.name)' uses '\(SampleParser.name(of: c.sample.fetch))', which needs mode http: in mode tcp a rule sees the connection's addresses, its TLS and the request's payload"))
                    break
                }
            }
        }
    }

    /// In mode http, `tcp-request content` rules are evaluated per request on the connection: the
    /// payload fetches (which HAProxy would read from the raw request) are not supported there yet.
    private func httpTCPContentFetches(_ i: Int, _ errors: inout [ConfigError]) {
        for rule in drafts[i].proxy.tcp.content {
            if let s = rule.action.samples.first(where: { SampleParser.phase(of: $0.fetch) == .payload }) {
                errors.append(ConfigError(rule.location,
                    "'\(SampleParser.name(of: s.fetch))' is not supported yet in mode http: there a 'tcp-request content' rule sees the connection's addresses and its TLS"))
                continue
            }
            guard let condition = rule.condition else { continue }
            for term in condition.alternatives.joined() {
                if let c = term.criteria.first(where: { SampleParser.phase(of: $0.sample.fetch) == .payload }) {
                    errors.append(ConfigError(rule.location,
                        "'\(term.name)' uses '\(SampleParser.name(of: c.sample.fetch))', which is not supported yet in mode http: there a 'tcp-request content' rule sees the connection's addresses and its TLS"))
                    break
                }
            }
        }
    }

    /// HAProxy ignores HTTP keywords in a TCP proxy with a warning. strata does the same for the
    /// HTTP rules and `option forwardfor|originalto` (which a TCP session never applies: HAProxy's
    /// warning, once per keyword and proxy) and refuses the others. Those a proxy inherits from a
    /// `defaults` section are not its lines: the engine ignores them in TCP.
    private func httpInTCPMode(_ i: Int, _ errors: inout [ConfigError], _ warnings: inout [ConfigError]) {
        let what = "\(drafts[i].proxy.kind.rawValue) '\(drafts[i].proxy.name)'"
        var warned: Set<String> = []
        for (keyword, location) in drafts[i].httpOnlyLines {
            switch keyword {
            case "http-request", "http-response", "http-after-response":
                if warned.insert(keyword).inserted {
                    warnings.append(ConfigError(location, "'\(keyword)' rules ignored for \(what) as they require HTTP mode."))
                }
            case "option forwardfor", "option originalto", "option forwarded", "compression":
                if warned.insert(keyword).inserted {
                    warnings.append(ConfigError(location, "'\(keyword)' ignored for \(what) as it requires HTTP mode."))
                }
            case "stick store-response":
                errors.append(ConfigError(location, "'stick store-response' is not supported yet in mode tcp (strata reads the key from HTTP answers only)"))
            default:
                errors.append(ConfigError(location, "'\(keyword)' needs 'mode http' (\(what) is in mode tcp)"))
            }
        }
        guard !drafts[i].serverNotes.isDisjoint(with: [.cookie, .observeLayer7]) else { return }
        let servers = drafts[i].proxy.servers
        for s in servers.indices where servers[s].options.cookie != nil {
            errors.append(ConfigError(servers[s].location,
                "'cookie' on server needs 'mode http' (\(what) is in mode tcp)"))
        }
        for s in servers.indices where servers[s].options.check.observe == .layer7 {
            errors.append(ConfigError(servers[s].location,
                "'observe layer7' on server needs 'mode http' (\(what) is in mode tcp)"))
        }
    }

    /// HAProxy ignores `http-check` rules without `option httpchk` (and `tcp-check` rules without
    /// `option tcp-check`) with a warning; strata refuses them.
    private func checkRules(_ i: Int, _ errors: inout [ConfigError]) {
        let what = "\(drafts[i].proxy.kind.rawValue) '\(drafts[i].proxy.name)'"
        var http = false, tcp = false
        switch drafts[i].proxy.checks.kind {
        case .http: http = true
        case .tcpCheck: tcp = true
        case .connect, .protocolCheck: break
        }
        for (keyword, location) in drafts[i].checkRuleLines {
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
        for r in http.afterResponseRules.indices { rebind(&http.afterResponseRules[r].condition) }
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
