import Foundation
import Glibc
import StrataTestSupport
import Synchronization
import Testing

/// One scrape of strata's `/metrics`, parsed by Python's `prometheus_client` (the reference
/// parser: a line it refuses fails the scrape).
struct PrometheusScrape {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// Family name -> type (`prometheus_client` names a counter family without `_total`).
    var types: [String: String] = [:]
    var samples: [Sample] = []

    static let parser = """
        import sys, json
        from prometheus_client.parser import text_string_to_metric_families
        out = {"types": {}, "samples": []}
        for family in text_string_to_metric_families(sys.stdin.read()):
            out["types"][family.name] = family.type
            for s in family.samples:
                # NaN (HAProxy's empty field) is not JSON: null.
                out["samples"].append([s.name, s.labels, None if s.value != s.value else s.value])
        print(json.dumps(out))
        """

    /// Parses exposition text; throws with the parser's complaint.
    init(text: String) throws {
        let (status, output) = try TestTools.python(Self.parser, input: text)
        guard status == 0, let data = output.data(using: .utf8),
              let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TestSocket.Failure(description: "prometheus_client refused the scrape: \(output)")
        }
        types = json["types"] as? [String: String] ?? [:]
        for item in json["samples"] as? [[Any]] ?? [] {
            guard item.count == 3, let name = item[0] as? String, let labels = item[1] as? [String: String] else { continue }
            let value = (item[2] as? NSNumber)?.doubleValue ?? .nan
            samples.append(Sample(name: name, labels: labels, value: value))
        }
    }

    /// Scrapes `http://127.0.0.1:port/metrics` (a connection of its own) and parses it.
    static func scrape(_ port: UInt16, path: String = "/metrics") throws -> PrometheusScrape {
        guard let client = TestHTTPClient(port: port) else { throw TestSocket.Failure(description: "cannot connect to \(port)") }
        guard let answer = client.get(path), answer.status == 200 else {
            throw TestSocket.Failure(description: "no scrape from \(port)")
        }
        guard answer.head.lowercased().contains("content-type: text/plain; version=0.0.4") else {
            throw TestSocket.Failure(description: "not Prometheus' content type: \(answer.head)")
        }
        return try PrometheusScrape(text: answer.body)
    }

    /// The value of the sample `name` with exactly these labels (nil: no such series).
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    /// Every sample of `name`.
    func series(_ name: String) -> [Sample] { samples.filter { $0.name == name } }

    /// The samples that carry `generation="id"`.
    func samples(ofGeneration id: Int) -> [Sample] { samples.filter { $0.labels["generation"] == String(id) } }
}

/// An HTTP origin whose answers wait until the test releases them: a request stays in flight as
/// long as the test needs (a session that holds its generation through a drain). `headFirst`:
/// the response head leaves at once and only the body waits (`option logasap`).
final class HeldOrigin: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    private let headFirst: Bool
    private let state = Guarded<(waiting: Int, released: Int, connections: [Int32])>((0, 0, []))

    init(headFirst: Bool = false) throws {
        self.headFirst = headFirst
        (fd, port) = try TestSocket.listen(backlog: 64, what: "held origin")
        TestSocket.acceptLoop(fd, timeout: 30) { [self] c in
            state.withLock { $0.connections.append(c) }
            Thread { [self] in self.serve(c) }.start()
            return true
        }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        release()
    }

    /// Requests received and not yet answered.
    var waiting: Int { state.withLock { $0.waiting } }

    /// Lets every waiting answer (and the ones to come) go.
    func release() { state.withLock { $0.released = Int.max } }

    private func serve(_ c: Int32) {
        defer { close(c) }
        let reader = HTTPTestReader(fd: c)
        while reader.readHead() != nil {
            let body = "held\n"
            if headFirst { _ = TestSocket.sendAll(c, "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n") }
            state.withLock { $0.waiting += 1 }
            while state.withLock({ $0.released == 0 }) { usleep(10_000) }
            state.withLock { $0.waiting -= 1 }
            let answer = headFirst ? body : "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
            guard TestSocket.sendAll(c, answer) else { return }
        }
    }
}

/// HAProxy 2.6 run by a test on a configuration of its own (its log lines on standard output,
/// its `show stat` on a stats socket), stopped by its pid when the test releases it.
final class HAProxyProcess: @unchecked Sendable {
    let directory: URL
    let socket: String
    let process = Process()
    private let lines = LineBuffer()
    private let pipe = Pipe()

    /// Starts `haproxy -db -f` on `config` (`@SOCKET@` is replaced by a stats socket path).
    init(config: String) throws {
        directory = StrataProcess.makeDirectory()
        socket = directory.appendingPathComponent("haproxy.sock").path
        let path = directory.appendingPathComponent("haproxy.cfg").path
        // HAProxy refuses a last line without its LF.
        try (config.replacingOccurrences(of: "@SOCKET@", with: socket) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: TestTools.haproxy!)
        process.arguments = ["-db", "-f", path]
        process.standardOutput = pipe
        process.standardError = pipe
        let lines = self.lines
        // Held by the handler until its end (see StrataProcess).
        let pipe = self.pipe
        pipe.fileHandleForReading.readabilityHandler = { handle in
            withExtendedLifetime(pipe) {}
            let data = handle.availableData
            guard !data.isEmpty else { handle.readabilityHandler = nil; return }
            lines.append(String(decoding: data, as: UTF8.self))
        }
        try process.run()
    }

    var output: [String] { lines.lines }

    /// Waits until HAProxy answers on its stats socket (its listeners are bound by then), without
    /// connecting to a proxy (which would log a line of its own).
    func waitUntilReady() throws {
        _ = try command("show info")
    }

    /// Sends one command on the stats socket, returns the answer.
    func command(_ text: String) throws -> String {
        guard eventually(seconds: 30, { FileManager.default.fileExists(atPath: socket) }),
              let answer = TestSocket.command(text, unixSocket: socket) else {
            throw TestSocket.Failure(description: "haproxy stats socket: \(output.joined(separator: "\n"))")
        }
        return answer
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}

/// Every reload, rollback, drain start, deadline kill and retire reaches the global `log`
/// targets with its generation id (`log stdout format raw`: the message alone on its line, where
/// the daemon's own notices on standard error start with `[NOTICE]`).
@Suite(.serialized) struct ObservabilityLifecycleTests {
    static func config(port: UInt16, server: UInt16, extra: String = "") -> String {
        """
        global
            stats socket @ADMIN@ level admin
            log stdout format raw local0
            hard-stop-after 1s
        defaults
            mode tcp
            timeout connect 2s
            timeout client 30s
            timeout server 30s
        listen app
            bind 127.0.0.1:\(port)
            server s1 127.0.0.1:\(server)
        \(extra)
        """
    }

    /// The lines strata's log targets wrote (raw: no `[LEVEL]` prefix).
    static func logLines(_ strata: StrataProcess) -> [String] {
        strata.output.filter { !$0.hasPrefix("[") }
    }

    static func waitForLog(_ strata: StrataProcess, seconds: Double = 10, _ matches: (String) -> Bool) -> Bool {
        eventually(seconds: seconds) { logLines(strata).contains(where: matches) }
    }

    @Test func reloadRollbackDrainDeadlineKillAndRetireAreLoggedWithTheirGeneration() throws {
        let echo = try TestBackend(.nameThenEcho("e"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, server: echo.port))
        #expect(strata.waitForAdmin())
        // A session holds generation 1 through the reload; the deadline (1 s) kills it.
        let fd = try #require(TestSocket.connect(port))
        defer { close(fd) }
        #expect(TestSocket.readLine(fd) == "e")
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(Self.waitForLog(strata) { $0.hasPrefix("generation 2 active (hash ") })
        #expect(Self.waitForLog(strata) { $0 == "generation 1 draining: 1 sessions left" })
        #expect(Self.waitForLog(strata) { $0 == "generation 1: hard-stop-after reached, killing 1 sessions" })
        #expect(Self.waitForLog(strata) { $0 == "generation 1 retired" })

        // A rollback: the new configuration binds a port another socket holds.
        let blocker = try TestBackend(.name("blocker"))
        try strata.write(Self.config(port: port, server: echo.port, extra: """
            listen clash
                bind 127.0.0.1:\(blocker.port)
                server s1 127.0.0.1:\(echo.port)
            """))
        #expect(try strata.admin("reload").hasPrefix("Success=0"))
        #expect(Self.waitForLog(strata) { $0 == "generation 3 failed: nothing was changed" })
        #expect(Self.waitForLog(strata) { $0.hasPrefix("\(strata.configPath):14: cannot bind 127.0.0.1:\(blocker.port)") })

        // The next reload replaces generation 2, which had no session left: drained and retired at once.
        try strata.write(Self.config(port: port, server: echo.port))
        #expect(try strata.admin("reload").hasPrefix("Success=1"))
        #expect(Self.waitForLog(strata) { $0.hasPrefix("generation 4 active (hash ") })
        #expect(Self.waitForLog(strata) { $0 == "generation 2 draining: 0 sessions left" })
        #expect(Self.waitForLog(strata) { $0 == "generation 2 retired" })

        // Every lifecycle line names its generation.
        let lifecycle = Self.logLines(strata).filter { $0.hasPrefix("generation ") }
        #expect(lifecycle.count >= 8, "\(lifecycle)")
        #expect(lifecycle.allSatisfy { $0.split(separator: " ")[1].allSatisfy { $0.isNumber || $0 == ":" } })
    }

    @Test func maxGenerationsKillIsLogged() throws {
        let echo = try TestBackend(.nameThenEcho("e"))
        let port = TestSocket.freePort()
        let strata = try StrataProcess(config: Self.config(port: port, server: echo.port).replacingOccurrences(
            of: "hard-stop-after 1s", with: "max-generations 2"))
        #expect(strata.waitForAdmin())
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        for _ in 0..<2 {
            let fd = try #require(TestSocket.connect(port))
            #expect(TestSocket.readLine(fd) == "e")
            held.append(fd)
            #expect(try strata.admin("reload").hasPrefix("Success=1"))
        }
        #expect(Self.waitForLog(strata) { $0 == "generation 1: max-generations 2 exceeded, killing 1 sessions" })
        #expect(Self.waitForLog(strata) { $0 == "generation 1 retired" })
    }

    @Test func everyEventShowsOnceAndTheNewGenerationComesFirst() throws {
        let echo = try TestBackend(.nameThenEcho("e"))
        let port = TestSocket.freePort(), downPort = TestSocket.freePort(), closed = TestSocket.freePort()
        let down = "\n    listen down\n        bind 127.0.0.1:\(downPort)\n        server s1 127.0.0.1:\(closed) check inter 100ms fall 1\n"
        /// How many printed lines (stdout and stderr) contain `text`, and the first one's index.
        func count(_ text: String, in lines: [String]) -> Int { lines.filter { $0.contains(text) }.count }
        func index(_ text: String, in lines: [String]) -> Int? { lines.firstIndex { $0.contains(text) } }

        // `log stdout`: the log line is the event; standard error does not repeat it.
        let logged = try StrataProcess(config: Self.config(port: port, server: echo.port, extra: down))
        #expect(logged.waitForAdmin())
        #expect(logged.waitForOutput("Server down/s1 is DOWN"))
        let fd = try #require(TestSocket.connect(port))
        defer { close(fd) }
        #expect(TestSocket.readLine(fd) == "e")
        #expect(try logged.admin("reload").hasPrefix("Success=1"))
        #expect(Self.waitForLog(logged) { $0 == "generation 1 draining: 1 sessions left" })
        var lines = logged.output
        #expect(Self.logLines(logged).contains {
            $0.hasPrefix("generation 1 active (hash ") && $0.hasSuffix("): listening on 127.0.0.1:\(port) (app), 127.0.0.1:\(downPort) (down)")
        }, "\(lines)")
        for event in ["generation 1 active", "Server down/s1 is DOWN", "backend down has no server available!",
                      "generation 2 active", "generation 1 draining"] {
            #expect(count(event, in: lines) == 1, "\(event): \(lines)")
        }
        #expect(index("generation 2 active", in: lines) ?? .max < index("generation 1 draining", in: lines) ?? -1, "\(lines)")

        // Without a log target, standard error shows each event once, with its level.
        let quiet = try StrataProcess(config: GenerationTests.config(port: TestSocket.freePort(), server: echo.port, extraListen: down))
        #expect(quiet.waitForAdmin())
        #expect(quiet.waitForOutput("[ALERT] (\(quiet.pid)) : backend down has no server available!"))
        #expect(try quiet.admin("reload").hasPrefix("Success=1"))
        #expect(quiet.waitForOutput("[NOTICE] (\(quiet.pid)) : generation 1 retired"))
        lines = quiet.output
        for event in ["generation 1 active", "Server down/s1 is DOWN", "generation 2 active", "generation 1 draining"] {
            #expect(count(event, in: lines) == 1, "\(event): \(lines)")
        }
        #expect(index("generation 2 active", in: lines) ?? .max < index("generation 1 draining", in: lines) ?? -1, "\(lines)")
    }
}
