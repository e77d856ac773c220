import Engine
import Loader

/// `add server BACKEND/NAME ADDR[:PORT] [options]`: its words are read here, with the Loader,
/// because the engine parses no configuration text; the engine then adds the server.
enum AddServerCommand {
    static func adminCommand(parser: RuntimeServerParser, engine: Engine) -> AdminCommand {
        AdminCommand(["add", "server"], usage: ("add server <bk>/<srv>", "create a new server"), level: .admin) { c in
            switch parser.parse(Array(c.arguments)) {
            case .failure(let error): return .text(error.message)
            case .success(let parsed): return .text(engine.addServer(parsed.server, backend: parsed.backend))
            }
        }
    }
}
