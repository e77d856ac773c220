/// Stick tables (issue 13): `stick-table` in a proxy, `track-sc0/1/2`, the `sc_*`/`src_*`
/// fetches, `sc-inc-gpc0/1` and `sc-set-gpt0` actions and the `table_*` converters, with HAProxy's
/// semantics (configuration.txt §4.2 "stick-table", §7.3.3).

/// What a table's keys are (`stick-table type …`).
public enum StickKeyType: String, Hashable, Sendable, CaseIterable {
    case ip, ipv6, integer, string, binary
}

/// A data type a table can store (`store …`), in HAProxy's order (its `STKTABLE_DT_*` ids): the
/// order `show table` prints them in.
public enum StickDataType: String, Hashable, Sendable, CaseIterable, Comparable {
    case serverID = "server_id"
    case gpt0
    case gpc0
    case gpc0Rate = "gpc0_rate"
    case connCount = "conn_cnt"
    case connRate = "conn_rate"
    case connCurrent = "conn_cur"
    case sessionCount = "sess_cnt"
    case sessionRate = "sess_rate"
    case httpRequestCount = "http_req_cnt"
    case httpRequestRate = "http_req_rate"
    case httpErrorCount = "http_err_cnt"
    case httpErrorRate = "http_err_rate"
    case bytesInCount = "bytes_in_cnt"
    case bytesInRate = "bytes_in_rate"
    case bytesOutCount = "bytes_out_cnt"
    case bytesOutRate = "bytes_out_rate"
    case gpc1
    case gpc1Rate = "gpc1_rate"

    /// A sliding-window rate: stored with its period (`conn_rate(10s)`).
    public var isRate: Bool { rawValue.hasSuffix("_rate") }

    /// The slot of the value in an entry.
    public var index: Int { StickDataType.allCases.firstIndex(of: self)! }

    public static func < (a: StickDataType, b: StickDataType) -> Bool { a.index < b.index }
}

/// One `store` item: a data type, and a rate's period in milliseconds.
public struct StickDataItem: Hashable, Sendable {
    public var type: StickDataType
    public var period: Int

    public init(_ type: StickDataType, period: Int = 0) {
        self.type = type
        self.period = period
    }
}

/// `stick-table type T [len N] size N [expire T] [nopurge] [store …]`.
public struct StickTableConfig: Hashable, Sendable {
    /// The proxy's name: tables are named after the proxy that declares them.
    public var name: String
    public var location: SourceLocation
    public var type: StickKeyType
    /// Key bytes: `len` for string (default 32) and binary (default 32); 4, 16 and 8 otherwise.
    public var keyLength: Int
    public var size: Int
    /// Milliseconds an entry lives after its last use (nil: until the table is full).
    public var expire: Int?
    public var noPurge = false
    /// Sorted in HAProxy's order, one item per type.
    public var store: [StickDataItem] = []

    public init(name: String, location: SourceLocation, type: StickKeyType, keyLength: Int, size: Int) {
        self.name = name
        self.location = location
        self.type = type
        self.keyLength = keyLength
        self.size = size
    }

    /// What must be equal for a reload to keep a table's entries: its name, key type and
    /// length, size and stored data (periods included). `expire` and `nopurge` may change.
    public var identity: String {
        "\(name) \(type.rawValue) \(keyLength) \(size) " + store.map { "\($0.type.rawValue)(\($0.period))" }.joined(separator: ",")
    }

    public func stores(_ type: StickDataType) -> Bool { store.contains { $0.type == type } }
}

/// `track-sc0/1/2 KEY [table T]`.
public struct StickTrack: Hashable, Sendable {
    /// 0, 1 or 2.
    public var counter: Int
    public var key: SampleExpression
    /// The table; nil: the proxy's own.
    public var table: String

    public init(counter: Int, key: SampleExpression, table: String) {
        self.counter = counter
        self.key = key
        self.table = table
    }
}

/// The stick-counter actions of `http-request` and `tcp-request`.
public enum StickCounterAction: Hashable, Sendable {
    case track(StickTrack)
    /// `sc-inc-gpc0(N)` / `sc-inc-gpc1(N)`: which gpc (0 or 1), which counter.
    case incrementGPC(gpc: Int, counter: Int)
    /// `sc-set-gpt0(N) VALUE` (an integer or a sample expression).
    case setGPT0(counter: Int, value: StickValue)
}

public enum StickValue: Hashable, Sendable {
    case integer(Int)
    case sample(SampleExpression)
}

/// Where a stick-counter fetch reads: a tracked counter (`sc0_*`, `sc_*(N)`), or the entry of
/// the connection's source address in a table (`src_*`).
public enum StickCounterSource: Hashable, Sendable {
    /// `table`: `sc_*(N,TABLE)` looks the tracked key up in another table.
    case tracked(counter: Int, table: String?)
    case source(table: String)
}

/// What a stick-counter fetch returns.
public enum StickFetchKind: Hashable, Sendable {
    /// A stored value (`_conn_cur`, `_http_req_rate`, `_get_gpc0`, `_gpc0`…); `kilobytes`:
    /// `_kbytes_in`/`_kbytes_out` give `bytes_*_cnt / 1024`.
    case value(StickDataType, kilobytes: Bool)
    /// `_inc_gpc0` / `_inc_gpc1`: increments, then returns the new value.
    case increment(gpc: Int)
    /// `_clr_gpc0` / `_clr_gpc1`: clears, returns the previous value.
    case clear(gpc: Int)
    /// `_tracked`: whether the counter is tracked (sc only).
    case tracked
    /// `_trackers`: how many sessions track the entry now.
    case trackers
}

public struct StickFetch: Hashable, Sendable {
    public var source: StickCounterSource
    public var kind: StickFetchKind

    public init(source: StickCounterSource, kind: StickFetchKind) {
        self.source = source
        self.kind = kind
    }
}

/// `table_*(TABLE)` converters: the value stored for the input key.
public enum StickTableConverterKind: Hashable, Sendable {
    case value(StickDataType, kilobytes: Bool)
    /// `table_trackers`.
    case trackers
}

/// A `peers` section (accepted only when its one peer is this host).
public struct PeersSection: Hashable, Sendable {
    public var name: String
    public var location: SourceLocation

    public init(name: String, location: SourceLocation) {
        self.name = name
        self.location = location
    }
}

/// `stick on|match|store-request|store-response KEY [table T] [if|unless COND]`: persistence by
/// stick table.
public struct StickRule: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case on
        case match
        case storeRequest = "store-request"
        /// The key is read from the server's answer (`res.hdr(…)`), stored with the server that gave it.
        case storeResponse = "store-response"
    }

    public var location: SourceLocation
    public var kind: Kind
    public var key: SampleExpression
    public var table: String
    public var condition: Condition?

    public init(location: SourceLocation, kind: Kind, key: SampleExpression, table: String, condition: Condition?) {
        self.location = location
        self.kind = kind
        self.key = key
        self.table = table
        self.condition = condition
    }

    /// Looks the key up to choose a server (`on`, `match`).
    public var matches: Bool { kind == .on || kind == .match }
    /// Stores the key with the server chosen (`on`, `store-request`).
    public var stores: Bool { kind == .on || kind == .storeRequest }
    /// Stores the key the server's answer gives, with that server (`store-response`).
    public var storesResponse: Bool { kind == .storeResponse }
}
