import ConfigModel
import Glibc

/// RLIMIT_NOFILE for a configuration, at start and on every reload. HAProxy's rule: raise the
/// soft limit to what `maxconn` needs, and refuse to start when that is more than the process can
/// have; without it, a `maxconn` above the limit is accepted and ends in 503s once fds run out.
/// A reload runs this too: it can raise the soft limit up to the hard one, but (unprivileged)
/// not the hard limit itself.
enum FileDescriptorLimit {
    /// Raises the soft limit for `config`, or says why the configuration cannot have what it
    /// needs (at its `maxconn` or `ulimit-n` line). `atStart`: without a global maxconn, the
    /// soft limit goes up to the hard one, as HAProxy does, and the engine derives maxconn from it.
    /// `changing` false (a reload plan): the same answer, and the limits are left as they are.
    /// `needs`: `FileDescriptorNeeds(config)` when it was computed ahead (a rollback's, with its
    /// generation built ahead), so that the loop does not walk the configuration again.
    static func apply(_ config: Config, atStart: Bool, changing: Bool = true,
                      needs precomputed: FileDescriptorNeeds?? = nil) -> [ConfigError] {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return [] }
        let soft = Int(clamping: limit.rlim_cur), hard = Int(clamping: limit.rlim_max)
        let global = config.global
        let needs = precomputed ?? FileDescriptorNeeds(config)
        let target: Int
        if let asked = global.fileLimit {
            if let needs, asked < needs.required {
                return [ConfigError(global.locations["ulimit-n"],
                                    "'ulimit-n \(asked)' is too low for maxconn \(needs.maxconn), which needs about \(needs.required) file descriptors")]
            }
            guard asked > soft else { return [] }
            if raise(to: asked, hard: hard, changing: changing) { return [] }
            return [ConfigError(global.locations["ulimit-n"],
                                "'ulimit-n \(asked)' is above the hard limit \(hard) (ulimit -Hn), which only root can raise")]
        } else if let needs {
            if needs.required > hard {
                // Root may raise the hard limit; anyone else is refused.
                if raise(to: needs.required, hard: hard, changing: changing) { return [] }
                return [ConfigError(global.locations["maxconn"],
                                    "maxconn \(needs.maxconn) needs about \(needs.required) file descriptors; the limit is \(hard) (ulimit -n)")]
            }
            target = min(needs.wanted, hard)
        } else {
            guard atStart else { return [] }
            // The engine's own ceiling for a derived maxconn; a hard limit of "unlimited" cannot be a soft one.
            target = min(hard, 1 << 20)
        }
        if target > soft { _ = raise(to: target, hard: hard, changing: changing) }
        return []
    }

    /// Sets the soft limit to `value`, and the hard one too when `value` is above it (root only);
    /// a hard limit at or above it is left as it is ("unlimited" included). Not `changing`: whether
    /// it would succeed (raising the hard limit takes root's CAP_SYS_RESOURCE).
    private static func raise(to value: Int, hard: Int, changing: Bool) -> Bool {
        guard changing else { return value <= hard || geteuid() == 0 }
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return false }
        limit.rlim_cur = rlim_t(value)
        if value > hard { limit.rlim_max = rlim_t(value) }
        return setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0
    }
}
