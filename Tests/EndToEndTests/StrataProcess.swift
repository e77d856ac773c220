import Foundation
import Glibc
import StrataTestSupport
import Synchronization

/// The built `strata` binary, started on a configuration written to a temporary directory.
/// Stopped (SIGKILL as a last resort) when the test releases it.
final class StrataProcess: @unchecked Sendable {
    let directory: URL
    let configPath: String
    let adminSocket: String
    let process = Process()
    private let stderrLines = LineBuffer()
    private let stderrPipe = Pipe()

    /// The binary built beside this test bundle (swift build / swift test build it first).
    static var binary: String {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundleDir.appendingPathComponent("strata"),
                          bundleDir.deletingLastPathComponent().appendingPathComponent("strata")] {
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
        }
        return TestTools.packageRoot.appendingPathComponent(".build/debug/strata").path
    }

    static func makeDirectory() -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-test-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Writes `config` (with `@ADMIN@` replaced by the admin socket path) and starts strata on it.
    /// `ulimitFiles` sets both fd limits (`ulimit -n`); `limits` are more `ulimit` arguments
    /// (`-Sn 256` for the soft fd limit alone, `-v KB` for the address space).
    init(config: String, arguments: [String] = [], environment: [String: String] = [:], ulimitFiles: Int? = nil,
         limits: [String] = []) throws {
        _ = TestSocket.fileLimitRaised
        directory = StrataProcess.makeDirectory()
        adminSocket = directory.appendingPathComponent("admin.sock").path
        configPath = directory.appendingPathComponent("strata.cfg").path
        try write(config)
        let limits = (ulimitFiles.map { ["-n \($0)"] } ?? []) + limits
        if !limits.isEmpty {
            let script = limits.map { "ulimit \($0) && " }.joined() + "exec \"$0\" \"$@\""
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", script, StrataProcess.binary, "-f", configPath] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: StrataProcess.binary)
            process.arguments = ["-f", configPath] + arguments
        }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardError = stderrPipe
        process.standardOutput = stderrPipe
        let lines = stderrLines
        // The handler holds the pipe until its end: a process object freed while a read is
        // pending would otherwise close the descriptor under it (availableData then traps).
        let pipe = stderrPipe
        stderrPipe.fileHandleForReading.readabilityHandler = { handle in
            withExtendedLifetime(pipe) {}
            let data = handle.availableData
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                lines.end()
                return
            }
            let text = String(decoding: data, as: UTF8.self)
            lines.append(text)
        }
        try process.run()
    }

    /// Rewrites the configuration file (`@ADMIN@` is the admin socket path).
    func write(_ config: String) throws {
        try config.replacingOccurrences(of: "@ADMIN@", with: adminSocket)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    var pid: Int32 { process.processIdentifier }

    /// Everything strata printed so far (stdout and stderr).
    var output: [String] { stderrLines.lines }

    /// Waits until a printed line contains `text`.
    func waitForOutput(_ text: String, seconds: Double = 10) -> Bool {
        eventually(seconds: seconds) { output.contains(where: { $0.contains(text) }) }
    }

    func waitForAdmin(seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: adminSocket), (try? admin("help")) != nil { return true }
            if !process.isRunning { return false }
            usleep(20_000)
        }
        return false
    }

    /// Sends one admin command and returns the answer (without the closing empty line).
    func admin(_ command: String, socket: String? = nil) throws -> String {
        guard var text = TestSocket.command(command, unixSocket: socket ?? adminSocket) else {
            throw TestSocket.Failure(description: "admin connect: \(String(cString: strerror(errno)))")
        }
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// `show generations` as rows of (id, state, sessions, listeners).
    func generations() throws -> [(id: Int, state: String, sessions: Int, listeners: Int)] {
        // The header and the comments under it (`# rollback restores …`) are not rows.
        try admin("show generations").split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
            let f = line.split(separator: " ")
            return (Int(f[0])!, String(f[1]), Int(f[3])!, Int(f[4])!)
        }
    }

    func signal(_ sig: Int32) { kill(pid, sig) }

    /// Waits for the process to exit; its status, or nil on timeout.
    func waitForExit(seconds: Double = 10) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        guard !process.isRunning else { return nil }
        // What the process printed last may still be in the pipe: read it to its end.
        while !stderrLines.ended && Date() < deadline.addingTimeInterval(2) { usleep(5_000) }
        return process.terminationStatus
    }

    /// Open fds of the process, and the socket inode behind each.
    func fds() -> [Int: String] {
        let dir = "/proc/\(pid)/fd"
        var out: [Int: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            if let n = Int(name), let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\(name)") {
                out[n] = target
            }
        }
        return out
    }

    func stop() {
        if process.isRunning {
            kill(pid, SIGTERM)
            if waitForExit(seconds: 5) == nil { kill(pid, SIGKILL); _ = waitForExit(seconds: 5) }
        }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}

/// Output lines collected from a pipe's reader thread.
final class LineBuffer: Sendable {
    private let storage = Guarded<(lines: [String], partial: String)>(([], ""))
    private let endOfFile = Guarded(false)

    /// The pipe reached its end (every process holding it exited).
    func end() { endOfFile.withLock { $0 = true } }
    var ended: Bool { endOfFile.withLock { $0 } }

    func append(_ text: String) {
        storage.withLock { s in
            let combined = s.partial + text
            var parts = combined.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            s.partial = parts.removeLast()
            s.lines.append(contentsOf: parts)
        }
    }

    var lines: [String] { storage.withLock { $0.lines + ($0.partial.isEmpty ? [] : [$0.partial]) } }
}
