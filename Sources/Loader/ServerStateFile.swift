#if canImport(Glibc)
import Glibc
#endif
import ConfigModel

/// HAProxy's server-state file, version 1: what `show servers state` writes and what
/// `load-server-state-from-file global|local` reads when a process starts. A first line with the
/// version, then one line a server, fields separated by blanks, `#` comments and empty lines
/// skipped; between 20 and 25 fields:
///
///     be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight
///     srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health
///     srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord
///     [srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port]
///
/// The rules are HAProxy's (its `server_state.c`): a line that is cut (no newline at its end, or
/// longer than 2,000 bytes) or has too few or too many fields makes the whole file corrupted and
/// nothing of it is applied; with `global`, a line applies to the server of the same backend and
/// server names and lines naming nothing are ignored; with `local`, a line whose backend id and name
/// both differ is ignored, one whose name differs is ignored with a warning (unless the backend's id
/// was forced), and a server the backend lacks is a warning. A matched line with an invalid value
/// is not applied (a warning names every invalid field).
public struct ServerStateFile: Hashable, Sendable {
    /// A line's fields, in order; `number` counts from 1 after the version line (HAProxy's count).
    public struct Line: Hashable, Sendable {
        public var number: Int
        public var fields: [String]
    }

    public var version: Int
    public var lines: [Line]

    /// A message for the log, in HAProxy's words (its level: a missing or empty file is a notice).
    public struct Message: Hashable, Sendable, CustomStringConvertible {
        public enum Level: String, Sendable { case notice = "NOTICE", warning = "WARNING" }
        public var level: Level
        public var text: String
        public var description: String { "[\(level.rawValue)] \(text)" }
    }

    /// What the configuration's files say, matched to its servers.
    public struct Restore: Sendable {
        /// One state per server of the configuration that a file names (configuration order).
        public var states: [SavedServerState] = []
        public var messages: [Message] = []
        /// The files read (or tried).
        public var files: [String] = []
    }

    static let minimumFields = 20
    static let maximumFields = 25
    static let maximumLineLength = 2000

    /// Why a file gives nothing.
    public enum Failure: Error, Equatable, Sendable {
        case empty
        /// The first line is not a version strata reads (only 1 exists).
        case noVersion
        /// The line (counted from 1 after the version line) is cut or has a wrong number of fields.
        case corrupted(line: Int)
    }

    /// Splits `bytes` (a whole file) into server lines.
    public static func parse(_ bytes: some Collection<UInt8>) -> Result<ServerStateFile, Failure> {
        // fgets's view: lines with their newline; a longer line comes in pieces, and a piece
        // without a newline is a cut line.
        var chunks: [ArraySlice<UInt8>] = []
        let all = Array(bytes)
        var start = 0
        while start < all.count {
            var end = start
            while end < all.count && all[end] != 10 && end - start < maximumLineLength - 1 { end += 1 }
            if end < all.count && all[end] == 10 { end += 1 }
            chunks.append(all[start..<end])
            start = end
        }
        guard let first = chunks.first else { return .failure(.empty) }
        // strtol: leading white space, a sign, digits, then the newline at once.
        let text = String(decoding: first.dropLast(), as: UTF8.self).drop { " \t\r\u{0B}\u{0C}".contains($0) }
        guard first.last == 10, let version = Int(text), version == 1 else {
            return .failure(.noVersion)
        }
        var lines: [Line] = []
        for (i, chunk) in chunks.dropFirst().enumerated() {
            let number = i + 1
            guard chunk.last == 10 else { return .failure(.corrupted(line: number)) }
            let body = chunk.dropLast()
            let blanks = body.prefix { $0 == 32 || $0 == 9 }
            if blanks.count == body.count || body[body.startIndex + blanks.count] == UInt8(ascii: "#") { continue }
            var fields = body.split(whereSeparator: { $0 == 32 || $0 == 9 }).map { String(decoding: $0, as: UTF8.self) }
            // HAProxy stops reading after the last field it knows.
            if fields.count > maximumFields { fields.removeLast(fields.count - maximumFields) }
            guard fields.count >= minimumFields else { return .failure(.corrupted(line: number)) }
            lines.append(Line(number: number, fields: fields))
        }
        return .success(ServerStateFile(version: version, lines: lines))
    }

    /// HAProxy's path rule: absolute, or under `server-state-base` when it is set.
    public static func path(_ name: String, base: String?) -> String {
        guard !name.hasPrefix("/"), let base, !base.isEmpty else { return name }
        return base.hasSuffix("/") ? base + name : base + "/" + name
    }

    /// Reads every file `config` asks for (the global `server-state-file` once, a backend's own
    /// with `local`) and matches their lines to its servers. `read` returns a file's bytes or an
    /// errno.
    public static func restore(for config: Config,
                               read: (String) -> Result<[UInt8], ReadError> = ServerStateFile.readFile) -> Restore {
        var out = Restore()
        let backends = config.proxies.filter { $0.isBackend && !$0.disabled && !$0.servers.isEmpty }
        let modes = backends.map { $0.serverStateFile ?? ServerStateFileMode.none }
        guard modes.contains(where: { $0 != .none }) else { return out }
        let global = config.global

        // The global file, keyed by "backend server" (the first of duplicate lines wins).
        var globalLines: [String: Line]?
        if let name = global.serverStateFile {
            let file = path(name, base: global.serverStateBase)
            out.files.append(file)
            switch load(file, read: read) {
            case .success(let parsed):
                var table: [String: Line] = [:]
                for line in parsed.lines {
                    let key = line.fields[1] + " " + line.fields[3]
                    if table[key] == nil { table[key] = line }
                }
                globalLines = table
            case .failure(let problem):
                out.messages.append(message(problem, file: file, proxy: nil))
            }
        }

        for (proxy, mode) in zip(backends, modes) {
            switch mode {
            case .none:
                continue
            case .global:
                guard let globalLines else { continue }
                for server in proxy.servers {
                    guard let line = globalLines[proxy.name + " " + server.name] else { continue }
                    apply(line, to: server, in: proxy, into: &out)
                }
            case .local:
                let file = path(proxy.serverStateFileName ?? proxy.name, base: global.serverStateBase)
                out.files.append(file)
                let parsed: ServerStateFile
                switch load(file, read: read) {
                case .success(let p): parsed = p
                case .failure(let problem):
                    out.messages.append(message(problem, file: file, proxy: proxy.name))
                    continue
                }
                var table: [String: Line] = [:]
                var order: [String] = []
                for line in parsed.lines {
                    let idMatches = (leadingInteger(line.fields[0]) ?? 0) == proxy.id
                    let nameMatches = line.fields[1] == proxy.name
                    if !idMatches && !nameMatches { continue }
                    if !idMatches {
                        out.messages.append(.init(level: .warning, text: "Proxy '\(proxy.name)': backend ID mismatch: from server state file: '\(line.fields[0])', from running config '\(proxy.id)'"))
                    } else if !nameMatches {
                        out.messages.append(.init(level: .warning, text: "Proxy '\(proxy.name)': backend name mismatch: from server state file: '\(line.fields[1])', from running config '\(proxy.name)'"))
                        // Kept only when the file says the backend's id was forced (`id`).
                        if (leadingInteger(line.fields[15]) ?? 0) & 1 == 0 { continue }
                    }
                    if table[line.fields[3]] == nil {
                        table[line.fields[3]] = line
                        order.append(line.fields[3])
                    }
                }
                for server in proxy.servers {
                    guard let line = table.removeValue(forKey: server.name) else { continue }
                    apply(line, to: server, in: proxy, into: &out)
                }
                for name in order where table[name] != nil {
                    out.messages.append(.init(level: .warning, text: "Proxy '\(proxy.name)': can't find server '\(name)' in backend '\(proxy.name)'"))
                }
            }
        }
        return out
    }

    private static func load(_ file: String, read: (String) -> Result<[UInt8], ReadError>) -> Result<ServerStateFile, LoadFailure> {
        switch read(file) {
        case .failure(let e): return .failure(.unreadable(e.problem))
        case .success(let bytes): return parse(bytes).mapError { .parse($0) }
        }
    }

    private enum LoadFailure: Error {
        case unreadable(FileProblem)
        case parse(Failure)
    }

    private static func message(_ problem: LoadFailure, file: String, proxy: String?) -> Message {
        let who = proxy.map { "Proxy '\($0)': " } ?? "config: "
        let kind = proxy == nil ? "global server state file" : "server state file"
        let stop = proxy == nil ? "" : "."
        switch problem {
        case .unreadable(let problem):
            return Message(level: problem.errno == ENOENT ? .notice : .warning,
                           text: "\(who)Can't open \(kind) '\(file)': \(problem)\(stop)")
        case .parse(.empty):
            return Message(level: .notice, text: "\(who)Empty \(kind) '\(file)'.")
        case .parse(.noVersion):
            return Message(level: .warning, text: "\(who)Can't get version of the \(kind) '\(file)'.")
        case .parse(.corrupted(let line)):
            return Message(level: .warning, text: "\(who)corrupted \(kind) '\(file)' at line \(line).")
        }
    }

    /// Checks a matched line's values as HAProxy does before applying any of them.
    private static func apply(_ line: Line, to server: Server, in proxy: Proxy, into out: inout Restore) {
        switch state(line, backend: proxy.name, server: server.name) {
        case .success(var state):
            // `init-addr last` (HAProxy's default) takes the saved address only for a server
            // given by name, and whose methods name `last`; an address written in the
            // configuration is the address.
            if IPAddress(server.host) != nil || !server.options.resolution.initAddrMethods.contains(.last) { state.address = nil }
            out.states.append(state)
        case .failure(let invalid):
            out.messages.append(.init(level: .warning, text: "server-state application failed for server '\(proxy.name)/\(server.name)'\(invalid)"))
        }
    }

    /// The state a line describes, or HAProxy's list of invalid values (`, invalid X value 'V'`…).
    static func state(_ line: Line, backend: String, server: String) -> Result<SavedServerState, InvalidValues> {
        let f = Array(line.fields.dropFirst(4))
        var invalid = ""
        func number(_ i: Int, _ name: String, _ valid: (Int) -> Bool = { _ in true }) -> Int {
            guard let v = leadingInteger(f[i]), valid(v) else {
                invalid += ", invalid \(name) value '\(f[i])'"
                return 0
            }
            return v
        }
        let checkFlags = 0x01 | 0x02 | 0x04 | 0x08 | 0x10
        let op = number(1, "srv_op_state") { (0...3).contains($0) }
        // Inherited flags (IMAINT 0x02, IDRAIN 0x10, RMAINT 0x20) and HMAINT/FQDN 0x40 are
        // recomputed, not restored.
        var admin = 0
        if let v = leadingInteger(f[2]), [0, 1, 4, 5, 12, 8].contains(v & ~0x72) {
            admin = v & ~0x72
        } else {
            invalid += ", invalid srv_admin_state value '\(f[2])'"
        }
        let uweight = number(3, "srv_uweight") { (0...256).contains($0) }
        let iweight = number(4, "srv_iweight") { (0...256).contains($0) }
        let since = number(5, "srv_last_time_change")
        let status = number(6, "srv_check_status") { $0 < 21 }
        let result = number(7, "srv_check_result") { (0...4).contains($0) }
        let health = number(8, "srv_check_health")
        let checkState = number(9, "srv_check_state") { $0 & ~checkFlags == 0 }
        let agentState = number(10, "srv_agent_state") { $0 & ~checkFlags == 0 }
        _ = number(11, "bk_f_forced_id") { $0 == 0 || $0 == 1 }
        _ = number(12, "srv_f_forced_id") { $0 == 0 || $0 == 1 }
        let fqdn = f[13]
        if fqdn != "-" && (fqdn.utf8.count > 255 || fqdn.utf8.contains { !isDomainByte($0) }) {
            invalid += ", invalid srv_fqdn value '\(fqdn)'"
        }
        // strl2uic: the leading digits, 0 without any.
        var port = 0
        for b in f[14].utf8 {
            guard b >= 48 && b <= 57 else { break }
            port = min(port * 10 + Int(b - 48), 1 << 20)
        }
        if port > 65535 { invalid += ", invalid srv_port value '\(f[14])'" }
        guard invalid.isEmpty else { return .failure(InvalidValues(text: invalid)) }
        return .success(SavedServerState(
            backend: backend, server: server, address: f[0] == "-" ? nil : IPAddress(f[0]),
            operationalState: op, adminState: admin, userWeight: uweight, initialWeight: iweight,
            secondsSinceLastChange: since, checkStatus: status, checkResult: result, checkHealth: health,
            checkState: checkState, agentState: agentState, port: port == 0 ? nil : UInt16(port)))
    }

    struct InvalidValues: Error, CustomStringConvertible {
        var text: String
        var description: String { text }
    }

    private static func isDomainByte(_ b: UInt8) -> Bool {
        (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 45 || b == 46 || b == 95
    }

    /// strtol's reading: blanks, a sign, digits; nil without a digit or out of range.
    static func leadingInteger(_ text: String) -> Int? {
        var bytes = Substring(text).utf8.drop { $0 == 32 || $0 == 9 }
        var negative = false
        if let s = bytes.first, s == UInt8(ascii: "-") || s == UInt8(ascii: "+") {
            negative = s == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        let digits = bytes.prefix { $0 >= 48 && $0 <= 57 }
        guard !digits.isEmpty else { return nil }
        var value = 0
        for d in digits {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(d - 48))
            if o1 || o2 { return nil }
            value = a
        }
        return negative ? -value : value
    }

    /// Why a file could not be read.
    public struct ReadError: Error, Equatable, Sendable {
        public var problem: FileProblem
        public init(_ problem: FileProblem) { self.problem = problem }
        public init(errno: Int32) { self.problem = .system(errno) }
    }

    /// A whole file's bytes (a regular file, within the server state file's limit), or why not.
    public static func readFile(_ path: String) -> Result<[UInt8], ReadError> {
        FileReader.read(path, .serverState).mapError(ReadError.init)
    }
}
