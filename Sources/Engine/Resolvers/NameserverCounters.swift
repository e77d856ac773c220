/// One nameserver's counters, HAProxy's (`show resolvers`, the exporter's `resolver` module).
/// Carried across reloads while the section and the nameserver keep their names.
public struct NameserverCounters: Sendable, Equatable {
    /// Queries sent, and those c-ares could not send (a refused connection or port).
    public var sent = 0
    public var sendErrors = 0
    /// Answers with records of the type asked.
    public var valid = 0
    /// Valid answers that changed a server's address.
    public var update = 0
    /// Valid answers reached through a CNAME.
    public var cname = 0
    /// Answers with no record of the type asked (NOERROR, no data).
    public var anyError = 0
    public var nx = 0
    public var timeout = 0
    public var refused = 0
    /// SERVFAIL, NOTIMP, FORMERR and other failures.
    public var other = 0
    /// Answers that do not parse.
    public var invalid = 0
    /// Valid answers that came after another nameserver's valid answer to the same query.
    public var outdated = 0

    public init() {}

    /// HAProxy's names and order, with the value of each. HAProxy's `cname_error`, `too_big` and
    /// `truncated` are left out: c-ares follows CNAME chains and retries a truncated answer over
    /// TCP itself, so strata never sees those events.
    public var fields: [(name: String, value: Int)] {
        [("sent", sent), ("snd_error", sendErrors), ("valid", valid), ("update", update), ("cname", cname),
         ("any_err", anyError), ("nx", nx), ("timeout", timeout), ("refused", refused), ("other", other),
         ("invalid", invalid), ("outdated", outdated)]
    }
}
