import Passthrough

/// Runs kernel writes on threads of their own and waits for them with a deadline.
///
/// A sysfs write cannot be interrupted: an FLR of a device that does not come back blocks for a
/// minute, an unbind of a vfio device in use blocks until its user lets go. Past the deadline the job
/// stops waiting and reports the write as stuck; the thread stays blocked in the kernel until the
/// kernel returns. The number of such threads is bounded, and exported.
final class KernelWriteExecutor: Sendable {
    enum Result: Sendable, Equatable {
        case done
        case failed(KernelError)
        /// Still blocked in the kernel at the deadline.
        case stuck
    }

    let writer: any KernelWriter
    let maximumStuck: Int
    private let monitor = Monitor()
    nonisolated(unsafe) private var stuck: [SysfsWrite] = []
    private let onUnstuck: @Sendable (SysfsWrite) -> Void

    init(writer: any KernelWriter, maximumStuck: Int = 8, onUnstuck: @escaping @Sendable (SysfsWrite) -> Void)
    {
        self.writer = writer
        self.maximumStuck = maximumStuck
        self.onUnstuck = onUnstuck
    }

    /// Writes still blocked in the kernel after their job gave up on them.
    var stuckWrites: [SysfsWrite] { monitor.withLock { stuck } }

    /// Whether another write may be started: false once `maximumStuck` threads are blocked.
    var hasCapacity: Bool { monitor.withLock { stuck.count < maximumStuck } }

    func perform(_ write: SysfsWrite, deadline: ContinuousClock.Instant) -> Result {
        final class Slot: @unchecked Sendable {
            var result: Result?
            var abandoned = false
        }
        let slot = Slot()
        let writer = writer
        let monitor = monitor
        let onUnstuck = onUnstuck
        startDedicatedThread { [self] in
            let result: Result
            do throws(KernelError) {
                try writer.perform(write)
                result = .done
            } catch {
                result = .failed(error)
            }
            let wasAbandoned = monitor.withLock { () -> Bool in
                slot.result = result
                monitor.broadcast()
                guard slot.abandoned else { return false }
                if let index = stuck.firstIndex(of: write) { stuck.remove(at: index) }
                return true
            }
            if wasAbandoned { onUnstuck(write) }
        }
        _ = monitor.wait(until: deadline) { slot.result != nil }
        return monitor.withLock {
            if let result = slot.result { return result }
            slot.abandoned = true
            stuck.append(write)
            return .stuck
        }
    }
}
