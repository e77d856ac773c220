#if canImport(Glibc)
import Glibc
#endif

/// What a file the configuration names is for: it sets the most a load reads of it. A reload's
/// build runs inside the serving process, so no file may make it allocate without bound: every
/// file the configuration names is read through `FileReader.read` with its kind's limit.
public enum FileKind: Hashable, Sendable {
    /// A `-f` file or a `*.cfg` file of a `-f` directory.
    case configuration
    /// An ACL's `-f` file.
    case patterns
    /// `errorfile`, `http-request return file|errorfile`: at most `tune.bufsize`, as HAProxy
    /// (an errorfile answer is one buffer).
    case httpMessage(bufferSize: Int)
    /// `crt` (and its `.key`), `crt-list`, `ca-file`, `crl-file`.
    case tls
    /// `tls-ticket-keys`.
    case ticketKeys
    /// `server-state-file`.
    case serverState
    /// `parse-resolv-conf`: /etc/resolv.conf.
    case resolvConf

    /// Configurations strata is measured with (bench/reload.sh: 1,000 frontends and 10,000
    /// servers) are about 1 MiB, and the largest HAProxy ones in use (100,000 servers) about
    /// 10 MiB; a pattern file of a million networks is about 16 MiB. 32 MiB is twice or more of
    /// each (a 30 MiB configuration of 500,000 servers loads in about 340 MiB). Certificates, CA
    /// bundles and CRLs are kilobytes to a few MiB.
    public var limit: Int {
        switch self {
        case .configuration, .patterns, .serverState: 32 << 20
        case .httpMessage(let bufferSize): bufferSize
        case .tls: 16 << 20
        case .ticketKeys, .resolvConf: 64 << 10
        }
    }

    /// How a message names the limit.
    var limitText: String {
        switch self {
        case .configuration: "the 32 MiB limit for a configuration file"
        case .patterns: "the 32 MiB limit for a pattern file"
        case .serverState: "the 32 MiB limit for a server state file"
        case .httpMessage(let bufferSize): "tune.bufsize (\(bufferSize) bytes)"
        case .tls: "the 16 MiB limit for a TLS file"
        case .ticketKeys: "the 64 KiB limit for a ticket keys file"
        case .resolvConf: "the 64 KiB limit for resolv.conf"
        }
    }
}

/// Why a file the configuration names was not read.
public enum FileProblem: Error, Hashable, Sendable, CustomStringConvertible {
    /// open, fstat or read failed.
    case system(Int32)
    /// A FIFO, a device or a socket: reading one could block or never end.
    case notRegular(String)
    /// `size` is nil when the file grew past the limit while it was read.
    case tooLarge(size: Int?, limit: String)
    /// The files of one load together are over its budget (`LoadPaths.defaultBudget`).
    case overBudget(Int)
    /// The privilege broker did not read it: not a file the configuration names, or the broker
    /// is gone (the text says which).
    case refused(String)

    public var errno: Int32? {
        if case .system(let e) = self { return e }
        return nil
    }

    public var description: String {
        switch self {
        case .system(let e): String(cString: strerror(e))
        case .notRegular(let what): "not a regular file (\(what))"
        case .tooLarge(let size?, let limit): "it is \(size) bytes, over \(limit)"
        case .tooLarge(nil, let limit): "it is over \(limit)"
        case .refused(let why): why
        case .overBudget(let budget): "the files this configuration names come to more than \(budget >= 1 << 20 ? "\(budget >> 20) MiB" : "\(budget) bytes") in all"
        }
    }
}

/// Reads the files a configuration names, each whole, with a limit.
enum FileReader {
    /// The file's bytes, at most `kind.limit` of them. Opened with O_NONBLOCK so that a FIFO
    /// without a writer does not block the open, and refused before any read unless it is a
    /// regular file (`/dev/zero` and `/dev/urandom` never end, a FIFO may never answer).
    /// `/dev/null` reads as an empty file, as HAProxy's configurations use it (`errorfile 408
    /// /dev/null`).
    static func read(_ path: String, _ kind: FileKind) -> Result<[UInt8], FileProblem> {
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { return .failure(.system(errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(.system(errno)) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: return .failure(.system(EISDIR))
        case S_IFCHR where isDevNull(info): return .success([])
        case S_IFCHR: return .failure(.notRegular("a character device"))
        case S_IFBLK: return .failure(.notRegular("a block device"))
        case S_IFIFO: return .failure(.notRegular("a FIFO"))
        case S_IFSOCK: return .failure(.notRegular("a socket"))
        default: return .failure(.notRegular("not a file"))
        }
        let limit = kind.limit
        guard Int(info.st_size) <= limit else { return .failure(.tooLarge(size: Int(info.st_size), limit: kind.limitText)) }
        // The file may grow between fstat and read (or report 0, as /proc does): read to its end,
        // but never more than the limit and one byte.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size) + 1)
        var chunk = [UInt8](repeating: 0, count: min(65_536, limit + 1))
        while true {
            let want = min(chunk.count, limit + 1 - bytes.count)
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, want) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(.system(errno))
            }
            if count == 0 { return .success(bytes) }
            bytes.append(contentsOf: chunk[..<count])
            if bytes.count > limit { return .failure(.tooLarge(size: nil, limit: kind.limitText)) }
        }
    }

    private static func isDevNull(_ info: stat) -> Bool {
        var null = stat()
        return stat("/dev/null", &null) == 0 && null.st_mode & S_IFMT == S_IFCHR && null.st_rdev == info.st_rdev
    }

    /// The regular files in `path` when it is a directory, else nil.
    static func directoryEntries(_ path: String) -> [String]? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var entryInfo = stat()
            let full = LoadPaths.join(path, name)
            if stat(full, &entryInfo) == 0 && entryInfo.st_mode & S_IFMT == S_IFREG { names.append(name) }
        }
        return names
    }
}
