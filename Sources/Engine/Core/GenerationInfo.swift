import ConfigModel

/// A live generation as the admin socket and the exporter show it.
public struct GenerationInfo: Sendable {
    public var id: Int
    public var state: GenerationState
    var ageSeconds: Double
    public var sessions: Int
    var sessionsAccepted: Int
    var sessionsKilled: Int
    var listeners: Int
    var hash: String

    /// strata's own runtime API command: the generations `show info` counts, one row each.
    static let adminCommands = [
        AdminCommand(["show", "generations"],
                     usage: ("show generations", "one row per live generation (id state age_s sessions listeners hash)"),
                     level: .user) { context in
            guard context.arguments.isEmpty else { return .unknown }
            var lines = ["# id state age_s sessions listeners hash"]
            for g in context.engine.generations {
                lines.append("\(g.id) \(g.state.rawValue) \(Int(g.ageSeconds)) \(g.sessions) \(g.listeners) \(g.hash)")
            }
            return .text(lines.joined(separator: "\n"))
        },
    ]
}
