import Passthrough

/// Per-device locks for the run stage of jobs.
///
/// A job takes the locks of its whole affected set at once, in one step, or waits holding none
/// (no hold-and-wait), so two jobs whose sets overlap can never deadlock whatever their order.
final class DeviceLockTable: Sendable {
    private let monitor = Monitor()
    nonisolated(unsafe) private var held: Set<BDF> = []

    /// Takes every lock in `devices` (ascending order, all at once). Returns false, holding nothing,
    /// if the deadline passes or `shouldStop` becomes true first (checked every 5 ms).
    func acquire(
        _ devices: Set<BDF>, deadline: ContinuousClock.Instant, shouldStop: () -> Bool
    ) -> Bool {
        while true {
            let step = min(deadline, .now + .milliseconds(5))
            let taken = monitor.wait(until: step) { held.isDisjoint(with: devices) }
            if taken {
                let claimed = monitor.withLock { () -> Bool in
                    guard held.isDisjoint(with: devices) else { return false }
                    for device in devices.sorted() { held.insert(device) }
                    return true
                }
                if claimed { return true }
            }
            if shouldStop() || ContinuousClock.now >= deadline { return false }
        }
    }

    func release(_ devices: Set<BDF>) {
        monitor.withLock {
            held.subtract(devices)
            monitor.broadcast()
        }
    }
}
