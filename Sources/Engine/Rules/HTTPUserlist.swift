import CLibEV
import ConfigModel

/// A `userlist` compiled for a rule set: who the Basic credentials of a request name, for
/// `http_auth(L)` and `http_auth_group(L)`. Immutable once built (read by every loop).
final class HTTPUserlist: @unchecked Sendable {
    struct User {
        let password: Userlist.Password
        /// Group names as bytes that live as long as the rule set (`http_auth_group` samples).
        let groups: [UnsafeRawBufferPointer]
    }
    private let users: [String: User]

    init(_ list: Userlist, constants: HTTPRuleConstants) {
        var users: [String: User] = [:]
        for u in list.users {
            users[u.name] = User(password: u.password, groups: u.groups.map { constants.bytes($0) })
        }
        self.users = users
    }

    /// The user an `Authorization: Basic …` value names with the right password, or nil.
    /// A hashed password costs a crypt(3) per request, as in HAProxy (SHA-512 with 5,000 rounds:
    /// milliseconds); `insecure-password` is compared in constant time.
    func authenticate(_ value: UnsafeRawBufferPointer) -> User? {
        guard let decoded = StatsAuth.basicCredentials(value), let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let name = String(decoding: decoded[..<colon], as: UTF8.self)
        let password = Array(decoded[(colon + 1)...])
        guard let user = users[name], !password.contains(0) else { return nil }
        switch user.password {
        case .clear(let expected):
            let e = Array(expected.utf8)
            guard e.count == password.count else { return nil }
            var diff: UInt8 = 0
            for i in e.indices { diff |= e[i] ^ password[i] }
            return diff == 0 ? user : nil
        case .hashed(let hash):
            let ok = (password + [0]).withUnsafeBufferPointer { p in
                hash.withCString { h in
                    CLibEV_password_matches(UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self), h) == 1
                }
            }
            return ok ? user : nil
        }
    }
}
