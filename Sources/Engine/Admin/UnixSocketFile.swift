import CLibEV
import Glibc

/// What answers at a unix socket's path, found by connecting to it. A socket file is replaced
/// only when nobody answers on it: a second strata started with the same `stats socket` must
/// fail, not take the running one's admin socket away (its file would be gone, the process
/// unreachable).
public enum UnixSocketFile: Equatable, Sendable {
    case absent
    /// A socket file nobody listens on (its process ended without removing it): may be replaced.
    case stale
    /// A process listens on it: its pid (SO_PEERCRED), nil when it cannot be told.
    case live(pid: Int32?)
    /// Something else is at the path: never removed.
    case notASocket

    public static func probe(_ path: String) -> UnixSocketFile {
        var st = stat()
        guard lstat(path, &st) == 0 else { return .absent }
        guard st.st_mode & S_IFMT == S_IFSOCK else { return .notASocket }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return .live(pid: nil) }
        withUnsafeMutableBytes(of: &addr.sun_path) { dst in for (i, b) in bytes.enumerated() { dst[i] = b } }
        // Non-blocking: a listener with a full backlog answers EAGAIN instead of making us wait.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | CLibEV_SOCK_NONBLOCK | CLibEV_SOCK_CLOEXEC, 0)
        guard fd >= 0 else { return .live(pid: nil) }
        defer { close(fd) }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if r != 0 {
            switch errno {
            case ECONNREFUSED: return .stale
            case ENOENT: return .absent
            default: return .live(pid: nil)  // EAGAIN (a full backlog), EACCES: someone is there
            }
        }
        // struct ucred: pid, uid, gid; the listener's, as of its listen().
        var credentials: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, credentials.pid > 0 else {
            return .live(pid: nil)
        }
        return .live(pid: credentials.pid)
    }

    /// The file's identity, to tell later whether the path still names the socket bound then.
    public static func identity(_ path: String) -> (device: UInt64, inode: UInt64)? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }
}
