import CLibEV
import ConfigModel
import Engine
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
}

/// The running process: first load and bind, daemon and privileges, then the engine's loop with
/// its signals, admin sockets and reload coordinator.
final class Daemon: @unchecked Sendable {
    let options: DaemonOptions
    let cache = ListenerCache()
    let loader = ConfigLoader()
    let systemd = SystemdNotifier()
    private var adminServers: [AdminServer] = []
    private var adminPaths: [String] = []

    init(options: DaemonOptions) { self.options = options }

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
        switch loader.load(paths: options.files) {
        case .success(let l): loaded = l
        case .failure(let errors): return fail(errors.errors.map(\.description))
        }
        let global = loaded.config.global
        // `load-server-state-from-file`: read now, applied to generation 1 before any traffic;
        // later generations carry server state in the process.
        let savedStates = ServerStateFile.restore(for: loaded.config)
        for m in savedStates.messages { Daemon.say(m.level.rawValue, m.text) }

        // HAProxy's soft-restart: the old process stops accepting while this one binds.
        for pid in options.replace { kill(pid, SIGTTOU) }
        let keys = ListenerPlan.keys(of: loaded.config)
        let fds: [ListenerKey: Int32]
        switch cache.acquire(keys) {
        case .success(let f): fds = f
        case .failure(let errors):
            for pid in options.replace { kill(pid, SIGTTIN) }
            return fail(errors.errors.map { ListenerPlan.error(for: $0, in: loaded.config).description })
        }
        var adminFDs: [(StatsSocket, Int32)] = []
        for socket in global.statsSockets {
            do {
                switch socket.address {
                case .unix(let path):
                    adminFDs.append((socket, try AdminServer.bindUnix(path: path, mode: socket.mode)))
                    adminPaths.append(path)
                case .tcp(let endpoint):
                    adminFDs.append((socket, try AdminServer.bindTCP(endpoint)))
                }
            } catch {
                cache.release(keys)
                for pid in options.replace { kill(pid, SIGTTIN) }
                return fail(["\(socket.location): cannot bind stats socket: \(error)"])
            }
        }

        if global.daemon && !options.foreground {
            let pid = CLibEV_fork()
            if pid < 0 { return fail(["fork: \(String(cString: strerror(errno)))"]) }
            if pid > 0 { _exit(0) }
            _ = CLibEV_detach()
        }
        if let path = options.pidfile ?? global.pidfile {
            do {
                try "\(getpid())\n".write(toFile: path, atomically: false, encoding: .utf8)
            } catch {
                return fail(["cannot write pidfile \(path): \(error.localizedDescription)"])
            }
        }
        if let failure = dropPrivileges(global) { return fail([failure]) }

        // `tune.bufsize` sizes the loop's buffer pool: fixed for the process (a reload that changes it
        // fails, see GlobalInvariants).
        let engine = Engine(bufferSize: global.bufferSize)
        engine.notice = { message in
            Daemon.say("NOTICE", message)
            engine.current?.logNotice(message)
        }
        let first = ConfigGeneration(id: 1, hash: loaded.hash, config: loaded.config, files: loaded.files)
        let generation: Generation
        do {
            generation = try Engine.makeGeneration(first)
        } catch {
            cache.release(keys)
            for pid in options.replace { kill(pid, SIGTTIN) }
            return fail(error.errors.map(\.description))
        }
        engine.activate(generation, listenerFDs: fds)
        engine.restoreServerStates(savedStates.states)

        let reloads = ReloadCoordinator(engine: engine, cache: cache, files: options.files, loader: loader, firstID: 2)
        let systemd = self.systemd
        reloads.started = {
            systemd.notify("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds())\nSTATUS=reloading")
        }
        reloads.finished = { outcome in
            for m in outcome.messages { Daemon.say(outcome.success ? "NOTICE" : "ALERT", m) }
            let status = outcome.success ? "generation \(outcome.generationID) active" : "reload to generation \(outcome.generationID) failed; generation \(engine.current?.id ?? 0) active"
            systemd.notify("READY=1\nSTATUS=\(status)")
        }
        let commands = AdminCommands(engine: engine, reloads: reloads)
        for (socket, fd) in adminFDs {
            adminServers.append(AdminServer(engine: engine, fd: fd, level: socket.level, maxconn: socket.connectionLimit,
                                            timeoutMilliseconds: global.statsTimeout) { words, level, reply in
                commands.handle(words, level: level, reply: reply)
            })
        }
        let cache = self.cache
        engine.onSignals([SIGHUP, SIGUSR2, SIGUSR1, SIGTERM, SIGINT, SIGTTOU, SIGTTIN]) { signal in
            switch signal {
            case SIGHUP, SIGUSR2:
                reloads.request { _ in }
            case SIGUSR1:
                Daemon.say("NOTICE", "soft stop: every generation drains, then the process exits")
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

        for pid in options.replace { kill(pid, options.replaceSignal) }
        systemd.notify("READY=1\nMAINPID=\(getpid())\nSTATUS=generation 1 active")
        Daemon.say("NOTICE", "generation 1 active (hash \(loaded.hash)), \(fds.count) listeners")
        engine.run()

        systemd.notify("STOPPING=1")
        for s in adminServers { s.close() }
        for p in adminPaths { unlink(p) }
        return 0
    }

    /// `user`/`group`/`uid`/`gid`: after the first binds, keeping CAP_NET_BIND_SERVICE so a
    /// reload can still bind a port below 1024.
    private func dropPrivileges(_ global: GlobalSettings) -> String? {
        guard global.uid != nil || global.gid != nil else { return nil }
        let uid = global.uid ?? getuid()
        let gid = global.gid ?? getgid()
        if uid == getuid() && gid == getgid() { return nil }
        guard geteuid() == 0 else {
            let loc = (global.locations["user"] ?? global.locations["uid"]).map { "\($0): " } ?? ""
            return "\(loc)cannot switch to uid \(uid) gid \(gid): strata is not running as root"
        }
        var step: UnsafePointer<CChar>? = nil
        let err = CLibEV_drop_privileges(uid, gid, 1, &step)
        if err != 0 {
            return "cannot drop privileges: \(step.map { String(cString: $0) } ?? "?"): \(String(cString: strerror(err)))"
        }
        return nil
    }
}
