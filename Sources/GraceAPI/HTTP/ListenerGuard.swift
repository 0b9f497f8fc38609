import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A thread beside each MHD daemon that keeps the listener answering under pressure.
///
/// At its connection limit MHD stops accepting, so new clients would wait in the kernel's backlog
/// until they time out; the guard accepts them itself and answers 503 at once (or just closes, on
/// TLS, where a plain answer would be noise). It also shuts down connections that have not sent a
/// complete request head within the header timeout.
final class ListenerGuard: Sendable {
    private let listenFD: Int32
    private let tracker: ConnectionTracker
    private let limit: Int
    private let headerTimeout: Duration
    private let plainText: Bool
    private let stopping = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init(listenFD: Int32, tracker: ConnectionTracker, limit: Int, headerTimeout: Duration, plainText: Bool) {
        self.listenFD = listenFD
        self.tracker = tracker
        self.limit = limit
        self.headerTimeout = headerTimeout
        self.plainText = plainText
    }

    func start() {
        started.store(true, ordering: .releasing)
        startDedicatedThread { [self] in
            run()
            finished.signal()
        }
    }

    /// Returns once the thread has stopped touching the listening socket.
    func stop() {
        stopping.store(true, ordering: .releasing)
        if started.exchange(false, ordering: .acquiringAndReleasing) {
            finished.wait()
        }
    }

    private func run() {
        var descriptor = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
        while !stopping.load(ordering: .acquiring) {
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
        guard client >= 0 else { return }
        defer { close(client) }
        _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
        guard plainText else { return }
        _ = Self.overloaded.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        // Half-close, then drop what the client sent, so the kernel ends with FIN rather than RST
        // (an RST could destroy the answer before the client reads it).
        shutdown(client, Int32(SHUT_WR))
        var sink = [UInt8](repeating: 0, count: 4096)
        _ = sink.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
    }

    private static let overloaded: [UInt8] = {
        let response = HTTPResponse.problem(
            status: 503, slug: "too-many-connections", title: "Too many connections",
            detail: "graced is serving as many connections as it is configured to hold.",
            resolution:
                "Retry in a second; if it persists, raise --max-connections or find the clients holding connections open.",
            headers: [("Retry-After", "1")])
        return response.serialized(reason: "Service Unavailable")
    }()
}
