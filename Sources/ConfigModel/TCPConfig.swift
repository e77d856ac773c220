/// The TCP layer of a proxy (issue 13): the PROXY protocol on binds and servers, and the
/// `tcp-request` / `tcp-response` rules, with HAProxy's semantics (doc/configuration.txt).

/// `send-proxy`, `send-proxy-v2`, `send-proxy-v2-ssl`, `send-proxy-v2-ssl-cn` and
/// `proxy-v2-options` on a `server` / `default-server`.
public struct SendProxy: Hashable, Sendable {
    /// 1 or 2.
    public var version: Int
    /// v2's TLVs (`proxy-v2-options`, and `ssl`/`cert-cn` from the `-ssl`/`-ssl-cn` forms).
    public var options: Set<ProxyV2Option>

    public init(version: Int, options: Set<ProxyV2Option> = []) {
        self.version = version
        self.options = options
    }
}

/// The `proxy-v2-options` strata writes.
public enum ProxyV2Option: String, Hashable, Sendable, CaseIterable {
    /// PP2_TYPE_SSL with the client connection's TLS version.
    case ssl
    /// The client certificate's common name in PP2_TYPE_SSL (with `ssl`).
    case certCN = "cert-cn"
    /// The cipher in PP2_TYPE_SSL (with `ssl`).
    case sslCipher = "ssl-cipher"
    /// PP2_TYPE_AUTHORITY: the server name the client sent (SNI).
    case authority
    /// PP2_TYPE_CRC32C: a checksum of the header.
    case crc32c
}

/// What a `tcp-request` rule does.
public enum TCPRuleAction: Hashable, Sendable {
    case accept
    case reject
    /// `silent-drop`: like `reject`, but the connection is reset (SO_LINGER 0) rather than closed
    /// with a FIN, so the client learns nothing more (HAProxy hides even the reset; strata does not).
    case silentDrop
    /// `tcp-request connection expect-proxy layer4`: read a PROXY header first.
    case expectProxy
    /// `track-sc*`, `sc-inc-gpc0/1`, `sc-set-gpt0`: the rule goes on to the next one.
    case stickCounter(StickCounterAction)
    /// `tcp-response content close`: the server connection is closed at once; what it sent goes
    /// to the client, which is then closed too.
    case close
    /// `set-var(SCOPE.NAME) EXPR`, `set-var-fmt(SCOPE.NAME) FMT`, `unset-var(SCOPE.NAME)`: as
    /// http-request's; the rule goes on to the next one.
    case setVariable(name: String, value: SampleExpression)
    case setVariableFormat(name: String, value: FormatString)
    case unsetVariable(name: String)
    /// `tcp-request content capture SAMPLE len N`: the sample as text, cut to `length`, in the
    /// frontend's request capture `slot` (its place among the `capture request header` lines and
    /// these rules, in the order they are written: HAProxy's `%hr` order).
    case capture(SampleExpression, length: Int, slot: Int)
    /// `tcp-request connection set-src|set-src-port|set-dst|set-dst-port EXPR`: the connection's
    /// address from now on (logs, balancing, X-Forwarded-For, the rules after).
    case setAddress(ConnectionAddressPart, SampleExpression)
}

public struct TCPRule: Hashable, Sendable {
    public var location: SourceLocation
    public var action: TCPRuleAction
    public var condition: Condition?

    public init(location: SourceLocation, action: TCPRuleAction, condition: Condition?) {
        self.location = location
        self.action = action
        self.condition = condition
    }
}

/// A proxy's `tcp-request` and `tcp-response` settings.
public struct TCPRules: Hashable, Sendable {
    /// `tcp-request connection …`, evaluated when a connection is accepted (real addresses).
    public var connection: [TCPRule] = []
    /// `tcp-request session …`, evaluated once the session is validated (after a PROXY header
    /// and the TLS handshake), before anything is read.
    public var session: [TCPRule] = []
    /// `tcp-request content …`, evaluated on the client's first bytes (up to `inspectDelay`).
    public var content: [TCPRule] = []
    /// `tcp-request inspect-delay T` (ms).
    public var inspectDelay: Int?
    /// `tcp-response content …` (backend side), evaluated on the server's first bytes (up to
    /// `responseInspectDelay`).
    public var response: [TCPRule] = []
    /// `tcp-response inspect-delay T` (ms).
    public var responseInspectDelay: Int?
    /// `option splice-auto` (nil: not said; strata splices adaptively by default), and
    /// `option splice-request` / `option splice-response` (splice from the first byte).
    public var spliceAuto: Bool?
    public var spliceRequest = false
    public var spliceResponse = false

    public init() {}
}
