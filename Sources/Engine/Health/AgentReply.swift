/// One line from an agent (`agent-check`), read as HAProxy reads it: words separated by spaces,
/// tabs or commas, in any order, the last of each kind winning; after a `#`, a description that
/// goes with a health word. A plain value: what the words mean for the server is the monitor's.
struct AgentReply: Equatable {
    /// `up`, or `down`/`fail`/`stopped`: the agent's word for the server's health, as written.
    enum Health: Equatable {
        case up(String)
        case down(String)
    }

    var health: Health?
    /// `ready`, `drain` or `maint`.
    var admin: ServerAdminCommand.AdminState?
    /// `75%`, or what follows `weight:` (`weight:10`, `weight:50%`).
    var weight: String?
    /// What follows `maxconn:`.
    var maxconn: String?
    /// The text after `#`, leading blanks skipped.
    var description = ""
    /// The first word that means nothing to HAProxy (reported as the agent's error).
    var firstUnknown: String?

    init(_ line: String) {
        var rest = Substring(line)
        func isSeparator(_ c: Character) -> Bool { c == " " || c == "\t" || c == "," }
        while let first = rest.first {
            if isSeparator(first) {
                rest = rest.dropFirst()
                continue
            }
            if first == "#" {
                description = String(rest.dropFirst().drop { $0 == " " || $0 == "\t" })
                break
            }
            let word = rest.prefix { !isSeparator($0) }
            rest = rest.dropFirst(word.count)
            let lower = word.lowercased()
            switch lower {
            case "up": health = .up(String(word))
            case "down", "stopped", "fail": health = .down(String(word))
            case "ready": admin = .ready
            case "drain": admin = .drain
            case "maint": admin = .maint
            default:
                if lower.hasPrefix("maxconn:") {
                    maxconn = String(word.dropFirst(8))
                } else if lower.hasPrefix("weight:") {
                    weight = String(word.dropFirst(7))
                } else if word.first?.isASCII == true && word.first?.isNumber == true && word.contains("%") {
                    weight = String(word)
                } else if firstUnknown == nil {
                    firstUnknown = String(word)
                }
            }
        }
    }

    /// HAProxy's `maxconn:` value: an integer and nothing else.
    static func maxconn(_ text: String) -> Result<Int, ServerAdminError> {
        let digits = text.prefix { $0.isASCII && ($0.isNumber || $0 == "-" || $0 == "+") }
        guard !digits.isEmpty, let n = Int(digits) else {
            return .failure(ServerAdminError("maxconn string empty or preceded by garbage"))
        }
        guard digits.count == text.count else { return .failure(ServerAdminError("Trailing garbage in maxconn string")) }
        return .success(n)
    }
}
