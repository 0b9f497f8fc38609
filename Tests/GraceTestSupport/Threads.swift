#if canImport(Glibc)
    import Glibc
#endif

/// A closure handed to a new pthread.
private final class ThreadBody: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Runs `body` on a new detached pthread of its own, as the job engine runs a job's stages: blocking
/// waits must not sit on Swift's cooperative pool, which has only as many threads as cores.
public func startThread(_ body: @escaping @Sendable () -> Void) {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let created = pthread_create(
        &thread, nil,
        { raw in
            Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, box)
    precondition(created == 0, "pthread_create failed: \(created)")
    pthread_detach(thread)
}

/// Runs blocking work on a fresh pthread and awaits it without holding a cooperative thread.
public func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        startThread { continuation.resume(returning: work()) }
    }
}

/// The throwing form of `offPool`.
public func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await offPool { Result { try work() } }.get()
}
