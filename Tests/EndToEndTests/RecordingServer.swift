import Foundation
import Glibc
import StrataTestSupport
import Synchronization

/// A raw HTTP server for the hardening tests: it records every byte each connection brings,
/// parses the stream strictly as a run of requests (RFC 9112, no leniency), and answers each
/// complete request as `answer` says. What a server may ever receive from a proxy is checked on
/// the record: whole requests, and at most one request cut short at the end of a connection the
/// proxy closed — never bytes outside a request.
final class RecordingServer: @unchecked Sendable {
    enum Reply {
        /// Send these bytes and go on reading.
        case send(String)
        /// Send these bytes and close.
        case sendAndClose(String)
        /// Answer nothing, read nothing more, close after this many seconds.
        case silentThenClose(Double)
        /// Wait this many seconds, then send the bytes and go on.
        case delayThenSend(Double, String)
    }

    /// How a connection's byte stream parsed.
    enum Verdict: Equatable, CustomStringConvertible {
        /// `count` whole requests and nothing else.
        case whole(count: Int)
        /// `count` whole requests, then the start of one more, then the proxy closed.
        case cutShort(wholeBefore: Int)
        /// Bytes that are not a request where one should be.
        case invalid(String)

        var description: String {
            switch self {
            case .whole(let n): "whole(\(n))"
            case .cutShort(let n): "cutShort(after \(n))"
            case .invalid(let why): "invalid(\(why))"
            }
        }
    }

    let port: UInt16
    private let fd: Int32
    private let answer: @Sendable (_ connection: Int, _ request: Int, _ head: String) -> Reply
    private let state = Guarded<(streams: [[UInt8]], ended: [Bool], verdicts: [Verdict?])>(([], [], []))

    /// `answer(connection, request, head)`: connection and request numbers count from 0.
    init(answer: @escaping @Sendable (_ connection: Int, _ request: Int, _ head: String) -> Reply = { _, _, _ in .send(RecordingServer.ok) }) throws {
        self.answer = answer
        (fd, port) = try TestSocket.listen(what: "recording server")
        TestSocket.acceptLoop(fd, timeout: 30) { [self] c in
            let index = state.withLock { s -> Int in
                s.streams.append([])
                s.ended.append(false)
                s.verdicts.append(nil)
                return s.streams.count - 1
            }
            Thread { [self] in serve(c, index) }.start()
            return true
        }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    static let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    /// Every connection's bytes so far.
    var streams: [[UInt8]] { state.withLock { $0.streams } }
    /// All bytes received, joined.
    var allBytes: String { String(decoding: streams.joined(), as: UTF8.self) }
    var connectionCount: Int { state.withLock { $0.streams.count } }

    /// Each connection's verdict once it ended (nil while it is open).
    var verdicts: [Verdict?] {
        state.withLock { s in s.streams.indices.map { s.ended[$0] ? RecordingServer.verdict(s.streams[$0]) : nil } }
    }

    /// Waits until every connection has ended (or `seconds` pass); the verdicts of all of them.
    func endedVerdicts(seconds: Double = 10) -> [Verdict] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let v = verdicts
            if v.allSatisfy({ $0 != nil }) { return v.compactMap { $0 } }
            usleep(20_000)
        }
        return state.withLock { s in s.streams.map { RecordingServer.verdict($0) } }
    }

    /// The verdicts of connections still open too (a kept connection's stream so far must be
    /// whole requests).
    var verdictsSoFar: [Verdict] { streams.map { RecordingServer.verdict($0) } }

    private func serve(_ c: Int32, _ index: Int) {
        defer {
            state.withLock { $0.ended[index] = true }
            close(c)
        }
        var buffer: [UInt8] = []
        var parsed = 0
        var requests = 0
        var chunk = [UInt8](repeating: 0, count: 65536)
        var failed = false
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            buffer += chunk[0..<n]
            state.withLock { $0.streams[index] += chunk[0..<n] }
            while !failed {
                switch RecordingServer.parseRequest(buffer, from: parsed) {
                case .incomplete:
                    break
                case .invalid:
                    failed = true
                    continue
                case .complete(let end, let head):
                    parsed = end
                    let reply = answer(index, requests, head)
                    requests += 1
                    switch reply {
                    case .send(let text):
                        _ = TestSocket.sendAll(c, text)
                        continue
                    case .sendAndClose(let text):
                        _ = TestSocket.sendAll(c, text)
                        return
                    case .silentThenClose(let seconds):
                        usleep(UInt32(seconds * 1_000_000))
                        return
                    case .delayThenSend(let seconds, let text):
                        usleep(UInt32(seconds * 1_000_000))
                        _ = TestSocket.sendAll(c, text)
                        continue
                    }
                }
                break
            }
        }
    }

    // MARK: a strict request parser (the test's own, independent of strata's)

    enum Parse {
        case complete(end: Int, head: String)
        case incomplete
        case invalid(String)
    }

    static func verdict(_ bytes: [UInt8]) -> Verdict {
        var offset = 0
        var count = 0
        while offset < bytes.count {
            switch parseRequest(bytes, from: offset) {
            case .complete(let end, _):
                offset = end
                count += 1
            case .incomplete:
                return .cutShort(wholeBefore: count)
            case .invalid(let why):
                return .invalid("request \(count + 1): \(why)")
            }
        }
        return .whole(count: count)
    }

    static func parseRequest(_ b: [UInt8], from start: Int) -> Parse {
        var p = start
        func line() -> Result<String, Never>? {
            var i = p
            while i + 1 < b.count {
                if b[i] == 13 {
                    guard b[i + 1] == 10 else { return .success("\u{0}bare CR") }
                    let s = String(decoding: b[p..<i], as: UTF8.self)
                    p = i + 2
                    return .success(s)
                }
                if b[i] == 10 { return .success("\u{0}bare LF") }
                i += 1
            }
            if i < b.count && b[i] == 10 { return .success("\u{0}bare LF") }
            return nil
        }
        guard case .success(let requestLine)? = line() else { return .incomplete }
        if requestLine.hasPrefix("\u{0}") { return .invalid(String(requestLine.dropFirst())) }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isLetter && $0.isUppercase }),
              parts[1].hasPrefix("/") || parts[1].hasPrefix("http") || parts[1] == "*",
              parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0"
        else { return .invalid("not a request line: \(requestLine.prefix(40).debugDescription)") }
        var fields: [(String, String)] = []
        while true {
            guard case .success(let l)? = line() else { return .incomplete }
            if l.hasPrefix("\u{0}") { return .invalid(String(l.dropFirst())) }
            if l.isEmpty { break }
            guard let colon = l.firstIndex(of: ":"), colon != l.startIndex,
                  l[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || "-_!#$%&'*+.^`|~".contains($0) })
            else { return .invalid("not a field line: \(l.prefix(40).debugDescription)") }
            fields.append((l[..<colon].lowercased(), l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        let head = String(decoding: b[start..<p], as: UTF8.self)
        let lengths = fields.filter { $0.0 == "content-length" }
        let te = fields.filter { $0.0 == "transfer-encoding" }
        if !te.isEmpty {
            guard lengths.isEmpty else { return .invalid("Content-Length with Transfer-Encoding") }
            guard te.count == 1, te[0].1.lowercased() == "chunked" else { return .invalid("Transfer-Encoding \(te)") }
            while true {
                guard case .success(let sizeLine)? = line() else { return .incomplete }
                if sizeLine.hasPrefix("\u{0}") { return .invalid(String(sizeLine.dropFirst())) }
                guard let size = Int(sizeLine.split(separator: ";", maxSplits: 1).first ?? "", radix: 16), size >= 0 else {
                    return .invalid("chunk size \(sizeLine.prefix(20).debugDescription)")
                }
                if size == 0 {
                    while true {
                        guard case .success(let t)? = line() else { return .incomplete }
                        if t.hasPrefix("\u{0}") { return .invalid(String(t.dropFirst())) }
                        if t.isEmpty { return .complete(end: p, head: head) }
                        let name = t.split(separator: ":").first.map { $0.lowercased() } ?? ""
                        if ["content-length", "transfer-encoding", "host"].contains(name) { return .invalid("trailer \(name)") }
                    }
                }
                guard b.count >= p + size + 2 else { return .incomplete }
                guard b[p + size] == 13, b[p + size + 1] == 10 else { return .invalid("chunk data not followed by CRLF") }
                p += size + 2
            }
        }
        if let length = lengths.first {
            guard lengths.count == 1, let n = Int(length.1), n >= 0 else { return .invalid("Content-Length \(lengths)") }
            guard b.count >= p + n else { return .incomplete }
            return .complete(end: p + n, head: head)
        }
        return .complete(end: p, head: head)
    }
}
