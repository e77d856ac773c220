import ConfigModel

/// `server` and `server-template` lines: the name (or prefix and range), the address, the options,
/// then the initial address by the server's `init-addr` methods (HAProxy's srv_iterate_initaddr).
extension KeywordReader {
    /// The most servers one `server-template` line makes: a typo (an extra zero or three) must
    /// not make a reload's build, inside the serving process, allocate without bound.
    static let maximumTemplateServers = 65_536

    static let resolutionOptionNames = ["init-addr", "resolve-net", "resolve-opts", "resolve-prefer", "resolvers"]
    /// HAProxy's `resolve-net` holds at most this many networks (SRV_MAX_PREF_NET).
    static let maximumResolveNetworks = 5

    /// `server NAME ADDR[:PORT] [options]` and `server-template PREFIX NUM|FIRST-LAST FQDN[:PORT]
    /// [options]` (servers PREFIX<FIRST> … PREFIX<LAST>, or PREFIX1 … PREFIX<NUM>).
    func server(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        let isTemplate = line.keyword == "server-template"
        let name = try line.argument(0, expecting: isTemplate
            ? "a prefix, a number of servers and an address (server-template PREFIX NUM|FIRST-LAST FQDN[:PORT] [options])"
            : "a name and an address (server NAME ADDR[:PORT] [options])")
        var range = 1...1
        if isTemplate {
            let text = try line.argument(1, expecting: "a number of servers or a range FIRST-LAST after the prefix (server-template PREFIX NUM|FIRST-LAST FQDN[:PORT] [options])")
            range = try KeywordReader.templateRange(text, line: line)
        }
        let optionsStart = isTemplate ? 3 : 2
        // Literals: a message is made for every line that reads `expecting:`, error or not.
        let addressText = try line.argument(optionsStart - 1, expecting: isTemplate
            ? "an address after the range (server-template PREFIX NUM|FIRST-LAST FQDN[:PORT])"
            : "an address after the name (server NAME ADDR[:PORT])")
        // Made for a message only: most lines have none.
        func context() -> String { isTemplate ? "'server-template \(name)'" : "'server \(name)'" }
        // A bad name or an address that does not resolve must not hide the line's other errors:
        // the options are read anyway, and every error is reported.
        var lineErrors: [ConfigError] = []
        if !KeywordReader.isName(name), let bad = name.first(where: { !KeywordReader.isNameCharacter($0) }) {
            lineErrors.append(line.error("character '\(bad)' is not permitted in server \(isTemplate ? "prefix" : "name") '\(name)'"))
        }
        var target: (host: String, literal: IPAddress?, port: UInt16?)?
        do throws(ConfigError) {
            target = try serverTarget(addressText, line: line, context: context())
        } catch {
            lineErrors.append(error)
        }
        guard let target else {
            var options = draft.defaultServer
            do throws(ConfigError) {
                _ = try serverOptions(line, from: optionsStart, into: &options, tlsDefaults: draft.defaultServerTLSStorage)
            } catch {
                lineErrors.append(error)
            }
            let last = lineErrors.removeLast()
            draft.lineErrors += lineErrors
            throw last
        }

        // Built in place in the array (a Server is large); a refused line leaves no server.
        let first = draft.proxy.servers.count
        draft.proxy.servers.append(
            Server(name: isTemplate ? name + String(range.lowerBound) : name, location: line.location, id: first + 1,
                   host: target.host, address: target.literal ?? .anyV4, port: target.port, options: draft.defaultServer))
        let tlsDefaults = draft.defaultServerTLSStorage
        var notes: ServerNotes = []
        var optionError: ConfigError?
        do throws(ConfigError) {
            notes = try serverOptions(line, from: optionsStart, into: &draft.proxy.servers[first].options, tlsDefaults: tlsDefaults)
        } catch {
            optionError = error
        }

        var pendingLast: String?
        // A wrong option after `init-addr` leaves the methods unknown: nothing to try.
        let methodsUnknown = optionError != nil && line.args.contains("init-addr")
        if target.literal == nil && !methodsUnknown {
            let resolution = draft.proxy.servers[first].options.resolution
            let srv = target.host.hasPrefix("_")
            if srv && resolution.resolvers == nil {
                lineErrors.append(line.error("\(context()): an SRV label ('\(target.host)') is resolved at runtime and needs 'resolvers'"))
            }
            switch initialAddress(target.host, resolution: resolution, srvLabel: srv) {
            case .address(let address, let warning):
                draft.proxy.servers[first].address = address
                if let warning { draft.lineWarnings.append(line.error("\(context()): \(warning)")) }
            case .none(let warning):
                draft.proxy.servers[first].hasAddress = false
                if let warning { draft.lineWarnings.append(line.error("\(context()): \(warning)")) }
            case .pendingLast(let message):
                // `last` may still find one in the server-state file, once the whole configuration is read.
                draft.proxy.servers[first].hasAddress = false
                pendingLast = "\(context()): \(message)"
            case .failed(let message):
                lineErrors.append(line.error("\(context()): \(message)"))
            }
            let followsName = resolution.resolvers != nil || resolution.initAddr != nil || isTemplate
                || !draft.proxy.servers[first].hasAddress
            if followsName { draft.proxy.servers[first].fqdn = target.host }
        }
        // A line refused anyway reports its address at once, with its other errors.
        var pending: ConfigError?
        if let pendingLast {
            if lineErrors.isEmpty && optionError == nil { pending = line.error(pendingLast) } else { lineErrors.append(line.error(pendingLast)) }
        }
        if let optionError { lineErrors.append(optionError) }
        guard lineErrors.isEmpty else {
            draft.proxy.servers.removeLast()
            let last = lineErrors.removeLast()
            draft.lineErrors += lineErrors
            throw last
        }
        if let pending { draft.pendingLast.append((first, pending)) }
        if isTemplate {
            draft.proxy.serverTemplates.append(ServerTemplate(prefix: name, first: range.lowerBound, last: range.upperBound,
                                                              location: line.location))
            draft.proxy.servers.reserveCapacity(draft.proxy.servers.count + range.count - 1)
            for number in range.dropFirst() {
                var server = draft.proxy.servers[first]
                server.name = name + String(number)
                server.id = draft.proxy.servers.count + 1
                draft.proxy.servers.append(server)
                if let pending { draft.pendingLast.append((draft.proxy.servers.count - 1, pending)) }
            }
        }
        if !notes.isEmpty {
            // What the end of the section checks, noted here so that it need not look at every server.
            draft.serverNotes.formUnion(notes)
            if notes.contains(.tls) && !notes.contains(.verifySet) {
                // `ssl-server-verify` decides, once the whole configuration is read.
                draft.serverVerifyDefaulted.append(contentsOf: first..<draft.proxy.servers.count)
            }
        }
    }

    /// `NUM` (servers 1 to NUM) or `FIRST-LAST`.
    static func templateRange(_ text: String, line: KeywordLine) throws(ConfigError) -> ClosedRange<Int> {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        let low = KeywordLine.decimal(String(parts[0]))
        let high = parts.count == 2 ? KeywordLine.decimal(String(parts[1])) : nil
        let range: ClosedRange<Int>?
        if parts.count == 1, let low, low >= 1 {
            range = 1...low
        } else if parts.count == 2, let low, let high, low >= 0, high >= low {
            range = low...high
        } else {
            range = nil
        }
        guard let range else {
            throw line.error("'server-template' expects a number of servers (1 or more) or a range FIRST-LAST, got '\(text)'")
        }
        guard range.count <= maximumTemplateServers else {
            throw line.error("'server-template' makes at most \(maximumTemplateServers) servers, '\(text)' makes \(range.count)")
        }
        return range
    }

    /// `ADDR[:PORT]` split, a literal read; a host name is left for `init-addr`. No port means
    /// the client's destination port.
    private func serverTarget(_ text: String, line: KeywordLine, context: @autoclosure () -> String)
        throws(ConfigError) -> (host: String, literal: IPAddress?, port: UInt16?)
    {
        let text = addresses.expanded(text)
        if let plain = AddressParser.plainIPv4(text) { return (plain.host, plain.address, plain.port) }
        let parts: AddressParser.Parts
        switch AddressParser.split(text) {
        case .success(let p): parts = p
        case .failure(let message): throw line.error("\(context()): \(message)")
        }
        var port: UInt16?
        if let portText = parts.port {
            switch AddressParser.port(portText, in: text) {
            case .success(let p): port = p
            case .failure(let message): throw line.error("\(context()): \(message)")
            }
        }
        // `*`: 0.0.0.0, the address the client connected to (HAProxy's transparent servers).
        if parts.host == "*" { return ("0.0.0.0", .v4(0), port) }
        switch addresses.literal(parts.host, family: parts.family, in: text) {
        case .success(let literal): return (parts.host, literal, port)
        case .failure(let message): throw line.error("\(context()): \(message)")
        }
    }

    /// What a server's `init-addr` methods give, tried in order at load (HAProxy's
    /// srv_iterate_initaddr): `-dr` adds `none` after them.
    enum InitialAddress {
        /// `warning`: methods failed before the one that gave it (HAProxy warns then).
        case address(IPAddress, warning: String?)
        /// No address: the server starts in resolution maintenance.
        case none(warning: String?)
        /// Only `last` may still give one: the server-state file decides, once it can be read.
        case pendingLast(String)
        case failed(String)
    }

    func initialAddress(_ host: String, resolution: ServerResolution, srvLabel: Bool) -> InitialAddress {
        var methods = resolution.initAddrMethods
        if resolutionFailuresWarn { methods.append(.none) }
        var failed = false
        var last = false
        for method in methods {
            switch method {
            case .last:
                last = true
            case .libc:
                // An SRV label is no host name: only the runtime resolver can read it.
                if !srvLabel, let address = addresses.resolver.resolve(host) {
                    return .address(address, warning: failed ? "could not resolve address '\(host)', resolved by libc" : nil)
                }
                failed = true
            case .none:
                return .none(warning: failed || last ? "could not resolve address '\(host)', disabling server" : nil)
            case .address(let address):
                return .address(address, warning: failed ? "could not resolve address '\(host)', falling back to configured address" : nil)
            }
        }
        let message = failed ? "could not resolve host name '\(host)'" : "no init-addr method found an address for '\(host)'"
        return last ? .pendingLast(message) : .failed(message)
    }

    /// `resolvers`, `resolve-prefer`, `resolve-net`, `resolve-opts` and `init-addr` on `server`
    /// and `default-server`; false for any other option.
    func serverResolutionOption(_ option: String, _ line: KeywordLine, at i: inout Int,
                                into resolution: inout ServerResolution) throws(ConfigError) -> Bool
    {
        func value(_ what: String) throws(ConfigError) -> String {
            guard let v = line.optionalArgument(i + 1), !v.isEmpty else { throw line.error("'\(option)' expects \(what)") }
            i += 1
            return v
        }
        switch option {
        case "resolvers":
            resolution.resolvers = try value("the name of a resolvers section")
        case "resolve-prefer":
            let v = try value("ipv4 or ipv6")
            guard let family = AddressFamily(rawValue: v) else { throw line.error("'resolve-prefer' expects ipv4 or ipv6, got '\(v)'") }
            resolution.prefer = family
        case "resolve-net":
            var networks: [IPNetwork] = []
            for item in try value("a list of networks (for example 10.0.0.0/8,fd00::/8)").split(separator: ",", omittingEmptySubsequences: false) {
                guard case .success(let network) = SampleParser.network(String(item), noDNS: true, resolver: addresses.resolver) else {
                    throw line.error("'resolve-net': invalid network '\(item)'")
                }
                networks.append(network)
            }
            guard networks.count <= KeywordReader.maximumResolveNetworks else {
                throw line.error("'resolve-net' takes at most \(KeywordReader.maximumResolveNetworks) networks, got \(networks.count)")
            }
            resolution.networks = networks
        case "resolve-opts":
            for item in try value("allow-dup-ip, ignore-weight or prevent-dup-ip").split(separator: ",", omittingEmptySubsequences: false) {
                switch item {
                case "allow-dup-ip": resolution.allowDuplicateAddress = true
                case "prevent-dup-ip": resolution.allowDuplicateAddress = false
                case "ignore-weight": resolution.ignoreWeight = true
                default:
                    throw line.error("'resolve-opts': unknown option '\(item)' (expected allow-dup-ip, ignore-weight or prevent-dup-ip)")
                }
            }
        case "init-addr":
            var methods: [InitAddrMethod] = []
            for item in try value("methods among last, libc, none or an IP address (for example last,libc,none)")
                .split(separator: ",", omittingEmptySubsequences: false)
            {
                let method: InitAddrMethod
                switch item {
                case "last": method = .last
                case "libc": method = .libc
                case "none": method = .none
                default:
                    guard let address = IPAddress(item) else {
                        throw line.error("'init-addr': unknown method '\(item)' (expected last, libc, none or an IP address)")
                    }
                    if methods.contains(where: { if case .address = $0 { true } else { false } }) {
                        throw line.error("'init-addr': an initial address is already given, cannot add '\(item)'")
                    }
                    method = .address(address)
                }
                if methods.contains(method) { throw line.error("'init-addr' names '\(item)' twice") }
                methods.append(method)
            }
            resolution.initAddr = methods
        default:
            return false
        }
        return true
    }
}
