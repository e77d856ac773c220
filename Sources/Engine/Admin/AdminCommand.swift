import ConfigModel

/// One command of the runtime API, as HAProxy's `cli_kw`: the words that name it, the line
/// `help` shows, the level it needs, and what it answers. Each concern declares its own next to
/// its code (`StatsCommands.adminCommands`, `ServerAdminCommand.adminCommands` …) and
/// `AdminCommandTable` puts them together.
public struct AdminCommand: Sendable {
    /// The leading words that select it (`["set", "server"]`); what follows are its arguments.
    let words: [String]
    /// `help`'s line: the syntax and what it does; nil keeps it out of `help` (a variant another
    /// line already shows, such as `clear counters all`).
    let usage: (syntax: String, summary: String)?
    /// Checked before the arguments, as HAProxy's `cli_has_level` is.
    let level: AccessLevel
    let handler: @Sendable (AdminCommandContext) -> AdminReply

    public init(_ words: [String], usage: (syntax: String, summary: String)?, level: AccessLevel,
                handler: @escaping @Sendable (AdminCommandContext) -> AdminReply) {
        self.words = words
        self.usage = usage
        self.level = level
        self.handler = handler
    }

    /// `help`'s line for it, HAProxy's layout: the syntax in 40 columns (at least one
    /// space after it), then `: ` and the summary.
    var usageLine: String? {
        guard let (syntax, summary) = usage else { return nil }
        return syntax + String(repeating: " ", count: max(1, 40 - syntax.count)) + ": " + summary
    }
}

/// What a command runs with. Runs on the engine's loop thread.
public struct AdminCommandContext: Sendable {
    let engine: Engine
    /// Everything the client sent, escapes resolved.
    let words: [String]
    /// The words after the command's own (`show stat typed` → `["typed"]`).
    public let arguments: ArraySlice<String>
    /// The socket's level: some answers depend on it (`show stat` shows addresses from operator on).
    let level: AccessLevel
    /// The table the command was found in (`help` lists it).
    let table: AdminCommandTable
    /// The connection's own settings (`set timeout cli`); nil when run outside a connection.
    let session: AdminSessionSettings?
    /// The lines after a command ending with `<<`, up to an empty line (`add map MAP <<`).
    var payload: String? = nil
}

/// What a command may change of the connection it came on (HAProxy's appctx settings): its idle
/// timeout. Used on the control loop's thread only.
public final class AdminSessionSettings: @unchecked Sendable {
    /// Seconds without progress after which the connection closes (`stats timeout`, then `set timeout cli`).
    var idleTimeout: Double

    init(idleTimeout: Double) { self.idleTimeout = idleTimeout }
}

/// A command's answer.
public enum AdminReply {
    /// The whole answer, without the closing empty line.
    case text(String)
    /// Answered later (a reload answers when it is done): `start` gets the function to call,
    /// exactly once, on the loop's thread, with the whole answer.
    case later(_ start: (_ answer: @escaping (String) -> Void) -> Void)
    /// The arguments make no command this one knows: answered as an unknown command.
    case unknown
}
