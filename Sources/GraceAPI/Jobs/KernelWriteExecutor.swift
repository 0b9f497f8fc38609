import GraceHTTP
import Passthrough
import Synchronization

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
    /// Writes still blocked in the kernel after their job gave up on them.
    private let stuck = GuardedValue<[SysfsWrite]>([])
    /// An abandoned write that returned: what the kernel answered, and when.
    struct LateReturn: Sendable {
        var write: SysfsWrite
        var result: Result
        var atMs: Int64
    }

    /// Told when an abandoned write returns; set once, by the engine once it exists.
    private let onUnstuck = Mutex<Observer<LateReturn>?>(nil)

    init(writer: any KernelWriter, maximumStuck: Int = 8) {
        self.writer = writer
        self.maximumStuck = maximumStuck
    }

    func observeLateReturns(_ observer: @escaping @Sendable (LateReturn) -> Void) {
        onUnstuck.withLock { $0 = Observer(observer) }
    }

    /// Writes still blocked in the kernel after their job gave up on them.
    var stuckWrites: [SysfsWrite] { stuck.withLock { $0 } }

    /// Whether another write may be started: false once `maximumStuck` threads are blocked.
    var hasCapacity: Bool { stuck.withLock { $0.count < maximumStuck } }

    func perform(_ write: SysfsWrite, deadline: ContinuousClock.Instant) -> Result {
        /// The write's result, and whether the job stopped waiting for it; guarded with the stuck list.
        struct Slot {
            var result: Result?
            var abandoned = false
        }
        let slot = GuardedValue(Slot())
        let writer = writer
        let stuck = stuck
        let late = onUnstuck.withLock { $0 }
        startDedicatedThread {
            let result: Result
            do throws(KernelError) {
                try writer.perform(write)
                result = .done
            } catch {
                result = .failed(error)
            }
            let wasAbandoned = slot.withLock { slot -> Bool in
                slot.result = result
                return slot.abandoned
            }
            if wasAbandoned {
                stuck.withLock { list in
                    if let index = list.firstIndex(of: write) { list.remove(at: index) }
                }
                late?.notify(LateReturn(write: write, result: result, atMs: Timestamp.nowMs()))
            }
        }
        return slot.wait(until: deadline, for: { $0.result != nil }) { slot, _ -> Result in
            if let result = slot.result { return result }
            // Listed under the slot's lock: the writer sees `abandoned` only once the write is listed.
            slot.abandoned = true
            stuck.withLock { $0.append(write) }
            return .stuck
        }
    }
}
