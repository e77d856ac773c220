#if !BROKER_FUZZ
import ConfigModel
#endif

/// How one load finds and reads the files the configuration names. Relative paths (errorfiles,
/// certificates, pattern files) resolve by HAProxy's global `default-path current|config|parent|
/// origin PATH`. A reference shared by the keyword readers of one load, changed by the
/// `default-path` line and read by the lines after it.
final class LoadPaths: @unchecked Sendable {
    enum Base: Equatable {
        /// The process's working directory (HAProxy's default).
        case current
        /// The directory of the configuration file the line is in.
        case config
        /// Its parent directory.
        case parent
        case origin(String)
    }

    var base = Base.current
    /// The global `crt-base` and `ca-base`, for the certificate and CA paths of the lines after them.
    var crtBase: String?
    var caBase: String?
    /// The global `tune.bufsize` as read so far: the most an errorfile may hold.
    var bufferSize = 16384

    /// What one load may read in all. Each file has its kind's limit, but a configuration names
    /// as many files as it has lines: the sum is bounded too, so that no configuration makes a
    /// reload's build (inside the serving process) allocate without bound.
    static let defaultBudget = 256 << 20
    let budget: Int
    private var spent = 0
    /// Files already read by this load, by resolved path: a file named by a thousand proxies is
    /// read, held and counted once.
    private var read: [String: [UInt8]] = [:]

    /// Where the files are read.
    let source: any FileSource
    /// The line being read (what a relative map path resolves from with `default-path config`).
    var location: SourceLocation?
    /// The map files read so far, by resolved path.
    var maps: [String: MapFile] = [:]

    init(budget: Int = LoadPaths.defaultBudget, source: any FileSource = LocalFiles()) {
        self.budget = budget
        self.source = source
    }

    /// The bytes of the file at `resolved` (a path as `resolve` gives it), within `kind`'s limit
    /// and the load's budget.
    func read(_ resolved: String, _ kind: FileKind) -> Result<[UInt8], FileProblem> {
        if let bytes = read[resolved], bytes.count <= kind.limit { return .success(bytes) }
        switch source.read(resolved, kind) {
        case .failure(let problem): return .failure(problem)
        case .success(let bytes):
            spent += bytes.count
            guard spent <= budget else { return .failure(.overBudget(budget)) }
            read[resolved] = bytes
            return .success(bytes)
        }
    }

    /// `path` as the file system should open it.
    func resolve(_ path: String, from location: SourceLocation) -> String {
        guard !path.hasPrefix("/") else { return path }
        switch base {
        case .current: return path
        case .config: return LoadPaths.join(LoadPaths.directory(of: location.file), path)
        case .parent: return LoadPaths.join(LoadPaths.directory(of: LoadPaths.directory(of: location.file)), path)
        case .origin(let origin): return LoadPaths.join(origin, path)
        }
    }

    /// `base/path`, or `path` alone when `base` is empty.
    static func join(_ base: String, _ path: String) -> String {
        guard !base.isEmpty, !path.hasPrefix("/") else { return path }
        return base.hasSuffix("/") ? base + path : base + "/" + path
    }

    static func directory(of file: String) -> String {
        guard let slash = file.lastIndex(of: "/") else { return "." }
        if slash == file.startIndex { return "/" }
        return String(file[..<slash])
    }
}
