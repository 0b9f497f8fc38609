import CSQLite
import Synchronization

/// One SQLite connection, shared safely between threads.
///
/// Every use goes through a lock, so calls from different threads are serialized on this
/// connection. The closures passed to `withConnection` and `transaction` run with the lock held:
/// inside them use the `Connection` they receive, never this `Database` again (the lock is not
/// recursive).
public final class Database: Sendable {
    /// The C handle is a plain pointer; the mutex is what makes sharing it sound.
    private struct Handle: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    public static let defaultBusyTimeoutMs: Int32 = 5000

    /// The file path, or ":memory:".
    public let path: String
    private let handle: Mutex<Handle>
    private let commits = CommitCounter()

    /// Opens (creating if needed) the database at `path`, or a private in-memory one for ":memory:".
    ///
    /// Turns on foreign keys, WAL (file databases only; SQLite keeps "memory" for in-memory ones)
    /// and a busy timeout so that another process holding the write lock delays us instead of
    /// failing us.
    ///
    /// `readOnly` opens an existing file without changing it (no journal mode switch, no creation),
    /// for checking a database another process left behind.
    public init(
        path: String, busyTimeoutMs: Int32 = Database.defaultBusyTimeoutMs, readOnly: Bool = false
    ) throws(DatabaseError) {
        var pointer: OpaquePointer?
        let flags =
            (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
            | SQLITE_OPEN_FULLMUTEX
        let code = sqlite3_open_v2(path, &pointer, flags, nil)
        guard code == SQLITE_OK, let pointer else {
            let error = DatabaseError.last(pointer, code: code, sql: nil)
            sqlite3_close_v2(pointer)
            throw error
        }
        sqlite3_extended_result_codes(pointer, 1)
        sqlite3_busy_timeout(pointer, busyTimeoutMs)
        do {
            // journal_mode answers with a row, which execute() ignores; synchronous stays FULL
            // because a GPU reset can take the host down and the reset history must survive that.
            try Connection(db: pointer).execute(
                readOnly
                    ? "PRAGMA foreign_keys = ON;" : "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL;")
        } catch {
            sqlite3_close_v2(pointer)
            throw error
        }
        self.path = path
        self.handle = Mutex(Handle(pointer: pointer))
        commits.observe(pointer)
    }

    /// Write transactions committed on this connection since it opened, autocommitted single
    /// statements included (each is synced: WAL with `synchronous = FULL`). Read-only transactions
    /// are not counted: SQLite calls the commit hook only for transactions that wrote.
    public var committedWriteTransactions: Int { commits.count }

    deinit {
        handle.withLock { handle in
            // close_v2 defers the close if a statement was leaked rather than failing.
            _ = sqlite3_close_v2(handle.pointer)
        }
    }

    /// Runs `body` with exclusive use of the connection.
    @discardableResult
    public func withConnection<T: Sendable, E: Error>(_ body: (Connection) throws(E) -> T) throws(E) -> T {
        try handle.withLock { (handle) throws(E) -> T in
            try body(Connection(db: handle.pointer))
        }
    }

    /// Runs `body` in a transaction (BEGIN IMMEDIATE ... COMMIT), rolled back if it throws.
    @discardableResult
    public func transaction<T: Sendable>(_ body: (Connection) throws -> T) throws -> T {
        try withConnection { connection in
            try connection.transaction(body)
        }
    }

    /// Frees what SQLite can of this connection's page cache (`sqlite3_db_release_memory`): after a
    /// large batch, its pages need not stay resident.
    public func releaseMemory() {
        withConnection { connection in
            _ = sqlite3_db_release_memory(connection.db)
        }
    }

    /// Runs one or more SQL statements that take no parameters.
    public func execute(_ sql: String) throws(DatabaseError) {
        try withConnection { (connection) throws(DatabaseError) in
            try connection.execute(sql)
        }
    }

    /// Runs one statement with parameters and returns the number of rows it changed.
    @discardableResult
    public func run(_ sql: String, _ values: [SQLValue] = []) throws(DatabaseError) -> Int {
        try withConnection { (connection) throws(DatabaseError) in
            try connection.run(sql, values)
        }
    }

    /// The first column of the first row, or nil when there is no row.
    public func scalar(_ sql: String, _ values: [SQLValue] = []) throws(DatabaseError) -> SQLValue? {
        try withConnection { (connection) throws(DatabaseError) in
            try connection.scalar(sql, values)
        }
    }

    /// "wal" for a file database once WAL is on, "memory" for an in-memory one.
    public func journalMode() throws(DatabaseError) -> String {
        if case .text(let mode) = try scalar("PRAGMA journal_mode") {
            return mode.lowercased()
        }
        return ""
    }

    /// The schema version stamped by `migrate`.
    public func userVersion() throws(DatabaseError) -> Int {
        if case .integer(let version) = try scalar("PRAGMA user_version") {
            return Int(version)
        }
        return 0
    }

    /// Brings the schema up to date: script `i` of `migrations` takes `user_version` from `i` to
    /// `i + 1`, each in its own transaction, so a failed script leaves the previous version intact.
    ///
    /// Scripts must never be edited or reordered once shipped; add a new one instead.
    /// - Returns: how many scripts were applied.
    @discardableResult
    public func migrate(_ migrations: [String]) throws -> Int {
        var applied = 0
        for (index, script) in migrations.enumerated() {
            let target = index + 1
            let ran = try transaction { connection in
                // Read inside the write lock so two processes starting together apply each once.
                let current = try connection.scalar("PRAGMA user_version")
                guard case .integer(let version) = current else { return false }
                if version > migrations.count {
                    throw DatabaseError(
                        code: SQLITE_ERROR,
                        message: "schema version \(version) is newer than this build (\(migrations.count))",
                        sql: nil)
                }
                guard version == target - 1 else { return false }
                try connection.execute(script)
                // PRAGMA takes no parameters; the value is our own integer.
                try connection.execute("PRAGMA user_version = \(target)")
                return true
            }
            if ran { applied += 1 }
        }
        return applied
    }
}
