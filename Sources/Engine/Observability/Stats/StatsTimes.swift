/// HAProxy's time statistics of a backend or a server (`qtime`, `ctime`, `rtime`, `ttime` and their
/// maxima): averages over the last 1024 sessions, kept as HAProxy's sliding window sum (`swrate`:
/// each sample adds itself and removes an average one), so adding is three integer operations and
/// no history is kept. Milliseconds. Plain integers owned by the loop.
struct StatsTimes: Sendable {
    /// HAProxy's TIME_STATS_SAMPLES.
    static let window = 1024

    private(set) var queueSum = 0
    private(set) var connectSum = 0
    private(set) var responseSum = 0
    private(set) var totalSum = 0
    /// Sessions counted (the averages divide by this until it reaches `window`).
    private(set) var samples = 0
    private(set) var queueMax = 0
    private(set) var connectMax = 0
    private(set) var responseMax = 0
    private(set) var totalMax = 0

    init() {}

    init(queueSum: Int, connectSum: Int, responseSum: Int, totalSum: Int, samples: Int,
         queueMax: Int, connectMax: Int, responseMax: Int, totalMax: Int) {
        self.queueSum = queueSum; self.connectSum = connectSum; self.responseSum = responseSum
        self.totalSum = totalSum; self.samples = samples
        self.queueMax = queueMax; self.connectMax = connectMax; self.responseMax = responseMax; self.totalMax = totalMax
    }

    /// Two loops' windows as one (a reader's total): each sum is its window's average times its
    /// samples, so the merged sums keep the average over all the samples, within one window.
    func merged(with other: StatsTimes) -> StatsTimes {
        let a = min(samples, StatsTimes.window), b = min(other.samples, StatsTimes.window)
        let n = min(a + b, StatsTimes.window)
        func sum(_ x: Int, _ y: Int) -> Int { a + b == 0 ? 0 : (x + y) * n / (a + b) }
        return StatsTimes(queueSum: sum(queueSum, other.queueSum), connectSum: sum(connectSum, other.connectSum),
                          responseSum: sum(responseSum, other.responseSum), totalSum: sum(totalSum, other.totalSum),
                          samples: n, queueMax: max(queueMax, other.queueMax), connectMax: max(connectMax, other.connectMax),
                          responseMax: max(responseMax, other.responseMax), totalMax: max(totalMax, other.totalMax))
    }

    @inline(__always)
    private static func add(_ sum: inout Int, _ value: Int) {
        // swrate_add: sum = sum - sum/n + v (rounded up, as HAProxy's).
        sum = sum - (sum + window - 1) / window + value
    }

    /// One session's times; a negative one (a step not reached) counts as 0, as HAProxy's.
    /// `response` is only counted when the server answered (HTTP) or the connection carried data.
    @inline(__always)
    mutating func add(queue: Int, connect: Int, response: Int, total: Int) {
        let q = max(queue, 0), c = max(connect, 0), r = max(response, 0), t = max(total, 0)
        StatsTimes.add(&queueSum, q)
        StatsTimes.add(&connectSum, c)
        StatsTimes.add(&responseSum, r)
        StatsTimes.add(&totalSum, t)
        if samples < StatsTimes.window { samples += 1 }
        if q > queueMax { queueMax = q }
        if c > connectMax { connectMax = c }
        if r > responseMax { responseMax = r }
        if t > totalMax { totalMax = t }
    }

    private func average(_ sum: Int) -> Int {
        guard samples > 0 else { return 0 }
        // swrate_avg over the samples seen so far (HAProxy's shorter window at start).
        let n = min(samples, StatsTimes.window)
        return (sum + n - 1) / n
    }

    var queueAverage: Int { average(queueSum) }
    var connectAverage: Int { average(connectSum) }
    var responseAverage: Int { average(responseSum) }
    var totalAverage: Int { average(totalSum) }

    /// `clear counters`: the maxima.
    mutating func clearMaxima() {
        queueMax = 0
        connectMax = 0
        responseMax = 0
        totalMax = 0
    }
}
