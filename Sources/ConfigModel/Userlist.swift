/// A `userlist` section: users with their password (a crypt(3) hash or, with
/// `insecure-password`, the password itself) and groups, as HAProxy reads them
/// (configuration.txt §3.4). Used by `http_auth(NAME)`, `http_auth_group(NAME)` and
/// `http-request auth`.
public struct Userlist: Hashable, Sendable {
    public var name: String
    public var location: SourceLocation
    public var users: [User] = []
    /// Group names, in declaration order (`group NAME [users …]`).
    public var groups: [String] = []

    public init(name: String, location: SourceLocation) {
        self.name = name
        self.location = location
    }

    public struct User: Hashable, Sendable {
        public var name: String
        public var password: Password
        /// The groups the user belongs to, from its `groups` and the groups' `users`.
        public var groups: [String]

        public init(name: String, password: Password, groups: [String]) {
            self.name = name
            self.password = password
            self.groups = groups
        }
    }

    public enum Password: Hashable, Sendable {
        /// `password HASH`: checked with crypt(3) (`$6$…`, `$5$…`, `$y$…`, …).
        case hashed(String)
        /// `insecure-password PASS`.
        case clear(String)
    }
}
