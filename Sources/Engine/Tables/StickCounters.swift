import ConfigModel

/// A stick-counter action compiled (`track-sc*`, `sc-inc-gpc0/1`, `sc-set-gpt0`), for
/// `http-request` and `tcp-request` rules alike.
enum HTTPCompiledStickAction {
    case track(counter: Int, table: Unmanaged<StickTable>?, key: HTTPCompiledSample)
    case incrementGPC(gpc: Int, counter: Int)
    case setGPT0(counter: Int, value: Int, sample: HTTPCompiledSample?)

    init(_ action: StickCounterAction, constants: HTTPRuleConstants) {
        switch action {
        case .track(let t):
            self = .track(counter: t.counter, table: constants.stickTable(t.table), key: HTTPCompiledSample(t.key, constants: constants))
        case .incrementGPC(let gpc, let counter):
            self = .incrementGPC(gpc: gpc, counter: counter)
        case .setGPT0(let counter, .integer(let v)):
            self = .setGPT0(counter: counter, value: v, sample: nil)
        case .setGPT0(let counter, .sample(let s)):
            self = .setGPT0(counter: counter, value: 0, sample: HTTPCompiledSample(s, constants: constants))
        }
    }
}

/// Where the tracking happens, which decides what it counts and how long it lasts.
enum StickTrackingLevel {
    /// `tcp-request connection`: the session's, counting a session.
    case connection
    /// `tcp-request content` in mode tcp: the session's.
    case tcpContent
    /// `http-request`, and `tcp-request content` in mode http: the request's, counting it.
    case request
}

enum StickCounters {
    /// `table_*(T)`: the value stored for `key`; 0 without an entry, nil when not stored.
    static func tableValue(_ kind: StickTableConverterKind, table: StickTable, key: StickKey) -> Int? {
        switch kind {
        case .trackers:
            return table.trackers(of: key)
        case .value(let type, let kilobytes):
            guard table.stores(type) else { return nil }
            let v = table.value(of: key, type) ?? 0
            return kilobytes ? v / 1024 : v
        }
    }
}

extension HTTPEvaluation {
    /// A sample as a key of `table`.
    func stickKey(_ sample: HTTPSample, table: StickTable) -> StickKey? {
        switch table.type {
        case .ip, .ipv6:
            return address(of: sample).flatMap { table.key(address: $0) }
        case .integer:
            return integer(of: sample).flatMap { table.key(integer: $0) }
        case .string, .binary:
            return bytes(of: sample).flatMap { table.key(bytes: $0) }
        }
    }

    /// Runs a stick-counter action. Nothing happens without a tracker (no table in the
    /// generation) or for a counter not tracked.
    func perform(_ action: HTTPCompiledStickAction, level: StickTrackingLevel) {
        guard let tracker = connection.pointee.tracker else { return }
        switch action {
        case .track(let n, let table, let key):
            guard tracker.slot(n) == nil, let table = table?.takeUnretainedValue(),
                  let sample = value(key), let k = stickKey(sample, table: table) else { return }
            tracker.track(n, table: table, key: k, request: level == .request, httpRequest: level == .request,
                          session: false)
        case .incrementGPC(let gpc, let n):
            guard let slot = tracker.slot(n) else { return }
            _ = slot.table.incrementGPC(gpc, entry: slot.entry)
        case .setGPT0(let n, let constant, let sample):
            guard let slot = tracker.slot(n), slot.table.stores(.gpt0) else { return }
            var v = constant
            if let sample {
                guard let s = value(sample), let n = integer(of: s) else { return }
                v = n
            }
            slot.table.setGPT0(slot.entry, v)
        }
    }

    /// `sc*_*`, `sc_*(N)` and `src_*`, with HAProxy's answers: a counter not tracked has no
    /// value (`sc*_tracked` is false), data the table does not store has none, a key without an
    /// entry reads 0; `src_inc_*` and `src_clr_*` make the entry.
    func stickValue(_ kind: StickFetchKind, counter: Int, table: Unmanaged<StickTable>?, source: Bool) -> HTTPSample? {
        func read(_ t: StickTable, entry: StickEntry?, key: StickKey?) -> HTTPSample? {
            switch kind {
            case .tracked:
                return nil
            case .trackers:
                if let entry { return .integer(t.trackers(entry)) }
                return key.map { .integer(t.trackers(of: $0)) }
            case .value(let type, let kilobytes):
                guard t.stores(type) else { return nil }
                let v: Int
                if let entry { v = t.value(entry, type) ?? 0 } else if let key { v = t.value(of: key, type) ?? 0 } else { return nil }
                return .integer(kilobytes ? v / 1024 : v)
            case .increment(let gpc):
                return t.incrementGPC(gpc, entry: entry, key: key).map { .integer($0) }
            case .clear(let gpc):
                return t.clearGPC(gpc, entry: entry, key: key).map { .integer($0) }
            }
        }
        if source {
            guard let t = table?.takeUnretainedValue(), let client = connection.pointee.client,
                  let key = t.key(address: HTTPAddressBits(client.address)) else { return nil }
            return read(t, entry: nil, key: key)
        }
        let slot = connection.pointee.tracker?.slot(counter)
        if case .tracked = kind { return .boolean(slot != nil) }
        guard let slot else { return nil }
        if let other = table?.takeUnretainedValue(), other !== slot.table {
            // `sc_*(N,TABLE)`: the tracked key, looked up in another table.
            return read(other, entry: nil, key: slot.entry.key)
        }
        return read(slot.table, entry: slot.entry, key: nil)
    }
}
