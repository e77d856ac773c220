/// HAProxy's check statuses, numbered as `show servers state` prints them (`srv_check_status`),
/// with the short name of the stats page and the description of the transition log lines.
enum HealthCheckStatus: Int, Sendable, CustomStringConvertible {
    case unknown = 0
    case initializing = 1
    case started = 2
    case checked = 3
    /// `observe`: enough consecutive errors in live traffic.
    case healthAnalyze = 4
    case socketError = 5
    case layer4OK = 6
    case layer4Timeout = 7
    case layer4Connection = 8
    case layer6OK = 9
    case layer6Timeout = 10
    case layer6Response = 11
    case layer7Timeout = 12
    case layer7Response = 13
    case layer7OK = 15
    case layer7ConditionalOK = 16
    case layer7Status = 17

    /// `srv_check_result`: HAProxy's CHK_RES_* for each status.
    var result: HealthCheckResult {
        switch self {
        case .unknown, .initializing, .started: .unknown
        case .checked: .neutral
        case .layer4OK, .layer6OK, .layer7OK: .passed
        case .layer7ConditionalOK: .conditionalPass
        default: .failed
        }
    }

    /// The stats page's `check_status` (`L4CON`, `L7OK` …).
    var name: String {
        switch self {
        case .unknown: "UNK"
        case .initializing: "INI"
        case .started: "START"
        case .checked: "CHECKED"
        case .healthAnalyze: "HANA"
        case .socketError: "SOCKERR"
        case .layer4OK: "L4OK"
        case .layer4Timeout: "L4TOUT"
        case .layer4Connection: "L4CON"
        case .layer6OK: "L6OK"
        case .layer6Timeout: "L6TOUT"
        case .layer6Response: "L6RSP"
        case .layer7Timeout: "L7TOUT"
        case .layer7Response: "L7RSP"
        case .layer7OK: "L7OK"
        case .layer7ConditionalOK: "L7OKC"
        case .layer7Status: "L7STS"
        }
    }

    /// What the transition log says after `reason:`.
    var description: String {
        switch self {
        case .unknown: "Unknown"
        case .initializing: "Initializing"
        case .started: "Check started"
        case .checked: "No status change"
        case .healthAnalyze: "Health analyze"
        case .socketError: "Socket error"
        case .layer4OK: "Layer4 check passed"
        case .layer4Timeout: "Layer4 timeout"
        case .layer4Connection: "Layer4 connection problem"
        case .layer6OK: "Layer6 check passed"
        case .layer6Timeout: "Layer6 timeout"
        case .layer6Response: "Layer6 invalid response"
        case .layer7Timeout: "Layer7 timeout"
        case .layer7Response: "Layer7 invalid response"
        case .layer7OK: "Layer7 check passed"
        case .layer7ConditionalOK: "Layer7 check conditionally passed"
        case .layer7Status: "Layer7 wrong status"
        }
    }

    /// Statuses from here on carry layer 5-7 data: the log prints their response code.
    var carriesCode: Bool { rawValue > 14 }
}

/// HAProxy's CHK_RES_* (`srv_check_result`).
enum HealthCheckResult: Int, Sendable {
    case unknown = 0
    case neutral = 1
    case failed = 2
    case passed = 3
    case conditionalPass = 4
}

/// What one check found: the status, the response code (layer 7), a detail for the log line, and
/// how long the check took in milliseconds (-1: not a timed check, as after `observe`).
struct HealthCheckOutcome: Hashable, Sendable {
    var status: HealthCheckStatus
    var code: Int
    var info: String
    var duration: Int

    init(_ status: HealthCheckStatus, code: Int = 0, info: String = "", duration: Int = -1) {
        self.status = status
        self.code = code
        self.info = info
        self.duration = duration
    }

    var passed: Bool { status.result == .passed || status.result == .conditionalPass }
    var failed: Bool { status.result == .failed }

    /// `, reason: …, code: …, info: "…", check duration: …ms`: HAProxy's srv_append_status part.
    var logText: String {
        var s = ", reason: \(status.description)"
        if status.carriesCode { s += ", code: \(code)" }
        if !info.isEmpty { s += ", info: \"\(HealthCheckOutcome.quoted(info))\"" }
        if duration >= 0 { s += ", check duration: \(duration)ms" }
        return s
    }

    /// Escapes `"` and non-printable bytes, as HAProxy does inside the quoted info.
    static func quoted(_ text: String) -> String {
        var out = ""
        for b in text.utf8 {
            if b == UInt8(ascii: "\"") {
                out += "\\\""
            } else if b < 0x20 || b >= 0x7f {
                let hex = Array("0123456789ABCDEF")
                out += "\\x\(hex[Int(b >> 4)])\(hex[Int(b & 15)])"
            } else {
                out.append(Character(UnicodeScalar(b)))
            }
        }
        return out
    }
}
