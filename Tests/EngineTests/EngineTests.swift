import ConfigModel
import Dispatch
import Foundation
import Glibc
import Loader
import Testing

@testable import Engine

/// The engine in this process, on a loop of its own thread: what only an in-process test can
/// see, such as a retired generation's memory being freed.
@Suite struct GenerationLifetimeTests {
    /// Runs `body` on the loop's thread and waits for its result.
    static func onLoop<T: Sendable>(_ engine: Engine, _ body: @escaping @Sendable () -> T) -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        engine.loop.post {
            box.value = body()
            done.signal()
        }
        done.wait()
        return box.value!
    }

    static func listeningSocket() -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 16)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, UInt16(bigEndian: addr.sin_port))
    }

    static func connect(_ port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        return fd
    }

    @Test func retiredGenerationIsFreed() throws {
        let server = Self.listeningSocket()
        defer { close(server.fd) }
        let probe = Self.listeningSocket()
        close(probe.fd)  // a free port for strata's listener
        let text = """
            defaults
                mode tcp
                timeout connect 2s
            listen app
                bind 127.0.0.1:\(probe.port)
                server s1 127.0.0.1:\(server.port)
            """
        let loaded = try ConfigLoader().load(text: text, file: "test.cfg").get()
        let cache = ListenerCache()
        let keys = loaded.config.proxies.flatMap { p in p.binds.map { ListenerKey($0) } }
        let fds = try cache.acquire(keys).get()
        let engine = Engine(defaultLoop: false)
        weak var firstConfig: ConfigGeneration?
        let firstRuntime = WeakBox<Generation>()
        do {
            let config = ConfigGeneration(id: 1, hash: loaded.hash, config: loaded.config, files: [])
            let generation = try Engine.makeGeneration(config)
            firstConfig = config
            firstRuntime.value = generation
            let handoff = UncheckedBox(generation)
            _ = Self.onLoopBeforeRun(engine) { engine.activate(handoff.value, listenerFDs: fds) }
        }
        let thread = Thread { engine.run() }
        thread.start()

        // A session on generation 1, established with the server.
        let client = Self.connect(probe.port)
        let accepted = accept(server.fd, nil, nil)
        #expect(accepted >= 0)
        #expect(Self.onLoop(engine) { engine.generations.map(\.sessions) } == [1])

        let second = UncheckedBox(try Engine.makeGeneration(ConfigGeneration(id: 2, hash: loaded.hash, config: loaded.config, files: [])))
        let dropped = Self.onLoop(engine) { engine.activate(second.value, listenerFDs: fds) }
        #expect(dropped.isEmpty)
        let draining = Self.onLoop(engine) { engine.generations.map { "\($0.id) \($0.state.rawValue) \($0.sessions)" } }
        #expect(draining == ["1 draining 1", "2 active 0"])
        #expect(firstConfig != nil)

        // Both ends close: the session ends, generation 1 retires and is freed.
        close(client)
        close(accepted)
        var retired = false
        for _ in 0..<200 where !retired {
            retired = Self.onLoop(engine) { engine.generations.map(\.id) } == [2]
            if !retired { usleep(10_000) }
        }
        #expect(retired)
        #expect(Self.onLoop(engine) { firstRuntime.value == nil })
        #expect(firstConfig == nil)

        Self.onLoop(engine) { engine.stop() }
        cache.release(keys)
    }

    /// Runs `body` on the loop before its thread runs it (the loop is idle, so this is safe).
    static func onLoopBeforeRun<T>(_ engine: Engine, _ body: () -> T) -> T { body() }
}

final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

final class WeakBox<T: AnyObject>: @unchecked Sendable {
    weak var value: T?
}
