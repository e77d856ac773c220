import Glibc

/// Events per second over a sliding second, as HAProxy's freq_ctr measures them: this second's
/// count plus the previous second's, weighted by the part of it still inside the window. Behind a
/// pthread mutex: `maxconnrate`, `maxsessrate` and `rate-limit sessions` are limits of the
/// process (or of a frontend), every loop accepting against the same count. The lock is taken only
/// when such a limit is configured, twice per accepted connection (check, then count), never per
/// byte or request. A loop may pass the check while another counts its last event: the limit can
/// be overshot by one connection per loop, as HAProxy's threads can.
final class RateLimiter: @unchecked Sendable {
    private struct Window {
        var second: Int64 = 0
        var current = 0
        var previous = 0
    }

    private let window = Locked(Window())

    /// Whether another event now would stay within `limit` per second.
    func allows(_ limit: Int, now: Double = MonotonicClock.now()) -> Bool {
        window.withLock { w in
            RateLimiter.roll(&w, now)
            return RateLimiter.rate(w, now) < Double(limit)
        }
    }

    /// Counts one event now.
    func record(now: Double = MonotonicClock.now()) {
        window.withLock { w in
            RateLimiter.roll(&w, now)
            w.current += 1
        }
    }

    /// The events of the last second (a reader's figure: `show info`'s rates).
    func rate(now: Double = MonotonicClock.now()) -> Double {
        window.withLock { w in
            RateLimiter.roll(&w, now)
            return RateLimiter.rate(w, now)
        }
    }

    private static func roll(_ w: inout Window, _ now: Double) {
        let second = Int64(now.rounded(.down))
        if second == w.second { return }
        w.previous = second == w.second + 1 ? w.current : 0
        w.current = 0
        w.second = second
    }

    private static func rate(_ w: Window, _ now: Double) -> Double {
        let elapsed = now - Double(w.second)
        return Double(w.current) + Double(w.previous) * max(0, 1 - elapsed)
    }
}
