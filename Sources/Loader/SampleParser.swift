#if canImport(Glibc)
import Glibc
#endif
import ConfigModel

/// HAProxy's sample expressions (`hdr(host),lower`), ACL criteria (`path_beg -i /api /v2`), the
/// predefined ACLs, and log-format strings as rule values take them (`X-Client %[src]`). These
/// are rare lines: plain Swift, off the fast path of `server` and `bind`.

/// What a fetch returns, which decides the match method an ACL uses by default.
enum SampleOutput {
    case string
    case integer
    case address
    case boolean

    var defaultMatch: MatchMethod {
        switch self {
        case .string: .exact
        case .integer: .integer
        case .address: .ip
        case .boolean: .boolean
        }
    }
}

/// When a fetch has its value: from the connection (any rule), or only once the request headers
/// or the response headers are there.
enum SamplePhase {
    case connection
    case request
    case response
    /// The buffered request payload: `tcp-request content` and `use_backend` in mode tcp.
    case payload
    /// The buffered response payload: `tcp-response content`.
    case responsePayload
}

/// Where a sample or a condition is evaluated, for the phase check and messages.
struct RuleContext {
    /// `.request` or `.response`; `.connection` accepts anything (an `acl` line itself).
    var phase: SamplePhase
    /// The rule as messages name it: `'http-request' rule`.
    var rule: String

    static let definition = RuleContext(phase: .connection, rule: "an 'acl' line")
    static let httpRequest = RuleContext(phase: .request, rule: "an 'http-request' rule")
    static let httpResponse = RuleContext(phase: .response, rule: "an 'http-response' rule")
    static let useBackend = RuleContext(phase: .request, rule: "a 'use_backend' rule")
    static let redirect = RuleContext(phase: .request, rule: "a 'redirect' rule")
    static let statsAdmin = RuleContext(phase: .request, rule: "a 'stats admin' rule")
    static let tcpContent = RuleContext(phase: .payload, rule: "a 'tcp-request content' rule")
    static let tcpUseBackend = RuleContext(phase: .payload, rule: "a 'use_backend' rule in mode tcp")
    static let tcpResponse = RuleContext(phase: .responsePayload, rule: "a 'tcp-response content' rule")

    /// Whether a fetch of `phase` has its value here; otherwise what it waits for.
    func refusal(of phase: SamplePhase) -> String? {
        switch (self.phase, phase) {
        case (.request, .response): "the HTTP response"
        case (.response, .request): "the HTTP request headers"
        case (.request, .payload), (.response, .payload): "the TCP payload (mode tcp, tcp-request content)"
        case (.payload, .request): "the HTTP request (an http-request rule)"
        case (.payload, .response): "the HTTP response"
        case (.connection, _), (_, .connection), (.responsePayload, .responsePayload): nil
        case (.responsePayload, .request), (.responsePayload, .response): "HTTP (strata's 'tcp-response content' rules see the connection and the server's payload)"
        case (.responsePayload, .payload): "the request's payload (a 'tcp-request content' rule)"
        case (_, .responsePayload): "the server's payload (a 'tcp-response content' rule)"
        default: nil
        }
    }
}

/// A fetch as the Loader read it: the model value and what the checks need.
struct ParsedFetch {
    var fetch: SampleFetch
    var output: SampleOutput
    var phase: SamplePhase
    /// The match method an ACL keyword's suffix implies (`path_beg`).
    var implied: MatchMethod?
    /// The keyword as written, without arguments (`hdr_beg`), for messages.
    var name: String
}

enum SampleParser {
    /// The fetches strata has, for "did you mean".
    static let fetchNames = [
        "base", "dst", "dst_port", "hdr", "hdr_cnt", "method", "path", "query", "req.fhdr", "req.hdr",
        "req.hdr_cnt", "hdr_val", "req.hdr_val", "hdr_ip", "req.hdr_ip", "res.hdr_val", "req.ver", "req_ver", "res.hdr", "shdr", "src", "src_port", "ssl_fc", "status", "url",
        "url_param", "urlp", "always_true", "always_false", "str", "int", "bool", "env", "capture.req.method", "capture.req.uri", "capture.req.ver", "srv_id", "srv_name", "fc_rcvd_proxy", "fc_pp_authority", "fc_pp_unique_id", "fc_pp_tlv", "http_auth", "http_auth_group", "var", "req.len", "req.payload",
        "req.proto_http", "req_ssl_sni", "req_ssl_ver", "req_ssl_hello_type", "res.len", "res.payload", "res.ssl_hello_type",
    ] + TLSSampleFetch.allCases.map(\.rawValue) + SSLHelloFetch.allCases.map(\.rawValue)

    /// ACL keywords derived from a fetch by a suffix that fixes the match method.
    static let derivedSuffixes: [(suffix: String, match: MatchMethod)] = [
        ("_beg", .prefix), ("_end", .suffix), ("_sub", .substring), ("_reg", .regex), ("_dir", .directory),
        ("_dom", .domain), ("_len", .length),
    ]
    static let derivableFetches: Set<String> = ["path", "url", "hdr", "base", "shdr"]

    static let matchMethods: [String: MatchMethod] = [
        "str": .exact, "beg": .prefix, "end": .suffix, "sub": .substring, "reg": .regex, "dom": .domain,
        "dir": .directory, "found": .found, "len": .length, "int": .integer, "ip": .ip, "bool": .boolean, "bin": .binary,
    ]

    // MARK: Sample expressions

    /// `FETCH[(ARGS)][,CONVERTER]…`. `acl` allows the derived keywords (`path_beg`) and gives
    /// `hdr()` every occurrence; in a sample expression `hdr()` is the last one (HAProxy's rule).
    static func expression(_ text: String, acl: Bool) throws(ConfigError) -> (SampleExpression, ParsedFetch) {
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count && bytes[i] != UInt8(ascii: "(") && bytes[i] != UInt8(ascii: ",") { i += 1 }
        let name = String(decoding: bytes[..<i], as: UTF8.self)
        guard !name.isEmpty else { throw ConfigError(nil, "missing fetch name in sample expression '\(text)'") }
        var arguments: [String]?
        if i < bytes.count && bytes[i] == UInt8(ascii: "(") {
            guard let close = bytes[i...].firstIndex(of: UInt8(ascii: ")")) else {
                throw ConfigError(nil, "missing ')' after the arguments of '\(name)' in '\(text)'")
            }
            arguments = String(decoding: bytes[(i + 1)..<close], as: UTF8.self)
                .split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            i = close + 1
        }
        let fetch = try self.fetch(name, arguments: arguments, acl: acl)
        var converters: [SampleConverter] = []
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: ",") else {
                throw ConfigError(nil, "unexpected '\(String(decoding: bytes[i...], as: UTF8.self))' in sample expression '\(text)'")
            }
            i += 1
            var j = i
            var depth = 0
            while j < bytes.count {
                if bytes[j] == UInt8(ascii: "(") { depth += 1 }
                if bytes[j] == UInt8(ascii: ")") { depth -= 1 }
                if bytes[j] == UInt8(ascii: ",") && depth == 0 { break }
                j += 1
            }
            let word = String(decoding: bytes[i..<j], as: UTF8.self)
            guard !word.isEmpty else { throw ConfigError(nil, "empty converter in sample expression '\(text)'") }
            converters.append(try converter(word))
            i = j
        }
        var parsed = fetch
        // The sample's type is the last type-changing converter's (an ACL matches by it).
        for c in converters {
            switch c {
            case .lower, .upper, .debug: break
            case .length, .arithmetic, .negate, .hash, .table, .xxHash: parsed.output = .integer
            case .bool, .not, .odd, .even: parsed.output = .boolean
            case .ipmask: parsed.output = .address
            case .map(let m): parsed.output = m.output == .int ? .integer : m.output == .ip ? .address : .string
            default: parsed.output = .string
            }
        }
        return (SampleExpression(fetch: fetch.fetch, converters: converters), parsed)
    }

    private static func fetch(_ name: String, arguments: [String]?, acl: Bool) throws(ConfigError) -> ParsedFetch {
        func none(_ fetch: SampleFetch, _ output: SampleOutput, _ phase: SamplePhase) throws(ConfigError) -> ParsedFetch {
            if let arguments, !(arguments.count == 1 && arguments[0].isEmpty) {
                throw ConfigError(nil, "fetch '\(name)' takes no argument, got '\(name)(\(arguments.joined(separator: ",")))'")
            }
            return ParsedFetch(fetch: fetch, output: output, phase: phase, name: name)
        }
        func headerName() throws(ConfigError) -> String {
            guard let arguments, let first = arguments.first, !first.isEmpty else {
                throw ConfigError(nil, "fetch '\(name)' expects a header name: \(name)(NAME)")
            }
            return first
        }
        /// `hdr(NAME[,OCC])`: nil for every occurrence in ACLs, -1 (the last) in expressions.
        func occurrence(maximumArguments: Int = 2) throws(ConfigError) -> Int? {
            guard let arguments else { return nil }
            guard arguments.count <= maximumArguments else {
                throw ConfigError(nil, "fetch '\(name)' takes at most \(maximumArguments) arguments, got \(arguments.count)")
            }
            guard arguments.count == 2 else { return acl ? nil : -1 }
            guard let value = KeywordLine.decimal(arguments[1]) else {
                throw ConfigError(nil, "fetch '\(name)' expects an occurrence number after the header name, got '\(arguments[1])'")
            }
            return value
        }
        switch name {
        case "path": return try none(.path, .string, .request)
        case "url": return try none(.url, .string, .request)
        case "query": return try none(.query, .string, .request)
        case "method": return try none(.method, .string, .connection)
        case "src": return try none(.source, .address, .connection)
        case "src_port": return try none(.sourcePort, .integer, .connection)
        case "dst": return try none(.destination, .address, .connection)
        case "dst_port": return try none(.destinationPort, .integer, .connection)
        case "base": return try none(.base, .string, .request)
        case "req.ver", "req_ver": return try none(.requestVersion, .string, .request)
        case "ssl_fc": return try none(.sslFrontend, .boolean, .connection)
        // Made from the request when first asked for, then the same in the response's rules.
        case _ where ConnectionErrorFetch(rawValue: name) != nil:
            return try none(.connectionError(ConnectionErrorFetch(rawValue: name)!), .integer, .connection)
        case "unique-id": return try none(.uniqueID, .string, .connection)
        case "srv_id": return try none(.serverID, .integer, .response)
        case "srv_name": return try none(.serverName, .string, .response)
        case _ where RequestLinePart(rawValue: name) != nil:
            return try none(.receivedRequestLine(RequestLinePart(rawValue: name)!), .string, .request)
        case "capture.req.hdr", "capture.res.hdr":
            guard let arguments, arguments.count == 1, let slot = KeywordLine.decimal(arguments[0]), slot >= 0 else {
                throw ConfigError(nil, "fetch '\(name)' expects a capture slot number: \(name)(N)")
            }
            return ParsedFetch(fetch: name == "capture.req.hdr" ? .capturedRequest(slot) : .capturedResponse(slot),
                               output: .string, phase: .connection, name: name)
        case "uuid":
            // HAProxy's default and only version before 3.1 is 4; 7 is not yet.
            if let arguments, !(arguments.count == 1 && (arguments[0].isEmpty || arguments[0] == "4")) {
                throw ConfigError(nil, "fetch 'uuid' makes version 4 UUIDs only: uuid or uuid(4), got 'uuid(\(arguments.joined(separator: ",")))'")
            }
            return ParsedFetch(fetch: .uuid, output: .string, phase: .connection, name: name)
        case _ where TLSSampleFetch(rawValue: name) != nil:
            let tls = TLSSampleFetch(rawValue: name)!
            return try none(.tls(tls), tls.isBoolean ? .boolean : tls.isInteger ? .integer : .string, .connection)
        case "status": return try none(.status, .integer, .response)
        case "var":
            guard let arguments, arguments.count == 1 || arguments.count == 2 else {
                throw ConfigError(nil, "fetch 'var' expects a variable name and an optional default: var(SCOPE.NAME[,DEFAULT])")
            }
            let variable: String
            switch variableName(arguments[0]) {
            case .success(let v): variable = v
            case .failure(let message): throw ConfigError(nil, "fetch 'var': \(message.text)")
            }
            if arguments.count == 2 {
                return ParsedFetch(fetch: .variableOrDefault(variable, arguments[1]), output: .string, phase: .connection, name: name)
            }
            return ParsedFetch(fetch: .variable(variable), output: .string, phase: .connection, name: name)
        case "http_auth", "http_auth_group":
            guard let arguments, arguments.count == 1, !arguments[0].isEmpty else {
                throw ConfigError(nil, "fetch '\(name)' expects a userlist: \(name)(USERLIST)")
            }
            let group = name == "http_auth_group"
            return ParsedFetch(fetch: group ? .httpAuthGroup(userlist: arguments[0]) : .httpAuth(userlist: arguments[0]),
                               output: group ? .string : .boolean, phase: .request, name: name)
        case "always_true": return try none(.constant(true), .boolean, .connection)
        case "fc_rcvd_proxy", "fc_pp_authority", "fc_pp_unique_id":
            let f: ProxyProtocolFetch = name == "fc_rcvd_proxy" ? .received : name == "fc_pp_authority" ? .authority : .uniqueID
            return try none(.proxyProtocol(f), f == .received ? .boolean : .string, .connection)
        case "fc_pp_tlv":
            // HAProxy's names of the PP2_TYPE_* values, or a number.
            let names: [String: UInt8] = ["ALPN": 0x01, "AUTHORITY": 0x02, "CRC32C": 0x03, "NOOP": 0x04, "UNIQUE_ID": 0x05,
                                          "SSL": 0x20, "SSL_VERSION": 0x21, "SSL_CN": 0x22, "SSL_CIPHER": 0x23,
                                          "SSL_SIG_ALG": 0x24, "SSL_KEY_ALG": 0x25, "NETNS": 0x30]
            guard let arguments, arguments.count == 1,
                  let type = names[arguments[0].uppercased()] ?? UInt8(arguments[0]) ?? arguments[0].lowercased().hexByte
            else {
                throw ConfigError(nil, "fetch 'fc_pp_tlv' expects a TLV type: a number from 0 to 255 (0xNN too) or one of \(KeywordLine.list(names.keys.sorted()))")
            }
            return ParsedFetch(fetch: .proxyProtocol(.tlv(type)), output: .string, phase: .connection, name: name)
        case "str", "int", "bool", "env":
            guard let arguments, arguments.count == 1 else {
                throw ConfigError(nil, "fetch '\(name)' expects one argument: \(name)(\(name == "env" ? "NAME" : "VALUE"))")
            }
            let value = arguments[0]
            switch name {
            case "str": return ParsedFetch(fetch: .literalString(value), output: .string, phase: .connection, name: name)
            case "env":
                guard !value.isEmpty else { throw ConfigError(nil, "fetch 'env' expects a variable name") }
                return ParsedFetch(fetch: .environment(value), output: .string, phase: .connection, name: name)
            case "int":
                guard let n = Int(value) else { throw ConfigError(nil, "fetch 'int' expects an integer, got '\(value)'") }
                return ParsedFetch(fetch: .literalInteger(n), output: .integer, phase: .connection, name: name)
            default:
                // HAProxy's bool(): a number, true when not 0.
                guard let n = Int(value) else { throw ConfigError(nil, "fetch 'bool' expects 0 or 1, got '\(value)'") }
                return ParsedFetch(fetch: .constant(n != 0), output: .boolean, phase: .connection, name: name)
            }
        case "req.len", "req_len": return try none(.requestLength, .integer, .payload)
        case "res.len": return try none(.responseLength, .integer, .responsePayload)
        case "res.ssl_hello_type", "rep_ssl_hello_type": return try none(.responseHelloType, .integer, .responsePayload)
        case "res.payload":
            guard let arguments, arguments.count == 2, let offset = KeywordLine.decimal(arguments[0]),
                  let length = KeywordLine.decimal(arguments[1]), offset >= 0, length >= 0
            else {
                throw ConfigError(nil, "fetch '\(name)' expects an offset and a length: \(name)(OFFSET,LENGTH)")
            }
            return ParsedFetch(fetch: .responsePayload(offset: offset, length: length), output: .string, phase: .responsePayload, name: name)
        case "req.proto_http", "req_proto_http": return try none(.protoHTTP, .boolean, .payload)
        case _ where SSLHelloFetch(rawValue: name) != nil || SSLHelloFetch.allCases.contains(where: { $0.legacyName == name }):
            let hello = SSLHelloFetch(rawValue: name) ?? SSLHelloFetch.allCases.first { $0.legacyName == name }!
            let output: SampleOutput = switch hello {
            case .serverName, .alpn: .string
            case .helloType, .version: .integer
            case .ecExtension: .boolean
            }
            return try none(.sslHello(hello), output, .payload)
        case "req.payload", "payload":
            guard let arguments, arguments.count == 2, let offset = KeywordLine.decimal(arguments[0]),
                  let length = KeywordLine.decimal(arguments[1]), offset >= 0, length >= 0
            else {
                throw ConfigError(nil, "fetch '\(name)' expects an offset and a length: \(name)(OFFSET,LENGTH)")
            }
            return ParsedFetch(fetch: .requestPayload(offset: offset, length: length), output: .string, phase: .payload, name: name)
        case "always_false": return try none(.constant(false), .boolean, .connection)
        case "url_param", "urlp":
            guard let arguments, let first = arguments.first, !first.isEmpty else {
                throw ConfigError(nil, "fetch '\(name)' expects a parameter name: \(name)(NAME)")
            }
            guard arguments.count == 1 else {
                throw ConfigError(nil, "fetch '\(name)' takes one argument (a delimiter is not supported yet)")
            }
            return ParsedFetch(fetch: .urlParameter(first), output: .string, phase: .request, name: name)
        case "hdr", "req.hdr":
            let header = try headerName()
            let occ = try occurrence()
            return ParsedFetch(fetch: .header(header, occurrence: occ ?? (acl ? nil : -1)), output: .string,
                               phase: .request, name: name)
        case "req.fhdr":
            let header = try headerName()
            guard (arguments?.count ?? 0) <= 1 else {
                throw ConfigError(nil, "fetch 'req.fhdr' takes one argument (an occurrence is not supported yet)")
            }
            return ParsedFetch(fetch: .fullHeader(header), output: .string, phase: .request, name: name)
        case "hdr_cnt", "req.hdr_cnt":
            let header = try headerName()
            guard (arguments?.count ?? 0) <= 1 else { throw ConfigError(nil, "fetch '\(name)' takes one argument") }
            return ParsedFetch(fetch: .headerCount(header), output: .integer, phase: .request, name: name)
        case "hdr_val", "req.hdr_val":
            let header = try headerName()
            let occ = try occurrence()
            return ParsedFetch(fetch: .headerValue(header, occurrence: occ ?? (acl ? nil : -1)), output: .integer,
                               phase: .request, name: name)
        case "hdr_ip", "req.hdr_ip":
            let header = try headerName()
            let occ = try occurrence()
            return ParsedFetch(fetch: .headerIP(header, occurrence: occ ?? (acl ? nil : -1)), output: .address,
                               phase: .request, name: name)
        case "res.hdr_val", "shdr_val":
            let header = try headerName()
            let occ = try occurrence()
            return ParsedFetch(fetch: .responseHeaderValue(header, occurrence: occ ?? (acl ? nil : -1)), output: .integer,
                               phase: .response, name: name)
        case "res.hdr", "shdr":
            let header = try headerName()
            let occ = try occurrence()
            return ParsedFetch(fetch: .responseHeader(header, occurrence: occ ?? (acl ? nil : -1)), output: .string,
                               phase: .response, name: name)
        default:
            if let stick = try stickFetch(name, arguments: arguments) { return stick }
        }
        if acl {
            for (suffix, match) in derivedSuffixes where name.hasSuffix(suffix) {
                let base = String(name.dropLast(suffix.count))
                guard derivableFetches.contains(base) else { continue }
                var parsed = try fetch(base, arguments: arguments, acl: true)
                parsed.implied = match
                parsed.name = name
                return parsed
            }
        }
        let derived = derivableFetches.flatMap { base in derivedSuffixes.map { base + $0.suffix } }
        let isDerived = derived.contains(name)
        if isDerived {
            throw ConfigError(nil, "'\(name)' is an ACL keyword, not a sample fetch (use '\(name.prefix { $0 != "_" })' here)")
        }
        throw ConfigError(nil, "fetch '\(name)' is not supported"
            + KeywordSuggestion.clause(for: name, among: fetchNames + (acl ? derived : [])))
    }

    /// Refuses a fetch that has no value where it is used.
    static func check(_ fetch: ParsedFetch, in context: RuleContext) throws(ConfigError) {
        if let missing = context.refusal(of: fetch.phase) {
            throw ConfigError(nil, "'\(fetch.name)' needs \(missing): it cannot be used in \(context.rule)")
        }
    }

    // MARK: ACL criteria

    /// An `acl` line's words after the name, or an anonymous ACL's between braces:
    /// `FETCH [flags] [patterns]`. `what` names the ACL in messages (`acl 'is_api'`).
    static func criterion(_ words: ArraySlice<String>, location: SourceLocation, what: String,
                          resolver: HostResolver, paths: LoadPaths) throws(ConfigError) -> (ACLCriterion, ParsedFetch)
    {
        guard let first = words.first else { throw ConfigError(location, "\(what) expects a fetch and patterns") }
        let sample: SampleExpression
        let fetch: ParsedFetch
        do throws(ConfigError) {
            (sample, fetch) = try expression(first, acl: true)
        } catch {
            throw ConfigError(location, "\(what): \(error.message)")
        }
        var match: MatchMethod?
        var ignoreCase = false
        var noDNS = false
        var endOfFlags = false
        var patterns: [String] = []
        // A `-f` file counts as patterns given, even empty: HAProxy takes it (the ACL matches nothing).
        var fromFile = false
        var i = words.startIndex + 1
        while i < words.endIndex {
            let word = words[i]
            guard word.hasPrefix("-") && word.count > 1 && !endOfFlags else { break }
            switch word {
            case "-i": ignoreCase = true
            case "-n": noDNS = true
            case "--": endOfFlags = true
            case "-m":
                guard i + 1 < words.endIndex else {
                    throw ConfigError(location, "\(what): '-m' expects a match method (\(KeywordLine.list(matchMethodNames)))")
                }
                let name = words[i + 1]
                guard let method = matchMethods[name] else {
                    throw ConfigError(location, "\(what): unknown match method '\(name)' (expected \(KeywordLine.list(matchMethodNames)))")
                }
                match = method
                i += 1
            case "-f":
                guard i + 1 < words.endIndex else { throw ConfigError(location, "\(what): '-f' expects a file of patterns") }
                patterns += try patternFile(words[i + 1], resolved: paths.resolve(words[i + 1], from: location),
                                            paths: paths, location: location, what: what)
                fromFile = true
                i += 1
            case "-u", "-M":
                throw ConfigError(location, "\(what): flag '\(word)' is not supported yet")
            default:
                throw ConfigError(location, "\(what): unknown flag '\(word)' (expected -i, -m, -n, -f or --)")
            }
            i += 1
        }
        patterns += words[i...]
        let method = match ?? fetch.implied ?? fetch.output.defaultMatch
        let parsed: ACLPatterns
        switch method {
        case .found, .boolean:
            if let extra = patterns.first {
                let flag = method == .found ? "-m found" : "a boolean fetch"
                throw ConfigError(location, "\(what): \(flag) takes no pattern, got '\(extra)'")
            }
            parsed = .none
        case .integer, .length:
            parsed = .integers(try integerPatterns(patterns, location: location, what: what))
        case .binary:
            var list: [[UInt8]] = []
            for pattern in patterns {
                let digits = Array(pattern.utf8)
                guard digits.count % 2 == 0, !digits.isEmpty,
                      let bytes = Optional(stride(from: 0, to: digits.count, by: 2).compactMap { UInt8(String(decoding: digits[$0..<($0 + 2)], as: UTF8.self), radix: 16) }),
                      bytes.count == digits.count / 2
                else {
                    throw ConfigError(location, "\(what): '-m bin' expects hexadecimal bytes, got '\(pattern)'")
                }
                list.append(bytes)
            }
            parsed = .binary(list)
        case .ip:
            parsed = .networks(try networks(patterns, noDNS: noDNS, resolver: resolver, location: location, what: what))
        case .regex:
            for pattern in patterns {
                if let problem = regexProblem(pattern, ignoreCase: ignoreCase) {
                    throw ConfigError(location, "invalid regex '\(pattern)': \(problem)")
                }
            }
            parsed = .strings(patterns)
        case .exact, .prefix, .suffix, .substring, .domain, .directory:
            parsed = .strings(patterns)
        }
        if patterns.isEmpty && !endOfFlags && !fromFile && method != .found && method != .boolean {
            throw ConfigError(location,
                "\(what): no pattern after '\(first)' (add '-m found' to test presence, or '--' for an ACL that never matches)")
        }
        let criterion = ACLCriterion(location: location, sample: sample, match: method, ignoreCase: ignoreCase,
                                     patterns: parsed)
        return (criterion, fetch)
    }

    static let matchMethodNames = ["str", "beg", "end", "sub", "reg", "dom", "dir", "found", "len", "int", "ip", "bool", "bin"]

    /// `-f FILE`: one pattern per line, blank lines and `#` comments skipped, leading spaces trimmed.
    private static func patternFile(_ path: String, resolved: String, paths: LoadPaths, location: SourceLocation,
                                    what: String) throws(ConfigError) -> [String]
    {
        let contents: [UInt8]
        switch paths.read(resolved, .patterns) {
        case .success(let bytes): contents = bytes
        case .failure(let reason): throw ConfigError(location, "\(what): cannot read pattern file '\(path)': \(reason)")
        }
        var patterns: [String] = []
        for line in contents.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            var slice = line[...]
            while let b = slice.first, b == 0x20 || b == 0x09 { slice = slice.dropFirst() }
            while let b = slice.last, b == 0x0D || b == 0x20 || b == 0x09 { slice = slice.dropLast() }
            if slice.isEmpty || slice.first == UInt8(ascii: "#") { continue }
            patterns.append(String(decoding: slice, as: UTF8.self))
        }
        return patterns
    }

    /// `eq|ge|gt|le|lt N`, `N`, `A:B`, `:B`, `A:`.
    static func integerPatterns(_ words: [String], location: SourceLocation, what: String) throws(ConfigError)
        -> [IntegerPattern]
    {
        var result: [IntegerPattern] = []
        var pending: String?
        for word in words {
            switch word {
            case "eq", "ge", "gt", "le", "lt":
                if let pending { throw ConfigError(location, "\(what): operator '\(pending)' expects an integer, got '\(word)'") }
                pending = word
                continue
            default: break
            }
            func integer(_ text: Substring) throws(ConfigError) -> Int {
                guard let value = KeywordLine.decimal(String(text)) else {
                    throw ConfigError(location, "\(what) expects integer patterns, got '\(word)'")
                }
                return value
            }
            if let colon = word.firstIndex(of: ":") {
                if let pending { throw ConfigError(location, "\(what): operator '\(pending)' cannot apply to the range '\(word)'") }
                let low = word[..<colon], high = word[word.index(after: colon)...]
                guard !(low.isEmpty && high.isEmpty) else { throw ConfigError(location, "\(what) expects integer patterns, got '\(word)'") }
                result.append(.range(low.isEmpty ? nil : try integer(low), high.isEmpty ? nil : try integer(high)))
                continue
            }
            let value = try integer(word[...])
            switch pending {
            case "ge": result.append(.greaterOrEqual(value))
            case "gt": result.append(.greater(value))
            case "le": result.append(.lessOrEqual(value))
            case "lt": result.append(.less(value))
            default: result.append(.equal(value))
            }
            pending = nil
        }
        if let pending { throw ConfigError(location, "\(what): operator '\(pending)' expects an integer after it") }
        return result
    }

    /// `ADDR[/PREFIX]` or `A.B.C.D/A.B.C.D`; a host name is resolved now unless `-n`.
    static func network(_ text: String, noDNS: Bool = false, resolver: HostResolver) -> Result<IPNetwork, AddressProblem> {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let host = String(parts[0])
        var address = IPAddress(host)
        if address == nil && !noDNS && !host.isEmpty
            && host.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_")
                || ($0 | 0x20 >= UInt8(ascii: "a") && $0 | 0x20 <= UInt8(ascii: "z")) || ($0 &- UInt8(ascii: "0")) < 10 })
        {
            guard let resolved = resolver.resolve(host) else { return .failure("could not resolve host name '\(host)'") }
            address = resolved
        }
        guard let address else { return .failure("invalid address '\(text)' (expected an IPv4 or IPv6 address or network)") }
        let maximum = address.isV6 ? 128 : 32
        guard parts.count == 2 else { return .success(IPNetwork(address: address, prefixLength: maximum)) }
        let prefixText = String(parts[1])
        if let prefix = KeywordLine.decimal(prefixText), prefixText.first != "-" {
            guard prefix <= maximum else { return .failure("invalid prefix length '\(prefixText)' in '\(text)' (0 to \(maximum))") }
            return .success(IPNetwork(address: address, prefixLength: prefix))
        }
        // A dotted IPv4 mask: contiguous ones only.
        if !address.isV6, case .v4(let mask)? = IPAddress(prefixText) {
            let ones = mask.leadingZeroBitCount == 0 ? (~mask).leadingZeroBitCount : 0
            if mask == 0 { return .success(IPNetwork(address: address, prefixLength: 0)) }
            if ones > 0 && (ones == 32 || mask << UInt32(ones) == 0) {
                return .success(IPNetwork(address: address, prefixLength: ones))
            }
        }
        return .failure("invalid network mask '\(prefixText)' in '\(text)'")
    }

    private static func networks(_ words: [String], noDNS: Bool, resolver: HostResolver, location: SourceLocation,
                                 what: String) throws(ConfigError) -> [IPNetwork]
    {
        var result: [IPNetwork] = []
        for word in words {
            switch network(word, noDNS: noDNS, resolver: resolver) {
            case .success(let n): result.append(n)
            case .failure(let problem): throw ConfigError(location, "\(what): \(problem)")
            }
        }
        return result
    }

    /// regcomp's complaint about `pattern` (POSIX extended, as the engine compiles it), or nil.
    static func regexProblem(_ pattern: String, ignoreCase: Bool = false) -> String? {
        var regex = regex_t()
        let rc = regcomp(&regex, pattern, REG_EXTENDED | (ignoreCase ? REG_ICASE : 0))
        guard rc != 0 else {
            regfree(&regex)
            return nil
        }
        var message = [CChar](repeating: 0, count: 256)
        regerror(rc, &regex, &message, message.count)
        let bytes = message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Predefined ACLs

    /// HAProxy's predefined ACLs strata can express with its fetches; nil for another name.
    /// Throws for the ones it cannot (`REQ_CONTENT`, `WAIT_END`, `RDP_COOKIE`).
    /// `tcp`: in a mode tcp proxy, `HTTP` reads the payload (`req.proto_http`); in mode http every
    /// request is HTTP.
    static func predefined(_ name: String, location: SourceLocation, tcp: Bool = false) throws(ConfigError) -> [ACLCriterion]? {
        func c(_ fetch: SampleFetch, _ match: MatchMethod, _ patterns: ACLPatterns) -> ACLCriterion {
            ACLCriterion(location: location, sample: SampleExpression(fetch: fetch), match: match, ignoreCase: false,
                         patterns: patterns)
        }
        switch name {
        case "HTTP" where tcp: return [c(.protoHTTP, .boolean, .none)]
        case "TRUE", "HTTP": return [c(.constant(true), .boolean, .none)]
        case "FALSE": return [c(.constant(false), .boolean, .none)]
        case "HTTP_1.0": return [c(.requestVersion, .exact, .strings(["1.0"]))]
        case "HTTP_1.1": return [c(.requestVersion, .exact, .strings(["1.1"]))]
        case "HTTP_2.0": return [c(.requestVersion, .exact, .strings(["2.0"]))]
        // `req.hdr_val(content-length) gt 0`: a Content-Length value with a non-zero digit.
        case "HTTP_CONTENT": return [c(.header("content-length", occurrence: nil), .regex, .strings(["^[[:space:]]*0*[1-9]"]))]
        case "HTTP_URL_ABS": return [c(.url, .regex, .strings(["^[^/:]*://"]))]
        case "HTTP_URL_SLASH": return [c(.url, .prefix, .strings(["/"]))]
        case "HTTP_URL_STAR": return [c(.url, .exact, .strings(["*"]))]
        case "LOCALHOST":
            return [c(.source, .ip, .networks([IPNetwork(address: .v4(0x7f00_0000), prefixLength: 8),
                                               IPNetwork(address: IPAddress("::1")!, prefixLength: 128)]))]
        case "METH_CONNECT": return [c(.method, .exact, .strings(["CONNECT"]))]
        case "METH_DELETE": return [c(.method, .exact, .strings(["DELETE"]))]
        case "METH_GET": return [c(.method, .exact, .strings(["GET", "HEAD"]))]
        case "METH_HEAD": return [c(.method, .exact, .strings(["HEAD"]))]
        case "METH_OPTIONS": return [c(.method, .exact, .strings(["OPTIONS"]))]
        case "METH_POST": return [c(.method, .exact, .strings(["POST"]))]
        case "METH_PUT": return [c(.method, .exact, .strings(["PUT"]))]
        case "METH_TRACE": return [c(.method, .exact, .strings(["TRACE"]))]
        case "REQ_CONTENT", "WAIT_END", "RDP_COOKIE":
            throw ConfigError(location, "predefined ACL '\(name)' is not supported (strata has no request buffer inspection)")
        default: return nil
        }
    }

    /// When a fetch has its value, and its HAProxy name, for checking criteria already built.
    static func phase(of fetch: SampleFetch) -> SamplePhase {
        switch fetch {
        case .path, .url, .query, .urlParameter, .header, .fullHeader, .headerCount, .base, .requestVersion, .httpAuth,
             .httpAuthGroup, .headerValue, .headerIP, .receivedRequestLine: .request
        case .status, .responseHeader, .responseHeaderValue, .serverID, .serverName: .response
        case .method, .source, .sourcePort, .destination, .destinationPort, .sslFrontend, .tls, .constant, .literalString, .literalInteger, .environment, .proxyProtocol, .variable,
             .stickCounter, .variableOrDefault, .uuid, .uniqueID, .connectionError, .capturedRequest, .capturedResponse: .connection
        case .requestLength, .requestPayload, .sslHello, .protoHTTP: .payload
        case .responseLength, .responsePayload, .responseHelloType: .responsePayload
        }
    }

    static func name(of fetch: SampleFetch) -> String {
        switch fetch {
        case .path: "path"
        case .url: "url"
        case .query: "query"
        case .urlParameter: "url_param"
        case .header: "hdr"
        case .fullHeader: "req.fhdr"
        case .headerCount: "hdr_cnt"
        case .headerValue: "hdr_val"
        case .headerIP: "hdr_ip"
        case .responseHeaderValue: "res.hdr_val"
        case .method: "method"
        case .source: "src"
        case .sourcePort: "src_port"
        case .destination: "dst"
        case .destinationPort: "dst_port"
        case .base: "base"
        case .requestVersion: "req.ver"
        case .sslFrontend: "ssl_fc"
        case .tls(let fetch): fetch.rawValue
        case .constant(let value): value ? "always_true" : "always_false"
        case .literalString: "str"
        case .literalInteger: "int"
        case .environment: "env"
        case .proxyProtocol(let f): f.name
        case .status: "status"
        case .responseHeader: "res.hdr"
        case .variable, .variableOrDefault: "var"
        case .httpAuth: "http_auth"
        case .httpAuthGroup: "http_auth_group"
        case .requestLength: "req.len"
        case .requestPayload: "req.payload"
        case .sslHello(let fetch): fetch.rawValue
        case .protoHTTP: "req.proto_http"
        case .responseLength: "res.len"
        case .responsePayload: "res.payload"
        case .responseHelloType: "res.ssl_hello_type"
        case .stickCounter(let f): stickFetchName(f)
        case .uniqueID: "unique-id"
        case .uuid: "uuid"
        case .connectionError(let f): f.rawValue
        case .receivedRequestLine(let part): part.rawValue
        case .serverID: "srv_id"
        case .serverName: "srv_name"
        case .capturedRequest: "capture.req.hdr"
        case .capturedResponse: "capture.res.hdr"
        }
    }

    // MARK: Format strings

    /// A log-format string as rule values take it: literal text, `%[expr]` samples and `%xx`
    /// variables (HAProxy's syntax; spaces kept as they are).
    static func format(_ text: String, context: RuleContext) throws(ConfigError) -> FormatString {
        let spec = try LogFormatSpec(parsing: text, mergeSpaces: false) { expression throws(ConfigError) in
            try sampleForFormat(expression, context: context)
        }
        var parts: [FormatString.Part] = []
        for node in spec.nodes {
            switch node {
            case .literal(let s):
                if case .literal(let previous)? = parts.last {
                    parts[parts.count - 1] = .literal(previous + s)
                } else {
                    parts.append(.literal(s))
                }
            case .separator:
                parts.append(.literal(" "))
            case .variable(let name, let flags):
                guard flags.isEmpty else { throw ConfigError(nil, "flags on '%\(name)' are only supported in log-format lines") }
                parts.append(.variable(name))
            case .sample(let expression, let flags):
                guard flags.isEmpty else { throw ConfigError(nil, "flags on '%[…]' are only supported in log-format lines") }
                parts.append(.sample(expression))
            }
        }
        return FormatString(parts: parts, source: text)
    }

    struct NameProblem: Error { var text: String }

    /// The scopes of HAProxy's variables.
    static let variableScopes = ["proc", "sess", "txn", "req", "res"]

    /// `SCOPE.NAME` with a scope HAProxy has and a name of letters, digits, `_` and `.`.
    static func variableName(_ text: String) -> Result<String, NameProblem> {
        guard let dot = text.firstIndex(of: "."), variableScopes.contains(String(text[..<dot])) else {
            return .failure(NameProblem(text: "'\(text)': a variable name starts with its scope (proc, sess, txn, req or res) and a dot"))
        }
        let name = text[text.index(after: dot)...]
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ".") }) else {
            return .failure(NameProblem(text: "'\(text)': a variable name is letters, digits, '_' and '.'"))
        }
        return .success(text)
    }

    /// The text between `%[` and `]`, checked for the context.
    static func sampleForFormat(_ text: String, context: RuleContext) throws(ConfigError) -> SampleExpression {
        let (expression, fetch) = try expression(text, acl: false)
        try check(fetch, in: context)
        return expression
    }

    /// A literal format string (`string S`).
    static func literal(_ text: String) -> FormatString { FormatString(parts: [.literal(text)], source: text) }
}

extension Result where Success == String, Failure == SampleParser.NameProblem {
    /// The name, or the problem as an error at `line`.
    func get(_ line: KeywordLine) throws(ConfigError) -> String {
        switch self {
        case .success(let name): return name
        case .failure(let problem): throw line.error(problem.text)
        }
    }
}

extension String {
    /// `0xNN` read as a byte.
    fileprivate var hexByte: UInt8? {
        hasPrefix("0x") ? UInt8(dropFirst(2), radix: 16) : nil
    }
}
