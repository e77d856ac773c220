import ConfigModel
import Testing
@testable import Loader

/// `compression …` and the global compression tunables: where they land, HAProxy's order of the
/// algorithms, inheritance from `defaults`, and what stays refused (request compression).
@Suite struct CompressionKeywordTests {
    @Test func responseCompressionLandsInTheProxy() throws {
        let loaded = try load("""
            global
                tune.comp.maxlevel 6
                tune.zlib.memlevel 9
                tune.zlib.windowsize 12
                maxcompcpuusage 80
            defaults
                mode http
                compression algo gzip
                compression type text/html
            frontend fe
                bind 127.0.0.1:8080
                compression algo-res deflate raw-deflate
                compression type-res text/plain application/json
                compression offload
                compression minsize-res 1k
                compression direction response
                default_backend app
            backend app
                server s 127.0.0.1:8081
            """)
        let global = loaded.config.global
        #expect(global.compressionLevel == 6)
        #expect(global.zlibMemLevel == 9)
        #expect(global.zlibWindowSize == 12)
        #expect(global.maxCompressionCPUUsage == 80)
        let fe = try #require(loaded.config.proxy(named: "fe")?.http.compression)
        // HAProxy puts each name before those already listed, the inherited ones too.
        #expect(fe.algorithms == [.rawDeflate, .deflate, .gzip])
        #expect(fe.types == ["application/json", "text/plain", "text/html"])
        #expect(fe.offload)
        #expect(fe.minimumSize == 1024)
        // The backend inherits the defaults' settings.
        let app = try #require(loaded.config.proxy(named: "app")?.http.compression)
        #expect(app.algorithms == [.gzip])
        #expect(app.types == ["text/html"])
        #expect(!app.offload)
    }

    @Test func offloadInDefaultsIsIgnoredWithHAProxysWarning() throws {
        let loaded = try load("""
            defaults
                mode http
                compression algo gzip
                compression offload
            frontend fe
                bind 127.0.0.1:8080
                default_backend app
            backend app
                server s 127.0.0.1:8081
            """)
        #expect(loaded.warnings.map(\.description) == ["test.cfg:4: 'compression offload' ignored in 'defaults' section."])
        #expect(loaded.config.proxy(named: "fe")?.http.compression?.offload == false)
    }

    @Test func badAndRequestSideLinesAreRefusedWithTheirLine() {
        let base = "backend app\n    mode http\n    server s 127.0.0.1:8081\nfrontend fe\n    mode http\n    bind 127.0.0.1:8080\n    default_backend app\n"
        #expect(errors(base + "    compression algo brotli\n")
            == ["test.cfg:8: 'compression algo': 'brotli' is not a supported algorithm (strata has identity, gzip, deflate or raw-deflate)"])
        #expect(errors(base + "    compression algo\n") == ["test.cfg:8: 'compression algo' expects <algorithm>"])
        #expect(errors(base + "    compression type\n") == ["test.cfg:8: 'compression type' expects <type>"])
        #expect(errors(base + "    compression\n")
            == ["test.cfg:8: 'compression' expects 'algo', 'type', 'direction', 'offload' or 'minsize-res'"])
        #expect(errors(base + "    compression algos gzip\n")
            == ["test.cfg:8: 'compression' expects 'algo', 'type', 'direction', 'offload' or 'minsize-res', got 'algos' (did you mean 'algo'?)"])
        #expect(errors(base + "    compression minsize-res lots\n").first?.hasPrefix("test.cfg:8: 'compression minsize-res' expects a size, got 'lots'") == true)
        #expect(errors(base + "    compression direction sideways\n")
            == ["test.cfg:8: 'compression direction' expects 'request', 'response', or 'both', got 'sideways'"])
        #expect(errors(base + "    compression direction both\n")
            == ["test.cfg:8: 'compression direction both' is not supported yet: strata compresses responses only (use 'compression direction response')"])
        #expect(errors(base + "    compression algo-req gzip\n")
            == ["test.cfg:8: 'compression algo-req' is not supported yet: strata compresses responses only"])
        #expect(errors(base + "    compression type-req text/plain\n")
            == ["test.cfg:8: 'compression type-req' is not supported yet: strata compresses responses only"])
        #expect(errors(base + "    compression offload now\n") == ["test.cfg:8: unexpected argument 'now' to 'compression'"])
        #expect(errors("global\n    tune.comp.maxlevel 10\n" + base).first?.hasPrefix("test.cfg:2: 'tune.comp.maxlevel' expects") == true)
        #expect(errors("global\n    maxcompcpuusage 101\n" + base).first?.hasPrefix("test.cfg:2: 'maxcompcpuusage' expects") == true)
        #expect(errors("global\n    tune.zlib.windowsize 7\n" + base).first?.hasPrefix("test.cfg:2: 'tune.zlib.windowsize' expects") == true)
    }

    @Test func compressionInModeTCPIsIgnoredWithAWarning() throws {
        let loaded = try load("""
            listen db
                mode tcp
                bind 127.0.0.1:8080
                compression algo gzip
                server s 127.0.0.1:8081
            """)
        #expect(loaded.warnings.map(\.description) == ["test.cfg:4: 'compression' ignored for listen 'db' as it requires HTTP mode."])
    }
}
