import Passthrough

/// Capped, jittered exponential backoff for kernel answers that mean "not now": EBUSY (vfio's
/// memory_lock taken, a device-specific reset busy) and EAGAIN (lock contention, probe deferral).
/// ENOTTY, ENODEV and EINVAL describe the device or the request and are final.
struct RetryPolicy: Sendable {
    var initialDelay: Duration = .milliseconds(20)
    var maximumDelay: Duration = .milliseconds(500)
    var multiplier = 2.0

    static let standard = RetryPolicy()

    static func isRetryable(_ error: KernelError) -> Bool {
        error.errno == .resourceBusy || error.errno == .resourceTemporarilyUnavailable
    }

    /// The delay before retry number `attempt` (1 for the first retry): full jitter over
    /// [delay/2, delay], so that jobs retrying against the same lock spread out.
    func delay(beforeRetry attempt: Int) -> Duration {
        var delay = initialDelay
        for _ in 1..<max(1, attempt) {
            delay = min(maximumDelay, delay * multiplier)
        }
        let nanoseconds =
            Int64(delay.components.seconds) * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
        let jittered = Int64.random(in: (nanoseconds / 2)...max(nanoseconds / 2, nanoseconds))
        return .nanoseconds(jittered)
    }
}
