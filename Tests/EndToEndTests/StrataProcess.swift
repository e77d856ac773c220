import Foundation
import Glibc
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

    /// The package root, found from this file's path.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The binary built beside this test bundle (swift build / swift test build it first).
    static var binary: String {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundleDir.appendingPathComponent("strata"),
                          bundleDir.deletingLastPathComponent().appendingPathComponent("strata")] {
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
        }
        return packageRoot.appendingPathComponent(".build/debug/strata").path
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
        stderrPipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty else { handle.readabilityHandler = nil; return }
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
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if output.contains(where: { $0.contains(text) }) { return true }
            usleep(20_000)
        }
        return false
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

    /// A connected unix stream socket (30 s timeouts), or nil.
    static func connectUnix(_ path: String) -> Int32? {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { dst in for (i, b) in bytes.enumerated() { dst[i] = b } }
        TestSocket.setTimeout(fd, seconds: 30)
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        if r != 0 { close(fd); return nil }
        return fd
    }

    /// Sends one admin command and returns the answer (without the closing empty line).
    func admin(_ command: String, socket: String? = nil) throws -> String {
        guard let fd = StrataProcess.connectUnix(socket ?? adminSocket) else {
            throw TestSocket.Failure(description: "admin connect: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        _ = TestSocket.sendAll(fd, command + "\n")
        var text = String(decoding: TestSocket.readToEnd(fd), as: UTF8.self)
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// `show generations` as rows of (id, state, sessions, listeners).
    func generations() throws -> [(id: Int, state: String, sessions: Int, listeners: Int)] {
        try admin("show generations").split(separator: "\n").dropFirst().map { line in
            let f = line.split(separator: " ")
            return (Int(f[0])!, String(f[1]), Int(f[3])!, Int(f[4])!)
        }
    }

    /// Waits until `condition` holds, polling.
    static func eventually(seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }

    func signal(_ sig: Int32) { kill(pid, sig) }

    /// Waits for the process to exit; its status, or nil on timeout.
    func waitForExit(seconds: Double = 10) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
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

/// Runs a command-line tool and returns its exit status and output.
func runTool(_ path: String, _ arguments: [String], seconds: Double = 30) -> (status: Int32, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    do { try p.run() } catch { return (-1, "", "\(error)") }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// Output lines collected from a pipe's reader thread.
final class LineBuffer: Sendable {
    private let storage = Mutex<(lines: [String], partial: String)>(([], ""))

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
