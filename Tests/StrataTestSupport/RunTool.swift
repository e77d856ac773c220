import Dispatch
import Foundation
import Glibc

/// Runs a command-line tool (a path, or a name looked up on `PATH`) with `input` on its standard
/// input; its exit status and what it printed. Killed after `timeout` seconds, so that a tool
/// waiting for something that never comes cannot hang the run; -1 when it cannot start.
@discardableResult
public func runTool(_ tool: String, _ arguments: [String], input: String? = nil,
                    timeout: Double = 30) -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    if tool.contains("/") {
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
    }
    let out = Pipe(), err = Pipe(), inp = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = inp
    do { try process.run() } catch { return (-1, "", "\(error)") }
    // Both pipes are read while the tool runs (a full pipe would block it).
    let group = DispatchGroup()
    nonisolated(unsafe) var outData = Data(), errData = Data()
    DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
    DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
    if let input {
        // A tool that exits before reading its input must not kill the test run with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        try? inp.fileHandleForWriting.write(contentsOf: Data(input.utf8))
    }
    try? inp.fileHandleForWriting.close()
    let watchdog = DispatchWorkItem { [process] in if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
    process.waitUntilExit()
    watchdog.cancel()
    group.wait()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}
