import ArgumentParser
import Foundation

let strataVersion = "0.1.0"
/// The date of the version's source (`show info`'s Release_date, HAProxy's format): changed with it.
let strataReleaseDate = "2026/12/07"

/// `strata [run] -f FILE…`, `strata -c -f FILE…`, `strata check`, `strata reload`, `strata cli`.
struct StrataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "A TCP and HTTP/1.1 reverse proxy that reloads its configuration in place.",
        subcommands: [Run.self, Check.self, Reload.self, Rollback.self, Cli.self],
        defaultSubcommand: Run.self
    )

    /// HAProxy exits 1 on a bad command line; so does strata (help and version exit 0).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                Foundation.exit(0)
            }
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            Foundation.exit(code == .validationFailure ? 1 : code.rawValue)
        }
    }
}

struct ConfigFiles: ParsableArguments {
    @Option(name: .customShort("f"), help: ArgumentHelp("A configuration file, or a directory whose *.cfg files load in lexical order.", valueName: "FILE"))
    var files: [String] = []

    func requireFiles() throws {
        if files.isEmpty { throw ValidationError("no configuration file: give at least one -f FILE") }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run in the foreground (or as a daemon with 'daemon' in global).")

    @OptionGroup var config: ConfigFiles
    @Flag(name: .customShort("c"), help: "Check the configuration only, then exit (0 valid, 1 invalid).")
    var checkOnly = false
    @Flag(name: .customLong("dr", withSingleDash: true),
          help: "A server address that does not resolve is a warning: the server starts in maintenance (HAProxy's -dr).")
    var resolutionFailuresWarn = false
    @Option(name: .customShort("L"), help: ArgumentHelp("This host's name in 'peers' sections (HAProxy's -L; default: the host name).", valueName: "NAME"))
    var localPeer: String?
    @Option(name: .customShort("p"), help: ArgumentHelp("Write the pid to this file.", valueName: "PIDFILE"))
    var pidfile: String?
    @Flag(name: .customLong("db", withSingleDash: true), help: "Stay in the foreground even with 'daemon' in global.")
    var foreground = false
    /// Counted: `-v` (or `--version`) prints the version, `-vv` the build options too (HAProxy's).
    @Flag(name: [.customShort("v"), .customLong("version")], help: "Print the version and exit (-vv: with the build options and libraries).")
    var version: Int
    @Option(name: .customLong("sf", withSingleDash: true), parsing: .upToNextOption,
            help: ArgumentHelp("Replace these strata processes: they finish their sessions (SIGUSR1) once this one listens.", valueName: "PID"))
    var softFinish: [Int32] = []
    /// HAProxy's master-worker mode: strata is one long-lived process that reloads in place, so
    /// `-W` and `-Ws` (with systemd notifications, which strata always sends under systemd) start
    /// it as it starts anyway.
    @Flag(name: .customShort("W"), help: "HAProxy's master-worker mode: accepted (strata reloads in place, in one process).")
    var masterWorker = false
    @Flag(name: .customLong("Ws", withSingleDash: true), help: "HAProxy's master-worker mode with systemd notifications: accepted (strata notifies systemd when NOTIFY_SOCKET is set).")
    var masterWorkerSystemd = false
    @Option(name: .customShort("S"), help: ArgumentHelp("HAProxy's master socket: one more admin socket (level admin), PATH[,mode,OCTAL].", valueName: "SOCKET"))
    var masterSocket: String?
    @Option(name: .customShort("x"), help: ArgumentHelp("Take the listening sockets of the strata answering on this admin socket ('expose-fd listeners'), with -sf or -st.", valueName: "SOCKET"))
    var takeOver: String?
    @Option(name: .customLong("st", withSingleDash: true), parsing: .upToNextOption,
            help: ArgumentHelp("Replace these strata processes: they stop at once (SIGTERM) once this one listens.", valueName: "PID"))
    var softTerminate: [Int32] = []

    func validate() throws {
        if version > 0 { return }
        try config.requireFiles()
        if !softFinish.isEmpty && !softTerminate.isEmpty { throw ValidationError("-sf and -st cannot be used together") }
        if let masterSocket, case .failure(let why) = MasterSocket.parse(masterSocket) { throw ValidationError(why.description) }
    }

    func run() throws {
        if version > 0 {
            print(version > 1 ? BuildInfo.text : "strata version \(strataVersion)")
            return
        }
        if checkOnly {
            Foundation.exit(Checker(files: config.files, resolutionFailuresWarn: resolutionFailuresWarn, localPeer: localPeer).run())
        }
        let options = DaemonOptions(files: config.files, pidfile: pidfile, foreground: foreground,
                                    replace: softFinish.isEmpty ? softTerminate : softFinish,
                                    replaceSignal: softFinish.isEmpty ? SIGTERM : SIGUSR1,
                                    resolutionFailuresWarn: resolutionFailuresWarn, localPeer: localPeer,
                                    masterSocket: masterSocket.flatMap { try? MasterSocket.parse($0).get() },
                                    takeOver: takeOver)
        Foundation.exit(Daemon(options: options).run())
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the configuration: print every error as file:line: message.")
    @OptionGroup var config: ConfigFiles
    @Flag(name: .customLong("dr", withSingleDash: true),
          help: "A server address that does not resolve is a warning: the server starts in maintenance (HAProxy's -dr).")
    var resolutionFailuresWarn = false
    @Option(name: .customShort("L"), help: ArgumentHelp("This host's name in 'peers' sections (HAProxy's -L; default: the host name).", valueName: "NAME"))
    var localPeer: String?

    func validate() throws { try config.requireFiles() }

    func run() throws {
        Foundation.exit(Checker(files: config.files, resolutionFailuresWarn: resolutionFailuresWarn, localPeer: localPeer).run())
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ask a running strata to reload; print its answer (exit 0 on success, 1 on failure).")
    @Option(name: .customShort("S"), help: ArgumentHelp("The admin socket ('stats socket' in global).", valueName: "SOCKET"))
    var socket: String
    @Flag(help: "Print what a reload would change, and change nothing (exit 0 when it would succeed, 1 when it would fail).")
    var plan = false
    @Flag(help: "With --plan: the plan as one JSON document, without the Success= lines.")
    var json = false

    @Option(help: ArgumentHelp("Start the new generation as a canary taking this percentage (0 to 100) of new work: HTTP requests, TCP connections; then 'canary promote', 'canary abort' or 'canary set PERCENT'.", valueName: "PERCENT"))
    var canary: Int?
    @Option(name: .customLong("abort-on-errors"), help: ArgumentHelp("With --canary: abort it by itself when its error share is this many points above the active generation's.", valueName: "PERCENT"))
    var abortOnErrors: Double?
    @Option(help: ArgumentHelp("With --abort-on-errors: the seconds the error shares are compared over (30 by default).", valueName: "SECONDS"))
    var window: Double?

    func validate() throws {
        if json && !plan { throw ValidationError("--json goes with --plan") }
        if canary != nil && plan { throw ValidationError("--canary and --plan cannot be used together") }
        if let canary, !(0...100).contains(canary) { throw ValidationError("--canary expects a percentage from 0 to 100") }
        if abortOnErrors != nil && canary == nil { throw ValidationError("--abort-on-errors goes with --canary") }
        if let p = abortOnErrors, !(p > 0 && p <= 100) { throw ValidationError("--abort-on-errors expects percentage points above 0, up to 100") }
        if window != nil && abortOnErrors == nil { throw ValidationError("--window goes with --abort-on-errors") }
        if let w = window, !(w > 0) { throw ValidationError("--window expects seconds above 0") }
    }

    /// The admin command this asks for.
    var command: String {
        if plan { return json ? "reload plan json" : "reload plan" }
        guard let canary else { return "reload" }
        var words = ["reload", "canary", String(canary)]
        if let p = abortOnErrors { words += ["abort-on-errors", String(p)] }
        if let w = window { words += ["window", String(w)] }
        return words.joined(separator: " ")
    }

    func run() throws {
        let answer = try AdminClient.send(command, to: socket)
        let success = answer.hasPrefix("Success=1")
        // A tool reading JSON gets JSON alone; the exit status says whether the reload would succeed.
        var shown = Substring(answer)
        if json, let body = answer.range(of: "\n--\n"), answer.hasPrefix("Success=") { shown = answer[body.upperBound...] }
        print(shown, terminator: shown.hasSuffix("\n") ? "" : "\n")
        Foundation.exit(success ? 0 : 1)
    }
}

struct Rollback: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask a running strata to make the previous generation's configuration current again, from memory (no file is read); print its answer (exit 0 on success, 1 on failure).")
    @Option(name: .customShort("S"), help: ArgumentHelp("The admin socket ('stats socket' in global, level admin).", valueName: "SOCKET"))
    var socket: String

    func run() throws {
        let answer = try AdminClient.send("rollback", to: socket)
        print(answer, terminator: answer.hasSuffix("\n") ? "" : "\n")
        Foundation.exit(answer.hasPrefix("Success=1") ? 0 : 1)
    }
}

struct Cli: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send one admin command and print the answer.")
    @Option(name: .customShort("S"), help: ArgumentHelp("The admin socket.", valueName: "SOCKET"))
    var socket: String
    @Argument(parsing: .captureForPassthrough, help: "The command and its words.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("no command given (try: strata cli -S SOCKET help)") }
    }

    func run() throws {
        let answer = try AdminClient.send(command.joined(separator: " "), to: socket)
        print(answer, terminator: answer.hasSuffix("\n") ? "" : "\n")
        Foundation.exit(AdminAnswer.isError(answer) ? 1 : 0)
    }
}

/// `-S PATH[,mode,OCTAL]`: HAProxy's master CLI socket, which strata serves as one more admin
/// socket at level admin (`reload`, `show info`, `show generations` for `show proc`).
enum MasterSocket {
    static func parse(_ text: String) -> Result<(path: String, mode: UInt32?), MasterSocketError> {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let path = parts.first, !path.isEmpty else { return .failure(MasterSocketError("-S expects a UNIX socket path")) }
        if path.contains("@") && !path.hasPrefix("unix@") {
            return .failure(MasterSocketError("-S '\(path)': only a UNIX socket path is supported (a TCP admin socket goes in 'stats socket')"))
        }
        var mode: UInt32?
        var i = 1
        while i < parts.count {
            guard parts[i] == "mode", i + 1 < parts.count, let m = UInt32(parts[i + 1], radix: 8), m <= 0o7777 else {
                return .failure(MasterSocketError("-S '\(text)': only ',mode,OCTAL' may follow the path"))
            }
            mode = m
            i += 2
        }
        return .success((path.hasPrefix("unix@") ? String(path.dropFirst(5)) : path, mode))
    }
}

struct MasterSocketError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
