import ConfigModel

/// `add server BACKEND/NAME ADDR[:PORT] [options]`: the words read as a `server` line is, with
/// HAProxy 2.6's rules for a server added at runtime: no `default-server` applies, its address
/// is never resolved by the system (`init-addr none`: a host name leaves it without address until
/// `resolvers` resolves it or `set server … addr` sets one), and only the options that make sense
/// at runtime are taken.
public struct RuntimeServerParser: Sendable {
    public var environment: [String: String]

    public init(environment: [String: String] = [:]) { self.environment = environment }

    /// Options taking one argument, and options alone, that a server added at runtime may have.
    static let optionsWithArgument: Set<String> = [
        "addr", "agent-addr", "agent-inter", "agent-port", "agent-send", "downinter", "error-limit", "fall", "fastinter", "inter", "maxconn", "observe", "on-error",
        "on-marked-down", "port", "resolve-net", "resolve-opts", "resolve-prefer", "resolvers", "rise", "weight",
    ]
    static let flags: Set<String> = ["agent-check", "backup", "check", "disabled", "no-check"]

    /// The backend's name and the server, or HAProxy's answer when the words are wrong.
    public func parse(_ words: [String]) -> Result<(backend: String, server: Server), RuntimeServerError> {
        guard let target = words.first, let slash = target.firstIndex(of: "/"), slash != target.startIndex,
              target.index(after: slash) != target.endIndex
        else {
            return .failure(RuntimeServerError("Require 'backend/server'."))
        }
        let backend = String(target[..<slash])
        let name = String(target[target.index(after: slash)...])
        guard words.count > 1 else { return .failure(RuntimeServerError("'server' expects <name> and <addr>[:<port>] as arguments.")) }
        var i = 2
        while i < words.count {
            let option = words[i]
            if RuntimeServerParser.optionsWithArgument.contains(option) {
                i += 2
            } else if RuntimeServerParser.flags.contains(option) {
                i += 1
            } else if KeywordReader.serverOptionNames.contains(option) || KeywordReader.otherServerOptions.contains(option)
                || KeywordReader.serverTLSOptions.contains(option)
            {
                return .failure(RuntimeServerError("'\(option)' option is not accepted for dynamic server"))
            } else {
                return .failure(RuntimeServerError("'\(option)' is not a server option"
                    + KeywordSuggestion.clause(for: option, among: Array(RuntimeServerParser.optionsWithArgument.union(RuntimeServerParser.flags)).sorted())))
            }
        }
        let reader = KeywordReader(addresses: AddressParser(resolver: HostResolver { _ in nil }, environment: environment))
        var draft = ProxyDraft(name: backend, section: .backend, location: SourceLocation(file: "add server"))
        draft.defaultServer.resolution.initAddr = [.none]
        let line = KeywordLine(words: ["server", name] + words.dropFirst(), location: SourceLocation(file: "add server"))
        do throws(ConfigError) {
            try reader.server(line, draft: &draft)
        } catch {
            return .failure(RuntimeServerError((draft.lineErrors.first ?? error).message))
        }
        var server = draft.proxy.servers[0]
        server.id = 0  // the engine gives the backend's next free id
        return .success((backend, server))
    }
}

/// Why `add server`'s words make no server: HAProxy's answer.
public struct RuntimeServerError: Error, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}
