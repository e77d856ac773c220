import ConfigModel
@testable import Engine

/// A data loop for tests that pick servers or count without running a loop (what the per-loop
/// state of backends and servers is indexed by).
let testLoop = EventLoop(isDefault: false, index: 0)

/// A generation built for one data loop (`loop` defaults to `testLoop`), for tests that need
/// its objects but no running engine.
func testGeneration(_ config: ConfigGeneration, carryingFrom previous: Generation? = nil) throws -> Generation {
    try Generation(config: config, carryingFrom: previous, loops: [testLoop])
}
