import ConfigModel

/// The level each runtime API command needs: the one table both the daemon's commands and the
/// engine's server commands are checked against, with HAProxy 2.6's levels (the `cli_has_level`
/// checks of the files named), so a `level user` socket reads what HAProxy lets it read.
public enum AdminAccess {
    /// Command words (a prefix of what the client sent) and the level they need. The first
    /// match wins: longer prefixes come first.
    static let commands: [(words: [String], level: AccessLevel)] = [
        // cli.c: no check.
        (["help"], .user),
        (["prompt"], .user),
        (["quit"], .user),
        // stats.c: `show info` and `show stat` for every level (the addresses, cookies and
        // algorithms of `show stat` from operator on); `clear counters` operator, `all` admin.
        (["show", "info"], .user),
        (["show", "stat"], .user),
        (["clear", "counters", "all"], .admin),
        (["clear", "counters"], .operator_),
        // stream.c: sessions show client addresses.
        (["show", "sess"], .operator_),
        // proxy.c: no check.
        (["show", "servers", "state"], .user),
        (["show", "backend"], .user),
        // server.c: reading a weight is free, every change is admin.
        (["get", "weight"], .user),
        (["disable", "server"], .admin),
        (["enable", "server"], .admin),
        (["disable", "health"], .admin),
        (["enable", "health"], .admin),
        (["set", "server"], .admin),
        (["set", "weight"], .admin),
        // ssl_ckch.c.
        (["show", "ssl", "cert"], .operator_),
        // strata's own: the generation figures `show info` already gives; a reload is the master
        // CLI's `reload`, an admin command.
        (["show", "generations"], .user),
        (["reload"], .admin),
    ]

    /// The level `words` need, nil when they are no command (the caller answers with the usage).
    public static func requiredLevel(for words: [String]) -> AccessLevel? {
        commands.first { words.starts(with: $0.words) }?.level
    }

    public static let denied = "Permission denied"
}
