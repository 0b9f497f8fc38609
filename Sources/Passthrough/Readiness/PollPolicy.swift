/// How often a readiness wait looks: the first poll at once, then sleeps growing from `initial` by
/// `multiplier` up to `cap`; once the wait is long, the sleep grows with it, to `lateness` of the
/// time waited so far, up to `ceiling`.
///
/// Short sleeps at first catch the common quick return within a millisecond or so, and the cap
/// keeps readiness noticed within a few milliseconds while the wait is short. A device that takes
/// seconds is then noticed at most `lateness` of its wait late (a 2 s return found by 2.1 s), and
/// each waiting device costs a few dozen polls a second instead of hundreds: the kernel's own
/// `pci_dev_wait` backs off the same way, doubling without a cap.
public struct PollPolicy: Hashable, Sendable {
    public var initial: Duration
    public var cap: Duration
    public var multiplier: Double
    /// The longest sleep, as a fraction of the time waited so far, once that exceeds `cap`.
    public var lateness: Double
    /// The longest sleep of all: how late a device that returns after a long wait is noticed.
    public var ceiling: Duration

    /// Values are clamped to be usable: sleeps of at least 1 µs, a cap no smaller than the initial
    /// sleep, a ceiling no smaller than the cap, a multiplier of at least 1 (no shrinking), and a
    /// lateness between 0 (no widening past the cap) and 1.
    public init(
        initial: Duration, cap: Duration, multiplier: Double, lateness: Double = 0, ceiling: Duration? = nil
    ) {
        self.initial = max(initial, .microseconds(1))
        self.cap = max(cap, self.initial)
        self.multiplier = multiplier.isFinite ? max(multiplier, 1) : 1
        self.lateness = lateness.isFinite ? min(max(lateness, 0), 1) : 0
        self.ceiling = max(ceiling ?? self.cap, self.cap)
    }

    /// 250 µs doubling to 4 ms; past 80 ms of waiting, a twentieth of the wait, up to 50 ms.
    public static let adaptive = PollPolicy(
        initial: .microseconds(250), cap: .milliseconds(4), multiplier: 2, lateness: 0.05,
        ceiling: .milliseconds(50))

    /// The sleep after `interval`, `waited` into the wait.
    public func next(after interval: Duration, waited: Duration = .zero) -> Duration {
        let grown = min(interval * multiplier, cap)
        guard grown >= cap, lateness > 0 else { return grown }
        return min(max(grown, waited * lateness), ceiling)
    }
}
