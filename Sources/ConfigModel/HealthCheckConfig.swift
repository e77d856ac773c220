/// Health checks (HAProxy's `check` and friends, `option httpchk`, `http-check`, `tcp-check`) and
/// the server-state file. Times are milliseconds.

/// A server's check settings (`server … check inter … rise … fall …`, or `default-server`).
public struct ServerCheck: Hashable, Sendable {
    /// `check`: the server is health-checked at all.
    public var enabled = false
    /// `inter`: the delay between two checks (HAProxy's default 2 s).
    public var interval = 2000
    /// `fastinter`: the delay while the server is going up or down (defaults to `inter`).
    public var fastInterval: Int?
    /// `downinter`: the delay while the server is down (defaults to `inter`).
    public var downInterval: Int?
    /// `rise`: consecutive successes to go UP (default 2).
    public var rise = 2
    /// `fall`: consecutive failures to go DOWN (default 3).
    public var fall = 3
    /// `port`: check this port instead of the server's.
    public var port: UInt16?
    /// `addr`: check this address instead of the server's.
    public var address: IPAddress?
    /// `observe layer4|layer7`: count live traffic errors against the server.
    public var observe: ObserveMode?
    /// `error-limit` (default 10) and `on-error` for `observe`.
    public var errorLimit = 10
    public var onError: OnError = .failCheck
    /// `on-marked-down shutdown-sessions`: close the server's sessions when it goes DOWN.
    public var shutdownSessionsOnDown = false
    /// `check-send-proxy`: a PROXY header (the server's version, v1 by default) starts every check,
    /// even with its own `port` or `addr`.
    public var sendProxy = false
    /// `agent-check` and its `agent-*` settings.
    public var agent = AgentCheck()

    public enum ObserveMode: String, Hashable, Sendable {
        case layer4
        case layer7
    }

    public enum OnError: String, Hashable, Sendable {
        /// `fastinter`: a failed check is simulated, checks speed up.
        case fastInterval = "fastinter"
        /// `fail-check`: a failed check is simulated (default).
        case failCheck = "fail-check"
        /// `sudden-death`: as if the check failed `fall - 1` times at once.
        case suddenDeath = "sudden-death"
        /// `mark-down`: the server goes DOWN at once.
        case markDown = "mark-down"
    }

    public init() {}
}

/// HAProxy's auxiliary agent check: a TCP connection of its own every `agent-inter`, that sends
/// `agent-send` and reads one line in which the server states its weight, maxconn, admin state
/// (`ready`, `drain`, `maint`) or health (`up`, `down`, …).
public struct AgentCheck: Hashable, Sendable {
    /// `agent-check` (`no-agent-check` turns it off again).
    public var enabled = false
    /// `agent-port`; without it the check's `port` (HAProxy requires one of them).
    public var port: UInt16?
    /// `agent-addr`; without it the check's `addr`, then the server's address.
    public var address: IPAddress?
    /// `agent-inter` (ms, HAProxy's default 2 s): the delay between two agent checks, and their
    /// timeout without `timeout check`.
    public var interval = 2000
    /// `agent-send`: bytes written once connected, verbatim.
    public var send: [UInt8] = []

    public init() {}
}

/// An expectation of `http-check expect [!] status|rstatus|string|rstring PATTERN`.
public struct HTTPCheckExpectation: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        /// `status 200` or a list/range `200-399` (HAProxy 2.2+ accepts lists).
        case status
        case statusRegex = "rstatus"
        case string
        case stringRegex = "rstring"
    }
    public var kind: Kind
    public var pattern: String
    public var negated: Bool

    public init(kind: Kind, pattern: String, negated: Bool) {
        self.kind = kind
        self.pattern = pattern
        self.negated = negated
    }
}

/// `option httpchk [METHOD] [URI] [VERSION]` and `http-check send meth M uri U [ver V] [hdr N V]…`.
public struct HTTPCheck: Hashable, Sendable {
    public var method = "OPTIONS"
    public var uri = "/"
    public var version = "HTTP/1.0"
    public var headerList: [HeaderLine] = []
    public var body: String?
    /// `http-check connect [default] port N` before the other rules: the check's port (over the
    /// server's `port` option, as HAProxy's connect rule).
    public var connectPort: UInt16?
    /// Without an expectation, a 2xx or 3xx status passes (HAProxy's rule).
    public var expectations: [HTTPCheckExpectation] = []
    /// `http-check disable-on-404`: a 404 from an UP server takes it out of balancing (NOLB) and
    /// keeps it for persistent traffic; a 2xx or 3xx brings it back.
    public var disableOn404 = false

    public struct HeaderLine: Hashable, Sendable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public init() {}
}

/// One `tcp-check` rule, in order.
public enum TCPCheckStep: Hashable, Sendable {
    /// `tcp-check connect [port N]`.
    case connect(port: UInt16?)
    /// `tcp-check send STRING` (escapes as HAProxy: `\r\n`).
    case send([UInt8])
    /// `tcp-check send-binary HEX`.
    case sendBinary([UInt8])
    /// `tcp-check expect [!] string S | rstring RE | binary HEX`.
    case expectString(String, negated: Bool)
    case expectRegex(String, negated: Bool)
    case expectBinary([UInt8], negated: Bool)
}

/// What a backend's checks do on the wire.
public enum HealthCheckKind: Hashable, Sendable {
    /// A TCP connect (the default).
    case connect
    /// `option httpchk`.
    case http(HTTPCheck)
    /// `option tcp-check` with `tcp-check` rules.
    case tcpCheck([TCPCheckStep])
    /// `option ssl-hello-chk`, `redis-check`, `smtpchk`, `pgsql-check`, `mysql-check`, `ldap-check`:
    /// HAProxy's predefined tcp-check rule sets for these protocols.
    case protocolCheck(ProtocolCheck)
}

/// A check speaking a server's protocol, as HAProxy's built-in rule sets (src/tcpcheck.c) do.
public enum ProtocolCheck: Hashable, Sendable {
    /// `option ssl-hello-chk`: an SSLv3 ClientHello, a handshake or alert record back (L6OK).
    case sslHello
    /// `option redis-check`: `PING` as a RESP array, `+PONG` back.
    case redis
    /// `option smtpchk [HELO|EHLO domain]`: a 2xx banner, then the command (default
    /// `HELO localhost`) and a 2xx answer, then `QUIT` and a 2xx answer.
    case smtp(command: String)
    /// `option pgsql-check user U`: a StartupMessage, an authentication request back.
    case pgsql(user: String)
    /// `option mysql-check [user U [post-41|pre-41]]`: the server's initial handshake; with a user,
    /// a handshake response and COM_QUIT, then an OK packet.
    case mysql(user: String?, post41: Bool)
    /// `option ldap-check`: an anonymous LDAPv3 bind, a successful bind response back.
    case ldap

    /// The option's name as written in a configuration.
    public var keyword: String {
        switch self {
        case .sslHello: "option ssl-hello-chk"
        case .redis: "option redis-check"
        case .smtp: "option smtpchk"
        case .pgsql: "option pgsql-check"
        case .mysql: "option mysql-check"
        case .ldap: "option ldap-check"
        }
    }
}

/// A backend's check settings.
public struct BackendChecks: Hashable, Sendable {
    public var kind: HealthCheckKind = .connect
    /// `option allbackups`: every usable backup takes traffic, not only the first.
    public var allBackups = false
    /// `option log-health-checks`: every change of a check's status and of a server's check
    /// health is logged (HAProxy's "Health check for server … failed"), not only UP and DOWN.
    public var logHealthChecks = false
    /// `timeout check`: the read timeout of a check once connected (HAProxy uses `inter` when unset;
    /// the connect itself is bounded by `timeout connect`).
    public var timeout: Int?

    public init() {}
}

/// `load-server-state-from-file global|local|none` and `server-state-file`/`server-state-base`.
public enum ServerStateFileMode: String, Hashable, Sendable {
    case none
    case global
    case local
}
