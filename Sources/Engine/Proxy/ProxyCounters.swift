import ConfigModel

/// A proxy's counters, HAProxy's names. One object per proxy name and side, carried from
/// generation to generation so a reload never resets them; plain integers owned by the loop.
final class ProxyCounters {
    var currentSessions = 0  // scur
    var maxSessions = 0  // smax
    var totalSessions = 0  // stot
    var bytesIn: UInt64 = 0  // bin: from clients
    var bytesOut: UInt64 = 0  // bout: to clients
    var connectionErrors = 0  // econ
    var responseErrors = 0  // eresp
    var retries = 0  // wretr
    var redispatches = 0  // wredis
    var requestErrors = 0  // ereq
    var deniedConnections = 0  // dcon
    var queueMax = 0  // qmax
    /// HTTP requests (req_tot) and responses by status class (hrsp_1xx … hrsp_5xx, hrsp_other).
    var requests = 0
    var responsesByClass = [Int](repeating: 0, count: 6)
    var deniedRequests = 0  // dreq
    /// Requests answered by strata itself: the stats page, `use-service` (intercepted).
    var intercepted = 0
    /// Sessions the client (cli_abrt) or the server (srv_abrt) cut in their data phase.
    var clientAborts = 0
    var serverAborts = 0
    /// Backends: qtime/ctime/rtime/ttime averages and maxima (`Engine.account`).
    var times = StatsTimes()
    /// Loop seconds (`loop.now`) of the last session that ended here (lastsess); 0: none yet.
    var lastSession = 0.0

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
    func clearMaxima() {
        maxSessions = currentSessions
        queueMax = 0
        times.clearMaxima()
    }

    /// `clear counters all`: every counter but the gauges (current sessions).
    func clearAll() {
        clearMaxima()
        totalSessions = 0; bytesIn = 0; bytesOut = 0
        connectionErrors = 0; responseErrors = 0; retries = 0; redispatches = 0
        requestErrors = 0; deniedConnections = 0; requests = 0; deniedRequests = 0
        responsesByClass = [Int](repeating: 0, count: 6)
        intercepted = 0; clientAborts = 0; serverAborts = 0
        times = StatsTimes()
    }
}
