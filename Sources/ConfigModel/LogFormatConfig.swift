/// A `log-format` string (also `log-format-sd`, `error-log-format`), HAProxy's syntax: literal
/// text, `%var` log variables (`%ci`, `%Tt`, strata's `%gen`), `%[sample]` expressions, each with
/// optional flags (`%{+Q}r`, `%{+Q,+E}[hdr(host)]`), `%{+Q}o` setting the flags of everything
/// after it, and spaces that collapse into one separator (HAProxy prints a separator only when
/// something was printed since the last one, so an empty `%hr` leaves no double space).
public struct LogFormatSpec: Hashable, Sendable {
    /// HAProxy's per-variable flags.
    public struct Flags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// `+Q`: the value in double quotes (an absent string prints `""` instead of `-`).
        public static let quote = Flags(rawValue: 1)
        /// `+X`: integers and addresses in hexadecimal.
        public static let hex = Flags(rawValue: 2)
        /// `+E`: `"`, `\` and `]` escaped with a backslash.
        public static let escape = Flags(rawValue: 4)
        /// `+M`: the line is not sent when this value is absent.
        public static let mandatory = Flags(rawValue: 8)
    }

    public enum Node: Hashable, Sendable {
        case literal(String)
        /// One or more spaces: printed as one space, and only after something was printed.
        case separator
        /// A log variable by its name without `%` (`ci`, `Tw`, `tsc`, `gen`).
        case variable(String, Flags)
        /// `%[expr]`.
        case sample(SampleExpression, Flags)
    }

    public var nodes: [Node]
    /// The text as written (messages, `show` output).
    public var source: String

    public init(nodes: [Node], source: String) {
        self.nodes = nodes
        self.source = source
    }

    /// The variables strata knows (HAProxy's names where strata has the value, and `gen`).
    public static let variables: Set<String> = [
        "ci", "cp", "fi", "fp", "bi", "bp", "si", "sp", "f", "ft", "b", "s",
        "t", "tr", "trg", "trl", "T", "Tl", "Ts", "ms", "pid", "H",
        "Th", "Ti", "TR", "Tq", "Tw", "Tc", "Tr", "Td", "Ta", "Tt",
        "ST", "B", "U", "ts", "tsc", "CC", "CS",
        "ac", "fc", "bc", "sc", "rc", "sq", "bq",
        "hr", "hrl", "hs", "hsl", "r", "HM", "HU", "HP", "HQ", "HV", "ID",
        "sslc", "sslv", "gen", "rt",
    ]

    /// HAProxy's `option tcplog`.
    public static let tcpLogText = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"
    /// HAProxy's `option httplog`.
    public static let httpLogText = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r"
    /// HAProxy's `option httplog clf`.
    /// HAProxy's `option httpslog` (its `default_https_log_format`): httplog and the TLS fields.
    public static let httpsLogText = httpLogText
        + " %[fc_err]/%[ssl_fc_err,hex]/%[ssl_c_err]/%[ssl_c_ca_err]/%[ssl_fc_is_resumed] %[ssl_fc_sni]/%sslv/%sslc"
    public static let httpLogCLFText = "%{+Q}o %{-Q}ci - - [%trg] %r %ST %B \"\" \"\" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl"

    public static let tcpLog = try! LogFormatSpec(parsing: tcpLogText)
    public static let httpLog = try! LogFormatSpec(parsing: httpLogText)
    public static let httpLogCLF = try! LogFormatSpec(parsing: httpLogCLFText)

    /// Parses HAProxy's log-format syntax (the text after the configuration's own quoting and
    /// escaping). `sample` parses the text between `%[` and `]`; the default refuses any. Errors
    /// carry no location: the caller adds the line.
    public init(parsing text: String, mergeSpaces: Bool = true,
                sample: (String) throws(ConfigError) -> SampleExpression = { s throws(ConfigError) in
                    throw ConfigError(nil, "sample fetch '%[\(s)]' is not supported here")
                }) throws(ConfigError) {
        let bytes = Array(text.utf8)
        var nodes: [Node] = []
        var defaults: Flags = []
        var literal: [UInt8] = []
        func flushLiteral() {
            if !literal.isEmpty {
                nodes.append(.literal(String(decoding: literal, as: UTF8.self)))
                literal.removeAll()
            }
        }
        func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A }
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x20 && mergeSpaces {
                flushLiteral()
                if nodes.last != .separator { nodes.append(.separator) }
                while i < bytes.count && bytes[i] == 0x20 { i += 1 }
                continue
            }
            guard b == 0x25 else {  // '%'
                literal.append(b)
                i += 1
                continue
            }
            i += 1
            guard i < bytes.count else {
                throw ConfigError(nil, "log-format '\(text)': a '%' ends the format; write '%%' for a literal '%'")
            }
            if bytes[i] == 0x25 {
                literal.append(0x25)
                i += 1
                continue
            }
            var flags = defaults
            var hadArguments = false
            if bytes[i] == 0x7B {  // '{'
                guard let close = bytes[i...].firstIndex(of: 0x7D) else {
                    throw ConfigError(nil, "log-format '\(text)': '%{' without its '}'")
                }
                let arguments = String(decoding: bytes[(i + 1)..<close], as: UTF8.self)
                for word in arguments.split(separator: ",") {
                    guard let sign = word.first, sign == "+" || sign == "-" else { continue }
                    let flag: Flags
                    switch word.dropFirst() {
                    case "Q": flag = .quote
                    case "X": flag = .hex
                    case "E": flag = .escape
                    case "M": flag = .mandatory
                    default: continue  // HAProxy ignores flags it does not know
                    }
                    if sign == "+" { flags.insert(flag) } else { flags.remove(flag) }
                }
                i = close + 1
                hadArguments = true
                guard i < bytes.count, bytes[i] == 0x5B || isAlpha(bytes[i]) || isDigit(bytes[i]) else {
                    throw ConfigError(nil, "log-format '\(text)': flags '%{\(arguments)}' without a variable name")
                }
            }
            if bytes[i] == 0x5B {  // '%[expr]'
                var depth = 0
                var j = i + 1
                while j < bytes.count {
                    if bytes[j] == 0x28 { depth += 1 } else if bytes[j] == 0x29 { depth -= 1 } else if bytes[j] == 0x5D && depth <= 0 { break }
                    j += 1
                }
                guard j < bytes.count else {
                    throw ConfigError(nil, "log-format '\(text)': '%[' without its ']'")
                }
                let expression = String(decoding: bytes[(i + 1)..<j], as: UTF8.self)
                guard !expression.isEmpty else { throw ConfigError(nil, "log-format '\(text)': empty sample expression '%[]'") }
                flushLiteral()
                nodes.append(.sample(try sample(expression), flags))
                i = j + 1
                continue
            }
            guard isAlpha(bytes[i]) || (hadArguments && isDigit(bytes[i])) else {
                throw ConfigError(nil, "log-format '\(text)': unexpected character '\(String(decoding: [bytes[i]], as: UTF8.self))' after '%'; write '%%' for a literal '%'")
            }
            var j = i
            while j < bytes.count && (isAlpha(bytes[j]) || isDigit(bytes[j])) { j += 1 }
            let name = String(decoding: bytes[i..<j], as: UTF8.self)
            i = j
            if name == "o" {
                // `%{+Q}o`: the flags of every variable after it.
                defaults = flags
                continue
            }
            guard LogFormatSpec.variables.contains(name) else {
                throw ConfigError(nil, "log-format '\(text)': no such format variable '%\(name)'; write '%%' for a literal '%'")
            }
            flushLiteral()
            nodes.append(.variable(name, flags))
        }
        flushLiteral()
        self.nodes = nodes
        self.source = text
    }

    /// Whether the format has `%[…]` samples.
    public var usesSamples: Bool { nodes.contains { if case .sample = $0 { true } else { false } } }
}
