import Glibc

/// HAProxy's capture of the last invalid message of a proxy (`show errors`): the last request a
/// frontend could not parse, the last response a backend could not parse, each with the bytes
/// received and the position of the offending byte as the HTTP parser reports it.
struct StatsErrorCapture: Sendable {
    /// Wall-clock seconds.
    var time: Double
    var isResponse: Bool
    /// The proxy the capture belongs to (the frontend for a request, the backend for a response).
    var proxy: String
    var proxyID: Int
    var frontend: (name: String, id: Int)?
    var backend: (name: String, id: Int)?
    var server: (name: String, id: Int)?
    /// The process's count of captured errors when this one was captured (HAProxy's event number).
    var event: Int
    var source: String
    var bytes: [UInt8]
    var position: Int
    /// The size of the buffer the message was read in (`tune.bufsize`).
    var bufferSize: Int
}

/// Every proxy's last captures. Written by the data loops when a message fails to parse (an
/// error path: one lock, taken rarely), read by the control loop for `show errors`.
final class StatsErrorCaptures: @unchecked Sendable {
    private let state = Locked<(events: Int, requests: [String: StatsErrorCapture], responses: [String: StatsErrorCapture])>(
        (0, [:], [:]))

    /// Records `capture` (its `event` is set here) as its proxy's last.
    func record(_ capture: StatsErrorCapture) {
        state.withLock { s in
            var c = capture
            c.event = s.events
            s.events += 1
            if c.isResponse { s.responses[c.proxy] = c } else { s.requests[c.proxy] = c }
        }
    }

    /// The total captured and the last request (by frontend) and response (by backend) captures.
    var snapshot: (events: Int, requests: [String: StatsErrorCapture], responses: [String: StatsErrorCapture]) {
        state.withLock { $0 }
    }

    /// `[07/Dec/2026:17:31:30.559]`'s inside: local time with milliseconds, HAProxy's format.
    static func date(_ seconds: Double) -> String {
        var t = time_t(seconds.rounded(.down))
        var tm = tm()
        localtime_r(&t, &tm)
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let ms = Int((seconds - seconds.rounded(.down)) * 1000)
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(two(tm.tm_mday))/\(months[Int(tm.tm_mon)])/\(tm.tm_year + 1900):\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(msText)"
    }

    /// HAProxy's dump of captured bytes: a line per received line (or per 64 bytes), its offset
    /// in 5 digits, the bytes with `\r`, `\n`, `\t`, `\\` and non-printable ones escaped.
    static func dump(_ bytes: [UInt8]) -> [String] {
        var lines: [String] = []
        var start = 0
        while start < bytes.count {
            var text = ""
            var i = start
            while i < bytes.count && i - start < 64 {
                let b = bytes[i]
                i += 1
                switch b {
                case 0x0D: text += "\\r"
                case 0x0A: text += "\\n"
                case 0x09: text += "\\t"
                case 0x5C: text += "\\\\"
                case 0x20..<0x7F: text.unicodeScalars.append(Unicode.Scalar(b))
                default: text += "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16)
                }
                if b == 0x0A { break }
            }
            let offset = String(start)
            lines.append("  " + String(repeating: "0", count: max(0, 5 - offset.count)) + offset + "  " + text)
            start = i
        }
        return lines
    }

    /// The block `show errors` prints for one capture.
    static func describe(_ c: StatsErrorCapture) -> String {
        func named(_ kind: String, _ p: (name: String, id: Int)?) -> String {
            p.map { "\(kind) \($0.name) (#\($0.id))" } ?? "\(kind) <NONE> (#-1)"
        }
        var lines = [
            "[\(date(c.time))] \(c.isResponse ? "backend" : "frontend") \(c.proxy) (#\(c.proxyID)): invalid \(c.isResponse ? "response" : "request")",
            "  " + (c.isResponse ? named("frontend", c.frontend) : named("backend", c.backend)) + ", "
                + named("server", c.server) + ", event #\(c.event), src \(c.source)",
            "  buffer starts at 0 (including 0 out), \(max(0, c.bufferSize - c.bytes.count)) free,",
            "  len \(c.bytes.count), wraps at \(c.bufferSize), error at position \(c.position)",
            "  ",
        ]
        lines += dump(c.bytes)
        return lines.joined(separator: "\n")
    }

    /// `show errors [PROXY] [request|response]`: HAProxy's report, the proxies in `proxies`'
    /// order (name and id); nil for an unknown proxy.
    func report(proxy: String?, only: String?, proxies: [(name: String, id: Int)], now: Double) -> String? {
        var wanted = proxies
        if let proxy {
            let found = proxies.filter { $0.name == proxy || String($0.id) == proxy }
            guard !found.isEmpty else { return nil }
            wanted = found
        }
        let s = snapshot
        var blocks: [String] = []
        var seen = Set<String>()
        for p in wanted where seen.insert(p.name).inserted {
            if only != "response", let c = s.requests[p.name] { blocks.append(StatsErrorCaptures.describe(c)) }
            if only != "request", let c = s.responses[p.name] { blocks.append(StatsErrorCaptures.describe(c)) }
        }
        // HAProxy puts a line holding one space before each capture.
        return (["Total events captured on [\(StatsErrorCaptures.date(now))] : \(s.events)"] + blocks.map { " \n" + $0 })
            .joined(separator: "\n")
    }
}
