#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ConfigModel

/// A configuration read, parsed and validated: what a generation is built from.
public struct LoadedConfig: Sendable {
    public var config: Config
    /// Hex digest of the effective configuration (words of the section and keyword lines).
    public var hash: String
    /// The files read, in the order they were read.
    public var files: [String]
    /// What did not stop the load, as `file:line: message` (`-dr`, `parse-resolv-conf`, lines
    /// HAProxy 2.6 accepts and ignores with a warning).
    public var warnings: [ConfigError]

    public init(config: Config, hash: String, files: [String], warnings: [ConfigError] = []) {
        self.config = config
        self.hash = hash
        self.files = files
        self.warnings = warnings
    }
}

/// Reads `-f` paths into a validated Config, or every error found, each as `file:line: message`,
/// in file order and then line order.
public struct ConfigLoader: Sendable {
    public var environment: [String: String]
    public var resolver: HostResolver
    /// A configuration that would listen nowhere is refused (`ConfigValidator.listenerProblem`);
    /// tests that load a fragment (a backend alone) turn this off.
    public var requiresListener = true
    /// `-dr`: a server address no `init-addr` method finds is a warning (in `LoadedConfig.warnings`)
    /// and the server starts in maintenance, instead of an error.
    public var resolutionFailuresWarn = false
    /// `-L NAME`: this host's name in `peers` sections (before `localpeer` and the host name).
    public var localPeer: String?
    /// What `parse-resolv-conf` reads (tests point it elsewhere).
    public var resolvConfPath = "/etc/resolv.conf"
    /// Where every file is read (the privilege broker once privileges are dropped).
    public var source: any FileSource = LocalFiles()

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.init(environment: environment, resolver: .system)
    }

    public init(environment: [String: String], resolver: HostResolver) {
        self.environment = environment
        self.resolver = resolver
    }

    /// `-f` arguments: a file, or a directory whose `*.cfg` files load in lexical order (HAProxy's
    /// behaviour). Several paths concatenate in order, as if they were one file.
    public func load(paths: [String]) -> Result<LoadedConfig, ConfigErrors> {
        var sources: [(file: String, text: String)] = []
        var readErrors: [ConfigError] = []
        if paths.isEmpty { readErrors.append(ConfigError(nil, "no configuration file given")) }
        source.loadBegins()
        let files = LoadPaths(source: source)
        for path in paths {
            switch ConfigLoader.files(at: path, source: source) {
            case .failure(let error):
                readErrors.append(error)
            case .success(let names):
                for file in names {
                    switch files.read(file, .configuration) {
                    // Bytes that are not UTF-8 become U+FFFD rather than failing the load.
                    case .success(let bytes): sources.append((file, String(decoding: bytes, as: UTF8.self)))
                    case .failure(let problem):
                        readErrors.append(ConfigError(nil, "cannot read configuration file '\(file)': \(problem)"))
                    }
                }
            }
        }
        // A file that cannot be read stops the load: the rest would be judged without part of it.
        guard readErrors.isEmpty else { return .failure(ConfigErrors(readErrors)) }
        let result = load(sources, arguments: paths, files: files)
        if case .success = result { source.loadSucceeded() }
        return result
    }

    /// For tests: parse text as if read from `file`.
    public func load(text: String, file: String) -> Result<LoadedConfig, ConfigErrors> {
        load([(file, text)], arguments: [file], files: LoadPaths(source: source))
    }

    /// `arguments` are the `-f` paths, for an error about the configuration as a whole.
    private func load(_ sources: [(file: String, text: String)], arguments: [String], files: LoadPaths)
        -> Result<LoadedConfig, ConfigErrors>
    {
        var parser = ConfigParser(environment: environment, resolver: resolver, paths: files,
                                  resolutionFailuresWarn: resolutionFailuresWarn, resolvConfPath: resolvConfPath)
        parser.localPeerOverride = localPeer
        LoadPaths.$current.withValue(files) {
            for source in sources { parser.parse(text: source.text, file: source.file) }
        }
        var (config, failed, dropped) = parser.build()
        var warnings = parser.warnings
        var late = parser.finishHTTP(&config, warnings: &warnings)
        late += applyLastAddresses(parser.pendingLastAddresses(), to: &config)
        late += parser.applyUserlists(to: &config)
        late += parser.errorFileImportProblems()
        late += parser.cacheProblems(config)
        late += parser.finishStickTables(&config, warnings: &warnings)
        // The validator knows which lines failed, so that it does not repeat them as absences.
        var errors = parser.errors + late + ConfigValidator.validate(config, failedKeywords: failed, droppedNames: dropped)
        // As HAProxy, only a configuration without other errors is judged as a whole (it "has no
        // error but will not start"): a frontend refused for a wrong line is not an absence.
        if errors.isEmpty, requiresListener, let problem = ConfigValidator.listenerProblem(config, empty: parser.wordLines == 0) {
            // About the whole configuration: its `-f` arguments (one, usually) without a line.
            errors.append(ConfigError(SourceLocation(file: arguments.joined(separator: ", ")), problem))
        }
        // `zero-warning`: every warning is an error (HAProxy refuses to start, a reload rolls back).
        if config.global.zeroWarning && !warnings.isEmpty {
            errors += warnings.map { ConfigError($0.location, "\($0.message) (an error: 'zero-warning' is set)") }
        }
        guard errors.isEmpty else {
            let order = Dictionary(sources.enumerated().map { ($1.file, $0) }, uniquingKeysWith: { first, _ in first })
            let sorted = errors.enumerated().sorted { a, b in
                let ka = (order[a.element.location?.file ?? ""] ?? -1, a.element.location?.line ?? 0, a.offset)
                let kb = (order[b.element.location?.file ?? ""] ?? -1, b.element.location?.line ?? 0, b.offset)
                return ka < kb
            }
            return .failure(ConfigErrors(sorted.map(\.element)))
        }
        let order = Dictionary(sources.enumerated().map { ($1.file, $0) }, uniquingKeysWith: { first, _ in first })
        warnings.sort {
            (order[$0.location?.file ?? ""] ?? -1, $0.location?.line ?? 0) < (order[$1.location?.file ?? ""] ?? -1, $1.location?.line ?? 0)
        }
        // The maps' bytes are part of what the generation serves: a changed map file changes the hash.
        var hash = parser.hash
        for path in config.maps.keys.sorted() {
            hash.add(line: ["map-file", path, String(config.maps[path]!.digest, radix: 16)])
        }
        return .success(LoadedConfig(config: config, hash: hash.hex, files: sources.map(\.file), warnings: warnings))
    }

    /// `init-addr last` for the servers no other method gave an address: the address the
    /// server-state file saved for them (HAProxy reads the file before it walks the methods), or
    /// the error their line deferred.
    func applyLastAddresses(_ pending: [(proxy: Int, server: Int, error: ConfigError)], to config: inout Config)
        -> [ConfigError]
    {
        guard !pending.isEmpty else { return [] }
        var saved: [String: IPAddress] = [:]
        let source = self.source
        let read = { (path: String) in source.read(path, .serverState).mapError(ServerStateFile.ReadError.init) }
        for state in ServerStateFile.restore(for: config, read: read).states {
            if let address = state.address { saved[state.backend + "/" + state.server] = address }
        }
        var errors: [ConfigError] = []
        for p in pending {
            let key = config.proxies[p.proxy].name + "/" + config.proxies[p.proxy].servers[p.server].name
            if let address = saved[key] {
                config.proxies[p.proxy].servers[p.server].address = address
                config.proxies[p.proxy].servers[p.server].hasAddress = true
            } else {
                errors.append(p.error)
            }
        }
        return errors
    }

    /// The files a `-f` argument names: itself, or a directory's regular `*.cfg` files in byte order.
    static func files(at path: String, source: any FileSource = LocalFiles()) -> Result<[String], ConfigError> {
        let names: [String]
        switch source.listDirectory(path) {
        case .failure(let problem):
            return .failure(ConfigError(nil, "cannot read configuration file '\(path)': \(problem)"))
        case .success(nil):
            return .success([path])
        case .success(let entries?):
            names = entries
        }
        let directory = path.hasSuffix("/") ? String(path.dropLast()) : path
        let files = names
            .filter { $0.hasSuffix(".cfg") }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            .map { directory + "/" + $0 }
        return .success(files)
    }
}
