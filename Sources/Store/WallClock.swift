#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The wall clock in the unit the store persists, for callers that have no timestamp of their own.
public enum WallClock {
    /// Milliseconds since the Unix epoch. Wall time, not monotonic: these values are shown to
    /// operators and compared across daemon restarts.
    public static func nowMs() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
