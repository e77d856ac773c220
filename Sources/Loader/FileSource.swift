#if canImport(Glibc)
import Glibc
#endif

/// Where a load reads the files the configuration names, and asks the names it needs from the
/// system: the local file system (`LocalFiles`), or the privilege broker when the serving process
/// has dropped its privileges and entered a chroot (it reads, lists and looks up for it).
public protocol FileSource: Sendable {
    /// The file's bytes within `kind`'s limit (`FileReader.read`'s rules).
    func read(_ path: String, _ kind: FileKind) -> Result<[UInt8], FileProblem>
    /// The names of the regular files in `path` when it is a directory; `.success(nil)` when it
    /// is not one.
    func listDirectory(_ path: String) -> Result<[String]?, FileProblem>
    /// `user NAME` and `group NAME` as numbers (nil: no such account).
    func userID(_ name: String) -> UInt32?
    func groupID(_ name: String) -> UInt32?
    /// A load begins (every file it reads follows) or ended with a configuration that serves.
    func loadBegins()
    func loadSucceeded()
}

extension FileSource {
    public func loadBegins() {}
    public func loadSucceeded() {}
}

/// This process's own file system and account database.
public struct LocalFiles: FileSource {
    public init() {}

    public func read(_ path: String, _ kind: FileKind) -> Result<[UInt8], FileProblem> {
        FileReader.read(path, kind)
    }

    public func listDirectory(_ path: String) -> Result<[String]?, FileProblem> {
        var info = stat()
        guard stat(path, &info) == 0 else { return .failure(.system(errno)) }
        guard info.st_mode & S_IFMT == S_IFDIR else { return .success(nil) }
        guard let names = FileReader.directoryEntries(path) else { return .failure(.system(EACCES)) }
        return .success(names)
    }

    public func userID(_ name: String) -> UInt32? { SystemAccounts.uid(ofUser: name) }
    public func groupID(_ name: String) -> UInt32? { SystemAccounts.gid(ofGroup: name) }
}

/// Records every path a load read through it (the first load's files, before the broker exists).
public final class RecordingFiles: FileSource, @unchecked Sendable {
    private let base: any FileSource
    private var paths: [String] = []
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    public init(_ base: any FileSource = LocalFiles()) {
        self.base = base
        pthread_mutex_init(lock, nil)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// The paths read, in order, each once.
    public var read: [String] {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return paths
    }

    public func read(_ path: String, _ kind: FileKind) -> Result<[UInt8], FileProblem> {
        let result = base.read(path, kind)
        if case .success = result {
            pthread_mutex_lock(lock)
            if !paths.contains(path) { paths.append(path) }
            pthread_mutex_unlock(lock)
        }
        return result
    }

    public func listDirectory(_ path: String) -> Result<[String]?, FileProblem> { base.listDirectory(path) }
    public func userID(_ name: String) -> UInt32? { base.userID(name) }
    public func groupID(_ name: String) -> UInt32? { base.groupID(name) }
}
