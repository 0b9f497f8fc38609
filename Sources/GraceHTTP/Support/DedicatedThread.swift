#if canImport(Glibc)
    import Glibc
#endif

/// Starts `body` on a new detached POSIX thread.
///
/// Blocking kernel writes, readiness polls and job workers run on threads of their own: Swift's
/// cooperative pool has as many threads as cores (two here), and one sysfs write can block for a
/// minute or forever.
package func startDedicatedThread(_ body: @escaping @Sendable () -> Void) {
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
