import ArgumentParser
import Foundation
import Glibc

/// The client side of the admin socket for `strata reload` and `strata cli`.
enum AdminClient {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Sends one command line, reads until the server closes (non-interactive mode), returns the
    /// answer without its closing empty line.
    static func send(_ command: String, to path: String) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw Failure(description: "\(path): path too long") }
        withUnsafeMutableBytes(of: &addr.sun_path) { dst in for (i, b) in bytes.enumerated() { dst[i] = b } }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else {
            throw ExitCodeError(message: "cannot connect to \(path): \(String(cString: strerror(errno)))")
        }
        let line = Array((command + "\n").utf8)
        var sent = 0
        while sent < line.count {
            let n = line[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ExitCodeError(message: "send to \(path): \(String(cString: strerror(errno)))") }
            sent += n
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            answer += chunk[0..<n]
        }
        var text = String(decoding: answer, as: UTF8.self)
        while text.hasSuffix("\n\n") { text.removeLast() }
        return text
    }
}

/// A command-line failure that prints its message and exits 1.
struct ExitCodeError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// How the CLI tells an error answer from a normal one (HAProxy's own wordings).
enum AdminAnswer {
    static let errorPrefixes = [
        "Unknown command", "Permission denied", "Success=0", "No such", "Require ", "Invalid ", "'",
        "Absolute weight", "Relative weight", "Empty weight", "Trailing garbage", "Backend is using a static",
        "Can't find backend", "usage: ", "set server <b>/<s> addr requires",
    ]

    static func isError(_ answer: String) -> Bool {
        errorPrefixes.contains { answer.hasPrefix($0) }
    }
}
