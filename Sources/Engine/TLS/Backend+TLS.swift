import ConfigModel
import Glibc

extension Backend {
    /// Builds the TLS context of every `server … ssl` line and the backend's `sni` expression
    /// when it is a fetch; returns what OpenSSL refused.
    func makeTLSContexts(global: GlobalSettings) -> [ConfigError] {
        var errors: [ConfigError] = []
        var expression: FormatString?
        for server in servers where server.config.options.tls != nil {
            do {
                server.tls = try TLSClientContext(server: server.config, backend: name, global: global)
            } catch {
                errors.append(error)
            }
            guard let sni = server.config.options.tls?.sni, !sni.isLiteral else { continue }
            if let expression, expression != sni {
                errors.append(ConfigError(server.config.location, "server \(name)/\(server.name): every server of a backend must use the same 'sni' expression ('\(expression.source)' before, '\(sni.source)' here)"))
            }
            expression = sni
        }
        if let expression, proxy.mode == .http { serverName = HTTPServerName(expression) }
        return errors
    }
}
