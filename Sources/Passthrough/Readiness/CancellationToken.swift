#if canImport(Glibc)
    import Glibc
#endif

/// A one-way "stop now" signal for a job running on its own worker thread.
///
/// Readiness waits last up to minutes (256 s for a CXL device), and a cancel must end them within
/// milliseconds, so sleeping is done on a condition variable that `cancel` broadcasts rather than in
/// fixed slices. The condition variable runs on CLOCK_MONOTONIC so a wall-clock step (NTP, an admin
/// setting the date) neither cuts a sleep short nor stretches it.
///
/// Unchecked Sendable: the mutable state (`storedReason`, `handlers`) is only touched with `mutex`
/// held, and the pthread objects live at stable heap addresses for the token's lifetime.
public final class CancellationToken: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var storedReason: String?
    private var handlers: [@Sendable () -> Void] = []

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deinitialize(count: 1)
        condition.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Cancels the token. The first reason is kept (it says what actually stopped the job); later
    /// calls change nothing and run no handler.
    public func cancel(reason: String) {
        pthread_mutex_lock(mutex)
        guard storedReason == nil else {
            pthread_mutex_unlock(mutex)
            return
        }
        storedReason = reason
        let pending = handlers
        handlers = []
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
        // Outside the lock: a handler may well look at the token again.
        for handler in pending { handler() }
    }

    public var isCancelled: Bool { reason != nil }

    /// The first reason given to `cancel`, or nil while not cancelled.
    public var reason: String? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return storedReason
    }

    /// Blocks the calling thread for up to `duration`. Returns true as soon as the token is cancelled
    /// (at once if it already was), false when the whole duration passed.
    public func sleep(for duration: Duration) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let (seconds, attoseconds) = duration.components
        // Clamped to about 68 years so the addition cannot overflow; nobody waits longer.
        let wholeSeconds = Int(max(0, min(seconds, Int64(Int32.max))))
        let nanoseconds = seconds < 0 ? 0 : Int(attoseconds / 1_000_000_000)
        deadline.tv_sec += wholeSeconds
        deadline.tv_nsec += nanoseconds
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_sec += 1
            deadline.tv_nsec -= 1_000_000_000
        }
        let positive = duration > .zero

        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        // Loop: a condition variable may wake spuriously; only the timeout or a cancel end the sleep.
        while positive && storedReason == nil {
            if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT { break }
        }
        return storedReason != nil
    }

    /// Runs `handler` once when the token is cancelled, on the cancelling thread; at once on the
    /// calling thread if it already is. Use it to interrupt something a sleep cannot (a blocked write).
    public func onCancel(_ handler: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        if storedReason == nil {
            handlers.append(handler)
            pthread_mutex_unlock(mutex)
            return
        }
        pthread_mutex_unlock(mutex)
        handler()
    }
}
