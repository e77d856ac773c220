import ConfigModel
import Engine
import Foundation

/// The runtime API's commands (HAProxy's names and answers where they exist).
final class AdminCommands: @unchecked Sendable {
    let engine: Engine
    let reloads: ReloadCoordinator
    let startedAt = Date()

    init(engine: Engine, reloads: ReloadCoordinator) {
        self.engine = engine
        self.reloads = reloads
    }

    static let help = """
        The following commands are valid at this level:
          help                                    : this message
          prompt                                  : toggle interactive mode with prompt
          quit                                    : disconnect
          show info                               : report information about the running process
          show generations                        : one row per live generation (id state age_s sessions listeners hash)
          show servers state [<backend>]          : dump volatile server information (all or for a single backend)
          show backend                            : list backends in the current running config
          get weight <bk>/<srv>                   : report a server's current weight
          disable server <bk>/<srv>               : disable a server for maintenance (use 'set server' instead)
          enable server <bk>/<srv>                : enable a disabled server (use 'set server' instead)
          disable health <bk>/<srv>               : disable health checks
          enable health <bk>/<srv>                : enable health checks
          set server <bk>/<srv> [opts]            : change a server's state (ready|drain|maint), health (up|stopping|down), weight or addr
          set weight <bk>/<srv> <weight>[%]       : change a server's weight (use 'set server' instead)
          reload                                  : reload the configuration in place (admin level)
        """

    func handle(_ command: String, level: AccessLevel, reply: @escaping (String) -> Void) {
        let words = command.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        switch words {
        case ["help"]:
            reply(AdminCommands.help)
        case ["show", "info"]:
            reply(showInfo())
        case ["show", "generations"]:
            reply(showGenerations())
        case ["reload"]:
            guard level >= .admin else { return reply("Permission denied") }
            reloads.request { outcome in
                reply((outcome.success ? "Success=1" : "Success=0") + "\n--\n" + outcome.messages.joined(separator: "\n"))
            }
        default:
            if let answer = engine.serverAdminCommand(words, level: level) { return reply(answer) }
            reply("Unknown command: '\(command)'\n" + AdminCommands.help)
        }
    }

    func showGenerations() -> String {
        var lines = ["# id state age_s sessions listeners hash"]
        for g in engine.generations {
            lines.append("\(g.id) \(g.state.rawValue) \(Int(g.ageSeconds)) \(g.sessions) \(g.listeners) \(g.hash)")
        }
        return lines.joined(separator: "\n")
    }

    func showInfo() -> String {
        let uptime = Int(Date().timeIntervalSince(startedAt))
        let gens = engine.generations
        let current = engine.current
        let fields: [(String, String)] = [
            ("Name", "strata"),
            ("Version", strataVersion),
            ("Nbthread", "1"),
            ("Pid", "\(getpid())"),
            ("Uptime", "\(uptime / 86400)d \(uptime / 3600 % 24)h\(uptime / 60 % 60)m\(uptime % 60)s"),
            ("Uptime_sec", "\(uptime)"),
            ("Maxconn", "\(current?.config.config.global.maxconn ?? 0)"),
            ("CurrConns", "\(gens.reduce(0) { $0 + $1.sessions })"),
            ("CumConns", "\(gens.reduce(0) { $0 + $1.sessionsAccepted })"),
            ("Generation", "\(current?.id ?? 0)"),
            ("GenerationHash", current?.config.hash ?? ""),
            ("Generations", "\(gens.count)"),
            ("DrainingGenerations", "\(gens.filter { $0.state == .draining }.count)"),
            ("Reloads", "\(reloads.succeeded)"),
            ("FailedReloads", "\(reloads.failed)"),
            ("LastReloadMs", reloads.lastReloadSeconds.map { "\(Int(($0 * 1000).rounded()))" } ?? ""),
        ]
        return fields.map { "\($0.0): \($0.1)" }.joined(separator: "\n")
    }
}
