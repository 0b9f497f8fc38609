import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The open connections of one listener: how many there are (so a client past the limit is
/// refused at once) and which are overdue with their request head (so a client that trickles its
/// headers in cannot hold a connection forever; MHD's own timeout only measures silence).
final class ConnectionTracker: Sendable {
    /// One connection, behind MHD's socket context from its start to its close.
    final class Connection: @unchecked Sendable {
        let fd: Int32
        /// Worked out on the connection's first request. MHD serves a connection on one worker
        /// thread at a time, so only that thread touches it; hence `@unchecked Sendable`.
        var identity: Authenticator.ConnectionIdentity?
        var clientAddress = ""

        init(fd: Int32) {
            self.fd = fd
        }
    }

    private struct Entry {
        let connection: Connection
        /// Since when a request head is awaited; nil while a request is being handled.
        var awaitingHeadSince: ContinuousClock.Instant?
    }

    private let entries = Mutex<[ObjectIdentifier: Entry]>([:])
    private let clock = ContinuousClock()

    var count: Int {
        entries.withLock { $0.count }
    }

    func opened(fd: Int32) -> Connection {
        let connection = Connection(fd: fd)
        let now = clock.now
        entries.withLock {
            $0[ObjectIdentifier(connection)] = Entry(connection: connection, awaitingHeadSince: now)
        }
        return connection
    }

    /// MHD calls this before it closes the socket, so `reapOverdue` (under the same lock) never
    /// shuts down a descriptor number that was already reused.
    func closed(_ connection: Connection) {
        _ = entries.withLock { $0.removeValue(forKey: ObjectIdentifier(connection)) }
    }

    func headArrived(_ connection: Connection) {
        entries.withLock { $0[ObjectIdentifier(connection)]?.awaitingHeadSince = nil }
    }

    func requestFinished(_ connection: Connection) {
        let now = clock.now
        entries.withLock { $0[ObjectIdentifier(connection)]?.awaitingHeadSince = now }
    }

    /// Shuts down every connection that has waited longer than `limit` for a request head; MHD then
    /// sees the end of the stream and closes it. Returns how many.
    @discardableResult
    func reapOverdue(after limit: Duration) -> Int {
        let now = clock.now
        return entries.withLock { entries in
            var reaped = 0
            for (key, entry) in entries {
                guard let since = entry.awaitingHeadSince, since.duration(to: now) > limit else { continue }
                shutdown(entry.connection.fd, Int32(SHUT_RDWR))
                entries[key]?.awaitingHeadSince = nil
                reaped += 1
            }
            return reaped
        }
    }
}
