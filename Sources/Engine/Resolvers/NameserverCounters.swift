/// One nameserver's counters, HAProxy's (`show resolvers`, the exporter's `resolver` module).
/// Carried across reloads while the section and the nameserver keep their names.
struct NameserverCounters: Sendable, Equatable {
    /// Queries sent, and those c-ares could not send (a refused connection or port).
    var sent = 0
    var sendErrors = 0
    /// Answers with records of the type asked.
    var valid = 0
    /// Valid answers that changed a server's address.
    var update = 0
    /// Valid answers reached through a CNAME.
    var cname = 0
    /// Answers with no record of the type asked (NOERROR, no data).
    var anyError = 0
    var nx = 0
    var timeout = 0
    var refused = 0
    /// SERVFAIL, NOTIMP, FORMERR and other failures.
    var other = 0
    /// Answers that do not parse.
    var invalid = 0
    /// Valid answers that came after another nameserver's valid answer to the same query.
    var outdated = 0

    init() {}

    /// HAProxy's names and order, with the value of each. HAProxy's `cname_error`, `too_big` and
    /// `truncated` are left out: c-ares follows CNAME chains and retries a truncated answer over
    /// TCP itself, so strata never sees those events.
    var fields: [(name: String, value: Int)] {
        [("sent", sent), ("snd_error", sendErrors), ("valid", valid), ("update", update), ("cname", cname),
         ("any_err", anyError), ("nx", nx), ("timeout", timeout), ("refused", refused), ("other", other),
         ("invalid", invalid), ("outdated", outdated)]
    }
}
