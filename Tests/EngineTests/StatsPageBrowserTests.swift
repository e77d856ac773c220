import ConfigModel
import Foundation
import Glibc
import StrataTestSupport
import Testing

@testable import Engine

/// The stats page in a real headless browser (Debian's chromium): taken while a generation
/// drains, served over HTTP, it loads with no console message, its generations panel lists both
/// generations and draws their lines, and a screenshot is saved
/// (`.build/screenshots/stats-page.png`, or `$STRATA_SCREENSHOTS/stats-page.png`).
@Suite(.serialized) struct StatsPageBrowserTests {
    /// Serves `page` to every connection on a free port (a test stand-in for the proxy's socket).
    final class PageServer: @unchecked Sendable {
        let fd: Int32
        let port: UInt16
        init(_ page: [UInt8]) throws {
            (fd, port) = try TestSocket.listen(what: "page server")
            TestSocket.acceptLoop(fd, timeout: 10) { c in
                let reader = HTTPTestReader(fd: c)
                _ = reader.readHead()
                TestSocket.sendAll(c, page)
                close(c)
                return true
            }
        }
        private let stopped = Guarded(false)
        /// Closes the listening socket, once (a second close could take another test's descriptor).
        func stop() {
            guard stopped.withLock({ s -> Bool in defer { s = true }; return !s }) else { return }
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
    }

    @Test(.enabled(if: TestTools.available(TestTools.chromium != nil), "chromium is not installed"),
          .timeLimit(.minutes(2)))
    func pageLoadsWithoutConsoleErrorsListsGenerationsAndIsScreenshotted() throws {
        // A drain in progress: a request in flight on generation 1 (its origin never answers),
        // generation 2 active. The chart gets a sample before and after the reload.
        let silent = try TestSocket.listen(what: "silent origin")
        defer { close(silent.fd) }
        let proxy = try HTTPTestProxy(origin: silent.port) { p in
            p.timeouts.server = 30_000
            var stats = StatsPage(location: SourceLocation(file: "test", line: 1))
            stats.uri = "/stats"
            p.stats = stats
        }
        defer { proxy.stop() }
        let engine = proxy.engine
        let fd = try #require(TestSocket.connect(proxy.port))
        defer { close(fd) }
        TestSocket.sendAll(fd, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = PrometheusTests.eventually(engine) { $0["strata_generation_sessions{generation=\"1\"}"] == 1 }
        GenerationLifetimeTests.onLoop(engine) { engine.metrics.sample() }
        try proxy.reload(origin: silent.port)
        let page: [UInt8] = GenerationLifetimeTests.onLoop(engine) {
            engine.metrics.recordReload(success: true, generation: 2, seconds: 0.004, messages: ["generation 2 active"])
            engine.metrics.sample()
            let request = StatsPageRequest(page: StatsPage(location: SourceLocation(file: "t", line: 1)), proxyName: "web",
                                           format: .html, refresh: false, onlyUp: false, noMaint: false, actionStatus: nil,
                                           method: .get, bodyLength: 0)
            let html = engine.statsPageHTML(request, admin: true)
            return Array("HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: \(html.utf8.count)\r\nconnection: close\r\n\r\n\(html)".utf8)
        }
        let server = try PageServer(page)
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/stats"

        let (dom, domLog) = try TestTools.browse(url, ["--dump-dom"])
        let console = domLog.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(console.isEmpty, "console messages: \(console)")
        #expect(dom.contains("id=\"generations-table\""))
        #expect(dom.contains("data-generation=\"1\"><td>1</td><td class=\"n\">draining</td>"))
        #expect(dom.contains("data-generation=\"2\"><td>2</td><td class=\"n\">active</td>"))
        #expect(dom.contains("class=\"generation-line\" data-generation=\"1\""))
        #expect(dom.contains("class=\"generation-line\" data-generation=\"2\""))
        #expect(dom.contains("id=\"proxy-web\""))

        try FileManager.default.createDirectory(at: TestTools.screenshotDirectory, withIntermediateDirectories: true)
        let shot = TestTools.screenshotDirectory.appendingPathComponent("stats-page.png")
        try? FileManager.default.removeItem(at: shot)
        let (_, shotLog) = try TestTools.browse(url, ["--screenshot=\(shot.path)", "--window-size=1280,1400", "--hide-scrollbars"])
        #expect(shotLog.split(separator: "\n").filter { $0.contains(":CONSOLE") }.isEmpty)
        let png = try Data(contentsOf: shot)
        #expect(png.count > 10_000)
        #expect(png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        print("stats page screenshot: \(shot.path)")
    }
}
