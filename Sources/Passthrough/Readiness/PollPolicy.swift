/// How often a readiness wait looks: the first poll at once, then sleeps growing from `initial` by
/// `multiplier` up to `cap`.
///
/// Short sleeps at first catch the common quick return within a millisecond or so; the cap bounds
/// how late readiness is noticed during a long wait (4 ms keeps it well under 10 ms) while costing
/// only a few hundred cheap file reads a second, even over a 256 s CXL wait.
public struct PollPolicy: Hashable, Sendable {
    public var initial: Duration
    public var cap: Duration
    public var multiplier: Double

    /// Values are clamped to be usable: sleeps of at least 1 µs, a cap no smaller than the initial
    /// sleep, and a multiplier of at least 1 (no shrinking).
    public init(initial: Duration, cap: Duration, multiplier: Double) {
        self.initial = max(initial, .microseconds(1))
        self.cap = max(cap, self.initial)
        self.multiplier = multiplier.isFinite ? max(multiplier, 1) : 1
    }

    /// 250 µs doubling to 4 ms.
    public static let adaptive = PollPolicy(initial: .microseconds(250), cap: .milliseconds(4), multiplier: 2)

    /// The sleep after `interval`.
    public func next(after interval: Duration) -> Duration {
        min(interval * multiplier, cap)
    }
}
