import CLibEV
import ConfigModel

/// The counters of one proxy (a frontend or a backend) or one server on one event loop, HAProxy's
/// names. Each loop writes its own block alone — a relaxed load and store, a plain move on x86-64:
/// no lock and no atomic increment on the hot path — and any thread reads it; `CounterSet` sums
/// the loops' blocks for the statistics. Carried from generation to generation by name, so a
/// reload resets nothing.
final class TrafficCounters: @unchecked Sendable {
    private enum Slot: Int, CaseIterable {
        case currentSessions, maxSessions, totalSessions, connectionErrors, responseErrors, retries, redispatches, requestErrors, deniedConnections, queueMax, requests, deniedRequests, intercepted, clientAborts, serverAborts, selected, bytesIn, bytesOut, response1xx, response2xx, response3xx, response4xx, response5xx, responseOther, queueSum, connectSum, responseSum, totalSum, timeSamples, queueTimeMax, connectTimeMax, responseTimeMax, totalTimeMax, lastSession, connectAttempts, reuses, deniedResponses, deniedSessions, compressionIn, compressionOut, compressionBypassed, compressedResponses, cacheLookups, cacheHits
    }

    private let slots: UnsafeMutablePointer<Int>

    init() {
        slots = LoopLocalInts.allocate(Slot.allCases.count)
    }

    deinit { LoopLocalInts.deallocate(slots) }

    @inline(__always) private func load(_ s: Slot) -> Int { CLibEV_load(slots + s.rawValue) }
    @inline(__always) private func store(_ s: Slot, _ v: Int) { CLibEV_store(slots + s.rawValue, v) }

    /// scur (a proxy's: this loop's connections; a server's is its ServerState's)
    var currentSessions: Int { get { load(.currentSessions) } set { store(.currentSessions, newValue) } }
    /// smax
    var maxSessions: Int { get { load(.maxSessions) } set { store(.maxSessions, newValue) } }
    /// stot
    var totalSessions: Int { get { load(.totalSessions) } set { store(.totalSessions, newValue) } }
    /// econ
    var connectionErrors: Int { get { load(.connectionErrors) } set { store(.connectionErrors, newValue) } }
    /// eresp
    var responseErrors: Int { get { load(.responseErrors) } set { store(.responseErrors, newValue) } }
    /// wretr
    var retries: Int { get { load(.retries) } set { store(.retries, newValue) } }
    /// wredis
    var redispatches: Int { get { load(.redispatches) } set { store(.redispatches, newValue) } }
    /// ereq
    var requestErrors: Int { get { load(.requestErrors) } set { store(.requestErrors, newValue) } }
    /// dcon
    var deniedConnections: Int { get { load(.deniedConnections) } set { store(.deniedConnections, newValue) } }
    /// dses: sessions `tcp-request session` rejected.
    var deniedSessions: Int { get { load(.deniedSessions) } set { store(.deniedSessions, newValue) } }
    /// qmax
    var queueMax: Int { get { load(.queueMax) } set { store(.queueMax, newValue) } }
    /// req_tot
    var requests: Int { get { load(.requests) } set { store(.requests, newValue) } }
    /// dreq
    var deniedRequests: Int { get { load(.deniedRequests) } set { store(.deniedRequests, newValue) } }
    /// intercepted: requests answered by strata itself (stats page, use-service)
    var intercepted: Int { get { load(.intercepted) } set { store(.intercepted, newValue) } }
    /// cli_abrt
    var clientAborts: Int { get { load(.clientAborts) } set { store(.clientAborts, newValue) } }
    /// srv_abrt
    var serverAborts: Int { get { load(.serverAborts) } set { store(.serverAborts, newValue) } }
    /// dresp: responses refused by `http-response deny`
    var deniedResponses: Int { get { load(.deniedResponses) } set { store(.deniedResponses, newValue) } }
    /// connect: new connections to a server attempted (a backend's or a server's)
    var connectAttempts: Int { get { load(.connectAttempts) } set { store(.connectAttempts, newValue) } }
    /// reuse: idle pooled connections to a server used again
    var reuses: Int { get { load(.reuses) } set { store(.reuses, newValue) } }
    /// lbtot: times the balancer chose this server
    var selected: Int { get { load(.selected) } set { store(.selected, newValue) } }
    /// bin: from clients
    var bytesIn: UInt64 { get { UInt64(bitPattern: Int64(load(.bytesIn))) } set { store(.bytesIn, Int(Int64(bitPattern: newValue))) } }
    /// bout: to clients
    var bytesOut: UInt64 { get { UInt64(bitPattern: Int64(load(.bytesOut))) } set { store(.bytesOut, Int(Int64(bitPattern: newValue))) } }
    /// HTTP compression (HAProxy's comp_in, comp_out, comp_byp, comp_rsp): bytes given to the
    /// compressor, bytes it gave, bytes passed through it uncompressed (`identity`), answers compressed.
    var compressionIn: Int { get { load(.compressionIn) } set { store(.compressionIn, newValue) } }
    var compressionOut: Int { get { load(.compressionOut) } set { store(.compressionOut, newValue) } }
    var compressionBypassed: Int { get { load(.compressionBypassed) } set { store(.compressionBypassed, newValue) } }
    var compressedResponses: Int { get { load(.compressedResponses) } set { store(.compressedResponses, newValue) } }
    /// cache_lookups, cache_hits: `http-request cache-use` rules of this proxy that looked a
    /// request up, and those that found its answer.
    var cacheLookups: Int { get { load(.cacheLookups) } set { store(.cacheLookups, newValue) } }
    var cacheHits: Int { get { load(.cacheHits) } set { store(.cacheHits, newValue) } }
    /// Loop seconds (`loop.now`) of the last session that ended here (lastsess); 0: none yet.
    var lastSession: Double {
        get { Double(bitPattern: UInt64(bitPattern: Int64(load(.lastSession)))) }
        set { store(.lastSession, Int(Int64(bitPattern: newValue.bitPattern))) }
    }

    /// HTTP responses by status class: hrsp_1xx … hrsp_5xx, hrsp_other (a copy: for readers).
    var responsesByClass: [Int] { (0..<6).map { CLibEV_load(slots + Slot.response1xx.rawValue + $0) } }

    /// Counts one response of `status` in its class.
    @inline(__always)
    func countResponse(status: Int) {
        let c = status / 100
        let slot = Slot.response1xx.rawValue + ((1...5).contains(c) ? c - 1 : 5)
        CLibEV_store(slots + slot, CLibEV_load(slots + slot) + 1)
    }

    /// qtime/ctime/rtime/ttime averages and maxima (`Engine.account`).
    var times: StatsTimes {
        get {
            StatsTimes(queueSum: load(.queueSum), connectSum: load(.connectSum), responseSum: load(.responseSum),
                       totalSum: load(.totalSum), samples: load(.timeSamples), queueMax: load(.queueTimeMax),
                       connectMax: load(.connectTimeMax), responseMax: load(.responseTimeMax), totalMax: load(.totalTimeMax))
        }
        set {
            store(.queueSum, newValue.queueSum); store(.connectSum, newValue.connectSum)
            store(.responseSum, newValue.responseSum); store(.totalSum, newValue.totalSum)
            store(.timeSamples, newValue.samples); store(.queueTimeMax, newValue.queueMax)
            store(.connectTimeMax, newValue.connectMax); store(.responseTimeMax, newValue.responseMax)
            store(.totalTimeMax, newValue.totalMax)
        }
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
        var t = times
        t.clearMaxima()
        times = t
    }

    /// `clear counters all`: every counter but the gauges (current sessions).
    func clearAll() {
        let current = currentSessions
        for s in Slot.allCases { store(s, 0) }
        currentSessions = current
        maxSessions = current
    }

    /// Adds `other`'s counters to these (a reader's total: maxima are the largest, times merge).
    func add(_ other: TrafficCounters) {
        let merged = times.merged(with: other.times)
        for s in Slot.allCases {
            switch s {
            case .maxSessions, .queueMax, .lastSession:
                store(s, Swift.max(load(s), other.load(s)))
            case .queueSum, .connectSum, .responseSum, .totalSum, .timeSamples,
                 .queueTimeMax, .connectTimeMax, .responseTimeMax, .totalTimeMax:
                break
            default:
                store(s, load(s) &+ other.load(s))
            }
        }
        times = merged
    }
}

/// A proxy's or a server's counters on every event loop: `[loop]` is the block that loop writes,
/// `total` what the statistics show.
final class CounterSet: @unchecked Sendable {
    let loops: [TrafficCounters]
    /// smax across loops: the most sessions at once, every loop counted (raised with a
    /// compare-and-swap when a session starts; a proxy's, not a server's).
    private let sharedMax = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    /// A frontend's `rate-limit sessions`: its sessions per second, every loop counted, carried
    /// across reloads with the counters. Made with the set (not lazily: every loop reads it).
    let sessionRate = RateLimiter()

    /// A frontend's or a backend's HTTP/2 counters per loop (HAProxy's h2 module counters of the
    /// proxy: streams from clients for a frontend, connections to servers for a backend); nil for
    /// a server.
    let h2: [H2Counters]?

    init(loops count: Int, h2: Bool = false) {
        loops = (0..<max(count, 1)).map { _ in TrafficCounters() }
        self.h2 = h2 ? (0..<max(count, 1)).map { _ in H2Counters() } : nil
        sharedMax.initialize(to: 0)
    }

    /// Every loop's value of an HTTP/2 counter, added up (0 for a server).
    func h2Total(_ field: H2Counters.Field) -> Int {
        h2?.reduce(0) { $0 &+ $1[field] } ?? 0
    }

    deinit { sharedMax.deallocate() }

    @inline(__always) subscript(loop: EventLoop) -> TrafficCounters { loops[loop.index] }

    /// scur: every loop's sessions now.
    var currentSessions: Int {
        var n = 0
        for c in loops { n += c.currentSessions }
        return n
    }

    /// A proxy's session started on `loop` (scur, stot, smax).
    func sessionStarted(on loop: EventLoop) {
        let c = loops[loop.index]
        c.currentSessions += 1
        c.totalSessions += 1
        let now = loops.count == 1 ? c.currentSessions : currentSessions
        var max = CLibEV_load(sharedMax)
        while now > max {
            if CLibEV_compare_exchange(sharedMax, max, now) != 0 { break }
            max = CLibEV_load(sharedMax)
        }
    }

    func sessionEnded(on loop: EventLoop) { loops[loop.index].currentSessions -= 1 }

    // Every loop's figures added up, for readers (maxima: the largest; times: merged).
    var totalSessions: Int { loops.reduce(0) { $0 &+ $1.totalSessions } }
    var connectionErrors: Int { loops.reduce(0) { $0 &+ $1.connectionErrors } }
    var responseErrors: Int { loops.reduce(0) { $0 &+ $1.responseErrors } }
    var retries: Int { loops.reduce(0) { $0 &+ $1.retries } }
    var redispatches: Int { loops.reduce(0) { $0 &+ $1.redispatches } }
    var requestErrors: Int { loops.reduce(0) { $0 &+ $1.requestErrors } }
    var deniedConnections: Int { loops.reduce(0) { $0 &+ $1.deniedConnections } }
    var deniedSessions: Int { loops.reduce(0) { $0 &+ $1.deniedSessions } }
    var requests: Int { loops.reduce(0) { $0 &+ $1.requests } }
    var deniedRequests: Int { loops.reduce(0) { $0 &+ $1.deniedRequests } }
    var intercepted: Int { loops.reduce(0) { $0 &+ $1.intercepted } }
    var clientAborts: Int { loops.reduce(0) { $0 &+ $1.clientAborts } }
    var serverAborts: Int { loops.reduce(0) { $0 &+ $1.serverAborts } }
    var selected: Int { loops.reduce(0) { $0 &+ $1.selected } }
    var connectAttempts: Int { loops.reduce(0) { $0 &+ $1.connectAttempts } }
    var deniedResponses: Int { loops.reduce(0) { $0 &+ $1.deniedResponses } }
    var reuses: Int { loops.reduce(0) { $0 &+ $1.reuses } }
    var bytesIn: UInt64 { loops.reduce(0) { $0 &+ $1.bytesIn } }
    var bytesOut: UInt64 { loops.reduce(0) { $0 &+ $1.bytesOut } }
    var compressionIn: Int { loops.reduce(0) { $0 &+ $1.compressionIn } }
    var compressionOut: Int { loops.reduce(0) { $0 &+ $1.compressionOut } }
    var compressionBypassed: Int { loops.reduce(0) { $0 &+ $1.compressionBypassed } }
    var compressedResponses: Int { loops.reduce(0) { $0 &+ $1.compressedResponses } }
    var cacheLookups: Int { loops.reduce(0) { $0 &+ $1.cacheLookups } }
    var cacheHits: Int { loops.reduce(0) { $0 &+ $1.cacheHits } }
    var queueMax: Int { loops.reduce(0) { Swift.max($0, $1.queueMax) } }
    var lastSession: Double { loops.reduce(0) { Swift.max($0, $1.lastSession) } }
    var maxSessions: Int { Swift.max(CLibEV_load(sharedMax), loops.reduce(0) { Swift.max($0, $1.maxSessions) }) }
    var responsesByClass: [Int] {
        var out = [Int](repeating: 0, count: 6)
        for c in loops { for (i, n) in c.responsesByClass.enumerated() { out[i] &+= n } }
        return out
    }
    var times: StatsTimes {
        var t = loops[0].times
        for c in loops.dropFirst() { t = t.merged(with: c.times) }
        return t
    }

    /// Every loop's counters added up (a new block: read it, do not count into it).
    var total: TrafficCounters {
        let sum = TrafficCounters()
        for c in loops { sum.add(c) }
        sum.maxSessions = Swift.max(sum.maxSessions, CLibEV_load(sharedMax))
        return sum
    }

    func clearMaxima() {
        for c in loops { c.clearMaxima() }
        CLibEV_store(sharedMax, currentSessions)
    }

    func clearAll() {
        for c in loops { c.clearAll() }
        CLibEV_store(sharedMax, currentSessions)
    }
}
