import Dispatch
import Synchronization

/// A loop on a dedicated thread that another thread can stop and wait for: the shape of the
/// listeners' helper threads (`HeadGate`, `ListenerGuard`).
package final class StoppableLoop: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    package init() {}

    /// What the loop checks between rounds.
    package var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// Runs `body` on a new thread; `body` returns once `isStopping` holds.
    package func start(_ body: @escaping @Sendable () -> Void) {
        started.store(true, ordering: .releasing)
        startDedicatedThread { [self] in
            body()
            finished.signal()
        }
    }

    /// Asks the loop to stop, lets `wake` interrupt whatever it waits on, and returns once it has
    /// ended. Idempotent; does nothing if the loop never started.
    package func stop(wake: () -> Void = {}) {
        stopping.store(true, ordering: .releasing)
        if started.exchange(false, ordering: .acquiringAndReleasing) {
            wake()
            finished.wait()
        }
    }
}
