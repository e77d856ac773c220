import ConfigModel

/// A proxy's counters, HAProxy's names. One object per proxy name and side, carried from
/// generation to generation so a reload never resets them; plain integers owned by the loop.
public final class ProxyCounters {
    public internal(set) var currentSessions = 0  // scur
    public internal(set) var maxSessions = 0  // smax
    public internal(set) var totalSessions = 0  // stot
    public internal(set) var bytesIn: UInt64 = 0  // bin: from clients
    public internal(set) var bytesOut: UInt64 = 0  // bout: to clients
    public internal(set) var connectionErrors = 0  // econ
    public internal(set) var responseErrors = 0  // eresp
    public internal(set) var retries = 0  // wretr
    public internal(set) var redispatches = 0  // wredis
    public internal(set) var requestErrors = 0  // ereq
    public internal(set) var deniedConnections = 0  // dcon
    public internal(set) var queueMax = 0  // qmax
    /// HTTP requests (req_tot) and responses by status class (hrsp_1xx … hrsp_5xx, hrsp_other).
    public internal(set) var requests = 0
    public internal(set) var responsesByClass = [Int](repeating: 0, count: 6)
    public internal(set) var deniedRequests = 0  // dreq
    /// Requests answered by strata itself: the stats page, `use-service` (intercepted).
    public internal(set) var intercepted = 0
    /// Sessions the client (cli_abrt) or the server (srv_abrt) cut in their data phase.
    public internal(set) var clientAborts = 0
    public internal(set) var serverAborts = 0
    /// Backends: qtime/ctime/rtime/ttime averages and maxima (`Engine.account`).
    public internal(set) var times = StatsTimes()
    /// Loop seconds (`loop.now`) of the last session that ended here (lastsess); 0: none yet.
    public internal(set) var lastSession = 0.0

    init() {}

    func countResponse(status: Int) {
        let c = status / 100
        responsesByClass[(1...5).contains(c) ? c - 1 : 5] += 1
    }

    func sessionStarted() {
        currentSessions += 1
        totalSessions += 1
        if currentSessions > maxSessions { maxSessions = currentSessions }
    }

    func sessionEnded() { currentSessions -= 1 }

    /// `clear counters`: maxima only, as HAProxy's non-"all" variant does.
    public func clearMaxima() {
        maxSessions = currentSessions
        queueMax = 0
        times.clearMaxima()
    }

    /// `clear counters all`: every counter but the gauges (current sessions).
    public func clearAll() {
        clearMaxima()
        totalSessions = 0; bytesIn = 0; bytesOut = 0
        connectionErrors = 0; responseErrors = 0; retries = 0; redispatches = 0
        requestErrors = 0; deniedConnections = 0; requests = 0; deniedRequests = 0
        responsesByClass = [Int](repeating: 0, count: 6)
        intercepted = 0; clientAborts = 0; serverAborts = 0
        times = StatsTimes()
    }
}
