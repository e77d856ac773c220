/// The HTTP side of a proxy's configuration: ACLs, conditions, rules and options, with HAProxy's
/// semantics (doc/configuration.txt). Resolved by the Loader: every named ACL a condition uses
/// exists, predefined ACLs (`METH_GET`, `HTTP_1.1`, `TRUE`, …) are expanded into criteria.

/// What a sample fetch reads from a request (or its connection).
public enum SampleFetch: Hashable, Sendable {
    /// `path`: the path part of the URI, without the query.
    case path
    /// `url`: the request target as received.
    case url
    /// `query`: the part after `?` (empty without one).
    case query
    /// `url_param(NAME)`: the value of a query parameter.
    case urlParameter(String)
    /// `hdr(NAME)` / `req.hdr(NAME)`: the values of a request header (each comma-separated value,
    /// HAProxy's `hdr`); `occurrence` picks one (-1: the last, as HAProxy's default for `hdr()` in
    /// a sample expression; nil: every occurrence, as ACLs match).
    case header(String, occurrence: Int?)
    /// `req.fhdr(NAME)`: whole header lines (not split on commas).
    case fullHeader(String)
    /// `hdr_cnt(NAME)` / `req.hdr_cnt(NAME)`: how many values the header has (integer).
    case headerCount(String)
    /// `method`
    case method
    /// `src`: the client's address.
    case source
    /// `src_port`, `dst` and `dst_port`: the connection's ports and local address.
    case sourcePort
    case destination
    case destinationPort
    /// `base`: Host header value followed by the path.
    case base
    /// `req.ver` / `req_ver`: "1.0" or "1.1".
    case requestVersion
    /// `ssl_fc`: whether the client connection is TLS (boolean).
    case sslFrontend
    /// `ssl_fc_sni`, `ssl_c_used`, …: what the client connection's TLS negotiated.
    case tls(TLSSampleFetch)
    /// A constant boolean (the predefined `TRUE` and `FALSE`, `always_true`, `bool(B)`).
    case constant(Bool)
    /// `str(S)`, `int(N)`: a constant string or integer.
    case literalString(String)
    case literalInteger(Int)
    /// `env(NAME)`: the process environment's variable, read when the generation is built (no
    /// sample when it is not set).
    case environment(String)
    /// `fc_rcvd_proxy`, `fc_pp_authority`, `fc_pp_unique_id`, `fc_pp_tlv(ID)`: what the
    /// connection's PROXY protocol header said.
    case proxyProtocol(ProxyProtocolFetch)
    /// `status` (response rules): the response status (integer).
    case status
    /// `res.hdr(NAME)`: a response header's values.
    case responseHeader(String, occurrence: Int?)
    /// `hdr_val(NAME)` / `req.hdr_val(NAME)` and `res.hdr_val(NAME)`: the values of `hdr` and
    /// `res.hdr` as integers (HAProxy's reading: an optional sign then the leading digits; 0
    /// without any).
    case headerValue(String, occurrence: Int?)
    /// `hdr_ip(NAME[,OCC])` / `req.hdr_ip`: a header's values read as IPv4 or IPv6 addresses (a
    /// value that is not one gives no sample).
    case headerIP(String, occurrence: Int?)
    case responseHeaderValue(String, occurrence: Int?)
    /// `http_auth(USERLIST)`: the request's Basic credentials are a user of the list (boolean).
    case httpAuth(userlist: String)
    /// `http_auth_group(USERLIST)`: the groups of the user the credentials name, when they are
    /// valid (strings; an ACL matches a group name, as HAProxy's).
    case httpAuthGroup(userlist: String)
    /// `var(SCOPE.NAME)`: a variable's value (`proc`, `sess`, `txn`, `req` or `res` scope).
    case variable(String)
    /// `var(SCOPE.NAME,DEFAULT)`: the value, or DEFAULT as a string when the variable is not set.
    case variableOrDefault(String, String)
    /// `req.len`: the bytes of the request buffered so far (mode tcp, `tcp-request content`).
    case requestLength
    /// `req.payload(OFFSET,LENGTH)`: bytes of the buffered request (LENGTH 0: to its end).
    case requestPayload(offset: Int, length: Int)
    /// What the TLS ClientHello at the start of the buffered request says.
    case sslHello(SSLHelloFetch)
    /// `req.proto_http`: the buffered request starts like an HTTP/1 request (boolean).
    case protoHTTP
    /// `res.len`: the bytes of the server's response buffered so far (`tcp-response content`).
    case responseLength
    /// `res.payload(OFFSET,LENGTH)`: bytes of the buffered response (LENGTH 0: to its end).
    case responsePayload(offset: Int, length: Int)
    /// `res.ssl_hello_type`: the TLS handshake type at the start of the buffered response (2 for
    /// a ServerHello).
    case responseHelloType
    /// `sc*_*`, `sc_*`, `src_*`: a stick counter's value.
    case stickCounter(StickFetch)
    /// `unique-id`: the request's unique ID (`unique-id-format`), made when first needed.
    case uniqueID
    /// `uuid` / `uuid(4)`: a random UUID, version 4, new at each call.
    case uuid
    /// `fc_err`, `ssl_fc_err`, `ssl_c_err`, `ssl_c_ca_err` (integers).
    case connectionError(ConnectionErrorFetch)
    /// `capture.req.hdr(N)`, `capture.res.hdr(N)`: what the frontend's request or response
    /// capture slot N holds (a header capture's value or a capture action's).
    case capturedRequest(Int)
    case capturedResponse(Int)
    /// `capture.req.method`, `capture.req.uri`, `capture.req.ver`: the request line as the client
    /// sent it (before any rewrite), as HAProxy keeps it for the log.
    case receivedRequestLine(RequestLinePart)
    /// `srv_id`, `srv_name`: the server that answers (response rules; no sample before one is
    /// chosen).
    case serverID
    case serverName
}

/// The error codes of the client connection, by their HAProxy names. A connection strata serves
/// (a request, a TCP session) had none: a failed handshake is closed, and strata has no
/// `crt-ignore-err`/`ca-ignore-err` to let a bad certificate through. So they are 0, and the
/// TLS ones have no value on a plain connection.
public enum ConnectionErrorFetch: String, Hashable, Sendable, CaseIterable {
    case connection = "fc_err"
    case tls = "ssl_fc_err"
    case clientCertificate = "ssl_c_err"
    case clientCertificateChain = "ssl_c_ca_err"
}

/// The fetches of a buffered TLS ClientHello (TLS passthrough), by their HAProxy names.
public enum SSLHelloFetch: String, Hashable, Sendable, CaseIterable {
    /// `req.ssl_sni` / `req_ssl_sni`: the server name (string).
    case serverName = "req.ssl_sni"
    /// `req.ssl_hello_type` / `req_ssl_hello_type`: 1 for a ClientHello, 2 for a ServerHello (integer).
    case helloType = "req.ssl_hello_type"
    /// `req.ssl_ver` / `req_ssl_ver`: the version, `(major << 16) + minor` (integer, 0x30003 for TLS 1.2).
    case version = "req.ssl_ver"
    /// `req.ssl_alpn`: each protocol the client offers (string).
    case alpn = "req.ssl_alpn"
    /// `req.ssl_ec_ext`: the client sent the supported groups / EC point formats extension (boolean).
    case ecExtension = "req.ssl_ec_ext"

    /// The older spelling (`req_ssl_sni`); nil when there is none.
    public var legacyName: String? {
        switch self {
        case .serverName: "req_ssl_sni"
        case .helloType: "req_ssl_hello_type"
        case .version: "req_ssl_ver"
        case .alpn, .ecExtension: nil
        }
    }
}

/// The TLS fetches of the client connection, by their HAProxy names. On a plain connection the
/// booleans are false and the others have no value.
public enum TLSSampleFetch: String, Hashable, Sendable, CaseIterable {
    /// The server name the client sent (SNI).
    case serverName = "ssl_fc_sni"
    /// `TLSv1.3`, `TLSv1.2`, …
    case protocolVersion = "ssl_fc_protocol"
    /// OpenSSL's name of the cipher (`TLS_AES_256_GCM_SHA384`).
    case cipher = "ssl_fc_cipher"
    /// The protocol ALPN selected.
    case alpn = "ssl_fc_alpn"
    /// The session was resumed (boolean).
    case resumed = "ssl_fc_is_resumed"
    /// The client presented a certificate (boolean).
    case clientCertificateUsed = "ssl_c_used"
    /// The verification result of the client certificate: 0 when it verified (integer).
    case clientCertificateVerify = "ssl_c_verify"
    /// The client certificate's subject and issuer, `/C=…/CN=…`.
    case clientSubjectDN = "ssl_c_s_dn"
    case clientIssuerDN = "ssl_c_i_dn"

    public var isBoolean: Bool { self == .resumed || self == .clientCertificateUsed }
    public var isInteger: Bool { self == .clientCertificateVerify }
}

/// `,lower`, `,upper` and the other converters applied to a fetched sample, in order.
public enum SampleConverter: Hashable, Sendable {
    case lower
    case upper
    /// `length`: the string's length (integer).
    case length
    /// `hex`: the bytes in upper-case hexadecimal.
    case hex
    /// `base64`, `ub64enc`; `b64dec`, `ub64dec` (the URL-safe alphabet without padding).
    case base64(urlSafe: Bool)
    case base64Decode(urlSafe: Bool)
    /// `url_dec[(IN_FORM)]`: %XX decoded; `+` becomes a space when IN_FORM is not 0.
    case urlDecode(form: Bool)
    /// `word(N,DELIMS)`: the Nth non-empty word (from the end when N < 0).
    case word(index: Int, delimiters: String)
    /// `field(N,DELIMS[,COUNT])`: the Nth field (empty ones count), COUNT fields from it.
    case field(index: Int, delimiters: String, count: Int)
    /// `bytes(OFFSET[,LENGTH])`.
    case bytes(offset: Int, length: Int?)
    /// `regsub(REGEX,SUBST[,FLAGS])`: each match (the first without `g`) replaced, `\N` groups.
    case regsub(regex: String, replacement: String, global: Bool, ignoreCase: Bool)
    /// `json([INPUT-CODE])`: escaped for a JSON string as HAProxy escapes it (`HTTPJSONEscape`).
    case json(JSONInputCode)
    /// `add|sub|mul|div|mod|and|or|xor(N)`: integer arithmetic with a constant.
    case arithmetic(ArithmeticOperator, Int)
    /// `neg`, `bool` (not zero), `not` (zero), `odd`, `even`.
    case negate
    case bool
    case not
    case odd
    case even
    /// `iif(TRUE,FALSE)`: one of two strings, by the boolean sample.
    case iif(whenTrue: String, whenFalse: String)
    /// `ipmask(MASK4[,MASK6])`: the address with only its network bits.
    case ipmask(v4: Int, v6: Int?)
    /// `sdbm`, `djb2`, `crc32`, `wt6` hashes of the bytes (integers).
    case hash(HashFunction)
    /// `table_*(TABLE)`: the value the table stores for the input key.
    case table(StickTableConverterKind, table: String)
    /// `map*(FILE[,DEFAULT])`: the value of the map's matching key.
    case map(MapLookup)
    /// `concat([START][,VAR][,END])`: the sample as a string, then START, the variable's value
    /// (nothing when it is not set), then END.
    case concat(start: String, variable: String?, end: String)
    /// `xxh3`, `xxh32`, `xxh64([SEED])`: xxHash of the bytes (xxh3 and xxh64 signed 64-bit,
    /// xxh32 unsigned 32-bit integers, as HAProxy).
    case xxHash(XXHashFunction, seed: UInt64)
    /// `debug([PREFIX])`: the sample unchanged; its type and value are written to standard error.
    case debug(prefix: String)

    public enum ArithmeticOperator: String, Hashable, Sendable, CaseIterable {
        case add, sub, mul, div, mod, and, or, xor
    }

    public enum HashFunction: String, Hashable, Sendable, CaseIterable {
        case sdbm, djb2, crc32, wt6
    }

    public enum XXHashFunction: String, Hashable, Sendable, CaseIterable {
        case xxh3, xxh32, xxh64
    }

    /// Whether the converter only maps letters' case (what log lines can apply too).
    public var isCaseMapping: Bool { self == .lower || self == .upper }
}

/// A fetch and its converters: `hdr(host),lower`.
public struct SampleExpression: Hashable, Sendable {
    public var fetch: SampleFetch
    public var converters: [SampleConverter]

    public init(fetch: SampleFetch, converters: [SampleConverter] = []) {
        self.fetch = fetch
        self.converters = converters
    }
}

/// How an ACL compares a sample with its patterns (`-m`), the suffix of a fetch (`path_beg`) or the
/// fetch's default.
public enum MatchMethod: Hashable, Sendable {
    /// `-m str`: equal.
    case exact
    /// `-m beg`, `-m end`, `-m sub`: prefix, suffix, substring.
    case prefix
    case suffix
    case substring
    /// `-m reg`: POSIX extended regular expression.
    case regex
    /// `-m dom`: equal to a dot- or slash-delimited word of the sample.
    case domain
    /// `-m dir`: equal to a slash-delimited word.
    case directory
    /// `-m found`: the sample exists (no pattern).
    case found
    /// `-m len`: the sample's length compared as an integer.
    case length
    /// Integers: `eq`, `ge`, … or ranges `A:B` in the patterns.
    case integer
    /// IPv4/IPv6 addresses and networks (`src`).
    case ip
    /// The sample is a boolean (`ssl_fc`, constants): true matches.
    case boolean
    /// `-m bin`: the sample's bytes equal a pattern written in hexadecimal (`req.payload`).
    case binary
}

/// An integer pattern: a value compared with an operator, or a range.
public enum IntegerPattern: Hashable, Sendable {
    case equal(Int)
    case greaterOrEqual(Int)
    case greater(Int)
    case lessOrEqual(Int)
    case less(Int)
    /// `A:B`, either end open (`:B`, `A:`).
    case range(Int?, Int?)
}

/// A network: an address and a prefix length.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var prefixLength: Int

    public init(address: IPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// The patterns of one criterion, already parsed for its match method.
public enum ACLPatterns: Hashable, Sendable {
    /// Strings (exact, prefix, suffix, substring, domain, directory, regex source).
    case strings([String])
    case integers([IntegerPattern])
    case networks([IPNetwork])
    /// `-m bin`: byte strings (written in hexadecimal).
    case binary([[UInt8]])
    /// `found` and booleans take none.
    case none
}

/// One `acl` line's test, or an anonymous `{ … }` ACL.
public struct ACLCriterion: Hashable, Sendable {
    public var location: SourceLocation
    public var sample: SampleExpression
    public var match: MatchMethod
    /// `-i`: case-insensitive string matching.
    public var ignoreCase: Bool
    public var patterns: ACLPatterns

    public init(location: SourceLocation, sample: SampleExpression, match: MatchMethod, ignoreCase: Bool, patterns: ACLPatterns) {
        self.location = location
        self.sample = sample
        self.match = match
        self.ignoreCase = ignoreCase
        self.patterns = patterns
    }
}

/// A named ACL: several `acl NAME …` lines with the same name are ORed (HAProxy's rule).
public struct ACLDefinition: Hashable, Sendable {
    public var name: String
    public var criteria: [ACLCriterion]

    public init(name: String, criteria: [ACLCriterion]) {
        self.name = name
        self.criteria = criteria
    }
}

/// One term of a condition: an ACL (named, predefined or anonymous, resolved to its criteria),
/// possibly negated with `!`.
public struct ConditionTerm: Hashable, Sendable {
    /// The name as written (`METH_GET`, `is_api`), or the anonymous ACL's text.
    public var name: String
    /// The criteria, ORed.
    public var criteria: [ACLCriterion]
    public var negated: Bool

    public init(name: String, criteria: [ACLCriterion], negated: Bool) {
        self.name = name
        self.criteria = criteria
        self.negated = negated
    }
}

/// `if|unless TERM [TERM …] [|| TERM …]`: terms side by side are ANDed, `||` ORs the groups.
public struct Condition: Hashable, Sendable {
    /// `unless`: the whole result is inverted.
    public var inverted: Bool
    /// Groups ORed together; the terms of a group are ANDed.
    public var alternatives: [[ConditionTerm]]

    public init(inverted: Bool, alternatives: [[ConditionTerm]]) {
        self.inverted = inverted
        self.alternatives = alternatives
    }
}

/// A log-format string as `set-header` and friends take it: literal text, `%[expr]` samples and
/// `%xx` log variables (`%ci`, `%fi`, …).
public struct FormatString: Hashable, Sendable {
    public enum Part: Hashable, Sendable {
        case literal(String)
        case sample(SampleExpression)
        /// A log variable by its name without `%` (`ci`, `cp`, `fi`, `gen`, …).
        case variable(String)
    }
    public var parts: [Part]
    /// The text as written, for messages.
    public var source: String

    public init(parts: [Part], source: String) {
        self.parts = parts
        self.source = source
    }

    public var isLiteral: Bool { parts.allSatisfy { if case .literal = $0 { true } else { false } } }
}

/// What `set-src`, `set-src-port`, `set-dst` and `set-dst-port` change.
public enum ConnectionAddressPart: String, Hashable, Sendable, CaseIterable {
    case source = "set-src"
    case sourcePort = "set-src-port"
    case destination = "set-dst"
    case destinationPort = "set-dst-port"
}

/// `use_backend NAME [if|unless COND]`, or `use_backend FORMAT` (`%[req.hdr(host),map(…)]`):
/// the backend named by the formatted text, the default backend when no backend has that name.
public struct BackendSwitchRule: Hashable, Sendable {
    public var location: SourceLocation
    /// The name, or the format as written when `dynamic` is set.
    public var backend: String
    public var condition: Condition?
    /// A log-format name, rendered for each request.
    public var dynamic: FormatString?

    public init(location: SourceLocation, backend: String, condition: Condition?, dynamic: FormatString? = nil) {
        self.location = location
        self.backend = backend
        self.condition = condition
        self.dynamic = dynamic
    }
}

/// `redirect location|prefix|scheme TARGET [code N] [drop-query] [append-slash] [set-cookie C] [clear-cookie C]`.
public struct Redirect: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case location(FormatString)
        case prefix(FormatString)
        case scheme(FormatString)
    }
    public var kind: Kind
    /// 301, 302 (default), 303, 307 or 308.
    public var code = 302
    public var dropQuery = false
    public var appendSlash = false
    public var setCookie: String?
    public var clearCookie: String?

    public init(kind: Kind) { self.kind = kind }
}

/// What `http-request return` and `http-request deny` answer.
public enum ResponseBody: Hashable, Sendable {
    case none
    case string(FormatString)
    /// `file PATH` (read when the configuration loads: the bytes belong to the generation).
    case file(path: String, contents: [UInt8])
    /// `errorfile`-style raw HTTP message read from a file.
    case rawMessage(path: String, contents: [UInt8])
    /// `default-errorfiles`: the proxy's error answer for the status (its `errorfile`, else
    /// HAProxy's page).
    case errorPage
    /// `errorfiles NAME`: the http-errors section's message for the status; the Loader replaces
    /// it once the sections are known (`rawMessage`, or `errorPage` when the section lacks it).
    case errorFilesSection(String)
}

/// The part of a request target a rewrite works on.
public enum RequestTargetPart: Hashable, Sendable {
    /// The path (without the query).
    case path
    /// The path and the query.
    case pathQuery
    /// The whole target, as it came (an absolute-form with its scheme and authority).
    case uri
}

public enum HTTPRequestAction: Hashable, Sendable {
    case setHeader(name: String, value: FormatString)
    case addHeader(name: String, value: FormatString)
    case delHeader(name: String)
    /// `replace-header NAME REGEX REPLACEMENT` (`\1` back-references).
    case replaceHeader(name: String, regex: String, replacement: FormatString)
    /// `replace-value`: like replace-header, on each comma-separated value.
    case replaceValue(name: String, regex: String, replacement: FormatString)
    case setPath(FormatString)
    case setQuery(FormatString)
    case setURI(FormatString)
    case setMethod(FormatString)
    /// `replace-path|replace-pathq|replace-uri REGEX REPLACEMENT`: when the regex matches the
    /// part, the part becomes the replacement (`\1` back-references), as HAProxy.
    case replaceTarget(part: RequestTargetPart, regex: String, replacement: FormatString)
    /// `deny [deny_status N]`.
    case deny(status: Int)
    /// `tarpit [deny_status N]`: hold the request for `timeout tarpit`, then answer N (500).
    case tarpit(status: Int)
    /// `return [status N] [content-type T] [string S | lf-string S | file F] [hdr N V]…`.
    case returnResponse(status: Int, contentType: String?, body: ResponseBody, headers: [Header])
    case redirect(Redirect)
    /// `allow`: stop evaluating http-request rules.
    case allow
    /// `use-service prometheus-exporter`.
    case useService(String)
    /// `auth [realm REALM]`: 401 with `WWW-Authenticate: Basic realm="REALM"` (the proxy's name
    /// without one).
    case auth(realm: String?)
    /// `set-var(SCOPE.NAME) EXPR`, `set-var-fmt(SCOPE.NAME) FMT`, `unset-var(SCOPE.NAME)`.
    case setVariable(name: String, value: SampleExpression)
    case setVariableFormat(name: String, value: FormatString)
    case unsetVariable(name: String)
    /// `track-sc*`, `sc-inc-gpc0/1`, `sc-set-gpt0`.
    case stickCounter(StickCounterAction)
    /// `set-src`, `set-src-port`, `set-dst`, `set-dst-port EXPR`: the connection's address or
    /// port as the rules, `option forwardfor`/`originalto` and the logs see it from then on.
    case setAddress(ConnectionAddressPart, SampleExpression)
    /// `silent-drop`: the connection is closed without an answer (strata resets it: SO_LINGER 0),
    /// counted as a denied request.
    case silentDrop
    /// `reject`: the connection is closed at once without an answer, counted as a denied request
    /// (HAProxy's `tcp-request content reject` in HTTP).
    case reject
    /// `normalize-uri NORMALIZER`: the request target rewritten in a canonical form.
    case normalizeURI(URINormalizer)
    /// `wait-for-body time T [at-least N]`: the server is chosen once the body is in, N bytes of
    /// it are, the buffer is full or T (milliseconds) has passed, whichever comes first.
    case waitForBody(time: Int, atLeast: Int?)
    /// `set-log-level LEVEL`: the syslog level (0 emerg … 7 debug) of the request's log line, or
    /// -1 for `silent` (no line). The last matching rule wins.
    case setLogLevel(Int)
    /// `cache-use NAME`: a fresh answer the cache holds for the request is sent from it, and
    /// nothing goes to a server.
    case cacheUse(String)
    /// `capture SAMPLE len N | id N`: the sample as text, truncated to the slot's length, into
    /// request capture slot `slot` of the frontend (`len` declared that slot).
    case capture(SampleExpression, slot: Int)
    /// `set-map(FILE) KEY VALUE`, `del-map(FILE) KEY`: an entry of a map the configuration loads
    /// (`file`: its path as `Config.maps` keys it) set or added, or deleted, as the admin socket's
    /// `set map`/`add map` and `del map` do.
    case setMap(file: String, key: FormatString, value: FormatString)
    case deleteMapEntry(file: String, key: FormatString)
    /// `early-hint NAME FMT`: a field of a `103 Early Hints` answer sent to an HTTP/1.1 client
    /// before the final one (consecutive unconditional rules make one 103).
    case earlyHint(name: String, value: FormatString)

    public struct Header: Hashable, Sendable {
        public var name: String
        public var value: FormatString
        public init(name: String, value: FormatString) {
            self.name = name
            self.value = value
        }
    }
}

public struct HTTPRequestRule: Hashable, Sendable {
    public var location: SourceLocation
    public var action: HTTPRequestAction
    public var condition: Condition?

    public init(location: SourceLocation, action: HTTPRequestAction, condition: Condition?) {
        self.location = location
        self.action = action
        self.condition = condition
    }
}

public enum HTTPResponseAction: Hashable, Sendable {
    case setHeader(name: String, value: FormatString)
    case addHeader(name: String, value: FormatString)
    case delHeader(name: String)
    case replaceHeader(name: String, regex: String, replacement: FormatString)
    case replaceValue(name: String, regex: String, replacement: FormatString)
    case setStatus(Int, reason: String?)
    case deny(status: Int)
    case allow
    case setVariable(name: String, value: SampleExpression)
    case setVariableFormat(name: String, value: FormatString)
    case unsetVariable(name: String)
    /// `return …` as http-request's: the server's answer is dropped and this one sent instead.
    case returnResponse(status: Int, contentType: String?, body: ResponseBody, headers: [HTTPRequestAction.Header])
    /// `silent-drop`: the client connection is closed without an answer (reset), counted as a
    /// denied response.
    case silentDrop
    /// `set-log-level LEVEL` (see `HTTPRequestAction.setLogLevel`).
    case setLogLevel(Int)
    /// `cache-store NAME`: the answer is stored in the cache when HAProxy's rules allow it.
    case cacheStore(String)
    /// `capture SAMPLE id N`: into response capture slot N of the frontend.
    case capture(SampleExpression, slot: Int)
    /// `set-map(FILE) KEY VALUE`, `del-map(FILE) KEY` (see `HTTPRequestAction.setMap`).
    case setMap(file: String, key: FormatString, value: FormatString)
    case deleteMapEntry(file: String, key: FormatString)
    /// `redirect location|prefix|scheme …`: the server's answer is dropped and this redirect sent
    /// (`prefix` and `scheme` read the request's path and Host as the request rules left them).
    case redirect(Redirect)
}

public struct HTTPResponseRule: Hashable, Sendable {
    public var location: SourceLocation
    public var action: HTTPResponseAction
    public var condition: Condition?

    public init(location: SourceLocation, action: HTTPResponseAction, condition: Condition?) {
        self.location = location
        self.action = action
        self.condition = condition
    }
}

/// `option forwardfor [except NET] [header NAME] [if-none]` and `option originalto [except NET] [header NAME]`.
public struct ForwardedHeader: Hashable, Sendable {
    public var header: String
    public var except: IPNetwork?
    public var ifNone = false

    public init(header: String, except: IPNetwork? = nil, ifNone: Bool = false) {
        self.header = header
        self.except = except
        self.ifNone = ifNone
    }
}

/// `http-request normalize-uri` normalizers (HAProxy 2.4+).
public enum URINormalizer: Hashable, Sendable {
    /// `path-merge-slashes`: `//` becomes `/` in the path.
    case pathMergeSlashes
    /// `path-strip-dot`: `.` segments go.
    case pathStripDot
    /// `path-strip-dotdot [full]`: a `..` segment takes the one before it away; `full` also drops
    /// those with nothing before them.
    case pathStripDotDot(full: Bool)
    /// `percent-decode-unreserved [strict]`: `%XX` of an unreserved character becomes it;
    /// `strict` answers 400 to an invalid `%` sequence.
    case percentDecodeUnreserved(strict: Bool)
    /// `percent-to-uppercase [strict]`: the hex digits of `%xx` in upper case.
    case percentToUppercase(strict: Bool)
    /// `query-sort-by-name`: the query's parameters sorted by name (stable).
    case querySortByName
    /// `fragment-strip`: the fragment goes; `fragment-encode`: each `#` becomes `%23`.
    case fragmentStrip
    case fragmentEncode
}

/// `option forwarded [proto] [host] [by] [by_port] [for] [for_port]`: RFC 7239's `Forwarded`
/// field, added by the backend (HAProxy 2.8+). Without parameters: `proto` and `for`.
public struct ForwardedOption: Hashable, Sendable {
    /// `proto=http|https`: whether the client connection is TLS.
    public var proto = false
    /// `host="…"`: the request's Host.
    public var host = false
    /// `by=`: the address the client reached, with its port for `byPort`.
    public var by = false
    public var byPort = false
    /// `for=`: the client's address, with its port for `forPort`.
    public var client = false
    public var clientPort = false
    /// `host-expr`, `by-expr`, `by_port-expr`, `for-expr`, `for_port-expr`: the value from a
    /// sample of the request instead of the connection's (the matching flag above is set too).
    public var hostExpression: SampleExpression?
    public var byExpression: SampleExpression?
    public var byPortExpression: SampleExpression?
    public var clientExpression: SampleExpression?
    public var clientPortExpression: SampleExpression?

    public init() {}
}

/// How the proxy treats connections between requests (HAProxy's `option http-keep-alive`,
/// `http-server-close`, `httpclose`).
public enum HTTPConnectionMode: Hashable, Sendable {
    /// Both sides stay open between requests (default).
    case keepAlive
    /// The server side closes after each response; the client side stays open.
    case serverClose
    /// Both sides close after each response.
    case close
}

/// `http-reuse`: when an idle server connection may serve another client's request.
public enum HTTPReuse: String, Hashable, Sendable {
    case never
    case safe
    case aggressive
    case always
}

/// `hash-type map-based|consistent` for hash-based balancing.
public enum HashType: String, Hashable, Sendable {
    case mapBased = "map-based"
    case consistent
}

/// `cookie NAME insert|rewrite|prefix [indirect] [nocache] [httponly] [secure] [maxidle T] [maxlife T]`.
public struct CookiePersistence: Hashable, Sendable {
    public enum Mode: String, Hashable, Sendable {
        case insert
        case rewrite
        case prefix
    }
    public var name: String
    public var mode: Mode
    public var indirect = false
    public var nocache = false
    public var httpOnly = false
    public var secure = false
    public var maxIdle: Int?
    public var maxLife: Int?

    public init(name: String, mode: Mode) {
        self.name = name
        self.mode = mode
    }
}

/// A capture slot of a frontend: `capture request|response header NAME len N`, or (no name) one
/// `declare capture request|response len N` or `http-request capture SAMPLE len N` made. A slot's
/// number is its place among the frontend's slots of its direction, in the order of their lines.
public struct HeaderCapture: Hashable, Sendable {
    /// The header captured before the rules; nil for a slot the capture actions fill.
    public var name: String?
    public var length: Int

    public init(name: String?, length: Int) {
        self.name = name
        self.length = length
    }
}

/// `capture cookie NAME len N`.
public struct CookieCapture: Hashable, Sendable {
    public var name: String
    public var length: Int

    public init(name: String, length: Int) {
        self.name = name
        self.length = length
    }
}

/// The HTTP settings of a proxy (frontend side and backend side together, as HAProxy keeps them).
public struct HTTPSettings: Hashable, Sendable {
    public var acls: [ACLDefinition] = []
    public var backendRules: [BackendSwitchRule] = []
    public var requestRules: [HTTPRequestRule] = []
    public var responseRules: [HTTPResponseRule] = []
    /// `http-after-response` rules: applied to every answer, the server's after `responseRules`
    /// and strata's own (errors, deny pages, return, redirect). Header, status and variable
    /// actions and `allow` only.
    public var afterResponseRules: [HTTPResponseRule] = []
    /// `redirect …` lines (evaluated after http-request rules, before use_backend, HAProxy's order).
    public var redirectRules: [RedirectRule] = []
    public var forwardFor: ForwardedHeader?
    public var originalTo: ForwardedHeader?
    /// `option forwarded …` (a backend's).
    public var forwarded: ForwardedOption?
    public var connectionMode: HTTPConnectionMode = .keepAlive
    public var reuse: HTTPReuse = .safe
    public var captures: [HeaderCapture] = []
    /// `capture cookie NAME len N`: the first request cookie and the first response cookie whose
    /// `name=value` starts with NAME, truncated to N (`%CC`, `%CS`).
    public var cookieCapture: CookieCapture?
    /// `capture response header` (a frontend's: the answers to its requests, logged by `%hs`).
    public var responseCaptures: [HeaderCapture] = []
    /// `option httplog` (or `option httplog clf`).
    public var httpLog = false
    public var httpLogCLF = false
    /// `option http-buffer-request`: wait for the whole body before connecting.
    public var bufferRequest = false
    /// `errorfile CODE PATH`: raw HTTP messages replacing the built-in error answers.
    public var errorFiles: [Int: [UInt8]] = [:]
    /// `cookie …` on the backend side; the servers' `cookie VALUE` is in `ServerOptions`.
    public var cookie: CookiePersistence?
    public var hashType: HashType = .mapBased
    /// `hash-balance-factor N` (0: off; else above 100): with `hash-type consistent`, no server
    /// takes more than N% of the average load per unit of weight (bounded-load hashing).
    public var hashBalanceFactor = 0
    /// The `userlist` sections `http_auth` fetches of this proxy name (by name; the Loader
    /// checks each exists).
    public var userlists: [String: Userlist] = [:]
    /// `option prefer-last-server`: a keep-alive client connection's next request tries the
    /// server its previous one used first.
    public var preferLastServer = false
    /// `option abortonclose`: a request whose client closed its side while the request waits
    /// for a server (queued, or its connection not yet established) is aborted rather than sent.
    public var abortOnClose = false
    /// `monitor-uri URI`: a request for exactly this target is answered 200 by the proxy itself
    /// (a load balancer's or monitor's probe), before any rule.
    public var monitorURI: String?
    /// `monitor fail if|unless COND`: the `monitor-uri` answer is 503 while the condition holds.
    public var monitorFail: Condition?
    /// `unique-id-format FMT`: each request's unique ID (`%ID`, the `unique-id` fetch), made
    /// once per request when first needed. HAProxy's log-format syntax, flags included
    /// (`%{+X}o %ci:%cp_%fi:%fp_%Ts_%rt:%pid`).
    public var uniqueIDFormat: LogFormatSpec?
    /// `unique-id-header NAME`: the ID goes to the server in this request header.
    public var uniqueIDHeader: String?
    /// `compression …`: HAProxy's HTTP compression of responses (nil: no `compression` line).
    public var compression: HTTPCompression?

    public init() {}
}

/// `compression algo|type|offload|minsize-res …` of a proxy (HAProxy's `struct comp`). A stream
/// takes the backend's algorithms and types when it has some, else the frontend's; `offload`
/// on either side applies.
public struct HTTPCompression: Hashable, Sendable {
    public enum Algorithm: String, Hashable, Sendable, CaseIterable {
        case identity
        case gzip
        /// The zlib format (RFC 1950).
        case deflate
        /// Deflate without the zlib wrapper, answered to the `deflate` token.
        case rawDeflate = "raw-deflate"

        /// The Accept-Encoding token it answers to, and its Content-Encoding.
        public var token: String {
            switch self {
            case .identity: return "identity"
            case .gzip: return "gzip"
            case .deflate, .rawDeflate: return "deflate"
            }
        }
    }

    /// `algo`/`algo-res`, in HAProxy's order of preference: each name is put before those
    /// already listed, so the last named wins a tie (and answers `*`).
    public var algorithms: [Algorithm] = []
    /// `type`/`type-res`: Content-Type prefixes to compress (empty: any type but multipart).
    public var types: [String] = []
    /// `offload`: Accept-Encoding is removed from requests the proxy compresses the answer of.
    public var offload = false
    /// `minsize-res`: a body of known length below this many bytes is not compressed.
    public var minimumSize = 0

    public init() {}
}

public struct RedirectRule: Hashable, Sendable {
    public var location: SourceLocation
    public var redirect: Redirect
    public var condition: Condition?

    public init(location: SourceLocation, redirect: Redirect, condition: Condition?) {
        self.location = location
        self.redirect = redirect
        self.condition = condition
    }
}

/// What a fetch reads of the PROXY protocol header a connection began with (`accept-proxy`).
public enum ProxyProtocolFetch: Hashable, Sendable {
    /// `fc_rcvd_proxy`: the connection began with one (boolean).
    case received
    /// `fc_pp_authority`, `fc_pp_unique_id`: v2's AUTHORITY and UNIQUE_ID TLVs.
    case authority
    case uniqueID
    /// `fc_pp_tlv(ID)`: the first TLV of that type.
    case tlv(UInt8)

    public var name: String {
        switch self {
        case .received: "fc_rcvd_proxy"
        case .authority: "fc_pp_authority"
        case .uniqueID: "fc_pp_unique_id"
        case .tlv: "fc_pp_tlv"
        }
    }
}

/// A part of the request line as received (`capture.req.*`).
public enum RequestLinePart: String, Hashable, Sendable {
    case method = "capture.req.method"
    case uri = "capture.req.uri"
    case version = "capture.req.ver"
}

/// `json`'s input code: how bytes from 0x80 are read (HAProxy's names).
public enum JSONInputCode: String, Hashable, Sendable, CaseIterable {
    case ascii, utf8, utf8s, utf8p, utf8ps

    /// `s`: a sequence that is not UTF-8 is dropped rather than failing the converter.
    public var skipsErrors: Bool { self == .utf8s || self == .utf8ps }
    /// `p`: overlong forms are taken.
    public var permissive: Bool { self == .utf8p || self == .utf8ps }
}
