/// Polls a probe until the device is ready, the probe gives a final verdict, the deadline passes,
/// or the job is cancelled.
///
/// Synchronous and blocking by design: it runs on the job's own worker thread, never on Swift's
/// cooperative pool, because a sysfs read can block while the device is in reset. A cancel wakes a
/// sleeping poll at once; one stuck inside a read is noticed when the read returns.
public enum ReadinessWaiter {
    /// `clock` tells the time and sleeps between polls: the monotonic clock in graced; a test gives
    /// one whose time it controls.
    public static func wait(
        for probe: ReadinessProbe, deadline: ContinuousClock.Instant, token: CancellationToken,
        policy: PollPolicy = .adaptive, clock: any ReadinessClock = MonotonicReadinessClock()
    ) -> ReadinessOutcome {
        let start = clock.now
        var polls = 0
        var last: ProbeObservation?
        var lastReason = "no observation made before the deadline"
        var interval = policy.initial

        func finish(_ result: ReadinessResult) -> ReadinessOutcome {
            ReadinessOutcome(
                result: result, waitedMs: milliseconds(start.duration(to: clock.now)), polls: polls,
                notes: probe.notes, lastObservation: last?.description ?? "")
        }

        while true {
            if let reason = token.reason { return finish(.cancelled(reason)) }
            let observation = probe.observe(elapsedMs: milliseconds(start.duration(to: clock.now)))
            polls += 1
            last = observation
            switch observation {
            case .ready: return finish(.ready)
            case .gone(let why): return finish(.gone(why))
            case .failed(let why): return finish(.failed(why))
            case .notReady(let why): lastReason = why
            }
            // A cancel that came during the read wins over the deadline: it is what the user asked.
            if let reason = token.reason { return finish(.cancelled(reason)) }
            let remaining = clock.now.duration(to: deadline)
            if remaining <= .zero { return finish(.timedOut(lastReason: lastReason)) }
            // Clipped so the last poll happens at the deadline, not up to a whole interval after it.
            if clock.sleep(for: min(interval, remaining), token: token) {
                return finish(.cancelled(token.reason ?? "cancelled"))
            }
            interval = policy.next(after: interval, waited: start.duration(to: clock.now))
        }
    }

    /// Whole milliseconds, rounded down; negative durations count as 0.
    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}

/// Where a readiness wait reads the time and how it sleeps between polls.
public protocol ReadinessClock: Sendable {
    var now: ContinuousClock.Instant { get }
    /// Sleeps for `duration` unless `token` is cancelled first (a cancel wakes it at once); true
    /// when the token is cancelled.
    func sleep(for duration: Duration, token: CancellationToken) -> Bool
}

/// The monotonic clock, and the token's own sleep.
public struct MonotonicReadinessClock: ReadinessClock {
    public init() {}

    public var now: ContinuousClock.Instant { ContinuousClock.now }

    public func sleep(for duration: Duration, token: CancellationToken) -> Bool {
        token.sleep(for: duration)
    }
}
