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
            // The generation `rollback` restores: a comment under the header (it may be retired,
            // its configuration kept), and the word `rollback` after its row while it is live.
            let point = context.engine.rollbackPoint
            if let point {
                lines.append("# rollback restores generation \(point.generation) (hash \(point.hash))" + (context.engine.rollbackPrepared ? ", prepared" : ""))
            }
            for g in context.engine.generations {
                var mark = g.id == point?.generation ? " rollback" : ""
                if g.state == .canary { mark += " share=\(context.engine.canaryShare)%" }
                lines.append("\(g.id) \(g.state.rawValue) \(Int(g.ageSeconds)) \(g.sessions) \(g.listeners) \(g.hash)\(mark)")
            }
            return .text(lines.joined(separator: "\n"))
        },
    ]
}
