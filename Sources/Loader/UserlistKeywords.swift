import ConfigModel

/// The lines of a `userlist` section (configuration.txt §3.4): `group NAME [users U,…]` and
/// `user NAME password HASH|insecure-password PASS [groups G,…]`. Membership may be written on
/// either side and names a user or group declared anywhere in the section: it is resolved once
/// the section is read (`resolveMemberships`).
extension KeywordReader {
    static let userlistKeywords = ["group", "user"]

    static func userlistKeyword(_ line: KeywordLine, draft pending: inout UserlistDraft) throws(ConfigError) {
        var userlist = pending.userlist
        defer { pending.userlist = userlist }
        switch line.keyword {
        case "group":
            let name = try line.argument(0, expecting: "a group name")
            if userlist.groups.contains(name) { throw line.error("group '\(name)' is already declared in userlist '\(userlist.name)'") }
            userlist.groups.append(name)
            if let option = line.optionalArgument(1) {
                guard option == "users", let users = line.optionalArgument(2) else {
                    throw line.error("'group \(name)': expected 'users USER[,USER…]', got '\(option)'")
                }
                try line.noArguments(after: 3)
                pending.members.append(.init(group: name, users: list(users), location: line.location))
            }
        case "user":
            let name = try line.argument(0, expecting: "a user name")
            do throws(ConfigError) {
                try user(name, line, userlist: &userlist, pending: &pending)
            } catch {
                // Named elsewhere in the section, it is not also reported as unknown there.
                pending.failedUsers.insert(name)
                throw error
            }
        default:
            throw line.error("'\(line.keyword)' is not a userlist keyword (expected group or user)"
                + KeywordSuggestion.clause(for: line.keyword, among: userlistKeywords))
        }
    }

    private static func user(_ name: String, _ line: KeywordLine, userlist: inout Userlist, pending: inout UserlistDraft)
        throws(ConfigError)
    {
        if userlist.users.contains(where: { $0.name == name }) {
            throw line.error("user '\(name)' is already declared in userlist '\(userlist.name)'")
        }
        var password: Userlist.Password?
        var groups: [String] = []
        var i = 1
        while let option = line.optionalArgument(i) {
            switch option {
            case "password", "insecure-password":
                guard let value = line.optionalArgument(i + 1) else { throw line.error("'user \(name)': '\(option)' expects a value") }
                password = option == "password" ? .hashed(value) : .clear(value)
            case "groups":
                guard let value = line.optionalArgument(i + 1) else { throw line.error("'user \(name)': 'groups' expects GROUP[,GROUP…]") }
                groups = list(value)
            default:
                throw line.error("'user \(name)': unknown option '\(option)' (expected password, insecure-password or groups)")
            }
            i += 2
        }
        guard let password else { throw line.error("'user \(name)' expects 'password HASH' or 'insecure-password PASSWORD'") }
        if case .hashed(let hash) = password, !hash.hasPrefix("$") || hash.count < 4 {
            // crypt(3) would refuse it at every request; HAProxy warns about DES hashes, strata has none.
            throw line.error("'user \(name)': '\(hash)' is not a crypt(3) hash ($5$…, $6$…, $y$…)")
        }
        userlist.users.append(Userlist.User(name: name, password: password, groups: groups))
        pending.groupNames.append(.init(user: name, groups: groups, location: line.location))
    }

    private static func list(_ text: String) -> [String] {
        text.split(separator: ",").map(String.init).filter { !$0.isEmpty }
    }
}

/// A `userlist` section being read: the section, and the memberships to check once it is whole.
struct UserlistDraft {
    var userlist: Userlist
    var members: [PendingMembers] = []
    var groupNames: [PendingGroupNames] = []
    /// Users whose line was refused (reported there).
    var failedUsers: Set<String> = []

    struct PendingMembers {
        var group: String
        var users: [String]
        var location: SourceLocation
    }
    struct PendingGroupNames {
        var user: String
        var groups: [String]
        var location: SourceLocation
    }

    /// Every user's groups (its own `groups` and the `group … users` lines naming it); an unknown
    /// user or group is an error at the line naming it, as HAProxy's.
    func resolved() -> (Userlist, [ConfigError]) {
        var out = userlist
        var errors: [ConfigError] = []
        let groups = Set(userlist.groups)
        for entry in groupNames {
            for g in entry.groups where !groups.contains(g) {
                errors.append(ConfigError(entry.location, "user '\(entry.user)': no group '\(g)' in userlist '\(userlist.name)'"))
            }
        }
        for entry in members {
            for u in entry.users {
                guard let index = out.users.firstIndex(where: { $0.name == u }) else {
                    if failedUsers.contains(u) { continue }
                    errors.append(ConfigError(entry.location, "group '\(entry.group)': no user '\(u)' in userlist '\(userlist.name)'"))
                    continue
                }
                if !out.users[index].groups.contains(entry.group) { out.users[index].groups.append(entry.group) }
            }
        }
        return (out, errors)
    }
}

extension ConfigParser {
    /// Resolves every `userlist` section and gives each proxy the ones its `http_auth` fetches
    /// name; a name no section has is an error at the criterion naming it.
    func applyUserlists(to config: inout Config) -> [ConfigError] {
        var errors: [ConfigError] = []
        var lists: [String: Userlist] = [:]
        for draft in userlists where !draft.userlist.name.isEmpty {
            let (list, problems) = draft.resolved()
            errors += problems
            lists[list.name] = list
        }
        for p in config.proxies.indices {
            var names: [(String, SourceLocation)] = []
            func visit(_ criteria: [ACLCriterion]) {
                for c in criteria {
                    switch c.sample.fetch {
                    case .httpAuth(let name), .httpAuthGroup(let name): names.append((name, c.location))
                    default: break
                    }
                }
            }
            func visit(_ condition: Condition?) {
                guard let condition else { return }
                for group in condition.alternatives { for term in group { visit(term.criteria) } }
            }
            let http = config.proxies[p].http
            for acl in http.acls { visit(acl.criteria) }
            for rule in http.requestRules { visit(rule.condition) }
            for rule in http.responseRules + http.afterResponseRules { visit(rule.condition) }
            for rule in http.backendRules { visit(rule.condition) }
            for rule in http.redirectRules { visit(rule.condition) }
            // The stats page's conditions (`stats admin if`, `stats http-request … unless { http_auth(L) }`).
            visit(config.proxies[p].stats?.admin)
            for rule in config.proxies[p].stats?.rules ?? [] { visit(rule.condition) }
            for (name, location) in names {
                if let list = lists[name] {
                    config.proxies[p].http.userlists[name] = list
                } else if !errors.contains(where: { $0.location == location }) {
                    errors.append(ConfigError(location, "unable to find userlist '\(name)'"))
                }
            }
        }
        return errors
    }
}
