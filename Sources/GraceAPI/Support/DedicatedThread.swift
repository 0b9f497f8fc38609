#if canImport(Glibc)
    import Glibc
#endif

/// Starts `body` on a new detached POSIX thread.
///
/// Blocking kernel writes, readiness polls and job workers run on threads of their own: Swift's
/// cooperative pool has as many threads as cores (two here), and one sysfs write can block for a
/// minute or forever.
func startDedicatedThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(body: @escaping @Sendable () -> Void) {
            self.body = body
        }
    }
    let box = Unmanaged.passRetained(Box(body: body)).toOpaque()
    var thread = pthread_t()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    let created = pthread_create(
        &thread, &attributes,
        { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box)
    pthread_attr_destroy(&attributes)
    precondition(created == 0, "pthread_create failed: \(created)")
}

/// A mutex with a condition variable on the monotonic clock: the one blocking primitive the engine's
/// threads wait on (queue, locks, write completion), so every wait can have a deadline.
final class Monitor: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()

    init() {
        pthread_mutex_init(&mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }

    /// Waits until `ready()` holds (checked under the lock) or the deadline passes; returns whether it
    /// holds. Call with the lock NOT held.
    func wait(until deadline: ContinuousClock.Instant?, for ready: () -> Bool) -> Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while !ready() {
            guard let deadline else {
                pthread_cond_wait(&condition, &mutex)
                continue
            }
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return ready() }
            var spec = timespec()
            clock_gettime(CLOCK_MONOTONIC, &spec)
            let (seconds, attoseconds) = remaining.components
            let nanoseconds = Int(spec.tv_nsec) + Int(attoseconds / 1_000_000_000)
            spec.tv_sec += Int(seconds) + nanoseconds / 1_000_000_000
            spec.tv_nsec = nanoseconds % 1_000_000_000
            pthread_cond_timedwait(&condition, &mutex, &spec)
        }
        return true
    }

    /// Wakes every waiter; call after changing what they wait for (under `withLock`).
    func broadcast() {
        pthread_cond_broadcast(&condition)
    }
}
