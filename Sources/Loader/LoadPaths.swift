import ConfigModel

/// How relative file paths in the configuration resolve (errorfiles, certificates, pattern files):
/// HAProxy's global `default-path current|config|parent|origin PATH`. A reference shared by the
/// keyword readers of one load, changed by the `default-path` line and read by the lines after it.
final class LoadPaths {
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
