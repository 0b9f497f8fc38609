import GraceHTTP
import Passthrough
import Synchronization

/// The monotonic clock of a job's readiness wait, which runs `beforeFirstSleep` (the job's commit)
/// once, before the wait first sleeps: a wait that blocks leaves a record saying so (a daemon killed
/// during it is found `waiting_ready`), and one the first look ends costs no write of its own.
final class CommittingClock: ReadinessClock, Sendable {
    private let base = MonotonicReadinessClock()
    /// In an `Observer`, never bare in the lock (see Observer.swift).
    private let pending: Mutex<Observer<Void>?>

    init(beforeFirstSleep: @escaping @Sendable () -> Void) {
        pending = Mutex(Observer { _ in beforeFirstSleep() })
    }

    /// Whether the wait slept (and `beforeFirstSleep` ran).
    var slept: Bool { pending.withLock { $0 == nil } }

    var now: ContinuousClock.Instant { base.now }

    func sleep(for duration: Duration, token: CancellationToken) -> Bool {
        let first = pending.withLock { body in
            defer { body = nil }
            return body
        }
        first?.notify(())
        return base.sleep(for: duration, token: token)
    }
}
