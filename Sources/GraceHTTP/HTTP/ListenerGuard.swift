#if canImport(Glibc)
    import Glibc
#endif

/// A thread beside the MHD daemon of a TLS listener, where MHD accepts itself (plain listeners
/// have a `HeadGate` instead, which does this and more).
///
/// At its connection limit MHD stops accepting, so new clients would wait in the kernel's backlog
/// until they time out; the guard accepts them itself and closes them at once (a plain-text answer
/// would be noise to a TLS client). It also shuts down connections that have not sent a complete
/// request head within the header timeout.
package final class ListenerGuard: Sendable {
    private let listenFD: Int32
    private let tracker: ConnectionTracker
    private let limit: Int
    private let headerTimeout: Duration
    private let loop = StoppableLoop()

    init(listenFD: Int32, tracker: ConnectionTracker, limit: Int, headerTimeout: Duration) {
        self.listenFD = listenFD
        self.tracker = tracker
        self.limit = limit
        self.headerTimeout = headerTimeout
    }

    func start() {
        loop.start { [self] in run() }
    }

    /// Returns once the thread has stopped touching the listening socket.
    func stop() {
        loop.stop()
    }

    private func run() {
        var descriptor = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
        while !loop.isStopping {
            tracker.reapOverdue(after: headerTimeout)
            descriptor.revents = 0
            let ready = poll(&descriptor, 1, 50)
            guard ready > 0, descriptor.revents & Int16(POLLIN) != 0 else { continue }
            guard tracker.count >= limit else {
                // MHD has room and will accept this client itself; give it the moment it needs.
                usleep(5_000)
                continue
            }
            refuseOne()
        }
    }

    private func refuseOne() {
        let client = accept(listenFD, nil, nil)
        if client >= 0 { close(client) }
    }
}
