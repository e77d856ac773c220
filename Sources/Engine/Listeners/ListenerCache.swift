import CLibEV
import ConfigModel
import Glibc
import Synchronization

/// The one narrow interface through which listening sockets are made: a key in, a listening,
/// non-blocking fd or an errno out. A privileged helper process can serve it later.
public protocol ListenerBinder: Sendable {
    func bindListener(_ key: ListenerKey) -> Result<Int32, ListenerBindError>
}

public struct ListenerBindError: Error, Sendable, CustomStringConvertible {
    public var key: ListenerKey
    public var call: String
    public var errno: Int32

    public var description: String { "cannot bind \(key.endpoint): \(call): \(String(cString: strerror(errno)))" }
}

/// Every bind that failed in one acquire.
public struct ListenerBindFailure: Error, Sendable {
    public var errors: [ListenerBindError]
}

/// Binds in this process with the socket options HAProxy uses on listeners.
public struct KernelBinder: ListenerBinder {
    public init() {}

    public func bindListener(_ key: ListenerKey) -> Result<Int32, ListenerBindError> {
        let family = key.endpoint.address.isV6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | CLibEV_SOCK_NONBLOCK | CLibEV_SOCK_CLOEXEC, 0)
        guard fd >= 0 else { return .failure(ListenerBindError(key: key, call: "socket", errno: errno)) }
        func fail(_ call: String) -> Result<Int32, ListenerBindError> {
            let e = errno
            close(fd)
            return .failure(ListenerBindError(key: key, call: call, errno: e))
        }
        var one: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, size) == 0 else { return fail("setsockopt(SO_REUSEADDR)") }
        // Lets a new strata process (-sf/-st) bind beside the old one before it stops.
        if key.reusePort, setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, size) != 0 { return fail("setsockopt(SO_REUSEPORT)") }
        if family == AF_INET6 {
            var v6only: Int32 = key.v6only ? 1 : 0
            guard setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &v6only, size) == 0 else { return fail("setsockopt(IPV6_V6ONLY)") }
        }
        if let interface = key.interface {
            let ok = interface.withCString { setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, $0, socklen_t(strlen($0) + 1)) == 0 }
            guard ok else { return fail("setsockopt(SO_BINDTODEVICE)") }
        }
        var (addr, len) = key.endpoint.sockaddr
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard bound == 0 else { return fail("bind") }
        guard listen(fd, Int32(key.backlog)) == 0 else { return fail("listen") }
        return .success(fd)
    }
}

/// The process's listening sockets, by key. A reload asks for every key it binds: an open socket
/// with the same key is reused (the same fd, so its backlog is kept), a new key is bound. If any
/// bind fails, the sockets bound for that reload are closed before the error returns: nothing
/// that serves traffic is touched. Sockets no generation serves any more are released by the
/// engine after their backlog was accepted. Safe to call from the reload thread and the loop.
public final class ListenerCache: Sendable {
    private let binder: any ListenerBinder
    private let open = Mutex<[ListenerKey: Int32]>([:])

    public init(binder: any ListenerBinder = KernelBinder()) {
        self.binder = binder
    }

    /// Returns an fd for every key, binding the missing ones; on failure closes what this call
    /// bound and returns every bind error.
    public func acquire(_ keys: [ListenerKey]) -> Result<[ListenerKey: Int32], ListenerBindFailure> {
        open.withLock { open in
            var result: [ListenerKey: Int32] = [:]
            var fresh: [ListenerKey] = []
            var errors: [ListenerBindError] = []
            for key in keys where result[key] == nil {
                if let fd = open[key] {
                    result[key] = fd
                    continue
                }
                switch binder.bindListener(key) {
                case .success(let fd):
                    open[key] = fd
                    result[key] = fd
                    fresh.append(key)
                case .failure(let error):
                    errors.append(error)
                }
            }
            if !errors.isEmpty {
                // The rollback: only what this reload bound is closed.
                for key in fresh {
                    if let fd = open.removeValue(forKey: key) { close(fd) }
                }
                return .failure(ListenerBindFailure(errors: errors))
            }
            return .success(result)
        }
    }

    /// Closes sockets that no generation uses any more.
    public func release(_ keys: [ListenerKey]) {
        open.withLock { open in
            for key in keys {
                if let fd = open.removeValue(forKey: key) { close(fd) }
            }
        }
    }

    /// Closes every socket whose key is not in `keep` (the keys a failed first load left).
    func releaseAll(except keep: Set<ListenerKey>) {
        open.withLock { open in
            for (key, fd) in open where !keep.contains(key) {
                close(fd)
                open[key] = nil
            }
        }
    }

    public var openKeys: [ListenerKey] { open.withLock { Array($0.keys) } }
}
