import Dispatch
import GraceHTTP

/// Runs a blocking piece of work every `interval` on a thread of its own (neither Swift's cooperative
/// pool nor Dispatch's, whose few workers a loop that blocks for the process's lifetime would take
/// from everyone else), until stopped. `stop()` returns once the loop has ended, so nothing runs
/// after it.
final class PeriodicWorker: Sendable {
    private let stopRequested = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let intervalMs: Int
    private let work: @Sendable () -> Void

    init(intervalSeconds: Double, work: @escaping @Sendable () -> Void) {
        intervalMs = max(1, Int(intervalSeconds * 1000))
        self.work = work
    }

    func start() {
        startDedicatedThread { [self] in
            while stopRequested.wait(timeout: .now() + .milliseconds(intervalMs)) == .timedOut {
                work()
            }
            finished.signal()
        }
    }

    func stop() {
        stopRequested.signal()
        finished.wait()
    }
}
