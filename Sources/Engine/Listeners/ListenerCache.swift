import CLibEV
import ConfigModel
import Glibc
import Synchronization

/// The one narrow interface through which listening sockets are made: a key in, a listening,
/// non-blocking fd or an errno out. A privileged helper process can serve it later.
public protocol ListenerBinder: Sendable {
    func bindListener(_ key: ListenerKey) -> Result<Int32, ListenerBindError>
    /// Whether `key` could be bound now, keeping nothing: the error `bindListener` would give, or nil.
    func probeListener(_ key: ListenerKey) -> ListenerBindError?
}

extension ListenerBinder {
    /// For a binder that can only hand out listening sockets: bind, then close at once.
    public func probeListener(_ key: ListenerKey) -> ListenerBindError? {
        switch bindListener(key) {
        case .success(let fd):
            close(fd)
            return nil
        case .failure(let error):
            return error
        }
    }
}

public struct ListenerBindError: Error, Sendable, CustomStringConvertible {
    public var key: ListenerKey
    public var call: String
    public var errno: Int32

    public init(key: ListenerKey, call: String, errno: Int32) {
        self.key = key
        self.call = call
        self.errno = errno
    }

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
        makeSocket(key, listening: true)
    }

    /// Binds without listening, then closes: a socket that never listens is never given a
    /// connection, where one that listened for a moment beside a kept SO_REUSEPORT listener on
    /// the same port could take a client's connection and reset it on close. The errors a reload
    /// meets (EADDRINUSE, EACCES, EADDRNOTAVAIL, ENODEV) all come from bind or the options before it.
    public func probeListener(_ key: ListenerKey) -> ListenerBindError? {
        switch makeSocket(key, listening: false) {
        case .success(let fd):
            close(fd)
            return nil
        case .failure(let error):
            return error
        }
    }

    private func makeSocket(_ key: ListenerKey, listening: Bool) -> Result<Int32, ListenerBindError> {
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
        guard listening else { return .success(fd) }
        guard listen(fd, Int32(key.backlog)) == 0 else { return fail("listen") }
        return .success(fd)
    }
}

/// A listening socket: a bind's key and the data loop that accepts on it. Each loop has a socket
/// of its own per bind, with SO_REUSEPORT (the kernel spreads connections between them); with
/// `noreuseport` one socket per bind (the one of loop 0) is shared by every loop.
public struct ListenerSocketKey: Hashable, Sendable, CustomStringConvertible {
    public var bind: ListenerKey
    public var loop: Int

    public init(bind: ListenerKey, loop: Int) {
        self.bind = bind
        self.loop = loop
    }

    /// The sockets `bind` needs on `loops` data loops.
    static func all(_ bind: ListenerKey, loops: Int) -> [ListenerSocketKey] {
        (0..<(bind.reusePort ? max(loops, 1) : 1)).map { ListenerSocketKey(bind: bind, loop: $0) }
    }

    public var description: String { "\(bind) (loop \(loop + 1))" }
}

/// The process's listening sockets, by key and loop. A reload asks for every key it binds: open
/// sockets with the same key are reused (the same fds, so their backlogs are kept), a new key is
/// bound once per data loop. If any bind fails, every socket bound for that reload (every loop's)
/// is closed before the error returns: nothing that serves traffic is touched. Sockets no
/// generation serves any more are released after their backlog was accepted. Safe to call from
/// the reload thread and the loops.
public final class ListenerCache: Sendable {
    private let binder: Locked<any ListenerBinder>
    /// Data loops: how many sockets a bind with SO_REUSEPORT gets.
    public let loops: Int
    private let open = Locked<[ListenerSocketKey: Int32]>([:])

    public init(binder: any ListenerBinder = KernelBinder(), loops: Int = 1) {
        self.binder = Locked(binder)
        self.loops = max(loops, 1)
    }

    /// Binds from now on through `binder` (the privilege broker once privileges are dropped).
    public func use(_ binder: any ListenerBinder) {
        self.binder.withLock { $0 = binder }
    }

    /// Returns an fd for every socket of every key, binding the missing ones; on failure closes
    /// what this call bound and returns every bind error (one per key).
    public func acquire(_ keys: [ListenerKey]) -> Result<[ListenerSocketKey: Int32], ListenerBindFailure> {
        var bound = 0
        return acquire(keys, newBinds: &bound)
    }

    /// `acquire`, counting in `newBinds` the binds it had no socket for (bound now).
    public func acquire(_ keys: [ListenerKey], newBinds: inout Int) -> Result<[ListenerSocketKey: Int32], ListenerBindFailure> {
        let result: Result<[ListenerSocketKey: Int32], ListenerBindFailure>
        var fresh: [ListenerSocketKey] = []
        result = open.withLock { open in
            var result: [ListenerSocketKey: Int32] = [:]
            var errors: [ListenerBindError] = []
            result.reserveCapacity(keys.count)
            for bind in keys {
                // Not `ListenerSocketKey.all`: no array per key (a rollback acquires a thousand).
                for loop in 0..<(bind.reusePort ? loops : 1) {
                    let key = ListenerSocketKey(bind: bind, loop: loop)
                    if let fd = open[key] {
                        result[key] = fd
                        continue
                    }
                    switch binder.withLock({ $0 }).bindListener(bind) {
                    case .success(let fd):
                        open[key] = fd
                        result[key] = fd
                        fresh.append(key)
                    case .failure(let error):
                        if !errors.contains(where: { $0.key == bind }) { errors.append(error) }
                    }
                }
            }
            if !errors.isEmpty {
                // The rollback: only what this reload bound is closed, on every loop.
                for key in fresh {
                    if let fd = open.removeValue(forKey: key) { close(fd) }
                }
                return .failure(ListenerBindFailure(errors: errors))
            }
            return .success(result)
        }
        if case .success = result { newBinds = Set(fresh.map(\.bind)).count }
        return result
    }

    /// Test-binds every key the cache does not hold and keeps none of them (a held key is reused
    /// by a reload, not bound again): the errors `acquire` would return now, with nothing bound
    /// after it returns. Under the cache's lock, so no acquire runs in between. One test bind per
    /// key stands for every loop's (they bind the same address with SO_REUSEPORT).
    public func probe(_ keys: [ListenerKey]) -> [ListenerBindError] {
        open.withLock { open in
            let held = Set(open.keys.map(\.bind))
            var tried = Set<ListenerKey>()
            var errors: [ListenerBindError] = []
            for key in keys where !held.contains(key) && tried.insert(key).inserted {
                if let error = binder.withLock({ $0 }).probeListener(key) { errors.append(error) }
            }
            return errors
        }
    }

    /// Closes the sockets (every loop's) of binds that no generation uses any more.
    public func release(_ keys: [ListenerKey]) {
        let binds = Set(keys)
        open.withLock { open in
            for (key, fd) in open where binds.contains(key.bind) {
                close(fd)
                open[key] = nil
            }
        }
    }

    /// Takes sockets another strata process handed over (`-x`): a later acquire of their key
    /// reuses them, the same kernel sockets. Those for a loop this process does not have are closed.
    public func adopt(_ sockets: [ListenerSocketKey: Int32]) {
        open.withLock { open in
            for (key, fd) in sockets {
                if key.loop < (key.bind.reusePort ? loops : 1), open[key] == nil {
                    open[key] = fd
                } else {
                    close(fd)
                }
            }
        }
    }

    /// Every open socket, by bind and loop (`_getsocks` hands them to a new process).
    public var sockets: [ListenerSocketKey: Int32] { open.withLock { $0 } }

    /// The binds that have sockets open.
    public var openKeys: [ListenerKey] { open.withLock { Array(Set($0.keys.map(\.bind))) } }

    /// Every open socket (tests count them).
    var openSockets: [ListenerSocketKey: Int32] { open.withLock { $0 } }
}
