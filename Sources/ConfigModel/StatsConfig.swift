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
