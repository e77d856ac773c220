import ConfigModel
import Testing
@testable import Loader

/// `nbthread`, `thread-groups` and `cpu-map` as HAProxy reads them.
@Suite struct ThreadKeywordTests {
    @Test func nbthreadIsOptionalAndBounded() throws {
        #expect(try load("global\n").config.global.nbthread == nil)
        #expect(try load("global\n    nbthread 4\n    thread-groups 1\n").config.global.nbthread == 4)
        #expect(errors("global\n    nbthread 0\n").first?.contains("test.cfg:2:") == true)
        #expect(errors("global\n    thread-groups 2\n").first?.contains("as one group") == true)
    }

    @Test func cpuMapForms() throws {
        var global = try load("""
            global
                cpu-map auto:1/1-4 0-3
                cpu-map 1/all 0,2 5-6
                cpu-map all/odd 1
            """).config.global
        global.nbthread = 4
        #expect(global.cpuMaps.count == 3)
        #expect(global.cpuMaps[0].auto && global.cpuMaps[0].threads == .ranges([1...4]) && global.cpuMaps[0].cpus == [0, 1, 2, 3])
        #expect(global.cpuMaps[1].threads == .all && global.cpuMaps[1].cpus == [0, 2, 5, 6])
        #expect(global.cpuMaps[2].threads == .odd)
        // Later lines win for the threads they name; auto pairs in order.
        let sets = try CPUMap.cpuSets(global.cpuMaps, threads: 4).get()
        #expect(sets == [[1], [0, 2, 5, 6], [1], [0, 2, 5, 6]])
        #expect(try CPUMap.cpuSets(Array(global.cpuMaps.prefix(1)), threads: 4).get() == [[0], [1], [2], [3]])
    }

    @Test func cpuMapErrors() {
        #expect(errors("global\n    cpu-map 2/1 0\n").first?.contains("process 1") == true)
        #expect(errors("global\n    cpu-map 1/x 0\n").first?.contains("not a thread set") == true)
        #expect(errors("global\n    cpu-map 1/1\n").first?.contains("needs at least one CPU set") == true)
        #expect(errors("global\n    cpu-map 1/1 a\n").first?.contains("not a CPU number") == true)
        #expect(errors("global\n    nbthread 2\n    cpu-map 1/3 0\n").first == "test.cfg:3: 'cpu-map': thread 3 is above nbthread 2")
        #expect(errors("global\n    nbthread 2\n    cpu-map auto:1/1-2 0-2\n").first
            == "test.cfg:3: 'cpu-map auto:' pairs threads and CPUs one to one, but it names 2 threads and 3 CPUs")
    }
}
