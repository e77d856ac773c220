import Glibc

/// CLOCK_MONOTONIC in seconds: what ages, drains, reload durations and health-check times are
/// measured with (a wall-clock step must not make a generation younger or a check overdue).
public enum MonotonicClock {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
