import CHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// graced's own door on a plain listener (a Unix socket, or TCP without TLS): one thread that
/// accepts every client, peeks at its first request head without consuming a byte, and hands the
/// socket to MHD (`MHD_add_connection`) only once that head is safe for libmicrohttpd 0.9.75.
///
/// Why: for a first `Content-Length` that is not plain decimal digits, or that overflows 64 bits,
/// 0.9.75 queues its own HTML 400/413 in `parse_connection_headers`, whose caller then overwrites
/// the connection's state, so the status line and headers go out twice. The access handler is
/// never called for such a request, so only something in front of MHD can answer it once: the gate
/// answers it with one problem+json and closes the connection.
///
/// What still reaches MHD unexamined, with the bug intact: later requests on a kept-alive
/// connection (MHD reads them from the socket itself once it has the connection, and it offers no
/// hook between reading a head and parsing its fields), and every TLS connection (the gate cannot
/// read a head through TLS without terminating TLS itself, so MHD keeps accepting there, watched by
/// `ListenerGuard`).
///
/// On its way the gate also keeps the listener's limits, so that clients that have not said who
/// they are cannot lock out those that have:
/// - Heads still arriving may take at most three quarters of the connection limit (`headShare`),
///   and on TCP one client (`ClientGroup`: all of loopback is one, IPv6 counts by /64) at most the
///   per-client limit of them. Past either, a newcomer pushes out the oldest unfinished head (of its
///   own client first) instead of being turned away: a client that sends its head at once always
///   gets in, and one that trickles heads only competes with itself and the other tricklers.
/// - Only when the connections MHD holds fill the limit is a client answered 503 at once.
/// - A client whose head is not complete within the header timeout is closed, and connections
///   that MHD holds overdue with a later request's head are shut down.
/// Once a head is handed over, the caller's identity takes over the counting (the connections one
/// account holds, in `ConnectionTracker`); libmicrohttpd's own per-address count is off on gated
/// listeners, so nothing is counted twice. Many slow clients cost the gate nothing while they wait:
/// it watches them all in one epoll set.
package final class HeadGate: Sendable {
    /// The most of a head the gate reads, which is also MHD's memory for a connection
    /// (`MHD_OPTION_CONNECTION_MEMORY_LIMIT`, its default): a head that does not end within it
    /// cannot fit in MHD's pool either, so MHD refuses it (431 or 414) before parsing its fields.
    static let headLimit = 32 * 1024
    /// How long an answered client may go on sending before the gate closes its socket anyway.
    static let lingerTime: Duration = .seconds(1)

    private let listenFD: Int32
    /// `MHD_add_connection` is safe from any thread for a daemon with internal threads and ITC.
    private nonisolated(unsafe) let daemon: OpaquePointer
    private let tracker: ConnectionTracker
    private let limit: Int
    private let perClientLimit: Int
    /// The most clients the gate holds at once: the rest of the limit stays for connections whose
    /// head is in.
    private let headShare: Int
    private let headerTimeout: Duration
    /// Told of every request the gate answers itself, for the audit trail.
    private let answered: @Sendable (GateClient, GateClient.Refused, Int) -> Void
    private let epollFD: Int32
    private let wakeFD: Int32
    private let loop = StoppableLoop()
    private let clock = ContinuousClock()

    /// `perClientLimit` 0 means none; it is ignored on a Unix socket, whose clients have no address.
    init(
        listenFD: Int32, daemon: OpaquePointer, tracker: ConnectionTracker, limit: Int, perClientLimit: Int,
        headerTimeout: Duration, answered: @escaping @Sendable (GateClient, GateClient.Refused, Int) -> Void
    ) throws(HTTPServerError) {
        self.answered = answered
        self.listenFD = listenFD
        self.daemon = daemon
        self.tracker = tracker
        self.limit = limit
        self.perClientLimit = perClientLimit
        headShare = max(1, limit - limit / 4)
        self.headerTimeout = headerTimeout
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = grace_wake_fd()
        // The listening socket is level-triggered: clients left in the backlog are offered again.
        guard epollFD >= 0, wakeFD >= 0, grace_epoll_watch(epollFD, listenFD, false) == 0,
            grace_epoll_watch(epollFD, wakeFD, false) == 0
        else {
            let code = errno
            if epollFD >= 0 { close(epollFD) }
            if wakeFD >= 0 { close(wakeFD) }
            throw .startFailed("the connection gate (errno \(code))")
        }
    }

    deinit {
        close(epollFD)
        close(wakeFD)
    }

    func start() {
        loop.start { [self] in run() }
    }

    /// Returns once the thread has stopped accepting and has closed every client it still held.
    func stop() {
        loop.stop { grace_wake(wakeFD) }
    }

    /// The clients the gate holds; only the gate's thread has it.
    private struct Held {
        var clients: [Int32: GateClient] = [:]
        var perClient: [[UInt8]: Int] = [:]

        mutating func insert(_ client: GateClient) {
            clients[client.fd] = client
            if let key = client.key { perClient[key, default: 0] += 1 }
        }

        /// Forgets the client; its socket stays open.
        mutating func remove(_ fd: Int32) -> GateClient? {
            guard let client = clients.removeValue(forKey: fd) else { return nil }
            if let key = client.key {
                perClient[key, default: 1] -= 1
                if perClient[key] == 0 { perClient[key] = nil }
            }
            return client
        }

        /// The client held longest (the earliest deadline), of one client group if `key` is given.
        func oldest(of key: [UInt8]? = nil) -> Int32? {
            var oldest: GateClient?
            for client in clients.values where key == nil || client.key == key {
                if oldest.map({ client.deadline < $0.deadline }) ?? true { oldest = client }
            }
            return oldest?.fd
        }
    }

    private func run() {
        var held = Held()
        var buffer = [UInt8](repeating: 0, count: Self.headLimit)
        var ready = [Int32](repeating: 0, count: 64)
        var hungUp = [Bool](repeating: false, count: 64)
        var lastReap = clock.now
        // With no client in the gate and none in MHD there is no deadline to watch: sleep until a
        // client arrives (or stop() wakes the loop), at most one header timeout, so that a client
        // handed to MHD just before (which MHD counts a moment later) is still reaped in time.
        let idleMilliseconds = Int32(clamping: max(50, headerTimeout.components.seconds * 1000))
        while !loop.isStopping {
            let idle = held.clients.isEmpty && tracker.count == 0
            let count = grace_epoll_wait(
                epollFD, &ready, &hungUp, Int32(ready.count), idle ? idleMilliseconds : 50)
            for index in 0..<max(0, Int(count)) {
                let fd = ready[index]
                if fd == listenFD {
                    acceptClients(&held, &buffer)
                } else if fd != wakeFD {
                    serve(fd, hungUp: hungUp[index], &held, &buffer)
                }
            }
            let now = clock.now
            for (fd, client) in held.clients where client.deadline <= now {
                drop(fd, &held)
            }
            if lastReap.duration(to: now) >= .milliseconds(50) {
                tracker.reapOverdue(after: headerTimeout)
                lastReap = now
            }
        }
        for fd in Array(held.clients.keys) {
            drop(fd, &held)
        }
    }

    private func acceptClients(_ held: inout Held, _ buffer: inout [UInt8]) {
        // A bounded batch, so that a flood of connections does not starve the clients already held;
        // the listening socket is level-triggered and offers the rest on the next round.
        for _ in 0..<64 {
            var address = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { grace_accept(listenFD, $0, &length) }
            }
            guard fd >= 0 else {
                if errno == EMFILE || errno == ENFILE {
                    // The client waits in the backlog; pausing beats spinning on it until a descriptor frees.
                    usleep(10_000)
                }
                return
            }
            admit(
                GateClient(
                    fd: fd, address: address, addressLength: length, key: ClientGroup.key(address),
                    deadline: clock.now.advanced(by: headerTimeout)),
                &held, &buffer)
        }
    }

    private func admit(_ client: GateClient, _ held: inout Held, _ buffer: inout [UInt8]) {
        if perClientLimit > 0, let key = client.key, held.perClient[key, default: 0] >= perClientLimit {
            makeRoom(of: key, &held, &buffer)
        }
        if held.clients.count >= headShare || tracker.count + held.clients.count >= limit {
            makeRoom(of: nil, &held, &buffer)
        }
        guard tracker.count + held.clients.count < limit else {
            refuseOverloaded(client.fd)
            return
        }
        // Edge-triggered: a client whose head is incomplete is looked at again only when it sends
        // more, however long its unread bytes wait.
        guard grace_epoll_watch(epollFD, client.fd, true) == 0 else {
            close(client.fd)
            return
        }
        held.insert(client)
        // A client usually sends its head right after connecting: it may be here already, and then
        // the client never waits among the tricklers (where a flood of newcomers could push it out).
        serve(client.fd, hungUp: false, &held, &buffer)
    }

    /// Frees one place among the held clients (of one client group if `key` is given): the oldest
    /// is looked at once more, since its head may have arrived since the last look, and closed
    /// only if it is still unfinished.
    private func makeRoom(of key: [UInt8]?, _ held: inout Held, _ buffer: inout [UInt8]) {
        guard let oldest = held.oldest(of: key) else { return }
        let before = held.clients.count
        serve(oldest, hungUp: false, &held, &buffer)
        if held.clients.count == before { drop(oldest, &held) }
    }

    private func serve(_ fd: Int32, hungUp: Bool, _ held: inout Held, _ buffer: inout [UInt8]) {
        guard var client = held.clients[fd] else { return }
        if client.phase == .answered {
            if client.drain(&buffer) { drop(fd, &held) }
            return
        }
        switch client.examine(hungUp: hungUp, buffer: &buffer) {
        case .wait:
            break
        case .close:
            drop(fd, &held)
        case .answer(let response, let refused):
            client.answer(response, lingeringUntil: clock.now.advanced(by: Self.lingerTime))
            answered(client, refused, response.status)
            held.clients[fd] = client
            // The bytes already there raise no new edge: read them now.
            if client.drain(&buffer) { drop(fd, &held) }
        case .handOver:
            guard let client = held.remove(fd) else { return }
            // Out of the gate's epoll set before MHD owns the descriptor (and may close it, after
            // which its number can come back for a new client).
            grace_epoll_forget(epollFD, fd)
            var address = client.address
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    // On failure (MHD's limits) MHD has closed the socket itself and logged why.
                    MHD_add_connection(daemon, fd, $0, client.addressLength)
                }
            }
        }
    }

    private func drop(_ fd: Int32, _ held: inout Held) {
        guard held.remove(fd) != nil else { return }
        grace_epoll_forget(epollFD, fd)
        close(fd)
    }

    /// The 503 at the connection limit: sent at once rather than leaving the client in the backlog
    /// until it times out.
    private func refuseOverloaded(_ client: Int32) {
        defer { close(client) }
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
