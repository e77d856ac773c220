import Foundation
import Glibc

/// The programs tests run beside strata: openssl and curl (TLS), Python 3 (with
/// `prometheus_client` for the exporter, `csv` and `json` for `show stat`), HAProxy 2.6 (its
/// `show stat` header and log lines, to compare with) and a headless chromium (the stats page).
/// CI installs them all (`.ci/run`): there, with `CI` set, a missing tool fails its test;
/// elsewhere the test is skipped with a message, never a crash.
public enum TestTools {
    public static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] != nil }

    /// A test that needs a tool runs when the tool is there, or in CI (where its absence fails it).
    public static func available(_ present: Bool) -> Bool { present || inCI }

    /// Fails the test (in CI) when a tool it needs is missing.
    public static func require(_ present: Bool, _ what: String) throws {
        if !present { throw TestSocket.Failure(description: "\(what) is missing (CI installs it: see .ci/run)") }
    }

    public static let hasOpenSSL = runTool("openssl", ["version"]).status == 0
    public static let hasCurl = runTool("curl", ["--version"]).status == 0
    public static let hasPython = pythonHas("csv")
    public static let hasPrometheusClient = pythonHas("prometheus_client")
    public static let haproxy: String? = ["/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    public static let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Runs `python3 -c script` with `input` on its standard input; (exit status, stdout + stderr).
    public static func python(_ script: String, input: String = "", arguments: [String] = []) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        // Written from another thread: a large input would fill the pipe while nobody reads the output.
        let data = Data(input.utf8)
        let writer = Thread {
            stdin.fileHandleForWriting.write(data)
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    public static func pythonHas(_ module: String) -> Bool {
        (try? python("import \(module)"))?.status == 0
    }

    /// The package root, found from this file's path (Tests/StrataTestSupport/TestTools.swift).
    public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Where screenshots go: `.build/screenshots` at the package root, or `$STRATA_SCREENSHOTS`.
    public static var screenshotDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["STRATA_SCREENSHOTS"] { return URL(fileURLWithPath: dir) }
        return packageRoot.appendingPathComponent(".build/screenshots")
    }

    /// Runs headless chromium with `arguments` then `url`; (stdout, stderr). `:CONSOLE` lines on
    /// stderr are the page's console messages.
    public static func browse(_ url: String, _ arguments: [String]) throws -> (String, String) {
        guard let chromium else { throw TestSocket.Failure(description: "chromium is not installed") }
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("strata-chromium-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: profile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium)
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
}
