#if canImport(Glibc)
    import Glibc
#endif

/// A value, the mutex that guards it, and a condition variable on the monotonic clock, in one: the
/// value can only be reached under its lock (as with `Synchronization.Mutex` or swift-nio's
/// `NIOLockedValueBox`), and a thread can wait, with a deadline, until the value satisfies a
/// predicate. Every change through `withLock` wakes the waiters, so no change can be forgotten;
/// a look that changes nothing goes through `read`, which wakes no one (on two cores, each needless
/// wake-up of an idle worker is a context switch on the path of the thread that did the look).
///
/// The engine's threads block on it (the job queue, a kernel write's completion); those are
/// dedicated threads, never Swift's cooperative pool.
final class GuardedValue<Value>: @unchecked Sendable {
    // The mutex and condition live at stable addresses: pthread objects must not move.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var value: Value

    init(_ value: Value) {
        self.value = value
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with the value under the lock, then wakes every waiter.
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        return try body(&value)
    }

    /// Runs `body` with the value under the lock, for a look that changes nothing: no waiter is
    /// woken. (Every `withLock` wakes them all; the health watch asks the engine whether each GPU is
    /// held, and at 4096 GPUs those wake-ups of idle workers were most of its cost.)
    func read<T>(_ body: (Value) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(value)
    }

    /// Waits until `ready` holds for the value or the deadline passes (nil: no deadline), then runs
    /// `body` under the same lock with whether it held. Call without the lock held.
    func wait<T>(
        until deadline: ContinuousClock.Instant?, for ready: (Value) -> Bool,
        then body: (inout Value, Bool) throws -> T
    ) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        var satisfied = ready(value)
        while !satisfied {
            if let deadline {
                let remaining = ContinuousClock.now.duration(to: deadline)
                if remaining <= .zero { break }
                var spec = timespec()
                clock_gettime(CLOCK_MONOTONIC, &spec)
                let (seconds, attoseconds) = remaining.components
                let nanoseconds = Int(spec.tv_nsec) + Int(attoseconds / 1_000_000_000)
                spec.tv_sec += Int(seconds) + nanoseconds / 1_000_000_000
                spec.tv_nsec = nanoseconds % 1_000_000_000
                pthread_cond_timedwait(condition, mutex, &spec)
            } else {
                pthread_cond_wait(condition, mutex)
            }
            satisfied = ready(value)
        }
        return try body(&value, satisfied)
    }
}
