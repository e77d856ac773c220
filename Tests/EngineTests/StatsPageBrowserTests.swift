import ConfigModel
import Foundation
import Glibc
import Testing

@testable import Engine

/// The stats page in a real headless browser (Debian's chromium): taken while a generation
/// drains, served over HTTP, it loads with no console message, its generations panel lists both
/// generations and draws their lines, and a screenshot is saved
/// (`.build/screenshots/stats-page.png`, or `$STRATA_SCREENSHOTS/stats-page.png`).
@Suite(.serialized) struct StatsPageBrowserTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    static var screenshotDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["STRATA_SCREENSHOTS"] { return URL(fileURLWithPath: dir) }
        // Tests/EngineTests/ThisFile.swift → the package root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/screenshots")
    }

    /// Serves `page` to every connection on a free port (a test stand-in for the proxy's socket).
    final class PageServer: @unchecked Sendable {
        let fd: Int32
        let port: UInt16
        init(_ page: [UInt8]) {
            let l = GenerationLifetimeTests.listeningSocket()
            fd = l.fd
            port = l.port
            Thread { [fd] in
                while true {
                    let c = accept(fd, nil, nil)
                    if c < 0 { return }
                    var buffer = [UInt8](repeating: 0, count: 65536)
                    var head: [UInt8] = []
                    while !head.containsSubsequence([13, 10, 13, 10]) {
                        let n = recv(c, &buffer, buffer.count, 0)
                        if n <= 0 { break }
                        head += buffer[0..<n]
                    }
                    _ = page.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    close(c)
                }
            }.start()
        }
        func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
    }

    /// Runs chromium headless with `arguments` then `url`; (stdout, stderr).
    static func browse(_ url: String, _ arguments: [String]) throws -> (String, String) {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("strata-chromium-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: profile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium!)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                             "--user-data-dir=\(profile.path)", "--enable-logging=stderr", "--v=0"] + arguments + [url]
        // Standard error to a file (chromium writes a lot there): no second reader thread.
        let errPath = profile.path + ".log"
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errPath) }
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let out = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outText = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try err.close()
        let errText = (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data()
        return (String(decoding: outText, as: UTF8.self), String(decoding: errText, as: UTF8.self))
    }

    @Test(.enabled(if: StatsPageBrowserTests.chromium != nil || StatsTestSupport.inCI, "chromium is not installed"),
          .timeLimit(.minutes(2)))
    func pageLoadsWithoutConsoleErrorsListsGenerationsAndIsScreenshotted() throws {
        // A drain in progress: a request in flight on generation 1 (its origin never answers),
        // generation 2 active. The chart gets a sample before and after the reload.
        let silent = GenerationLifetimeTests.listeningSocket()
        defer { close(silent.fd) }
        let proxy = try HTTPTestProxy(origin: silent.port) { p in
            p.timeouts.server = 30_000
            var stats = StatsPage(location: SourceLocation(file: "test", line: 1))
            stats.uri = "/stats"
            p.stats = stats
        }
        defer { proxy.stop() }
        let engine = proxy.engine
        let fd = HTTPSessionTests.connect(proxy.port)
        defer { close(fd) }
        HTTPSessionTests.send(fd, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
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
        let server = PageServer(page)
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/stats"

        let (dom, domLog) = try Self.browse(url, ["--dump-dom"])
        let console = domLog.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(console.isEmpty, "console messages: \(console)")
        #expect(dom.contains("id=\"generations-table\""))
        #expect(dom.contains("data-generation=\"1\"><td>1</td><td class=\"n\">draining</td>"))
        #expect(dom.contains("data-generation=\"2\"><td>2</td><td class=\"n\">active</td>"))
        #expect(dom.contains("class=\"generation-line\" data-generation=\"1\""))
        #expect(dom.contains("class=\"generation-line\" data-generation=\"2\""))
        #expect(dom.contains("id=\"proxy-web\""))

        try FileManager.default.createDirectory(at: Self.screenshotDirectory, withIntermediateDirectories: true)
        let shot = Self.screenshotDirectory.appendingPathComponent("stats-page.png")
        try? FileManager.default.removeItem(at: shot)
        let (_, shotLog) = try Self.browse(url, ["--screenshot=\(shot.path)", "--window-size=1280,1400", "--hide-scrollbars"])
        #expect(shotLog.split(separator: "\n").filter { $0.contains(":CONSOLE") }.isEmpty)
        let png = try Data(contentsOf: shot)
        #expect(png.count > 10_000)
        #expect(png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        print("stats page screenshot: \(shot.path)")
    }
}
