import ConfigModel
import Dispatch
import Foundation
import Glibc
import Loader
import StrataTestSupport
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

    /// With one loop and with several: a generation every loop swapped away from is freed once
    /// the last loop lets it go.
    @Test(arguments: [1, 2, 4])
    func retiredGenerationIsFreed(loops: Int) throws {
        let server = try TestSocket.listen(what: "server")
        defer { close(server.fd) }
        let port = TestSocket.freePort()  // for strata's listener
        let text = """
            defaults
                mode tcp
                timeout connect 2s
            listen app
                bind 127.0.0.1:\(port)
                server s1 127.0.0.1:\(server.port)
            """
        let loaded = try ConfigLoader().load(text: text, file: "test.cfg").get()
        let cache = ListenerCache(loops: loops)
        let keys = loaded.config.proxies.flatMap { p in p.binds.map { ListenerKey($0) } }
        let fds = try cache.acquire(keys).get()
        #expect(fds.count == loops)
        let engine = Engine(loops: loops, defaultLoop: false)
        weak var firstConfig: ConfigGeneration?
        let firstRuntime = WeakBox<Generation>()
        do {
            let config = ConfigGeneration(id: 1, hash: loaded.hash, config: loaded.config, files: [])
            let generation = try engine.makeGeneration(config)
            firstConfig = config
            firstRuntime.value = generation
            let handoff = UncheckedBox(generation)
            _ = Self.onLoopBeforeRun(engine) { engine.activate(handoff.value, listenerFDs: fds) }
        }
        let thread = Thread { engine.run() }
        thread.start()

        // A session on generation 1, established with the server.
        let client = try #require(TestSocket.connect(port))
        let accepted = accept(server.fd, nil, nil)
        #expect(accepted >= 0)
        #expect(Self.onLoop(engine) { engine.generations.map(\.sessions) } == [1])

        let second = UncheckedBox(try engine.makeGeneration(ConfigGeneration(id: 2, hash: loaded.hash, config: loaded.config, files: [])))
        let dropped = Self.onLoop(engine) { engine.activate(second.value, listenerFDs: fds) }
        #expect(dropped.isEmpty)
        let draining = Self.onLoop(engine) { engine.generations.map { "\($0.id) \($0.state.rawValue) \($0.sessions)" } }
        #expect(draining == ["1 draining 1", "2 active 0"])
        #expect(firstConfig != nil)

        // Both ends close: the session ends, generation 1 retires and is freed.
        close(client)
        close(accepted)
        #expect(eventually(seconds: 5, every: 0.01) { Self.onLoop(engine) { engine.generations.map(\.id) } == [2] })
        // Freed once every loop's last reference is gone, which may be a loop turn after the list
        // dropped it (a loaded machine showed the gap).
        #expect(eventually(seconds: 5, every: 0.01) { Self.onLoop(engine) { firstRuntime.value == nil } })
        #expect(eventually(seconds: 5, every: 0.01) { firstConfig == nil })

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
