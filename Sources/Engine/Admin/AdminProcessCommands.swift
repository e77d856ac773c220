import ConfigModel
import Glibc

/// HAProxy's cli.c and activity.c commands about the process and the connection itself:
/// `set timeout cli`, `show version`, `show env`, `show activity`, with HAProxy 2.6's texts and
/// levels. Scripts and tools send them as they would to HAProxy (hatop starts with
/// `set timeout cli`).
enum AdminProcessCommands {
    static let adminCommands = [
        AdminCommand(["set", "timeout"], usage: ("set timeout [cli] <delay>", "change a timeout setting"), level: .user) { c in
            .text(setTimeout(c))
        },
        AdminCommand(["show", "version"], usage: ("show version", "show version of the current process"), level: .user) { c in
            c.arguments.isEmpty ? .text(c.engine.metrics.productVersion) : .unknown
        },
        AdminCommand(["show", "env"], usage: ("show env [var]", "dump environment variables known to the process"),
                     level: .operator_) { c in
            .text(showEnvironment(c.arguments.first))
        },
        AdminCommand(["show", "activity"],
                     usage: ("show activity", "show per-thread activity stats (for support/developers)"), level: .user) { c in
            .text(showActivity(c.engine))
        },
    ]

    /// `set timeout cli DELAY`: the connection's idle timeout, in seconds unless a unit says
    /// otherwise (HAProxy's parse_time_err with seconds); less than a second is refused.
    static func setTimeout(_ c: AdminCommandContext) -> String {
        let args = Array(c.arguments)
        guard args.first == "cli" else { return "'set timeout' only supports 'cli'." }
        guard args.count >= 2, let seconds = parseSeconds(args[1]), seconds >= 1 else { return "Invalid timeout value." }
        c.session?.idleTimeout = Double(seconds)
        return ""
    }

    /// A delay with HAProxy's units (`us ms s m h d`, seconds without one), in whole seconds.
    static func parseSeconds(_ text: String) -> Int? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let n = Int(digits) else { return nil }
        switch text.dropFirst(digits.count) {
        case "", "s": return n
        case "us": return n / 1_000_000
        case "ms": return n / 1000
        case "m": return n * 60
        case "h": return n * 3600
        case "d": return n * 86400
        default: return nil
        }
    }

    /// `show env [NAME]`: the process's environment, `NAME=value` a line; one variable, or
    /// `Variable not found`.
    static func showEnvironment(_ name: String?) -> String {
        var lines: [String] = []
        var p = environ
        while let entry = p.pointee {
            lines.append(String(cString: entry))
            p += 1
        }
        guard let name else { return lines.joined(separator: "\n") }
        guard let line = lines.first(where: { $0.hasPrefix(name + "=") }) else { return "Variable not found" }
        return line
    }

    /// `show activity`: HAProxy's per-thread lines (`name: total [ per loop … ]`), the subset
    /// strata measures: the loops' connections accepted and served now, their CPU time, and the
    /// process figures. HAProxy's scheduler counters (tasksw, empty_rq, long_rq …) have no
    /// meaning without its scheduler and are not shown.
    static func showActivity(_ engine: Engine) -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let workers = engine.workers
        func line(_ name: String, _ values: [Int]) -> String {
            "\(name): \(values.reduce(0, +)) [ \(values.map(String.init).joined(separator: " ")) ]"
        }
        let accepted = workers.map(\.accepted)
        let cpu = workers.map { Int(((StatsRates.threadCPUSeconds($0.threadID) ?? 0) * 1000).rounded()) }
        let micros = String(repeating: "0", count: 6 - String(now.tv_nsec / 1000).count) + String(now.tv_nsec / 1000)
        return [
            "thread_id: 0 (1..\(workers.count))",
            "date_now: \(now.tv_sec).\(micros)",
            line("accepted", accepted),
            line("conns", workers.map(\.connectionsNow)),
            line("cpu_ms_tot", cpu),
            line("pool_fail", workers.map { _ in 0 }),
        ].joined(separator: "\n")
    }
}
