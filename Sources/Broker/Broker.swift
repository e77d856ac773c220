import CLibEV
import ConfigModel
import Engine
import Glibc
import Loader

/// The privilege broker: a small process forked at start, while strata is still root, that keeps
/// only what a reload needs — binding below 1024 (CAP_NET_BIND_SERVICE, and CAP_NET_RAW for
/// `interface`), reading the files the configuration names (root's uid, CAP_DAC_READ_SEARCH) —
/// and serves the serving process's requests over a socketpair (`BrokerMessage`) one at a time,
/// as `BrokerPolicy` allows them. It handles no traffic and parses nothing but its protocol and
/// the configuration's words. It exits when the serving process closes its end (or dies).
public enum Broker {
    /// What the broker keeps of root's capabilities.
    static var capabilities: UInt64 {
        [CLibEV_CAP_NET_BIND_SERVICE, CLibEV_CAP_DAC_READ_SEARCH, CLibEV_CAP_NET_RAW]
            .reduce(0) { $0 | 1 << UInt64($1) }
    }

    /// Forks the broker. In the parent, returns the client end; the child never returns.
    /// `policy` is what the first load read (the serving process's state before any traffic).
    public static func start(policy: BrokerPolicy) -> Result<BrokerClient, BrokerFailure> {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | CLibEV_SOCK_CLOEXEC, 0, &pair) == 0 else {
            return .failure(BrokerFailure(.system, errno: errno, text: "socketpair"))
        }
        let pid = CLibEV_fork()
        if pid < 0 {
            let e = errno
            close(pair[0]); close(pair[1])
            return .failure(BrokerFailure(.system, errno: e, text: "fork"))
        }
        if pid == 0 {
            close(pair[0])
            // Nothing of the serving process stays open here: a listener the serving process
            // releases must close for real.
            CLibEV_close_fds_except(pair[1])
            _exit(serve(fd: pair[1], policy: policy))
        }
        close(pair[1])
        return .success(BrokerClient(fd: pair[0], pid: pid))
    }

    static func say(_ level: String, _ message: String) {
        let line = "[\(level)] (\(getpid())) : broker: \(message)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }

    /// The child's life: restrict itself, then answer until the other end closes.
    static func serve(fd: Int32, policy: BrokerPolicy) -> Int32 {
        _ = CLibEV_name_process("strata-broker")
        // Signals meant for the serving process (a `kill -HUP` by name, a terminal's ^C) must not
        // end the broker; SIGTERM and SIGKILL still do.
        for s in [SIGHUP, SIGINT, SIGUSR1, SIGUSR2, SIGTTOU, SIGTTIN, SIGPIPE] { signal(s, SIG_IGN) }
        var step: UnsafePointer<CChar>? = nil
        let e = CLibEV_broker_restrict(capabilities, &step)
        if e != 0 {
            say("ALERT", "cannot restrict privileges: \(step.map { String(cString: $0) } ?? "?"): \(String(cString: strerror(e)))")
            return 1
        }
        return answer(fd: fd, policy: policy)
    }

    /// Answers requests on `fd` until the other end closes (the child's loop; tests run it on a
    /// thread of their own). Returns the exit status.
    public static func answer(fd: Int32, policy: BrokerPolicy) -> Int32 {
        var server = BrokerServer(policy: policy)
        while true {
            let body: [UInt8]
            switch BrokerIO.readFrame(fd, limit: BrokerFrame.maxRequest) {
            case .eof: return 0
            case .failed(let why):
                say("ALERT", "closing: \(why)")
                return 1
            case .frame(let b, let passed):
                if let passed { close(passed) }
                body = b
            }
            let request: BrokerRequest
            do {
                request = try BrokerFrame.request(body[...])
            } catch {
                say("ALERT", "closing: a malformed request (\(error))")
                return 1
            }
            let (response, socket) = server.handle(request)
            let sent = BrokerIO.write(fd, BrokerFrame.encode(response), passing: socket)
            if socket >= 0 { close(socket) }
            if !sent { return 0 }
        }
    }
}

/// The broker's decisions and the calls it makes for each request (the child's loop sends the answers).
public struct BrokerServer {
    public var policy: BrokerPolicy
    let files = LocalFiles()
    let binder = KernelBinder()

    public init(policy: BrokerPolicy) { self.policy = policy }

    /// The answer, and an fd to pass with it (or -1).
    public mutating func handle(_ request: BrokerRequest) -> (BrokerResponse, Int32) {
        switch request {
        case .begin:
            policy.begin()
            return (.done, -1)
        case .commit:
            policy.commit()
            return (.done, -1)
        case .read(let path, let kind):
            guard policy.mayRead(path) else {
                Broker.say("WARNING", "refused to read '\(path)': the configuration does not name it")
                return (.failure(BrokerFailure(.refused, text: "the privilege broker refuses it: the configuration does not name it")), -1)
            }
            switch files.read(path, kind) {
            case .success(let bytes):
                let cls: BrokerPolicy.FileKindClass = kind == .configuration ? .configuration : kind == .tls ? .tls : .other
                policy.served(path, kind: cls, bytes: bytes)
                return (.bytes(bytes), -1)
            case .failure(let problem):
                return (.failure(BrokerFailure(problem)), -1)
            }
        case .list(let path):
            guard policy.mayList(path) else {
                return (.failure(BrokerFailure(.refused, text: "the privilege broker refuses it: the configuration does not name it")), -1)
            }
            switch files.listDirectory(path) {
            case .success(let names?):
                if !policy.arguments.contains(BrokerPolicy.normalize(path, in: policy.workingDirectory)) { policy.listed(path) }
                return (.names(names), -1)
            case .success(nil): return (.failure(BrokerFailure(.system, errno: ENOTDIR)), -1)
            case .failure(let problem): return (.failure(BrokerFailure(problem)), -1)
            }
        case .bind(let key, let probe):
            guard policy.mayBind(key) else {
                Broker.say("WARNING", "refused to bind \(key.endpoint): no bind line of the configuration names it")
                return (.failure(BrokerFailure(.refused, errno: EPERM, text: "privilege broker: no bind line of the configuration names \(key.endpoint)")), -1)
            }
            if probe {
                if let error = binder.probeListener(key) { return (.failure(BrokerFailure(.system, errno: error.errno, text: error.call)), -1) }
                return (.done, -1)
            }
            switch binder.bindListener(key) {
            case .success(let fd): return (.socket, fd)
            case .failure(let error): return (.failure(BrokerFailure(.system, errno: error.errno, text: error.call)), -1)
            }
        case .user(let name):
            return (.id(files.userID(name)), -1)
        case .group(let name):
            return (.id(files.groupID(name)), -1)
        }
    }
}

extension BrokerFailure {
    init(_ problem: FileProblem) {
        switch problem {
        case .system(let e): self.init(.system, errno: e)
        case .notRegular(let what): self.init(.notRegular, text: what)
        case .tooLarge(_, let limit): self.init(.tooLarge, text: limit)
        case .overBudget(let budget): self.init(.overBudget, errno: Int32(clamping: budget))
        case .refused(let why): self.init(.refused, text: why)
        }
    }

    var fileProblem: FileProblem {
        switch code {
        case .system: .system(errno)
        case .notRegular: .notRegular(text)
        case .tooLarge: .tooLarge(size: nil, limit: text)
        case .overBudget: .overBudget(Int(errno))
        case .refused: .refused(text)
        }
    }
}

/// Blocking frame I/O on the socketpair.
enum BrokerIO {
    enum Frame {
        case frame([UInt8], passed: Int32?)
        case eof
        case failed(String)
    }

    /// One frame's body (after its length), and an fd passed with its first bytes.
    static func readFrame(_ fd: Int32, limit: Int) -> Frame {
        var header = [UInt8](repeating: 0, count: 4)
        var got = 0
        var passed: Int32 = -1
        while got < 4 {
            let n = header.withUnsafeMutableBytes { CLibEV_recv_with_fd(fd, $0.baseAddress! + got, 4 - got, &passed) }
            if n == 0 {
                if passed >= 0 { close(passed) }
                return got == 0 ? .eof : .failed("the connection closed inside a frame")
            }
            if n < 0 {
                if passed >= 0 { close(passed) }
                return .failed("recvmsg: \(String(cString: strerror(errno)))")
            }
            got += n
        }
        let length: Int
        do {
            length = try BrokerFrame.length(header, limit: limit) ?? 0
        } catch {
            if passed >= 0 { close(passed) }
            return .failed("a frame of \(header.reduce(0) { $0 << 8 | Int($1) }) bytes (at most \(limit))")
        }
        var body = [UInt8](repeating: 0, count: length)
        got = 0
        while got < length {
            let n = body.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, length - got) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                if passed >= 0 { close(passed) }
                return .failed(n == 0 ? "the connection closed inside a frame" : "read: \(String(cString: strerror(errno)))")
            }
            got += n
        }
        return .frame(body, passed: passed >= 0 ? passed : nil)
    }

    /// Writes a whole frame, `passing` an fd with its first bytes (or -1). False when the other end is gone.
    static func write(_ fd: Int32, _ bytes: [UInt8], passing: Int32) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                if sent == 0 { return CLibEV_send_with_fd(fd, raw.baseAddress!, raw.count, passing) }
                return send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }
}
