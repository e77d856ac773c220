import ConfigModel
import Dispatch
import Foundation
import Glibc
import Loader
import StrataTestSupport
import Synchronization
import Testing

@testable import Engine

/// A loopback server for checks and proxied traffic: it answers HTTP, replies to anything with a
/// fixed text, or holds connections; it can stop (connections refused) and start again on the
/// same port; it counts connections and keeps what each sent first.
final class CheckTarget: @unchecked Sendable {
    enum Mode: Sendable {
        /// Reads a request head, answers this text, closes.
        case http(String)
        /// Reads once, answers this text, closes.
        case reply(String)
        /// Holds the connection until the peer closes it.
        case silent
    }

    let port: UInt16
    private struct State {
        var fd: Int32 = -1
        var mode: Mode
        var accepted = 0
        var received: [String] = []
    }
    private let state: Guarded<State>

    init(_ mode: Mode) throws {
        let l = try TestSocket.listen(backlog: 64, what: "check target")
        port = l.port
        state = Guarded(State(fd: l.fd, mode: mode))
        serve(l.fd)
    }

    var mode: Mode {
        get { state.withLock { $0.mode } }
        set { state.withLock { $0.mode = newValue } }
    }
    var accepted: Int { state.withLock { $0.accepted } }
    var received: [String] { state.withLock { $0.received } }

    /// Closes the listening socket: connections are refused.
    func stop() {
        let fd = state.withLock { s -> Int32 in
            let fd = s.fd
            s.fd = -1
            return fd
        }
        guard fd >= 0 else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    /// Listens again on the same port.
    func restart() throws {
        let fd = try TestSocket.listen(port: port, backlog: 64, what: "check target").fd
        state.withLock { $0.fd = fd }
        serve(fd)
    }

    private func serve(_ fd: Int32) {
        TestSocket.acceptLoop(fd, timeout: 3) { [self] c in
            state.withLock { $0.accepted += 1 }
            Thread { [self] in self.handle(c) }.start()
            return true
        }
    }

    private func handle(_ c: Int32) {
        defer { close(c) }
        var chunk = [UInt8](repeating: 0, count: 4096)
        var input: [UInt8] = []
        switch mode {
        case .http(let response):
            while !input.containsSubsequence([13, 10, 13, 10]) {
                let n = recv(c, &chunk, chunk.count, 0)
                if n <= 0 { return }
                input += chunk[0..<n]
            }
            state.withLock { $0.received.append(String(decoding: input, as: UTF8.self)) }
            TestSocket.sendAll(c, response)
        case .reply(let text):
            let n = recv(c, &chunk, chunk.count, 0)
            if n <= 0 { return }
            state.withLock { $0.received.append(String(decoding: chunk[0..<n], as: UTF8.self)) }
            TestSocket.sendAll(c, text)
        case .silent:
            while recv(c, &chunk, chunk.count, 0) > 0 {}
        }
    }
}

/// An engine on its own thread serving one `listen be` section built as values, with the health
/// of its servers and the admin commands reachable from the test.
final class HealthTestProxy: @unchecked Sendable {
    let engine = Engine(defaultLoop: false)
    let cache = ListenerCache()
    let port: UInt16
    let keys: [ListenerKey]
    private final class Lines: Sendable {
        let lines = Guarded<[String]>([])
    }
    private let noticeLog = Lines()
    private var nextID = 1

    init(mode: ProxyMode = .tcp, servers: [ConfigModel.Server], configure: (inout Proxy) -> Void = { _ in }) throws {
        port = TestSocket.freePort()
        keys = [ListenerKey(endpoint: SocketEndpoint(address: .v4(0x7f00_0001), port: port), v6only: false,
                            interface: nil, backlog: ListenerKey.defaultBacklog, reusePort: true)]
        engine.notice = { [noticeLog] line, _, _ in noticeLog.lines.withLock { $0.append(line) } }
        let generation = makeGeneration(mode: mode, servers: servers, configure: configure)
        let fds = try cache.acquire(keys).get()
        engine.activate(generation, listenerFDs: fds)
        let engine = self.engine
        Thread { engine.run() }.start()
    }

    static func server(_ name: String, _ port: UInt16, id: Int = 1, _ configure: (inout ServerOptions) -> Void = { _ in }) -> ConfigModel.Server {
        var options = ServerOptions()
        configure(&options)
        return ConfigModel.Server(name: name, location: SourceLocation(file: "test", line: id), id: id, host: "127.0.0.1",
                                  address: .v4(0x7f00_0001), port: port, options: options)
    }

    /// `check inter 100 rise R fall F` and friends.
    static func checked(_ o: inout ServerOptions, inter: Int = 100, rise: Int = 1, fall: Int = 1) {
        o.check.enabled = true
        o.check.interval = inter
        o.check.rise = rise
        o.check.fall = fall
    }

    /// `carryingFrom`: the generation serving, read off the loop as the daemon's reload builder
    /// reads it (the caller keeps it alive).
    func makeGeneration(mode: ProxyMode, servers: [ConfigModel.Server], configure: (inout Proxy) -> Void,
                        carryingFrom previous: Generation? = nil) -> Generation {
        let here = SourceLocation(file: "test", line: 1)
        var proxy = Proxy(name: "be", kind: .listen, location: here, id: 2)
        proxy.mode = mode
        proxy.binds = [Bind(location: here, endpoint: SocketEndpoint(address: .v4(0x7f00_0001), port: port))]
        proxy.servers = servers
        proxy.timeouts.connect = 1000
        proxy.timeouts.client = 5000
        proxy.timeouts.server = 5000
        configure(&proxy)
        defer { nextID += 1 }
        let config = Config(global: GlobalSettings(), proxies: [proxy])
        return try! engine.makeGeneration(ConfigGeneration(id: nextID, hash: "h\(nextID)", config: config, files: []),
                                          carryingFrom: previous)
    }

    /// Activates a new generation on the loop (a reload); `inspect` runs right after, in the same
    /// loop callback (nothing else can happen in between).
    @discardableResult
    /// `carrying`: built from the generation serving (off the loop, as the daemon builds a reload),
    /// which then hands its counters and server states over while it is built.
    func reload<T: Sendable>(mode: ProxyMode = .tcp, servers: [ConfigModel.Server], configure: (inout Proxy) -> Void = { _ in },
                             carrying: Bool = false, inspect: @escaping (Engine) -> T = { _ in () }) throws -> T {
        let previous = carrying ? onLoop { UncheckedBox($0.current) }.value : nil
        let generation = UncheckedBox(makeGeneration(mode: mode, servers: servers, configure: configure, carryingFrom: previous))
        let fds = try cache.acquire(keys).get()
        let box = UncheckedBox(inspect)
        return onLoop { engine in
            engine.activate(generation.value, listenerFDs: fds)
            return box.value(engine)
        }
    }

    func onLoop<T: Sendable>(_ body: @escaping (Engine) -> T) -> T {
        let engine = self.engine
        let box = UncheckedBox(body)
        return GenerationLifetimeTests.onLoop(engine) { box.value(engine) }
    }

    func health(_ name: String) -> ServerHealth {
        onLoop { $0.current!.backends["be"]!.servers.first { $0.name == name }!.state.health }
    }

    /// The server the balancer picks now, by name ("-" when none is usable).
    func pick() -> String {
        onLoop { engine in
            if case .server(let s) = engine.current!.backends["be"]!.pickServer(on: engine.workerLoops[0], excluding: nil, source: nil) { return s.name }
            return "-"
        }
    }

    func command(_ line: String, level: AccessLevel = .admin) -> String {
        let words = line.split(separator: " ").map(String.init)
        return onLoop { $0.admin(words, level: level) }
    }

    var notices: [String] { noticeLog.lines.withLock { $0 } }

    /// Polls `condition` every 5 ms for up to `seconds`.
    func wait(_ seconds: Double = 3, _ condition: (HealthTestProxy) -> Bool) -> Bool {
        eventually(seconds: seconds, every: 0.005) { condition(self) }
    }

    func stop() {
        onLoop { $0.stop() }
        cache.release(keys)
    }
}

/// Health checks in the engine over real loopback sockets.
@Suite(.serialized) struct HealthCheckEngineTests {
    typealias P = HealthTestProxy

    static func matches(_ line: String, prefix: String, suffix: String) -> Bool {
        guard line.hasPrefix(prefix), line.hasSuffix(suffix) else { return false }
        let middle = line.dropFirst(prefix.count).dropLast(suffix.count)
        return !middle.isEmpty && middle.allSatisfy(\.isNumber)
    }

    /// Connects through the proxy, sends a byte, returns what comes back ("" when closed at once).
    static func exchange(_ port: UInt16, send text: String = "x") -> String {
        guard let fd = TestSocket.connect(port) else { return "" }
        defer { close(fd) }
        TestSocket.sendAll(fd, text)
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &chunk, chunk.count, 0)
        return n > 0 ? String(decoding: chunk[0..<n], as: UTF8.self) : ""
    }

    @Test func failingServerGoesDownAfterFallAndBackUpAfterRise() throws {
        let target = try CheckTarget(.silent)
        defer { target.stop() }
        let proxy = try P(servers: [P.server("s1", target.port) {
            P.checked(&$0, inter: 100, rise: 2, fall: 3)
            $0.check.downInterval = 400
        }])
        defer { proxy.stop() }
        #expect(proxy.wait { $0.health("s1").health == 4 })
        #expect(proxy.health("s1").lastCheck.status == .layer4OK)

        target.stop()
        #expect(proxy.wait { $0.health("s1").operational == .stopped })
        let down = proxy.health("s1")
        #expect(down.failedChecks == 3)
        #expect(down.lastCheck.status == .layer4Connection && down.lastCheck.info == "Connection refused")
        #expect(proxy.notices.contains {
            Self.matches($0, prefix: "Server be/s1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: ",
                         suffix: "ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.")
        })
        #expect(proxy.notices.contains("backend be has no server available!"))
        #expect(proxy.pick() == "-")

        try target.restart()
        // One success is not enough (rise 2): going up, still DOWN.
        #expect(proxy.wait { $0.health("s1").health == 1 })
        #expect(proxy.health("s1").operational == .stopped)
        #expect(proxy.wait { $0.health("s1").operational == .running })
        #expect(proxy.notices.contains {
            Self.matches($0, prefix: "Server be/s1 is UP, reason: Layer4 check passed, check duration: ",
                         suffix: "ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.")
        })
        #expect(proxy.pick() == "s1")
    }

    static func httpChecked(_ target: CheckTarget) -> ConfigModel.Server {
        P.server("s1", target.port) { P.checked(&$0) }
    }

    static func httpCheck(_ expectations: [HTTPCheckExpectation]) -> (inout Proxy) -> Void {
        { proxy in
            var check = HTTPCheck()
            check.method = "GET"
            check.uri = "/health"
            check.version = "HTTP/1.1"
            check.headerList = [.init(name: "Host", value: "example.test")]
            check.expectations = expectations
            proxy.checks.kind = .http(check)
        }
    }

    @Test func httpCheckExpectations() throws {
        let target = try CheckTarget(.http("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        defer { target.stop() }
        let proxy = try P(mode: .http, servers: [Self.httpChecked(target)], configure: Self.httpCheck([]))
        defer { proxy.stop() }
        #expect(proxy.wait { $0.health("s1").operational == .stopped })
        #expect(proxy.notices.contains {
            Self.matches($0, prefix: "Server be/s1 is DOWN, reason: Layer7 wrong status, code: 404, info: \"Not Found\", check duration: ",
                         suffix: "ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.")
        })
        #expect(target.received.first == "GET /health HTTP/1.1\r\nhost: example.test\r\nconnection: close\r\n\r\n")

        // A status and a body expectation, both met.
        target.mode = .http("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world")
        try proxy.reload(mode: .http, servers: [Self.httpChecked(target)],
                         configure: Self.httpCheck([.init(kind: .status, pattern: "200", negated: false),
                                                    .init(kind: .string, pattern: "world", negated: false)]))
        #expect(proxy.wait { $0.health("s1").operational == .running })
        #expect(proxy.notices.contains {
            Self.matches($0, prefix: "Server be/s1 is UP, reason: Layer7 check passed, code: 200, check duration: ",
                         suffix: "ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.")
        })

        // Negation: the body must not say hello.
        try proxy.reload(mode: .http, servers: [Self.httpChecked(target)],
                         configure: Self.httpCheck([.init(kind: .string, pattern: "hello", negated: true)]))
        #expect(proxy.wait { $0.health("s1").operational == .stopped })
        #expect(proxy.health("s1").lastCheck.info == "HTTP check matched unwanted content")
        #expect(proxy.health("s1").lastCheck.status == .layer7Response)

        // rstatus.
        try proxy.reload(mode: .http, servers: [Self.httpChecked(target)],
                         configure: Self.httpCheck([.init(kind: .statusRegex, pattern: "^2[0-9]{2}$", negated: false)]))
        #expect(proxy.wait { $0.health("s1").operational == .running })
    }

    @Test func tcpCheckSendAndExpect() throws {
        let target = try CheckTarget(.reply("+PONG\r\n"))
        defer { target.stop() }
        func rules(_ expected: String) -> (inout Proxy) -> Void {
            { $0.checks.kind = .tcpCheck([.send(Array("PING\r\n".utf8)), .expectString(expected, negated: false)]) }
        }
        let proxy = try P(servers: [P.server("s1", target.port) { P.checked(&$0) }], configure: rules("+PONG"))
        defer { proxy.stop() }
        #expect(proxy.wait { $0.health("s1").lastCheck.status == .layer7OK })
        #expect(proxy.health("s1").lastCheck.info == "(tcp-check)")
        #expect(proxy.health("s1").operational == .running)
        #expect(target.received.first == "PING\r\n")

        try proxy.reload(servers: [P.server("s1", target.port) { P.checked(&$0) }], configure: rules("+PANG"))
        #expect(proxy.wait { $0.health("s1").operational == .stopped })
        #expect(proxy.notices.contains {
            Self.matches($0, prefix: "Server be/s1 is DOWN, reason: Layer7 invalid response, info: \"TCPCHK did not match content '+PANG' at step 2\", check duration: ",
                         suffix: "ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.")
        })
    }

    static func backupServers(_ a: CheckTarget, _ b: CheckTarget, _ c: CheckTarget) -> [ConfigModel.Server] {
        [P.server("s1", a.port, id: 1) { P.checked(&$0) },
         P.server("b1", b.port, id: 2) { $0.backup = true },
         P.server("b2", c.port, id: 3) { $0.backup = true }]
    }

    @Test func backupsTakeOverAndHandBack() throws {
        let a = try CheckTarget(.reply("a")), b = try CheckTarget(.reply("b")), c = try CheckTarget(.reply("c"))
        defer { a.stop(); b.stop(); c.stop() }
        let proxy = try P(servers: Self.backupServers(a, b, c))
        defer { proxy.stop() }
        #expect(proxy.wait { $0.health("s1").lastCheck.status == .layer4OK })
        #expect((0..<4).map { _ in proxy.pick() } == ["s1", "s1", "s1", "s1"])

        a.stop()
        #expect(proxy.wait { $0.health("s1").operational == .stopped })
        #expect(proxy.notices.contains {
            Self.matches($0, prefix: "Server be/s1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: ",
                         suffix: "ms. 0 active and 2 backup servers left. Running on backup. 0 sessions active, 0 requeued, 0 remaining in queue.")
        })
        // Without `option allbackups`, only the first backup.
        #expect(Set((0..<4).map { _ in proxy.pick() }) == ["b1"])
        #expect(Self.exchange(proxy.port) == "b")

        // With it, every backup.
        try proxy.reload(servers: Self.backupServers(a, b, c)) { $0.checks.allBackups = true }
        #expect(Set((0..<4).map { _ in proxy.pick() }) == ["b1", "b2"])

        try a.restart()
        #expect(proxy.wait { $0.health("s1").operational == .running })
        #expect(Set((0..<4).map { _ in proxy.pick() }) == ["s1"])
        #expect(Self.exchange(proxy.port) == "a")
    }

    @Test func noUsableServerClosesTCPAndAnswers503() throws {
        let target = try CheckTarget(.reply("hi"))
        defer { target.stop() }
        let tcp = try P(servers: [P.server("s1", target.port)])
        #expect(Self.exchange(tcp.port) == "hi")
        #expect(tcp.wait { $0.onLoop { $0.generations.first?.sessions } == 0 })
        #expect(tcp.command("set server be/s1 health down") == "")
        #expect(tcp.notices.contains("Server be/s1 is DOWN, changed from CLI. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."))
        #expect(Self.exchange(tcp.port) == "")
        tcp.stop()

        let http = try P(mode: .http, servers: [P.server("s1", target.port)])
        defer { http.stop() }
        #expect(http.command("disable server be/s1") == "")
        #expect(http.notices.contains("Server be/s1 is going DOWN for maintenance. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."))
        #expect(Self.exchange(http.port, send: "GET / HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 503 "))
    }

    @Test func downAndMaintenanceCarriedAcrossReloadWithoutFlap() throws {
        let dead = try CheckTarget(.silent)
        dead.stop()
        let alive = try CheckTarget(.silent)
        defer { alive.stop() }
        func servers(s2Weight: Int = 1) -> [ConfigModel.Server] {
            [P.server("s1", dead.port, id: 1) { P.checked(&$0, inter: 300, rise: 2, fall: 2) },
             P.server("s2", alive.port, id: 2) { $0.weight = s2Weight },
             P.server("s3", alive.port, id: 3) { $0.weight = 2 }]
        }
        let proxy = try P(servers: servers())
        defer { proxy.stop() }
        #expect(proxy.wait { $0.health("s1").operational == .stopped })
        #expect(proxy.command("disable server be/s2") == "")
        #expect(proxy.command("set weight be/s3 5") == "")
        let checker = proxy.onLoop { ObjectIdentifier($0.healthMonitor.checkers.first!.value) }
        let upsBefore = proxy.notices.filter { $0.contains(" is UP") }.count

        // Right after the swap, in the same loop callback: s1 DOWN, s2 MAINT, never selected.
        let right = try proxy.reload(servers: servers(), inspect: { engine -> [String] in
            let b = engine.current!.backends["be"]!
            var picks: [String] = []
            for _ in 0..<6 {
                if case .server(let s) = b.pickServer(on: engine.workerLoops[0], excluding: nil, source: nil) { picks.append(s.name) }
            }
            return picks
        })
        #expect(Set(right) == ["s3"])
        #expect(proxy.health("s1").operational == .stopped && proxy.health("s1").health == 0)
        #expect(proxy.health("s2").inMaintenance)
        #expect(proxy.health("s3").weight == 5)
        // The same checker carries on, and the next checks keep s1 DOWN: no flap.
        #expect(proxy.onLoop { ObjectIdentifier($0.healthMonitor.checkers.first!.value) } == checker)
        usleep(700_000)
        #expect(proxy.notices.filter { $0.contains(" is UP") }.count == upsBefore)
        #expect(proxy.health("s1").operational == .stopped)
        let state = proxy.command("show servers state be").split(separator: "\n").map(String.init)
        #expect(state.count == 5)
        #expect(state[2].hasPrefix("2 be 1 s1 127.0.0.1 0 0 1 1 "))
        #expect(state[3].hasPrefix("2 be 2 s2 127.0.0.1 0 1 1 1 "))
        #expect(state[4].hasPrefix("2 be 3 s3 127.0.0.1 2 0 5 2 "))

        // A configuration that changes s2's weight keeps its MAINT; s3 unchanged keeps weight 5.
        try proxy.reload(servers: servers(s2Weight: 3))
        #expect(proxy.health("s2").inMaintenance && proxy.health("s2").weight == 3)
        #expect(proxy.health("s3").weight == 5)
        #expect(proxy.command("enable server be/s2") == "")
        #expect(proxy.notices.last == "Server be/s2 is UP/READY (leaving forced maintenance).")
        #expect(Set((0..<8).map { _ in proxy.pick() }) == ["s2", "s3"])
    }

    /// A reload built from the generation serving (the daemon's way) meets only the carried
    /// states whose line changed: an unchanged line keeps what the admin socket set, a changed
    /// one applies its setting, and `disabled` added or removed on a line moves the server.
    @Test func aReloadBuiltFromTheServingGenerationMeetsOnlyTheLinesThatChanged() throws {
        let target = try CheckTarget(.silent)
        defer { target.stop() }
        func servers(s1Disabled: Bool = false, s2Weight: Int = 1) -> [ConfigModel.Server] {
            [P.server("s1", target.port, id: 1) { $0.disabled = s1Disabled },
             P.server("s2", target.port, id: 2) { $0.weight = s2Weight },
             P.server("s3", target.port, id: 3) { $0.weight = 2 }]
        }
        let proxy = try P(servers: servers())
        defer { proxy.stop() }
        #expect(proxy.command("disable server be/s2") == "")
        #expect(proxy.command("set weight be/s3 5") == "")

        // Nothing changed: nothing to meet, and the runtime settings stay.
        let unchanged = try proxy.reload(servers: servers(), carrying: true) { engine in
            engine.current!.changedServers.map(\.name)
        }
        #expect(unchanged.isEmpty)
        #expect(proxy.health("s2").inMaintenance && proxy.health("s3").weight == 5)

        // s1 becomes `disabled`, s2's weight changes: those two meet their line, s3 keeps 5.
        try proxy.reload(servers: servers(s1Disabled: true, s2Weight: 3), carrying: true)
        #expect(proxy.health("s1").inMaintenance)
        #expect(proxy.health("s2").inMaintenance && proxy.health("s2").weight == 3)
        #expect(proxy.health("s3").weight == 5)
        #expect(proxy.notices.contains { $0.hasPrefix("Server be/s1 is going DOWN for maintenance") })

        // `disabled` removed: s1 leaves the maintenance its line gave it.
        try proxy.reload(servers: servers(s2Weight: 3), carrying: true)
        #expect(!proxy.health("s1").inMaintenance)
        #expect(Set((0..<8).map { _ in proxy.pick() }) == ["s1", "s3"])
    }

    @Test func oneCheckerPerIdentityAcrossReloads() throws {
        let target = try CheckTarget(.silent)
        defer { target.stop() }
        let servers = [P.server("s1", target.port) { P.checked(&$0, inter: 100) }]
        let proxy = try P(servers: servers)
        defer { proxy.stop() }
        let first = WeakBox<Generation>()
        proxy.onLoop { first.value = $0.current }
        usleep(250_000)
        let before = target.accepted
        let start = Date()
        for _ in 0..<6 {
            usleep(150_000)
            try proxy.reload(servers: servers)
        }
        let elapsed = Date().timeIntervalSince(start)
        let checks = target.accepted - before
        // One check every 100 ms: two checkers would make twice as many.
        #expect(Double(checks) <= elapsed * 10 + 2)
        #expect(Double(checks) >= elapsed * 10 * 0.6)
        #expect(proxy.onLoop { $0.healthMonitor.checkerCount } == 1)
        // Draining generations hold no checker: with no session they retire and are freed.
        #expect(proxy.wait { $0.onLoop { $0.generations.count } == 1 })
        #expect(proxy.onLoop { _ in first.value == nil })
    }

    @Test func observeLayer4MarksServerDown() throws {
        let target = try CheckTarget(.silent)
        target.stop()
        let proxy = try P(servers: [P.server("s1", target.port) {
            $0.check.observe = .layer4
            $0.check.errorLimit = 2
            $0.check.onError = .markDown
        }]) { $0.retries = 0 }
        defer { proxy.stop() }
        #expect(Self.exchange(proxy.port) == "")
        #expect(proxy.health("s1").operational == .running)
        #expect(Self.exchange(proxy.port) == "")
        #expect(proxy.wait { $0.health("s1").operational == .stopped })
        // The data loop tells the control loop what it saw; the session that saw it may have
        // ended by then (0 or 1 sessions active).
        #expect(proxy.notices.contains { $0.hasPrefix("Server be/s1 is DOWN, reason: Health analyze, info: \"Detected 2 consecutive errors, last one was: L4 unsuccessful connection\". 0 active and 0 backup servers left.") })
        #expect(proxy.health("s1").lastCheck.status == .healthAnalyze)
    }

    @Test func markedDownShutsDownSessions() throws {
        let target = try CheckTarget(.silent)
        defer { target.stop() }
        let proxy = try P(servers: [P.server("s1", target.port) { $0.check.shutdownSessionsOnDown = true }])
        defer { proxy.stop() }
        let client = try #require(TestSocket.connect(proxy.port))
        defer { close(client) }
        TestSocket.sendAll(client, "x")
        #expect(proxy.wait { _ in target.accepted == 1 })
        #expect(proxy.command("set server be/s1 health down") == "")
        var byte: UInt8 = 0
        // Closed: a FIN, or a reset when the kill came before strata had read the client's byte
        // (a close with unread bytes resets) — either way nothing more arrives.
        let n = recv(client, &byte, 1, 0)
        let failure = errno
        #expect(n == 0 || (n < 0 && failure == ECONNRESET), "recv \(n) errno \(failure)")
        #expect(proxy.onLoop { $0.generations.first?.sessionsKilled } == 1)
    }

    @Test func adminCommandsOnARunningEngine() throws {
        let a = try CheckTarget(.reply("a")), b = try CheckTarget(.reply("b"))
        defer { a.stop(); b.stop() }
        let proxy = try P(servers: [P.server("s1", a.port, id: 1), P.server("s2", a.port, id: 2) { P.checked(&$0, inter: 5000) }])
        defer { proxy.stop() }
        let lines = proxy.command("show servers state", level: .user).split(separator: "\n").map(String.init)
        #expect(lines[0] == "1")
        #expect(lines[1] == "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port")
        #expect(lines[2] == "2 be 1 s1 127.0.0.1 2 0 1 1 0 1 0 2 0 0 0 0 - \(a.port) - 0 0 - - 0")
        #expect(proxy.wait { $0.health("s2").lastCheck.status == .layer4OK })
        let s2 = proxy.command("show servers state be").split(separator: "\n").map(String.init)[3]
        #expect(s2 == "2 be 2 s2 127.0.0.1 2 0 1 1 0 6 3 1 6 0 0 0 - \(a.port) - 0 0 - - 0")
        #expect(proxy.command("show backend", level: .user) == "# name\nbe")
        #expect(proxy.command("show servers state nope") == "Can't find backend.")

        #expect(proxy.command("disable server be/s1", level: .operator_) == "Permission denied")
        #expect(proxy.command("disable server be/zz") == "No such server.")
        #expect(proxy.command("disable server nob/s1") == "No such backend.")
        #expect(proxy.command("set server be/s1 weight 300") == "Absolute weight can only be between 0 and 256 inclusive.")
        #expect(proxy.command("set server be/s1 weight 3") == "")
        #expect(proxy.command("get weight be/s1", level: .user) == "3 (initial 1)")

        #expect(proxy.command("set server be/s1 state drain") == "")
        #expect(proxy.notices.last == "Server be/s1 enters drain state. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.")
        #expect(Set((0..<4).map { _ in proxy.pick() }) == ["s2"])
        #expect(proxy.command("set server be/s1 state ready") == "")
        #expect(proxy.notices.last == "Server be/s1 is UP (leaving forced drain).")

        #expect(proxy.command("disable health be/s2") == "")
        #expect(proxy.health("s2").checkStateFlags == 2)
        #expect(proxy.command("enable health be/s2") == "")

        // A new address: new connections go there.
        #expect(proxy.command("set server be/s2 state maint") == "")
        #expect(proxy.command("set server be/s1 addr 127.0.0.1 port \(b.port)")
            == "no need to change the addr, port changed from '\(a.port)' to '\(b.port)' by 'stats socket command'")
        #expect(proxy.command("set server be/s1 addr 1.2.3.4.5") == "Invalid addr '1.2.3.4.5' by 'stats socket command'")
        #expect(Self.exchange(proxy.port) == "b")
        // It survives a reload that leaves the server unchanged.
        try proxy.reload(servers: [P.server("s1", a.port, id: 1), P.server("s2", a.port, id: 2) { P.checked(&$0, inter: 5000) }])
        #expect(Self.exchange(proxy.port) == "b")
        #expect(proxy.command("show servers state be").contains("2 be 1 s1 127.0.0.1 2 0 3 1 "))
    }
}
