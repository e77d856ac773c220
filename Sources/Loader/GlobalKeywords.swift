import ConfigModel

/// The keywords of the `global` section that strata supports, and how each lands in GlobalSettings.
extension KeywordReader {
    static let globalKeywords = [
        "ca-base", "chroot", "cpu-map", "crt-base", "daemon", "default-path", "description", "gid", "group", "hard-stop-after", "localpeer", "log", "log-tag",
        "master-worker", "max-generations", "maxcompcpuusage", "maxconn", "maxconnrate", "maxsessrate", "nbthread", "noreuseport", "pidfile", "quiet", "server-state-base", "server-state-file", "set-dumpable", "spread-checks", "ssl-default-bind-ciphers", "ssl-dh-param-file", "strict-limits",
        "ssl-default-bind-ciphersuites", "ssl-default-bind-options", "ssl-default-server-ciphers",
        "ssl-default-server-ciphersuites", "ssl-default-server-options", "ssl-server-verify", "stats socket",
        "stats timeout", "tune.bufsize", "tune.comp.maxlevel", "tune.maxrewrite", "tune.h2.header-table-size", "tune.h2.initial-window-size",
        "tune.h2.max-concurrent-streams", "tune.h2.max-frame-size", "tune.h2.fe.header-table-size",
        "tune.h2.fe.initial-window-size", "tune.h2.fe.max-concurrent-streams", "tune.http.maxhdr", "tune.rcvbuf.client", "tune.rcvbuf.server", "tune.sndbuf.client", "tune.sndbuf.server", "tune.ssl.cachesize", "tune.ssl.default-dh-param",
        "thread-groups", "tune.ssl.lifetime", "tune.zlib.memlevel", "tune.zlib.windowsize", "uid", "ulimit-n", "user", "zero-warning",
    ]

    static let tlsVersions = ["SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    static let tlsServerFlags = ["no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13", "no-tls-tickets"]
    /// `prefer-client-ciphers` chooses among the ciphers a client offers: a listener's option only.
    static let tlsBindFlags = tlsServerFlags + ["prefer-client-ciphers"]

    func globalKeyword(_ line: KeywordLine, global: inout GlobalSettings) throws(ConfigError) {
        guard KeywordReader.globalKeywords.contains(line.keyword) else {
            if let entry = KeywordReader.proxyKeywords.first(where: { $0.name == line.keyword }) {
                let elsewhere = SectionKind.allCases.filter { entry.sections.contains($0) }
                throw unsupported(line, in: .global, supported: KeywordReader.globalKeywords, elsewhere: elsewhere)
            }
            throw unsupported(line, in: .global, supported: KeywordReader.globalKeywords)
        }
        if line.negated && line.keyword == "strict-limits" {
            throw line.error("'no strict-limits' is not supported: strata does not start with fewer file descriptors than maxconn needs (lower maxconn or raise the hard limit)")
        }
        if line.negated { throw line.error("'no' cannot be used with '\(line.keyword)'") }

        switch line.keyword {
        case "localpeer":
            global.localPeer = try line.argument(0, expecting: "a peer name")
            try line.noArguments(after: 1)
        case "maxconn":
            global.maxconn = try line.integer(0, range: 1...Int(Int32.max))
            try line.noArguments(after: 1)
        case "maxconnrate":
            global.maxConnectionRate = try line.integer(0, range: 1...Int(Int32.max))
            try line.noArguments(after: 1)
        case "maxsessrate":
            global.maxSessionRate = try line.integer(0, range: 1...Int(Int32.max))
            try line.noArguments(after: 1)
        case "ulimit-n":
            global.fileLimit = try line.integer(0, range: 1...Int(Int32.max))
            try line.noArguments(after: 1)
        case "set-dumpable":
            try line.noArguments()
            global.setDumpable = true
        case "quiet":
            try line.noArguments()
            global.quiet = true
        case "zero-warning":
            try line.noArguments()
            global.zeroWarning = true
        case "chroot":
            // Entered once privileges are dropped; the privilege broker reads every file of a
            // reload outside it (see README, Privileges).
            let directory = try line.argument(0, expecting: "a directory")
            try line.noArguments(after: 1)
            guard directory.hasPrefix("/") else { throw line.error("'chroot' expects an absolute directory, got '\(directory)'") }
            global.chroot = directory
        case "master-worker":
            // HAProxy's master process reloads by starting new workers; strata is one long-lived
            // process that reloads in place, which is what master-worker gives HAProxy's users
            // (a reload over a socket, a process that survives a bad configuration).
            if let option = line.optionalArgument(0), option != "no-exit-on-failure" {
                throw line.error("'master-worker' accepts only 'no-exit-on-failure', got '\(option)'")
            }
            try line.noArguments(after: line.optionalArgument(0) == nil ? 0 : 1)
        case "daemon":
            try line.noArguments()
            global.daemon = true
        case "pidfile":
            global.pidfile = try line.argument(0, expecting: "a file path")
            try line.noArguments(after: 1)
        case "log":
            if line.args.first == "global" {
                throw line.error("'log global' belongs in a proxy or defaults section: it refers to the global 'log' lines")
            }
            global.logTargets.append(try logTarget(line))
        case "log-tag":
            global.logTag = try KeywordReader.logTag(line)
        case "nbthread":
            global.nbthread = try line.integer(0, range: 1...KeywordReader.maxThreads)
            try line.noArguments(after: 1)
        case "thread-groups":
            // One group: every loop shares the listeners and the state (HAProxy's default).
            let groups = try line.integer(0, range: 1...Int(Int32.max))
            try line.noArguments(after: 1)
            guard groups == 1 else { throw line.error("'thread-groups \(groups)': strata runs its loops as one group (thread-groups 1)") }
        case "cpu-map":
            global.cpuMaps.append(try cpuMap(line))
        case "description":
            global.description = try line.text(expecting: "a text")
        case "user":
            let name = try line.argument(0, expecting: "a user name")
            try line.noArguments(after: 1)
            guard let uid = paths.source.userID(name) else { throw line.error("'user': unknown user '\(name)'") }
            global.uid = uid
        case "group":
            let name = try line.argument(0, expecting: "a group name")
            try line.noArguments(after: 1)
            guard let gid = paths.source.groupID(name) else {
                throw line.error("'group': unknown group '\(name)'")
            }
            global.gid = gid
        case "uid":
            global.uid = UInt32(try line.integer(0, range: 0...Int(UInt32.max - 1)))
            try line.noArguments(after: 1)
        case "gid":
            global.gid = UInt32(try line.integer(0, range: 0...Int(UInt32.max - 1)))
            try line.noArguments(after: 1)
        case "hard-stop-after":
            global.hardStopAfter = try line.time(0)
            try line.noArguments(after: 1)
        case "max-generations":
            // Two at least: the active generation and one draining beside it.
            global.maxGenerations = try line.integer(0, range: 2...Int(Int32.max))
            try line.noArguments(after: 1)
        case "noreuseport":
            try line.noArguments()
            global.noReusePort = true
        case "stats socket":
            global.statsSockets.append(try statsSocket(line))
        case "stats timeout":
            let ms = try line.time(0)
            try line.noArguments(after: 1)
            guard ms > 0 else { throw line.error("'stats timeout' expects a time greater than 0") }
            global.statsTimeout = ms

        case "ssl-default-bind-ciphers": global.tls.bindCiphers = try cipherList(line)
        case "ssl-default-bind-ciphersuites": global.tls.bindCiphersuites = try cipherList(line)
        case "ssl-default-server-ciphers": global.tls.serverCiphers = try cipherList(line)
        case "ssl-default-server-ciphersuites": global.tls.serverCiphersuites = try cipherList(line)
        case "ssl-default-bind-options":
            global.tls.bindOptions += try tlsOptions(line, flags: KeywordReader.tlsBindFlags)
        case "ssl-default-server-options":
            global.tls.serverOptions += try tlsOptions(line, flags: KeywordReader.tlsServerFlags)
        case "ssl-server-verify":
            global.tls.serverVerify = try line.choice(0, among: ["none", "required"])
            try line.noArguments(after: 1)
        case "tune.ssl.default-dh-param":
            global.tls.defaultDHParam = try line.integer(0, range: 1024...Int(Int32.max))
            try line.noArguments(after: 1)
        case "strict-limits":
            // HAProxy 2.6's default: a limit that cannot be set fails the start. strata always
            // works so (maxconn above what the fd limit allows is refused with the numbers);
            // `no strict-limits`, going on with lower limits, is refused above ('no' cannot be used).
            try line.noArguments()
        case "ssl-dh-param-file":
            let path = try line.argument(0, expecting: "a PEM file of DH parameters")
            try line.noArguments(after: 1)
            switch paths.read(paths.resolve(path, from: line.location), .tls) {
            case .success(let bytes):
                guard KeywordReader.contains(bytes, "-----BEGIN DH PARAMETERS-----") else {
                    throw line.error("'ssl-dh-param-file': '\(path)' has no DH parameters (expected a PEM '-----BEGIN DH PARAMETERS-----' block)")
                }
                global.tls.dhParamFile = DHParamFile(path: path, contents: bytes, location: line.location)
            case .failure(let reason):
                throw line.error("'ssl-dh-param-file': cannot read '\(path)': \(reason)")
            }
        case "crt-base":
            global.tls.crtBase = try line.argument(0, expecting: "a directory")
            try line.noArguments(after: 1)
            paths.crtBase = global.tls.crtBase
        case "ca-base":
            global.tls.caBase = try line.argument(0, expecting: "a directory")
            try line.noArguments(after: 1)
            paths.caBase = global.tls.caBase
        case "tune.ssl.cachesize":
            global.sslCacheSize = try line.integer(0, range: 0...Int(Int32.max))
            try line.noArguments(after: 1)
        case "tune.ssl.lifetime":
            let text = try line.argument(0, expecting: "a time (for example 300s)")
            try line.noArguments(after: 1)
            // HAProxy counts a bare number in seconds here.
            switch ConfigUnits.parseTime(text, defaultUnitMilliseconds: 1000) {
            case .success(let ms):
                guard ms >= 1000 else { throw line.error("'tune.ssl.lifetime' expects at least 1s, got '\(text)'") }
                global.sslLifetime = ms
            case .failure(let failure): throw line.error("'tune.ssl.lifetime' expects a time, got '\(text)' (\(failure))")
            }
        case "default-path":
            let kind = try line.choice(0, among: ["current", "config", "parent", "origin"])
            switch kind {
            case "origin":
                let path = try line.argument(1, expecting: "a directory after 'origin'")
                guard path.hasPrefix("/") else { throw line.error("'default-path origin' expects an absolute directory, got '\(path)'") }
                try line.noArguments(after: 2)
                paths.base = .origin(path)
            default:
                try line.noArguments(after: 1)
                paths.base = kind == "config" ? .config : kind == "parent" ? .parent : .current
            }
        case "tune.maxrewrite":
            let text = try line.argument(0, expecting: "a size in bytes (for example 1024)")
            try line.noArguments(after: 1)
            switch ConfigUnits.parseSize(text) {
            case .success(let size) where size >= 0 && size <= 1 << 30: global.maxRewrite = size
            default: throw line.error("'tune.maxrewrite' expects a size in bytes, got '\(text)'")
            }
        case "tune.bufsize":
            let text = try line.argument(0, expecting: "a size in bytes (for example 16384)")
            try line.noArguments(after: 1)
            switch ConfigUnits.parseSize(text) {
            case .success(let size):
                guard (1024...(1 << 30)).contains(size) else {
                    throw line.error("'tune.bufsize' expects a size from 1024 bytes to 1g, got '\(text)'")
                }
                global.bufferSize = size
                paths.bufferSize = size
            case .failure(let failure): throw line.error("'tune.bufsize' expects a size, got '\(text)' (\(failure))")
            }
        case "spread-checks":
            global.spreadChecks = try line.integer(0, range: 0...50)
            try line.noArguments(after: 1)
        case "server-state-file":
            global.serverStateFile = try line.argument(0, expecting: "a file path")
            try line.noArguments(after: 1)
        case "server-state-base":
            global.serverStateBase = try line.argument(0, expecting: "a directory")
            try line.noArguments(after: 1)
        case "tune.http.maxhdr":
            global.maxHeaders = try line.integer(0, range: 1...32767)
            try line.noArguments(after: 1)
        case "tune.rcvbuf.client", "tune.rcvbuf.server", "tune.sndbuf.client", "tune.sndbuf.server":
            let size = try line.integer(0, range: 1...Int(Int32.max))
            try line.noArguments(after: 1)
            switch line.keyword {
            case "tune.rcvbuf.client": global.socketBuffers.clientReceive = size
            case "tune.rcvbuf.server": global.socketBuffers.serverReceive = size
            case "tune.sndbuf.client": global.socketBuffers.clientSend = size
            default: global.socketBuffers.serverSend = size
            }
        case "tune.h2.header-table-size", "tune.h2.fe.header-table-size":
            global.h2.headerTableSize = try line.integer(0, range: 0...65536)
            try line.noArguments(after: 1)
        case "tune.h2.initial-window-size", "tune.h2.fe.initial-window-size":
            global.h2.initialWindowSize = try line.integer(0, range: 0...Int(Int32.max))
            try line.noArguments(after: 1)
        case "tune.h2.max-concurrent-streams", "tune.h2.fe.max-concurrent-streams":
            global.h2.maxConcurrentStreams = try line.integer(0, range: 1...Int(Int32.max))
            try line.noArguments(after: 1)
        case "tune.h2.max-frame-size":
            global.h2.maxFrameSize = try line.integer(0, range: 16384...16_777_215)
            try line.noArguments(after: 1)
        case "tune.comp.maxlevel":
            global.compressionLevel = try line.integer(0, range: 1...9)
            try line.noArguments(after: 1)
        case "tune.zlib.memlevel":
            global.zlibMemLevel = try line.integer(0, range: 1...9)
            try line.noArguments(after: 1)
        case "tune.zlib.windowsize":
            global.zlibWindowSize = try line.integer(0, range: 8...15)
            try line.noArguments(after: 1)
        case "maxcompcpuusage":
            global.maxCompressionCPUUsage = try line.integer(0, range: 0...100)
            try line.noArguments(after: 1)
        default:
            throw unsupported(line, in: .global, supported: KeywordReader.globalKeywords)
        }
        global.locations[line.keyword] = line.location
    }

    /// An OpenSSL cipher list or TLS 1.3 suite list: one word of the characters OpenSSL uses there.
    private func cipherList(_ line: KeywordLine) throws(ConfigError) -> String {
        let list = try line.argument(0, expecting: "an OpenSSL cipher list (for example ECDHE+AESGCM:!aNULL)")
        try line.noArguments(after: 1)
        guard KeywordReader.isOpenSSLList(list, cipherList: line.keyword.hasSuffix("-ciphers")) else {
            throw line.error("'\(line.keyword)' expects an OpenSSL cipher list, got '\(list)'")
        }
        return list
    }

    /// Options of `ssl-default-bind-options` / `ssl-default-server-options`, one element per
    /// option: `no-sslv3`, or `ssl-min-ver TLSv1.2` with its version.
    private func tlsOptions(_ line: KeywordLine, flags: [String]) throws(ConfigError) -> [String] {
        var options: [String] = []
        var minimum: Int?
        var maximum: Int?
        var i = 0
        while let word = line.optionalArgument(i) {
            if word == "ssl-min-ver" || word == "ssl-max-ver" {
                let versions = KeywordLine.list(KeywordReader.tlsVersions)
                guard let version = line.optionalArgument(i + 1) else {
                    throw line.error("'\(word)' in '\(line.keyword)' expects \(versions)")
                }
                guard let rank = KeywordReader.tlsVersions.firstIndex(of: version) else {
                    throw line.error("'\(word)' in '\(line.keyword)' expects \(versions), got '\(version)'")
                }
                if word == "ssl-min-ver" { minimum = rank } else { maximum = rank }
                options.append("\(word) \(version)")
                i += 2
                continue
            }
            guard flags.contains(word) else {
                let known = flags + ["ssl-min-ver", "ssl-max-ver"]
                throw line.error("'\(word)' is not an option of '\(line.keyword)'"
                    + KeywordSuggestion.clause(for: word, among: known))
            }
            options.append(word)
            i += 1
        }
        if let minimum, let maximum, minimum > maximum {
            throw line.error("'\(line.keyword)': ssl-min-ver \(KeywordReader.tlsVersions[minimum]) is above ssl-max-ver \(KeywordReader.tlsVersions[maximum])")
        }
        return options
    }

    static let statsSocketOptions = ["expose-fd", "gid", "group", "level", "maxconn", "mode", "uid", "user"]

    /// `stats socket PATH|ipv4@ADDR:PORT|ipv6@ADDR:PORT [mode OCTAL] [level user|operator|admin] [maxconn N]`.
    private func statsSocket(_ line: KeywordLine) throws(ConfigError) -> StatsSocket {
        let text = try line.argument(0, expecting: "a UNIX socket path or ipv4@ADDR:PORT")
        let address: StatsSocket.Address
        if text.hasPrefix("unix@") {
            address = .unix(path: String(text.dropFirst(5)))
        } else if text.hasPrefix("/") || !(text.contains(":") || text.contains("@")) {
            address = .unix(path: text)
        } else {
            switch addresses.endpoint(text, allowAny: true) {
            case .success(let endpoint): address = .tcp(endpoint)
            case .failure(let message): throw line.error("'stats socket': \(message)")
            }
        }
        guard !text.isEmpty, address != .unix(path: "") else {
            throw line.error("'stats socket' expects a UNIX socket path or ipv4@ADDR:PORT")
        }
        var socket = StatsSocket(location: line.location, address: address)
        var i = 1
        while let option = line.optionalArgument(i) {
            switch option {
            case "mode":
                guard let text = line.optionalArgument(i + 1) else {
                    throw line.error("'mode' on stats socket expects an octal mode (for example 600)")
                }
                guard !text.isEmpty, let mode = UInt32(text, radix: 8), mode <= 0o7777 else {
                    throw line.error("'mode' on stats socket expects an octal mode (for example 600), got '\(text)'")
                }
                socket.mode = mode
                i += 2
            case "level":
                guard let text = line.optionalArgument(i + 1) else {
                    throw line.error("'level' on stats socket expects user, operator or admin")
                }
                switch text {
                case "user": socket.level = .user
                case "operator": socket.level = .operator_
                case "admin": socket.level = .admin
                default: throw line.error("'level' on stats socket expects user, operator or admin, got '\(text)'")
                }
                i += 2
            case "user", "group":
                guard let name = line.optionalArgument(i + 1) else {
                    throw line.error("'\(option)' on stats socket expects a \(option) name")
                }
                if option == "user" {
                    guard let id = paths.source.userID(name) else { throw line.error("'user' on stats socket: unknown user '\(name)'") }
                    socket.owner = id
                } else {
                    guard let id = paths.source.groupID(name) else { throw line.error("'group' on stats socket: unknown group '\(name)'") }
                    socket.group = id
                }
                i += 2
            case "expose-fd":
                let what = line.optionalArgument(i + 1) ?? ""
                guard what == "listeners" else {
                    throw line.error("'expose-fd' on stats socket accepts only 'listeners', got '\(what)'")
                }
                socket.exposeListeners = true
                i += 2
            case "uid", "gid":
                let id = UInt32(try line.integer(i + 1, range: 0...Int(UInt32.max - 1), name: option))
                if option == "uid" { socket.owner = id } else { socket.group = id }
                i += 2
            case "maxconn":
                // HAProxy's bind option: 0 leaves the stats frontend's limit; a negative value is refused.
                socket.maxconn = try line.integer(i + 1, range: 0...Int(Int32.max), name: "maxconn")
                i += 2
            default:
                if KeywordReader.otherBindOptions.contains(option) {
                    throw line.error("'\(option)' on stats socket is not supported yet")
                }
                throw line.error("'\(option)' is not a stats socket option"
                    + KeywordSuggestion.clause(for: option, among: KeywordReader.statsSocketOptions))
            }
        }
        return socket
    }

    /// The most loops `nbthread` may ask for.
    static let maxThreads = 1024

    /// `cpu-map [auto:]PROCESS[/THREADS] CPU…`: PROCESS is 1, `all`, `odd` or `even` (strata is
    /// one process); THREADS a number, a range, or all/odd/even; CPUs numbers and ranges.
    func cpuMap(_ line: KeywordLine) throws(ConfigError) -> CPUMap {
        var target = try line.argument(0, expecting: "[auto:]PROCESS[/THREADS]")
        let auto = target.hasPrefix("auto:")
        if auto { target.removeFirst(5) }
        let parts = target.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let process = try? KeywordReader.numberSet(parts[0], limit: 64), process.contains(1) else {
            throw line.error("'cpu-map': '\(parts[0])' is not a process set that contains process 1 (strata is one process; use 1 or all)")
        }
        let threads: CPUMap.ThreadSet
        if parts.count == 2 {
            guard let set = try? KeywordReader.numberSet(parts[1], limit: KeywordReader.maxThreads) else {
                throw line.error("'cpu-map': '\(parts[1])' is not a thread set (a number, a range like 1-4, all, odd or even)")
            }
            threads = set
        } else {
            threads = .all
        }
        guard line.args.count > 1 else { throw line.error("'cpu-map' needs at least one CPU set after '\(target)'") }
        var cpus: [Int] = []
        for word in line.args.dropFirst() {
            for part in word.split(separator: ",") {
                guard case .ranges(let ranges)? = try? KeywordReader.numberSet(String(part), limit: 4095, named: false) else {
                    throw line.error("'cpu-map': '\(part)' is not a CPU number or range")
                }
                for r in ranges { cpus.append(contentsOf: r) }
            }
        }
        return CPUMap(location: line.location, auto: auto, threads: threads, cpus: cpus)
    }

    struct NotANumberSet: Error {}

    /// `N`, `N-M`, or (when `named`) `all`, `odd`, `even`, with numbers from 1 (CPUs from 0) up to `limit`.
    static func numberSet(_ text: String, limit: Int, named: Bool = true) throws(NotANumberSet) -> CPUMap.ThreadSet {
        if named {
            switch text {
            case "all": return .all
            case "odd": return .odd
            case "even": return .even
            default: break
            }
        }
        let low = named ? 1 : 0
        let bounds = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard let a = Int(bounds[0]), a >= low, a <= limit else { throw NotANumberSet() }
        guard bounds.count == 2 else { return .ranges([a...a]) }
        guard let b = Int(bounds[1]), b >= a, b <= limit else { throw NotANumberSet() }
        return .ranges([a...b])
    }
}
