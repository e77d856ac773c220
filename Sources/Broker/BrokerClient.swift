import CLibEV
import ConfigModel
import Engine
import Glibc
import Loader

/// The serving process's end of the broker: the listener cache binds through it and a reload's
/// load reads through it. One request at a time (a reload and a plan never overlap, but a plan's
/// background build may run beside its test binds). Once the broker is gone every call fails
/// with `exitText`, and `status` says so.
public final class BrokerClient: ListenerBinder, FileSource, @unchecked Sendable {
    public let pid: Int32
    private let fd: Int32
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var exit: String?

    init(fd: Int32, pid: Int32) {
        self.fd = fd
        self.pid = pid
        pthread_mutex_init(lock, nil)
        // A broker that stops answering (stopped, wedged) fails the reload that waits on it,
        // rather than holding reloads forever.
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// For tests: a client on one end of a socketpair whose other end an in-process server answers.
    public static func connected(fd: Int32) -> BrokerClient { BrokerClient(fd: fd, pid: 0) }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return body()
    }

    /// Nil while the broker answers; else why it does not.
    public var exitText: String? { locked { exit } }

    /// `show info`'s line.
    public var status: String {
        if let exit = exitText { return "exited (pid \(pid), \(exit)); reloads fail until strata is restarted" }
        return "running (pid \(pid))"
    }

    /// The broker's process ended with wait status `status` (what its socket said before, if
    /// anything, gives way to how the process ended).
    public func markExited(status: Int32) -> String {
        let how = status & 0x7f == 0 ? "exit status \((status >> 8) & 0xff)" : "killed by signal \(status & 0x7f)"
        locked { exit = how }
        return how
    }

    /// One request and its answer, with the fd passed with it; nil when the broker is gone.
    func call(_ request: BrokerRequest) -> (BrokerResponse, Int32?)? {
        locked {
            guard exit == nil else { return nil }
            guard BrokerIO.write(fd, BrokerFrame.encode(request), passing: -1) else {
                exit = "its socket closed"
                return nil
            }
            switch BrokerIO.readFrame(fd, limit: BrokerFrame.maxResponse) {
            case .eof:
                exit = "its socket closed"
                return nil
            case .failed(let why):
                exit = why
                return nil
            case .frame(let body, let passed):
                guard let response = try? BrokerFrame.response(body[...]) else {
                    if let passed { close(passed) }
                    exit = "a malformed answer"
                    return nil
                }
                return (response, passed)
            }
        }
    }

    private var goneText: String {
        "the privilege broker (pid \(pid)) has exited (\(exitText ?? "?")): restart strata to reload"
    }

    // MARK: ListenerBinder

    public func bindListener(_ key: ListenerKey) -> Result<Int32, ListenerBindError> {
        guard let (response, fd) = call(.bind(key, probe: false)) else {
            return .failure(ListenerBindError(key: key, call: goneText, errno: EPIPE))
        }
        switch response {
        case .socket:
            if let fd { return .success(fd) }
            return .failure(ListenerBindError(key: key, call: "privilege broker: no socket came with the answer", errno: EPROTO))
        case .failure(let f):
            if let fd { close(fd) }
            return .failure(ListenerBindError(key: key, call: f.text.isEmpty ? "privilege broker" : f.text, errno: f.errno))
        default:
            if let fd { close(fd) }
            return .failure(ListenerBindError(key: key, call: "privilege broker: an unexpected answer", errno: EPROTO))
        }
    }

    public func probeListener(_ key: ListenerKey) -> ListenerBindError? {
        guard let (response, fd) = call(.bind(key, probe: true)) else {
            return ListenerBindError(key: key, call: goneText, errno: EPIPE)
        }
        if let fd { close(fd) }
        switch response {
        case .done: return nil
        case .failure(let f): return ListenerBindError(key: key, call: f.text.isEmpty ? "privilege broker" : f.text, errno: f.errno)
        default: return ListenerBindError(key: key, call: "privilege broker: an unexpected answer", errno: EPROTO)
        }
    }

    // MARK: FileSource

    public func read(_ path: String, _ kind: FileKind) -> Result<[UInt8], FileProblem> {
        guard let (response, fd) = call(.read(path: path, kind: kind)) else { return .failure(.refused(goneText)) }
        if let fd { close(fd) }
        switch response {
        case .bytes(let b): return .success(b)
        case .failure(let f): return .failure(f.fileProblem)
        default: return .failure(.refused("the privilege broker gave an unexpected answer"))
        }
    }

    public func listDirectory(_ path: String) -> Result<[String]?, FileProblem> {
        guard let (response, fd) = call(.list(path: path)) else { return .failure(.refused(goneText)) }
        if let fd { close(fd) }
        switch response {
        case .names(let n): return .success(n)
        case .failure(let f) where f.code == .system && f.errno == ENOTDIR: return .success(nil)
        case .failure(let f): return .failure(f.fileProblem)
        default: return .failure(.refused("the privilege broker gave an unexpected answer"))
        }
    }

    public func userID(_ name: String) -> UInt32? { account(.user(name)) }
    public func groupID(_ name: String) -> UInt32? { account(.group(name)) }

    private func account(_ request: BrokerRequest) -> UInt32? {
        guard let (response, fd) = call(request) else { return nil }
        if let fd { close(fd) }
        if case .id(let id) = response { return id }
        return nil
    }

    public func loadBegins() { _ = call(.begin) }
    public func loadSucceeded() { _ = call(.commit) }
}

