/// `stats enable`, `stats uri`, `stats refresh`, `stats auth`, `stats realm`, `stats hide-version`,
/// `stats admin if COND` on an HTTP proxy: the stats page it answers itself.
public struct StatsPage: Hashable, Sendable {
    /// `stats uri` (default `/haproxy?stats`, HAProxy's).
    public var uri = "/haproxy?stats"
    /// `stats refresh`: the page reloads itself this often (ms).
    public var refresh: Int?
    /// `stats auth USER:PASS` lines: basic authentication when any is set.
    public var credentials: [Credential] = []
    /// `stats realm`: the basic-auth realm (default "HAProxy Statistics").
    public var realm = "HAProxy Statistics"
    /// `stats hide-version`.
    public var hideVersion = false
    /// `stats admin if COND`: who may change server states from the page.
    public var admin: Condition?
    /// `stats show-legends`: each proxy's and server's mode, id, address and cookie on the page.
    public var showLegends = false
    /// `stats show-node [NAME]`: the node's name on the page (the host name without NAME).
    public var showNode = false
    public var nodeName: String?
    /// `stats show-desc [DESC]`: a description on the page (the global `description` without DESC).
    public var showDescription = false
    public var description: String?
    /// `stats scope NAME` lines: the page reports only these proxies (`.` is the page's own).
    public var scopes: [String] = []
    /// `stats http-request allow|deny|auth … [if|unless COND]`: the first rule that applies
    /// decides who gets the page (none applies: the page is served).
    public var rules: [StatsRule] = []
    public var location: SourceLocation

    public struct Credential: Hashable, Sendable {
        public var user: String
        public var password: String
        public init(user: String, password: String) {
            self.user = user
            self.password = password
        }
    }

    public init(location: SourceLocation) { self.location = location }
}

/// One `stats http-request` line.
public struct StatsRule: Hashable, Sendable {
    public enum Action: Hashable, Sendable {
        case allow
        /// `deny [deny_status N]`: HAProxy's page for N (403).
        case deny(status: Int)
        /// `auth [realm R]`: 401 asking for Basic credentials ("HAProxy Statistics" without R).
        case auth(realm: String?)
    }
    public var location: SourceLocation
    public var action: Action
    public var condition: Condition?

    public init(location: SourceLocation, action: Action, condition: Condition?) {
        self.location = location
        self.action = action
        self.condition = condition
    }
}
