import Foundation
import Glibc

/// Reads HTTP/1.1 messages from a blocking byte stream: a socket, or a TLS connection.
public final class HTTPTestReader {
    /// Reads what arrived into the buffer: the byte count, or 0 or less at EOF, on error or timeout.
    public typealias Source = (UnsafeMutableRawBufferPointer) -> Int

    private let source: Source
    /// Bytes read and not consumed yet.
    public var pending: [UInt8] = []

    public convenience init(fd: Int32) {
        self.init { recv(fd, $0.baseAddress, $0.count, 0) }
    }

    public init(source: @escaping Source) { self.source = source }

    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { source($0) }
        if n <= 0 { return false }
        pending += chunk[0..<n]
        return true
    }

    /// The next head (request or response line and fields, with the final CRLF CRLF), or nil at EOF.
    public func readHead() -> String? {
        while true {
            if let end = pending.indexOfSubsequence([13, 10, 13, 10]) {
                let head = String(decoding: pending[0..<end + 4], as: UTF8.self)
                pending.removeFirst(end + 4)
                return head
            }
            if !fill() { return nil }
        }
    }

    public func read(count: Int) -> [UInt8]? {
        while pending.count < count { if !fill() { return nil } }
        let out = Array(pending[0..<count])
        pending.removeFirst(count)
        return out
    }

    public func readLine() -> String? {
        while true {
            if let end = pending.indexOfSubsequence([13, 10]) {
                let line = String(decoding: pending[0..<end], as: UTF8.self)
                pending.removeFirst(end + 2)
                return line
            }
            if !fill() { return nil }
        }
    }

    public func readChunked() -> [UInt8]? {
        var body: [UInt8] = []
        while true {
            guard let line = readLine(), let size = Int(line.split(separator: ";")[0], radix: 16) else { return nil }
            if size == 0 {
                while let trailer = readLine(), !trailer.isEmpty {}
                return body
            }
            guard let data = read(count: size), readLine() != nil else { return nil }
            body += data
        }
    }

    /// Reads everything until EOF.
    public func readToEnd() -> [UInt8] {
        while fill() {}
        defer { pending = [] }
        return pending
    }

    /// A response: status code, head text, body (Content-Length, chunked, or up to EOF).
    public func readResponse(head requestMethod: String = "GET") -> (status: Int, head: String, body: String)? {
        guard let head = readHead() else { return nil }
        let lines = head.split(separator: "\r\n").map(String.init)
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        let fields = HTTPTestReader.fields(lines)
        var body: [UInt8] = []
        if requestMethod == "HEAD" || status == 204 || status == 304 || (100..<200).contains(status) {
        } else if fields["transfer-encoding"]?.lowercased().contains("chunked") == true {
            body = readChunked() ?? []
        } else if let length = fields["content-length"].flatMap({ Int($0) }) {
            body = read(count: length) ?? []
        } else {
            body = readToEnd()
        }
        return (status, head, String(decoding: body, as: UTF8.self))
    }

    /// A head's fields by lowercased name (the last of a repeated one).
    public static func fields(_ lines: [String]) -> [String: String] {
        var out: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            out[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return out
    }
}
