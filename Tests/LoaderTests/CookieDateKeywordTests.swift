import ConfigModel
import Testing
@testable import Loader

/// `cookie … maxidle T maxlife T`: kept in seconds' worth of milliseconds, insert mode only.
@Suite struct CookieDateKeywordTests {
    static func backend(_ cookieLine: String) -> String {
        """
        backend app
            mode http
            \(cookieLine)
            server s1 127.0.0.1:8080 cookie s1
        """
    }

    @Test func insertModeTakesThem() throws {
        let loaded = try load(Self.backend("cookie SRV insert indirect maxidle 30m maxlife 8h"))
        let cookie = try #require(loaded.config.proxies.first { $0.name == "app" }?.http.cookie)
        #expect(cookie.maxIdle == 1_800_000 && cookie.maxLife == 28_800_000)
    }

    @Test func otherModesRefuseThem() {
        #expect(errors(Self.backend("cookie SRV rewrite maxidle 30m"))
                == ["test.cfg:3: 'cookie': 'maxidle' works in insert mode only, not with 'rewrite'"])
        #expect(errors(Self.backend("cookie SRV maxlife 1h prefix"))
                == ["test.cfg:3: 'cookie': 'maxlife' works in insert mode only, not with 'prefix'"])
    }
}
