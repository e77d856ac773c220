import Foundation
import Glibc
import StrataTestSupport
import Testing

/// Configurations that would take the running process or its service down are refused with
/// `file:line`, by `strata -c`, at start and on reload, and a refused reload leaves the process
/// serving on its current generation: files that never end, block or are huge, a file emptied
/// by mistake, a maxconn the fd limit cannot hold, a megabyte word.
@Suite(.serialized) struct ReloadSafetyTests {
    /// A TCP listen that answers "a" (the service that must keep running) and an HTTP frontend
    /// whose `errorfile` line is `errorfile`.
    static func config(port: UInt16, web: UInt16, server: UInt16, errorfile: String = "", global: String = "",
                       admin: Bool = true) -> String {
        """
        global
        \(admin ? "    stats socket @ADMIN@ level admin" : "")
        \(global)
        defaults
            timeout connect 2s
            timeout client 30s
            timeout server 30s
        listen app
            mode tcp
            bind 127.0.0.1:\(port)
            server s1 127.0.0.1:\(server)
        frontend web
            mode http
            bind 127.0.0.1:\(web)
            \(errorfile)
            default_backend pages
        backend pages
            mode http
            server p 127.0.0.1:9
        """
    }

    /// The line of `config` that contains `text`, counted from 1.
    static func line(of text: String, in config: String) -> Int {
        (config.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(text) } ?? -1) + 1
    }

    static func name(_ port: UInt16) -> String? {
        guard let fd = TestSocket.connect(port) else { return nil }
        defer { close(fd) }
        return TestSocket.readLine(fd)
    }

    static func seconds<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let start = Date()
        let value = try body()
        return (value, Date().timeIntervalSince(start))
    }

    /// A FIFO and a 100 MB sparse file in `directory`.
    static func hostileFiles(in directory: URL) throws -> (fifo: String, big: String) {
        let fifo = directory.appendingPathComponent("fifo.http").path
        let big = directory.appendingPathComponent("big.http").path
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(FileManager.default.createFile(atPath: big, contents: nil))
        #expect(truncate(big, 100 << 20) == 0)
        return (fifo, big)
    }

    /// `strata -c` on `config` written to `file` in `directory`: status, stderr, seconds.
    static func check(_ config: String, file: String = "t.cfg", in directory: URL) throws -> (Int32, String, Double) {
        let path = directory.appendingPathComponent(file).path
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        let (result, elapsed) = seconds { runTool(StrataProcess.binary, ["-c", "-f", path]) }
        return (result.status, result.stderr.replacingOccurrences(of: directory.path + "/", with: ""), elapsed)
    }

    /// The problem each hostile errorfile is reported with.
    static func reasons(fifo: String, big: String) -> [(path: String, reason: String)] {
        [
            ("/dev/zero", "not a regular file (a character device)"),
            ("/dev/urandom", "not a regular file (a character device)"),
            (fifo, "not a regular file (a FIFO)"),
            (big, "it is 104857600 bytes, over tune.bufsize (16384 bytes)"),
        ]
    }

    // MARK: files that never end, block or are huge

    @Test func reloadsNamingAnEndlessABlockingOrAHugeFileFailAtTheirLineAndServingGoesOn() throws {
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort(), web = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, web: web, server: a.port))
        #expect(strata.waitForAdmin())
        let (fifo, big) = try Self.hostileFiles(in: strata.directory)
        for (path, reason) in Self.reasons(fifo: fifo, big: big) {
            let config = Self.config(port: port, web: web, server: a.port, errorfile: "errorfile 503 \(path)")
            try strata.write(config)
            let (answer, elapsed) = try Self.seconds { try strata.admin("reload") }
            let line = Self.line(of: "errorfile", in: config)
            #expect(answer.hasPrefix("Success=0\n--\n\(strata.configPath):\(line): 'errorfile': cannot read '\(path)': \(reason)\n"),
                    "\(answer)")
            #expect(elapsed < 5, "\(path): \(elapsed) s")
            #expect(strata.process.isRunning)
            #expect(Self.name(port) == "a")
        }
        #expect(try strata.generations().map(\.id) == [1])
    }

    @Test func underAMemoryLimitAReloadOfAnEndlessFileFailsAndTheProcessLives() throws {
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort(), web = TestSocket.freePort()
        let good = Self.config(port: port, web: web, server: a.port)
        // About 220 MB of address space after a reload (a thread's stack and malloc arena), so
        // 400 MB leaves room for reloads but not for reading /dev/zero without end, which is what
        // aborted the process before ("failed to allocate 4429184960 bytes").
        let strata = try StrataProcess(config: good, limits: ["-v 400000"])
        #expect(strata.waitForAdmin())
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        let (fifo, big) = try Self.hostileFiles(in: strata.directory)
        for (path, reason) in Self.reasons(fifo: fifo, big: big) {
            try strata.write(Self.config(port: port, web: web, server: a.port, errorfile: "errorfile 503 \(path)"))
            let answer = try strata.admin("reload")
            #expect(answer.hasPrefix("Success=0") && answer.contains(reason), "\(answer)")
            #expect(strata.process.isRunning)
            #expect(Self.name(port) == "a")
        }
        try strata.write(good)
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(Self.name(port) == "a")
    }

    @Test func checkRefusesTheSameFilesPromptly() throws {
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (fifo, big) = try Self.hostileFiles(in: directory)
        for (path, reason) in Self.reasons(fifo: fifo, big: big) {
            let config = Self.config(port: 1, web: 2, server: 3, errorfile: "errorfile 503 \(path)", admin: false)
            let (status, stderr, elapsed) = try Self.check(config, in: directory)
            let shown = path.replacingOccurrences(of: directory.path + "/", with: "")
            #expect(status == 1)
            #expect(stderr == "t.cfg:\(Self.line(of: "errorfile", in: config)): 'errorfile': cannot read '\(shown)': \(reason)\n")
            #expect(elapsed < 5, "\(path): \(elapsed) s")
        }
        // As the configuration file itself.
        for path in ["/dev/zero", fifo] {
            let result = runTool(StrataProcess.binary, ["-c", "-f", path])
            #expect(result.status == 1)
            #expect(result.stderr.contains("cannot read configuration file '\(path)': not a regular file"))
        }
    }

    // MARK: a configuration that listens nowhere

    @Test func anEmptyFileIsRefusedByCheckAndByAReloadAndTheRunningGenerationServes() throws {
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (status, stderr, _) = try Self.check("", file: "s1.cfg", in: directory)
        #expect(status == 1)
        #expect(stderr.hasPrefix("s1.cfg: no listener: the configuration is empty"))

        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort(), web = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, web: web, server: a.port))
        #expect(strata.waitForAdmin())
        try strata.write("")
        let answer = try strata.admin("reload")
        #expect(answer.hasPrefix("Success=0\n--\n\(strata.configPath): no listener: the configuration is empty"), "\(answer)")
        #expect(Self.name(port) == "a")
        #expect(try strata.generations().map(\.id) == [1])
    }

    @Test func withoutAnAdminSocketAnEmptiedFileNoLongerStopsTheProcess() throws {
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort(), web = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, web: web, server: a.port, admin: false))
        #expect(strata.waitForOutput("generation 1 active"))
        try strata.write("# emptied\n")
        strata.signal(SIGHUP)
        #expect(strata.waitForOutput("no listener: the configuration is empty"))
        #expect(strata.waitForOutput("generation 2 failed"))
        #expect(strata.process.isRunning)
        #expect(Self.name(port) == "a")
    }

    @Test func aGlobalSectionAloneIsRefusedByCheckAndAtStart() throws {
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let global = "global\n    maxconn 100\n    stats socket \(directory.path)/admin.sock\n"
        let (status, stderr, _) = try Self.check(global, in: directory)
        #expect(status == 1)
        #expect(stderr.hasPrefix("t.cfg: no listener: there is no frontend or listen section"))
        let strata = try StrataProcess(config: global)
        #expect(strata.waitForExit() == 1)
        #expect(strata.output.contains { $0.contains("no listener: there is no frontend or listen section") })
    }

    @Test func aRemovedStatsSocketIsReportedForItsFileWithoutALine() throws {
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort(), web = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, web: web, server: a.port))
        #expect(strata.waitForAdmin())
        try strata.write(Self.config(port: port, web: web, server: a.port, admin: false))
        let answer = try strata.admin("reload")
        #expect(answer.hasPrefix("Success=0\n--\n\(strata.configPath): 'stats socket' was removed; it cannot change on reload, restart to apply it\n"),
                "\(answer)")
        #expect(Self.name(port) == "a")
    }

    // MARK: maxconn and the fd limit

    /// The process's soft and hard fd limits, from /proc.
    static func fileLimits(_ pid: Int32) throws -> (soft: Int, hard: Int) {
        let text = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let numbers = line.split(separator: " ").compactMap { Int($0) }
        return (numbers[0], numbers[1])
    }

    /// Two fds per connection, the listeners (app and web), the admin socket and 64 for the process.
    static func required(maxconn: Int) -> Int { 2 * maxconn + 2 + 1 + 64 }

    @Test func maxconnAboveTheHardFileLimitIsRefusedWithTheNumbers() throws {
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort(), web = TestSocket.freePort()
        let config = Self.config(port: port, web: web, server: a.port, global: "    maxconn 10000")
        let strata = try StrataProcess(config: config, ulimitFiles: 1000)
        #expect(strata.waitForExit() == 1)
        let expected = "\(strata.configPath):\(Self.line(of: "maxconn", in: config)): maxconn 10000 needs about \(Self.required(maxconn: 10000)) file descriptors; the limit is 1000 (ulimit -n)"
        #expect(strata.output.contains(expected), "\(strata.output)")
    }

    @Test func maxconnAboveTheSoftFileLimitRaisesIt() throws {
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort(), web = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, web: web, server: a.port, global: "    maxconn 1000"),
                                       limits: ["-Sn 256"])
        #expect(strata.waitForAdmin())
        let limits = try Self.fileLimits(strata.pid)
        // What is required, and a pipe per four connections for TCP mode (app), up to the hard limit.
        #expect(limits.soft == min(limits.hard, Self.required(maxconn: 1000) + 500))
        #expect(Self.name(port) == "a")
    }

    @Test func aReloadToAMaxconnAboveTheHardLimitFailsAndServingGoesOn() throws {
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort(), web = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, web: web, server: a.port, global: "    maxconn 100"),
                                       ulimitFiles: 1000)
        #expect(strata.waitForAdmin())
        let high = Self.config(port: port, web: web, server: a.port, global: "    maxconn 10000")
        try strata.write(high)
        let answer = try strata.admin("reload")
        #expect(answer.hasPrefix("Success=0\n--\n\(strata.configPath):\(Self.line(of: "maxconn", in: high)): maxconn 10000 needs about \(Self.required(maxconn: 10000)) file descriptors; the limit is 1000 (ulimit -n)\n"),
                "\(answer)")
        #expect(Self.name(port) == "a")
        // Up to what the limit holds: accepted.
        try strata.write(Self.config(port: port, web: web, server: a.port, global: "    maxconn 400"))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
    }

    @Test func ulimitNRaisesTheSoftLimitAndIsRefusedBelowWhatMaxconnNeeds() throws {
        let a = try TestBackend(.name("a"))
        let port = TestSocket.freePort(), web = TestSocket.freePort()
        let raised = try StrataProcess(config: Self.config(port: port, web: web, server: a.port, global: "    ulimit-n 900"),
                                       limits: ["-Sn 256"])
        #expect(raised.waitForAdmin())
        #expect(try Self.fileLimits(raised.pid).soft == 900)
        raised.stop()

        let config = Self.config(port: port, web: web, server: a.port, global: "    maxconn 1000\n    ulimit-n 900")
        let low = try StrataProcess(config: config)
        #expect(low.waitForExit() == 1)
        let expected = "\(low.configPath):\(Self.line(of: "ulimit-n", in: config)): 'ulimit-n 900' is too low for maxconn 1000, which needs about \(Self.required(maxconn: 1000)) file descriptors"
        #expect(low.output.contains(expected), "\(low.output)")
    }

    // MARK: a word of megabytes

    @Test func aThreeMegabyteKeywordIsReportedFastAndCut() throws {
        let directory = StrataProcess.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let word = String(repeating: "x", count: 3_000_000)
        let (status, stderr, elapsed) = try Self.check("global\n    \(word) 1\n", in: directory)
        #expect(status == 1)
        #expect(stderr == "t.cfg:2: '\(String(repeating: "x", count: 63))…' is not supported in section 'global'\n")
        // 65 s before (a debug build); about 0.3 s now, process start included.
        #expect(elapsed < 2, "took \(elapsed) s")
    }
}
