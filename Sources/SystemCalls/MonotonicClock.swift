import Glibc

/// CLOCK_MONOTONIC in microseconds: deadlines and durations that a change of the wall clock
/// does not move.
public func monotonicMicroseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
}

public func monotonicMilliseconds() -> Int64 {
    monotonicMicroseconds() / 1000
}
