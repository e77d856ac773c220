import HTTP1
import Glibc

/// A POSIX extended regular expression compiled once with `regcomp` (`REG_ICASE` for `-i`), run
/// with `REG_STARTEND` on bytes that are not NUL-terminated.
final class HTTPRegex: @unchecked Sendable {
    private let regex: UnsafeMutablePointer<regex_t>
    /// Capturing groups in the expression.
    let groupCount: Int

    /// Most groups `\N` may refer to (`\0` … `\9`).
    static let maxGroups = 10

    /// Compiles `pattern`; the error is regerror's message.
    init(_ pattern: String, ignoreCase: Bool) throws(HTTPRegexError) {
        regex = UnsafeMutablePointer<regex_t>.allocate(capacity: 1)
        let flags = REG_EXTENDED | (ignoreCase ? REG_ICASE : 0)
        let rc = regcomp(regex, pattern, flags)
        guard rc == 0 else {
            var message = [CChar](repeating: 0, count: 256)
            regerror(rc, regex, &message, message.count)
            regex.deallocate()
            let bytes = message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            throw HTTPRegexError(message: String(decoding: bytes, as: UTF8.self))
        }
        groupCount = Int(regex.pointee.re_nsub)
    }

    deinit {
        regfree(regex)
        regex.deallocate()
    }

    /// Whether the expression matches somewhere in `subject`.
    func matches(_ subject: UnsafeRawBufferPointer) -> Bool {
        withUnsafeTemporaryAllocation(of: regmatch_t.self, capacity: 1) { m in
            match(subject, into: m)
        }
    }

    /// Matches `subject`, filling `groups` (offsets into `subject`, -1 for a group that did not take part).
    func match(_ subject: UnsafeRawBufferPointer, into groups: UnsafeMutableBufferPointer<regmatch_t>) -> Bool {
        groups[0].rm_so = 0
        groups[0].rm_eo = regoff_t(subject.count)
        // A non-nil pointer even for empty input: REG_STARTEND reads nothing outside the range.
        let base = subject.baseAddress ?? UnsafeRawPointer(groups.baseAddress!)
        return regexec(regex, base.assumingMemoryBound(to: CChar.self), groups.count, groups.baseAddress,
                       REG_STARTEND) == 0
    }
}

struct HTTPRegexError: Error {
    var message: String
}
