import CLibEV
import ConfigModel
import Engine
import Broker
import Foundation
import Glibc
import Loader

struct DaemonOptions {
    var files: [String]
    var pidfile: String?
    var foreground: Bool
    /// `-sf`/`-st`: strata processes this one replaces.
    var replace: [Int32]
    var replaceSignal: Int32
    /// `-dr`: an address that does not resolve is a warning, its server starts in maintenance.
    var resolutionFailuresWarn = false
    /// `-L NAME`: this host's name in `peers` sections.
    var localPeer: String? = nil
    /// `-S PATH[,mode,OCTAL]`: one more admin socket, level admin (HAProxy's master socket).
    var masterSocket: (path: String, mode: UInt32?)?
    /// `-x SOCKET`: take the listening sockets of the strata answering there (`expose-fd listeners`).
    var takeOver: String?
}

/// The running process: first load and bind, daemon and privileges, then the engine's loop with
/// its signals, admin sockets and reload coordinator.
final class Daemon: @unchecked Sendable {
    let options: DaemonOptions
    /// The listening sockets: made once the configuration says how many data loops there are.
    private(set) var cache = ListenerCache()
    private(set) var loader: ConfigLoader
    /// The privilege broker, when `user`/`group` or `chroot` drop this process's privileges.
    private(set) var broker: BrokerClient?
    let systemd = SystemdNotifier()
    private var adminServers: [AdminServer] = []
    /// Unix admin socket paths bound by this process, with the file's identity then.
    private var adminPaths: [(path: String, identity: (device: UInt64, inode: UInt64))] = []

    init(options: DaemonOptions) {
        self.options = options
        var loader = ConfigLoader()
        loader.resolutionFailuresWarn = options.resolutionFailuresWarn
        loader.localPeer = options.localPeer
        self.loader = loader
    }

    static func say(_ level: String, _ message: String) {
        FileHandle.standardError.write(Data("[\(level)] (\(getpid())) : \(message)\n".utf8))
    }

    private func fail(_ lines: [String]) -> Int32 {
        for l in lines { FileHandle.standardError.write(Data((l + "\n").utf8)) }
        return 1
    }

    func run() -> Int32 {
        // A signal mask inherited from the parent (a supervisor, a test harness) must not hide
        // reload and stop signals: start from an empty mask, as HAProxy does.
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)
        signal(SIGPIPE, SIG_IGN)
        let loaded: LoadedConfig
        // The first load reads as this process (root, before any traffic): what it read is what
        // the broker may read again at the first reload.
        let firstFiles = RecordingFiles()
        var firstLoader = loader
        firstLoader.source = firstFiles
        switch firstLoader.load(paths: options.files) {
        case .success(let l): loaded = l
        case .failure(let errors): return fail(errors.errors.map(\.description))
        }
        if !loaded.config.global.quiet {
            for w in loaded.warnings { Daemon.say("WARNING", w.description) }
        }
        let global = loaded.config.global
        // The configuration's admin sockets, and `-S`'s (HAProxy's master socket) at level admin.
        var adminSockets = global.statsSockets
        if let master = options.masterSocket {
            var socket = StatsSocket(location: SourceLocation(file: "-S"), address: .unix(path: master.path))
            socket.mode = master.mode
            socket.level = .admin
            adminSockets.append(socket)
        }
        // Before the engine exists: it derives its default maxconn from the limit.
        let limitErrors = FileDescriptorLimit.apply(loaded.config, atStart: true)
        if !limitErrors.isEmpty { return fail(limitErrors.map(\.description)) }
        // `load-server-state-from-file`: read now, applied to generation 1 before any traffic;
        // later generations carry server state in the process.
        let savedStates = ServerStateFile.restore(for: loaded.config)
        for m in savedStates.messages { Daemon.say(m.level.rawValue, m.text) }

        // A strata already running with this configuration answers on its admin socket: stop
        // here, before binding anything, so that it keeps its socket file and its connections (a
        // listener bound with SO_REUSEPORT would share its port until this process exits).
        let replacing = !options.replace.isEmpty
        for socket in adminSockets {
            guard case .unix(let path) = socket.address, !replacing,
                  case .live(let pid) = UnixSocketFile.probe(path) else { continue }
            let who = pid.map { "process \($0)" } ?? "another process"
            let hint = pid.map { "stop it first, or replace it with -sf \($0)" } ?? "stop it first"
            return fail(["\(socket.location): cannot bind stats socket \(path): \(who) answers on it (a strata already running with this configuration? \(hint))"])
        }
        var adminFDs: [(StatsSocket, Int32)] = []
        // Anything that fails from here on undoes what this process did, and only that.
        func abandon(_ lines: [String], listeners: [ListenerKey] = []) -> Int32 {
            for (_, fd) in adminFDs { close(fd) }
            removeAdminSocketFiles()
            self.cache.release(listeners)
            for pid in options.replace { kill(pid, SIGTTIN) }
            return fail(lines)
        }
        // TCP admin sockets first: a port in use fails without touching anything.
        for socket in adminSockets {
            guard case .tcp(let endpoint) = socket.address else { continue }
            do {
                adminFDs.append((socket, try AdminServer.bindTCP(endpoint)))
            } catch {
                return abandon(["\(socket.location): cannot bind stats socket: \(error)"])
            }
        }

        // `nbthread` data loops (without it, one per CPU the process may run on, as HAProxy), each
        // pinned where `cpu-map` says.
        let loops = global.nbthread ?? Int(CLibEV_allowed_cpus())
        let cpuSets: [[Int]]
        switch CPUMap.cpuSets(global.cpuMaps, threads: loops) {
        case .failure(let error): return abandon([error.description])
        case .success(let sets): cpuSets = sets
        }
        cache = ListenerCache(loops: loops)
        // `-x`: the old process's listening sockets, the same kernel sockets: what is queued in
        // their backlogs is accepted here, and no connection meets a closed socket.
        var adopted: Set<ListenerKey> = []
        if let path = options.takeOver {
            switch ListenerHandover.receive(from: path) {
            case .failure(let why): return abandon(["-x: \(why.description)"])
            case .success(let sockets):
                adopted = Set(sockets.keys.map(\.bind))
                cache.adopt(sockets)
                Daemon.say("NOTICE", "took \(sockets.count) listening sockets (\(adopted.count) binds) over from \(path)")
            }
        }
        // HAProxy's soft-restart: the old process stops accepting while this one binds.
        for pid in options.replace { kill(pid, SIGTTOU) }
        let keys = ListenerPlan.keys(of: loaded.config)
        let fds: [ListenerSocketKey: Int32]
        switch cache.acquire(keys) {
        case .success(let f): fds = f
        case .failure(let errors):
            return abandon(errors.errors.map { ListenerPlan.error(for: $0, in: loaded.config).description },
                           listeners: Array(adopted))
        }
        // Sockets handed over that this configuration does not bind: this process's copies close
        // now; the old process closes its own after its drain.
        cache.release(Array(adopted.subtracting(keys)))
        let first = ConfigGeneration(id: 1, hash: loaded.hash, config: loaded.config, files: loaded.files)
        // What only the engine checks (certificates, ciphers, regexes), before anything is
        // replaced or forked; the generation that serves is built once the loops exist.
        do {
            try Engine.checkGeneration(first)
        } catch {
            return abandon(error.errors.map(\.description), listeners: keys)
        }
        // Unix admin sockets last, once nothing else can refuse the configuration: a socket file
        // is replaced only when stale, or when it is the replaced process's (-sf/-st).
        for socket in adminSockets {
            guard case .unix(let path) = socket.address else { continue }
            do {
                adminFDs.append((socket, try AdminServer.bindUnix(path: path, mode: socket.mode, replacingLive: replacing)))
                // `user`/`group` on the socket: its file's owner (HAProxy's bind options).
                if socket.owner != nil || socket.group != nil,
                   chown(path, socket.owner ?? UInt32.max, socket.group ?? UInt32.max) != 0 {
                    throw AdminSocketOwnerError(errno: errno)
                }
                if let identity = UnixSocketFile.identity(path) { adminPaths.append((path, identity)) }
            } catch {
                return abandon(["\(socket.location): cannot bind stats socket: \(error)"], listeners: keys)
            }
        }

        if global.daemon && !options.foreground {
            let pid = CLibEV_fork()
            if pid < 0 { return abandon(["fork: \(String(cString: strerror(errno)))"], listeners: keys) }
            if pid > 0 { _exit(0) }
            _ = CLibEV_detach()
        }
        if let path = options.pidfile ?? global.pidfile {
            do {
                try "\(getpid())\n".write(toFile: path, atomically: false, encoding: .utf8)
            } catch {
                return abandon(["cannot write pidfile \(path): \(error.localizedDescription)"], listeners: keys)
            }
        }
        if let failure = dropPrivileges(global, firstFiles: firstFiles.read) { return abandon([failure], listeners: keys) }
        if let failure = applyDumpable(global) { return abandon([failure], listeners: keys) }

        // `tune.bufsize` sizes the loops' buffer pools: fixed for the process (a reload that changes
        // it fails, see GlobalInvariants), and so is `nbthread`.
        let engine = Engine(bufferSize: global.bufferSize, loops: loops, cpuSets: cpuSets)
        let generation: Generation
        do {
            generation = try engine.makeGeneration(first)
        } catch {
            return abandon(error.errors.map(\.description), listeners: keys)
        }
        // Standard error shows what the log targets did not already write to the terminal.
        engine.notice = { message, level, logged in
            if !logged { Daemon.say(level.rawValue <= LogLevel.err.rawValue ? "ALERT" : level == .warning ? "WARNING" : "NOTICE", message) }
        }
        if let broker {
            engine.brokerStatus = { broker.status }
            engine.onChildExit(broker.pid) { status in
                let how = broker.markExited(status: status)
                engine.report("the privilege broker (pid \(broker.pid)) has exited (\(how)): traffic is served as before, reloads fail until strata is restarted", level: .alert)
            }
        }
        let reloads = ReloadCoordinator(engine: engine, cache: cache, files: options.files, loader: loader, firstID: 2)
        reloads.broker = broker
        let systemd = self.systemd
        reloads.started = {
            systemd.notify("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds())\nSTATUS=reloading")
        }
        reloads.finished = { outcome in
            let status = outcome.status ?? (outcome.success ? "generation \(outcome.generationID) active" : "reload to generation \(outcome.generationID) failed; generation \(engine.current?.id ?? 0) active")
            systemd.notify("READY=1\nSTATUS=\(status)")
        }
        // Before the first generation is announced: a SIGHUP sent on seeing "generation 1 active"
        // must find its handler, not the default action (which ends the process).
        let cache = self.cache
        // A canary promoted or aborted closes listeners by itself; its changes go to systemd.
        engine.listenersClosed = { keys in cache.release(keys) }
        engine.generationActivated = { reloads.prepareStandby() }
        engine.statusChanged = { status in systemd.notify("STATUS=\(status)") }
        engine.onSignals([SIGHUP, SIGUSR2, SIGUSR1, SIGTERM, SIGINT, SIGTTOU, SIGTTIN]) { signal in
            switch signal {
            case SIGHUP, SIGUSR2:
                reloads.request { _ in }
            case SIGUSR1:
                engine.report("soft stop: every generation drains, then the process exits")
                let keys = engine.softStop { engine.stop() }
                cache.release(keys)
            case SIGTTOU:
                engine.pauseListeners()
            case SIGTTIN:
                engine.resumeListeners()
            default:
                engine.stop()
            }
        }

        engine.activate(generation, listenerFDs: fds) { _ in
            engine.report("generation 1 active (hash \(loaded.hash)): \(Daemon.listening(loaded.config))")
        }
        engine.restoreServerStates(savedStates.states)

        // The stats page's and `show info`'s version, event list and sessions chart (one sample a second).
        let metrics = engine.metrics
        metrics.productVersion = strataVersion
        metrics.productReleaseDate = strataReleaseDate
        let notice = engine.notice
        engine.notice = { message, level, logged in
            notice(message, level, logged)
            metrics.recordEvent(message)
        }
        metrics.startSampling()
        var commands = AdminCommandTable.engine
        commands.register(reloads.adminCommands + [AddServerCommand.adminCommand(parser: RuntimeServerParser(environment: loader.environment), engine: engine)])
        for (socket, fd) in adminFDs {
            let listeners = self.cache
            adminServers.append(AdminServer(engine: engine, fd: fd, level: socket.level, maxconn: socket.connectionLimit,
                                            timeoutMilliseconds: global.statsTimeout, commands: commands,
                                            exposedListeners: socket.exposeListeners ? { listeners.sockets } : nil))
        }
        for pid in options.replace { kill(pid, options.replaceSignal) }
        systemd.notify("READY=1\nMAINPID=\(getpid())\nSTATUS=generation 1 active")
        engine.run()

        systemd.notify("STOPPING=1")
        for s in adminServers { s.close() }
        removeAdminSocketFiles()
        return 0
    }

    /// Removes the admin socket files this process bound, unless another process (a strata
    /// started with -sf) has bound its own at the same path since.
    private func removeAdminSocketFiles() {
        for (path, identity) in adminPaths {
            if let now = UnixSocketFile.identity(path), now == identity { unlink(path) }
        }
        adminPaths = []
    }

    /// What the first generation listens on: `listening on 127.0.0.1:8080 (web), …`, the first
    /// few addresses of a large configuration.
    static func listening(_ config: Config, shown: Int = 8) -> String {
        var addresses: [String] = []
        for proxy in config.proxies where proxy.isFrontend && !proxy.disabled {
            for bind in proxy.binds { addresses.append("\(bind.endpoint)\(bind.tls == nil ? "" : " ssl") (\(proxy.name))") }
        }
        guard !addresses.isEmpty else { return "no listener" }
        let more = addresses.count > shown ? " and \(addresses.count - shown) more" : ""
        return "listening on " + addresses.prefix(shown).joined(separator: ", ") + more
    }

    /// `user`/`group`/`uid`/`gid` and `chroot`, after the first binds. As root, the privilege
    /// broker is forked first (it keeps binding below 1024 and reading the configuration's files
    /// for reloads), then this process enters the chroot, takes the uid and gid, and drops every
    /// capability, the bounding set with them, and sets no_new_privs: from here on, reloads read
    /// and bind through the broker.
    private func dropPrivileges(_ global: GlobalSettings, firstFiles: [String]) -> String? {
        guard global.uid != nil || global.gid != nil || global.chroot != nil else { return nil }
        let uid = global.uid ?? getuid()
        let gid = global.gid ?? getgid()
        if uid == getuid() && gid == getgid() && global.chroot == nil { return nil }
        guard geteuid() == 0 else {
            let keyword = global.chroot != nil ? "chroot" : global.locations["user"] != nil ? "user" : "uid"
            let loc = global.locations[keyword].map { "\($0): " } ?? ""
            if global.chroot != nil { return "\(loc)cannot enter chroot \(global.chroot!): strata is not running as root" }
            return "\(loc)cannot switch to uid \(uid) gid \(gid): strata is not running as root"
        }
        let cwd = FileManager.default.currentDirectoryPath
        let policy = BrokerPolicy(arguments: options.files, workingDirectory: cwd, firstLoadFiles: firstFiles,
                                  environment: loader.environment)
        let client: BrokerClient
        switch Broker.start(policy: policy) {
        case .success(let c): client = c
        case .failure(let f): return "cannot start the privilege broker: \(f.text): \(String(cString: strerror(f.errno)))"
        }
        broker = client
        cache.use(client)
        loader.source = client
        var step: UnsafePointer<CChar>? = nil
        let err = global.chroot.withOptionalCString { root in CLibEV_drop_everything(uid, gid, root, &step) }
        if err != 0 {
            return "cannot drop privileges: \(step.map { String(cString: $0) } ?? "?"): \(String(cString: strerror(err)))"
        }
        return nil
    }

    /// `set-dumpable` (after any change of uid, which clears the dumpable flag).
    func applyDumpable(_ global: GlobalSettings) -> String? {
        guard global.setDumpable else { return nil }
        let err = CLibEV_set_dumpable()
        return err == 0 ? nil : "set-dumpable: \(String(cString: strerror(err)))"
    }
}

/// `stats socket PATH user U group G`: the socket file could not be given to them.
struct AdminSocketOwnerError: Error, CustomStringConvertible {
    var errno: Int32
    var description: String { "chown: \(String(cString: strerror(errno)))" }
}

extension Optional where Wrapped == String {
    func withOptionalCString<T>(_ body: (UnsafePointer<CChar>?) -> T) -> T {
        switch self {
        case .some(let s): s.withCString { body($0) }
        case .none: body(nil)
        }
    }
}
