import ConfigModel

/// A connection's stick counters (HAProxy's `stkctr[0..2]`): the entries `track-sc0/1/2` made it
/// track. Owned by the session (its loop's thread alone); each table it touches takes its own
/// lock. A counter tracked by `tcp-request connection` (or by `tcp-request content` in mode tcp)
/// lives as long as the connection; one tracked by `http-request` (or `tcp-request content` in
/// mode http) as long as the request.
final class StickTracker: Hashable, @unchecked Sendable {
    struct Slot {
        let table: StickTable
        let entry: StickEntry
        /// Released when the request ends.
        let request: Bool
    }

    private(set) var slots: [Slot?] = [nil, nil, nil]
    /// Bytes not yet counted into the tracked entries (they are counted when a request or the
    /// session ends, as HAProxy's `stream_process_counters` does at its end).
    var bytesIn = 0
    var bytesOut = 0

    static func == (a: StickTracker, b: StickTracker) -> Bool { a === b }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }

    var isEmpty: Bool { slots[0] == nil && slots[1] == nil && slots[2] == nil }

    func slot(_ n: Int) -> Slot? { slots[n] }

    /// `track-sc<n>`: ignored when the counter already tracks something (HAProxy's rule).
    func track(_ n: Int, table: StickTable, key: StickKey, request: Bool, httpRequest: Bool, session: Bool) {
        guard slots[n] == nil, let entry = table.track(key, httpRequest: httpRequest, session: session) else { return }
        slots[n] = Slot(table: table, entry: entry, request: request)
    }

    /// The connection passed `tcp-request connection`: a session starts (HAProxy counts
    /// `sess_cnt` then, so that a rejected connection is no session).
    func countSession() {
        for case let s? in slots {
            s.table.count(s.entry, .sessionCount, 1, rate: .sessionRate)
        }
    }

    /// A new HTTP request on a connection whose counters were tracked before it.
    func countHTTPRequest() {
        for case let s? in slots {
            s.table.count(s.entry, .httpRequestCount, 1, rate: .httpRequestRate)
        }
    }

    /// The end of a request: its error (a 4xx answer) and its bytes are counted, and the
    /// counters it tracked are let go (one lock per counter).
    func endRequest(status: Int) { finish(status: status, all: false) }

    /// The end of the session: every counter is let go.
    func end(status: Int = 0) { finish(status: status, all: true) }

    private func finish(status: Int, all: Bool) {
        let error = status >= 400 && status < 500
        let bytesIn = self.bytesIn, bytesOut = self.bytesOut
        self.bytesIn = 0
        self.bytesOut = 0
        for i in 0..<3 {
            guard let s = slots[i] else { continue }
            let release = all || s.request
            s.table.finish(s.entry, error: error, bytesIn: bytesIn, bytesOut: bytesOut, release: release)
            if release { slots[i] = nil }
        }
    }
}

/// The stick tables of the process by name, outside any generation: what a new generation takes
/// its tables from (`table(for:)`, on the reload builder's thread) and what the active one put
/// there (`adopt`, on the control loop). Behind its own lock: the builder and the control loop
/// are different threads; no data loop reads it.
final class StickTableRegistry: @unchecked Sendable {
    private let tables = Locked([String: StickTable]())

    /// The table a generation being built uses for `config`: the live one when its identity is
    /// the same (entries kept), else a new, empty one.
    func table(for config: StickTableConfig) -> (table: StickTable, carried: Bool, replaced: Bool) {
        tables.withLock { t in
            if let live = t[config.name], live.identity == config.identity { return (live, true, false) }
            return (StickTable(config), false, t[config.name] != nil)
        }
    }

    /// A generation became active: its tables are the live ones (their `expire` as it says).
    func adopt(_ generation: [String: (StickTable, StickTableConfig)]) {
        tables.withLock { t in
            t = generation.mapValues { $0.0 }
        }
        for (table, config) in generation.values { table.update(config) }
    }

    var all: [StickTable] { tables.withLock { Array($0.values) } }
}
