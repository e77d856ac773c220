/// HAProxy's numeric arguments: times (`us ms s m h d`, configuration.txt §2.5) and sizes
/// (`k m g`, 1024-based). Failures carry the reason only; the caller names the keyword.
public enum ConfigUnits {
    /// HAProxy's timers are signed 32-bit milliseconds: a longer time cannot be represented.
    public static let maximumMilliseconds = Int(Int32.max)

    /// Milliseconds from `text`. A bare number is in `defaultUnitMilliseconds` (1: milliseconds,
    /// HAProxy's default for timeouts; some keywords count in seconds). Microseconds round up so
    /// that a non-zero time never becomes zero, which would mean "no timeout".
    public static func parseTime(_ text: String, defaultUnitMilliseconds: Int = 1) -> Result<Int, UnitFailure> {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return .failure(.notANumber) }
        let unit = text.dropFirst(digits.count)
        guard let value = Int(digits), value <= maximumMilliseconds * 1000 else {
            return .failure(.tooLarge(maximum: "\(maximumMilliseconds) ms, about 24.8 days"))
        }
        let ms: Int
        switch unit {
        case "": ms = value * defaultUnitMilliseconds
        case "us": ms = (value + 999) / 1000
        case "ms": ms = value
        case "s": ms = value * 1000
        case "m": ms = value * 60_000
        case "h": ms = value * 3_600_000
        case "d": ms = value * 86_400_000
        default: return .failure(.unknownUnit(String(unit), expected: "us, ms, s, m, h or d"))
        }
        guard ms <= maximumMilliseconds else {
            return .failure(.tooLarge(maximum: "\(maximumMilliseconds) ms, about 24.8 days"))
        }
        return .success(ms)
    }

    /// Bytes from `text`: a number with an optional `k`, `m` or `g` (powers of 1024, either case).
    public static func parseSize(_ text: String) -> Result<Int, UnitFailure> {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return .failure(.notANumber) }
        let unit = text.dropFirst(digits.count)
        let limit = Int(Int32.max)
        guard let value = Int(digits), value <= limit else { return .failure(.tooLarge(maximum: "\(limit) bytes")) }
        let multiplier: Int
        switch unit.lowercased() {
        case "": multiplier = 1
        case "k": multiplier = 1 << 10
        case "m": multiplier = 1 << 20
        case "g": multiplier = 1 << 30
        default: return .failure(.unknownUnit(String(unit), expected: "k, m or g"))
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return .failure(.tooLarge(maximum: "\(Int.max) bytes")) }
        return .success(bytes)
    }
}

/// Why a time or size did not parse; `description` is the clause after "got 'X'".
public enum UnitFailure: Error, Hashable, Sendable, CustomStringConvertible {
    case notANumber
    case unknownUnit(String, expected: String)
    case tooLarge(maximum: String)

    public var description: String {
        switch self {
        case .notANumber: "not a number"
        case .unknownUnit(let unit, let expected): "unknown unit '\(unit)', expected \(expected)"
        case .tooLarge(let maximum): "too large, the maximum is \(maximum)"
        }
    }
}
