import ConfigModel

/// The runtime API's commands, HAProxy's keyword list (`cli_register_kw`): each concern
/// contributes its own, a command is found by its leading words, its level is checked before its
/// arguments, and `help` and the answer to an unknown command are generated from the list with
/// HAProxy 2.6's texts and matching (cli.c `cli_gen_usage_msg`).
public struct AdminCommandTable: Sendable {
    /// Longest words first: `clear counters all` is found before `clear counters`.
    private var commands: [AdminCommand] = []

    init(_ commands: [AdminCommand] = []) {
        register(commands)
    }

    /// Every command the engine has, each concern's list from its own file; the daemon adds the
    /// process's own (`reload`).
    public static let engine = AdminCommandTable(
        [help] + AdminProcessCommands.adminCommands + GenerationInfo.adminCommands + Engine.canaryCommands + StatsCommands.adminCommands
            + ServerAdminCommand.adminCommands + TLSCertificateInfo.adminCommands + ResolverCommands.adminCommands
            + Engine.stickTableCommands + Engine.cacheCommands
            + MapCommands.adminCommands)

    static let help = AdminCommand(["help"], usage: nil, level: .user) { context in
        .text(context.table.usage(for: Array(context.arguments), help: true))
    }

    static let denied = "Permission denied"

    /// Adds `commands`; a command with the same words as one already there replaces it.
    public mutating func register(_ commands: [AdminCommand]) {
        for command in commands {
            self.commands.removeAll { $0.words == command.words }
            let at = self.commands.firstIndex { $0.words.count < command.words.count } ?? self.commands.count
            self.commands.insert(command, at: at)
        }
    }

    /// The command `words` run: the one with the most leading words in common (nil: none).
    func command(for words: [String]) -> AdminCommand? {
        commands.first { words.starts(with: $0.words) }
    }

    /// Runs `words` at `level` on `engine`'s loop thread; `reply` gets the whole answer (without
    /// the closing empty line), at once or, for a command that answers later, when it is done.
    func run(_ words: [String], level: AccessLevel, engine: Engine, session: AdminSessionSettings? = nil,
             payload: String? = nil, reply: @escaping (String) -> Void) {
        guard let command = command(for: words) else { return reply(usage(for: words, help: false)) }
        guard level >= command.level else { return reply(AdminCommandTable.denied) }
        let context = AdminCommandContext(engine: engine, words: words, arguments: words.dropFirst(command.words.count),
                                          level: level, table: self, session: session, payload: payload)
        switch command.handler(context) {
        case .text(let text): reply(text)
        case .later(let start): start(reply)
        case .unknown: reply(usage(for: words, help: false))
        }
    }

    // MARK: help and unknown commands

    /// HAProxy considers this many leading words of a command.
    static let significantWords = 5
    /// Fuzzy matches proposed at most.
    static let maxMatches = 5

    /// `help [WORDS]` (`help` true) or the answer to the unknown command `args`: a header, the
    /// lines of the commands that match, sorted, then help, prompt and quit. Which commands: the
    /// ones whose first words are the longest run of `args`'s first words any command has; when
    /// `args` go on past that run, the closest of those by the rest of their words (HAProxy's
    /// letter-transition fingerprints), if any is close enough.
    func usage(for args: [String], help: Bool) -> String {
        // An empty word ends the command line, as in HAProxy.
        let args = Array(args.prefix { !$0.isEmpty })
        let n = AdminCommandTable.significantWords
        func common(_ command: AdminCommand, upTo limit: Int) -> Int {
            var i = 0
            while i < limit && i < command.words.count && i < args.count && command.words[i] == args[i] { i += 1 }
            return i
        }
        let length = commands.reduce(0) { max($0, common($1, upTo: n)) }

        var text: String
        if help {
            text = "The following commands are valid at this level:\n"
        } else if length == 0 && args.isEmpty {
            text = "Unknown command. Please enter one of the following commands only:\n"
        } else {
            text = "Unknown command, but maybe one of the following ones is a better match:\n"
        }

        var matches: [(line: String, distance: Int)] = []
        if length < args.count {
            for command in commands {
                guard let line = command.usageLine, common(command, upTo: length) == length else { continue }
                var typed = WordFingerprint(), listed = WordFingerprint()
                var total = 0
                for word in args[length..<min(args.count, n)] {
                    typed.add(word)
                    total += word.utf8.count
                }
                for word in command.words[length..<min(command.words.count, n)] {
                    listed.add(word)
                    total += word.utf8.count
                }
                let distance = typed.distance(to: listed)
                guard distance < 5 * total / 2 else { continue }
                // Kept in order of distance, a later one after an equal one; only the best few.
                let at = matches.firstIndex { $0.distance > distance } ?? matches.count
                if at < AdminCommandTable.maxMatches {
                    matches.insert((line, distance), at: at)
                    if matches.count > AdminCommandTable.maxMatches { matches.removeLast() }
                }
            }
        }
        var lines: [String]
        if let best = matches.first?.distance {
            // Unlikely candidates beside a good one are left out.
            lines = matches.prefix { $0.distance <= 5 * best / 2 }.map(\.line)
        } else {
            lines = commands.compactMap { common($0, upTo: length) == length ? $0.usageLine : nil }
        }
        lines.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        for line in lines { text += "  " + line + "\n" }
        text += """
              help [<command>]                        : list matching or all commands
              prompt                                  : toggle interactive mode with prompt
              quit                                    : disconnect

            """
        return text
    }
}

/// HAProxy's word fingerprint (tools.c `update_word_fingerprint`): how often each character
/// class follows each other one (a letter, a digit, anything else, the word's start and end),
/// and which classes appear. The distance between two is the sum of their differences.
struct WordFingerprint {
    private var counts = [UInt8](repeating: 0, count: 1024)

    mutating func add(_ word: String) {
        let other = 28  // also the start and the end of a word
        var from = other
        for byte in word.utf8 {
            let to: Int
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): to = Int(byte - UInt8(ascii: "a")) + 1
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): to = Int(byte - UInt8(ascii: "A")) + 1
            case UInt8(ascii: "0")...UInt8(ascii: "9"): to = 27
            default: to = other
            }
            counts[to] = 1
            counts[32 * from + to] &+= 1
            from = to
        }
        counts[32 * from + other] &+= 1
    }

    func distance(to other: WordFingerprint) -> Int {
        zip(counts, other.counts).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
    }
}
