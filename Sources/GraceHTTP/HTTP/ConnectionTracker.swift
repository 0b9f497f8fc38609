import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The open connections of one listener: how many there are (so a client past the limit is
/// refused at once), how many each authenticated account holds (so one caller cannot take the
/// listener from the others by opening connections), and which are overdue with their request
/// head (so a client that trickles its headers in cannot hold a connection forever; MHD's own
/// timeout only measures silence).
package final class ConnectionTracker: Sendable {
    /// One connection, behind MHD's socket context from its start to its close.
    final class Connection: @unchecked Sendable {
        let fd: Int32
        /// Worked out on the connection's first request. MHD serves a connection on one worker
        /// thread at a time, so only that thread touches it; hence `@unchecked Sendable`.
        var identity: Authenticator.ConnectionIdentity?
        var clientAddress = ""
        /// The last `Host` value the edge accepted on this connection.
        var acceptedHost: String?
        /// The account this connection is counted under, once a request on it was authenticated.
        /// Written under the tracker's `accounts` lock only.
        fileprivate var account: String?
        /// Since when a request head is awaited, in nanoseconds since the tracker's `origin`;
        /// `notAwaiting` while a request is being handled. An atomic rather than an entry under
        /// the tracker's lock: it changes twice per request, from MHD's threads.
        fileprivate let awaitingHeadSince: Atomic<Int64>

        init(fd: Int32, awaitingHeadSince: Int64) {
            self.fd = fd
            self.awaitingHeadSince = Atomic(awaitingHeadSince)
        }
    }

    private static let notAwaiting = Int64.min

    private let entries = Mutex<[ObjectIdentifier: Connection]>([:])
    /// Connections per account; only accounts holding one are present.
    private let accounts = Mutex<[String: Int]>([:])
    /// The most connections one account may hold; 0: no limit.
    let perAccountLimit: Int

    init(perAccountLimit: Int = 0) {
        self.perAccountLimit = perAccountLimit
    }
    private let clock = ContinuousClock()
    private let origin = ContinuousClock.now

    var count: Int {
        entries.withLock { $0.count }
    }

    func opened(fd: Int32) -> Connection {
        let connection = Connection(fd: fd, awaitingHeadSince: nanoseconds(clock.now))
        entries.withLock { $0[ObjectIdentifier(connection)] = connection }
        return connection
    }

    /// MHD calls this before it closes the socket, so `reapOverdue` (under the same lock) never
    /// shuts down a descriptor number that was already reused.
    func closed(_ connection: Connection) {
        _ = entries.withLock { $0.removeValue(forKey: ObjectIdentifier(connection)) }
        accounts.withLock { counts in
            guard let account = connection.account else { return }
            connection.account = nil
            counts[account, default: 1] -= 1
            if counts[account] == 0 { counts[account] = nil }
        }
    }

    /// Counts the connection under `account`, the identity of the request it now carries; false,
    /// and the connection left as it was, when that account already holds its limit of others.
    /// A connection carries one account at a time: a request under another moves it.
    func claim(_ connection: Connection, for account: String) -> Bool {
        accounts.withLock { counts in
            if connection.account == account { return true }
            if perAccountLimit > 0, counts[account, default: 0] >= perAccountLimit { return false }
            if let previous = connection.account {
                counts[previous, default: 1] -= 1
                if counts[previous] == 0 { counts[previous] = nil }
            }
            connection.account = account
            counts[account, default: 0] += 1
            return true
        }
    }

    /// How many connections `account` holds.
    func connections(of account: String) -> Int {
        accounts.withLock { $0[account, default: 0] }
    }

    func headArrived(_ connection: Connection) {
        connection.awaitingHeadSince.store(Self.notAwaiting, ordering: .relaxed)
    }

    func requestFinished(_ connection: Connection) {
        connection.awaitingHeadSince.store(nanoseconds(clock.now), ordering: .relaxed)
    }

    /// Shuts down every connection that has waited longer than `limit` for a request head; MHD then
    /// sees the end of the stream and closes it. Returns how many.
    @discardableResult
    func reapOverdue(after limit: Duration) -> Int {
        let now = nanoseconds(clock.now)
        let (seconds, attoseconds) = limit.components
        let limitNanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        return entries.withLock { entries in
            var reaped = 0
            for connection in entries.values {
                let since = connection.awaitingHeadSince.load(ordering: .relaxed)
                guard since != Self.notAwaiting, now - since > limitNanoseconds else { continue }
                // Read and cleared as one step, so that a head arriving meanwhile is not undone.
                guard
                    connection.awaitingHeadSince.compareExchange(
                        expected: since, desired: Self.notAwaiting, ordering: .relaxed
                    ).exchanged
                else { continue }
                shutdown(connection.fd, Int32(SHUT_RDWR))
                reaped += 1
            }
            return reaped
        }
    }

    private func nanoseconds(_ instant: ContinuousClock.Instant) -> Int64 {
        let (seconds, attoseconds) = origin.duration(to: instant).components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
