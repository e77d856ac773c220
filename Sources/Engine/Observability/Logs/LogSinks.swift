import CLibEV
import ConfigModel
import Glibc

/// Syslog levels, HAProxy's (and syslog's) numbering.
public enum LogLevel: Int, Sendable {
    case emerg = 0, alert, crit, err, warning, notice, info, debug
}

/// The `log` targets of a proxy (or of `global`) with their open sockets. Datagram sockets are
/// non-blocking: a full syslog socket drops the line rather than stall the loop, as HAProxy does.
final class LogSinks {
    private struct Sink {
        let target: LogTarget
        let fd: Int32  // 1 or 2 for stdout/stderr; a connected datagram socket otherwise
        let ownsFD: Bool
    }
    private let sinks: [Sink]
    static let defaultTag = "strata"
    /// The syslog header's tag (`log-tag`).
    let tag: String

    var isEmpty: Bool { sinks.isEmpty }
    /// A target writes RFC 5424 (the only format with a place for `log-format-sd`).
    private(set) var wantsStructuredData = false

    init(_ targets: [LogTarget], tag: String? = nil) {
        self.tag = tag ?? LogSinks.defaultTag
        var sinks: [Sink] = []
        for target in targets {
            switch target.destination {
            case .stdout:
                sinks.append(Sink(target: target, fd: 1, ownsFD: false))
            case .stderr:
                sinks.append(Sink(target: target, fd: 2, ownsFD: false))
            case .udp(let endpoint):
                let family = endpoint.address.isV6 ? AF_INET6 : AF_INET
                let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard fd >= 0 else { continue }
                var (addr, len) = endpoint.sockaddr
                let ok = withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, len) == 0 }
                }
                if ok { sinks.append(Sink(target: target, fd: fd, ownsFD: true)) } else { close(fd) }
            case .unixDatagram(let path):
                let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard fd >= 0 else { continue }
                var addr = sockaddr_un()
                addr.sun_family = sa_family_t(AF_UNIX)
                let bytes = Array(path.utf8.prefix(107))
                withUnsafeMutableBytes(of: &addr.sun_path) { dst in
                    for (i, b) in bytes.enumerated() { dst[i] = b }
                }
                let ok = withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
                    }
                }
                // A syslog daemon that is not running yet must not fail the load: the socket
                // stays and sends are retried by reconnecting below.
                sinks.append(Sink(target: target, fd: fd, ownsFD: true))
                _ = ok
            }
        }
        self.sinks = sinks
        wantsStructuredData = sinks.contains { $0.target.format == .rfc5424 }
    }

    deinit {
        for s in sinks where s.ownsFD { close(s.fd) }
    }

    /// Sends one message to every target whose level admits it. `structuredData` (a
    /// `log-format-sd` line, `[id key="value"…]`) goes where RFC 5424 puts it, after the message
    /// id; the other formats have no place for it and leave it out, as HAProxy does.
    /// True when a `stdout` or `stderr` target wrote it.
    @discardableResult
    func send(_ message: String, level: LogLevel = .info, structuredData: String? = nil) -> Bool {
        var onStandardStream = false
        for sink in sinks where level.rawValue <= sink.target.level && level.rawValue >= sink.target.minLevel {
            var line = LogSinks.header(sink.target, level: level, structuredData: structuredData, tag: tag) + message
            if line.utf8.count > sink.target.maxLength {
                line = String(decoding: line.utf8.prefix(sink.target.maxLength), as: UTF8.self)
            }
            switch sink.target.destination {
            case .stdout, .stderr:
                line += "\n"
                line.withCString { p in _ = write(sink.fd, p, strlen(p)) }
                onStandardStream = true
            case .udp, .unixDatagram:
                line.withCString { p in _ = Glibc.send(sink.fd, p, strlen(p), Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            }
        }
        return onStandardStream
    }

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// The syslog header HAProxy writes for each format (`raw` has none). RFC 5424's ends with
    /// the message id (`-`) and the structured data (`-` when there is none).
    static func header(_ target: LogTarget, level: LogLevel, structuredData: String? = nil, tag: String = defaultTag) -> String {
        let pri = target.facility * 8 + level.rawValue
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var t = now.tv_sec
        var tm = Glibc.tm()
        switch target.format {
        case .raw:
            return ""
        case .short:
            return "<\(level.rawValue)>"
        case .rfc3164:
            localtime_r(&t, &tm)
            let day = tm.tm_mday < 10 ? " \(tm.tm_mday)" : "\(tm.tm_mday)"
            return "<\(pri)>\(months[Int(tm.tm_mon)]) \(day) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) \(tag)[\(getpid())]: "
        case .rfc5424:
            gmtime_r(&t, &tm)
            let micros = now.tv_nsec / 1000
            var host = [CChar](repeating: 0, count: 256)
            gethostname(&host, 255)
            let hostname = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let stamp = "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(six(Int(micros)))+00:00"
            let sd = structuredData.flatMap { $0.isEmpty ? nil : $0 } ?? "-"
            return "<\(pri)>1 \(stamp) \(hostname) \(tag) \(getpid()) - \(sd) "
        }
    }

    static func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    static func six(_ v: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, 6 - s.count)) + s
    }
}

/// HAProxy's `%t` date: `25/Nov/2026:16:00:00.123`, local time.
func logDate(_ seconds: Double) -> String {
    var t = time_t(seconds)
    var tm = Glibc.tm()
    localtime_r(&t, &tm)
    let ms = Int((seconds - Double(t)) * 1000)
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
    return "\(LogSinks.two(tm.tm_mday))/\(months[Int(tm.tm_mon)])/\(tm.tm_year + 1900):\(LogSinks.two(tm.tm_hour)):\(LogSinks.two(tm.tm_min)):\(LogSinks.two(tm.tm_sec)).\(msText)"
}

/// Wall-clock seconds.
func wallClock() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
