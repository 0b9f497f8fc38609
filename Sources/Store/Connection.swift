import CSQLite

/// The open SQLite handle, lent out by `Database` while it holds its lock.
///
/// Not `Sendable`, and only valid inside the closure it was passed to: outside that closure another
/// thread may be using the same handle.
public struct Connection {
    let db: OpaquePointer

    init(db: OpaquePointer) {
        self.db = db
    }

    /// Runs one or more SQL statements that take no parameters (schema scripts, pragmas).
    public func execute(_ sql: String) throws(DatabaseError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        guard code == SQLITE_OK else {
            let message = errorMessage.map { String(cString: $0) }
            sqlite3_free(errorMessage)
            throw DatabaseError(
                code: sqlite3_extended_errcode(db), message: message ?? String(cString: sqlite3_errstr(code)),
                sql: sql)
        }
    }

    /// Compiles exactly one statement.
    public func prepare(_ sql: String) throws(DatabaseError) -> Statement {
        var handle: OpaquePointer?
        var trailing = ""
        let code = sql.withCString { text in
            var tail: UnsafePointer<CChar>?
            let code = sqlite3_prepare_v2(db, text, -1, &handle, &tail)
            if code == SQLITE_OK, let tail {
                trailing = String(cString: tail)
            }
            return code
        }
        guard code == SQLITE_OK else {
            throw DatabaseError.last(db, code: code, sql: sql)
        }
        guard let handle else {
            throw DatabaseError(code: SQLITE_MISUSE, message: "no SQL statement to prepare", sql: sql)
        }
        let statement = Statement(handle: handle, sql: sql)
        // SQLite silently compiles only the first statement; a second one would never run.
        if trailing.contains(where: { !$0.isWhitespace && $0 != ";" }) {
            throw DatabaseError(
                code: SQLITE_MISUSE, message: "more than one statement; use execute() for scripts", sql: sql)
        }
        return statement
    }

    /// Runs one statement with parameters to completion and returns the number of rows it changed.
    @discardableResult
    public func run(_ sql: String, _ values: [SQLValue] = []) throws(DatabaseError) -> Int {
        let statement = try prepare(sql)
        try statement.bind(values)
        while try statement.step() {}
        return changes
    }

    /// Runs a query and maps each row.
    public func query<Row>(
        _ sql: String, _ values: [SQLValue] = [], row: (borrowing Statement) -> Row
    ) throws(DatabaseError) -> [Row] {
        let statement = try prepare(sql)
        try statement.bind(values)
        var rows: [Row] = []
        while try statement.step() {
            rows.append(row(statement))
        }
        return rows
    }

    /// The first column of the first row, or nil when there is no row.
    public func scalar(_ sql: String, _ values: [SQLValue] = []) throws(DatabaseError) -> SQLValue? {
        let statement = try prepare(sql)
        try statement.bind(values)
        return try statement.step() ? statement.value(at: 0) : nil
    }

    /// The rowid of the most recent successful INSERT on this connection.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(db) }

    /// Rows changed by the most recent INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes64(db)) }

    public var isInTransaction: Bool { sqlite3_get_autocommit(db) == 0 }

    /// Runs `body` atomically: committed when it returns, rolled back when it throws.
    ///
    /// The outermost level uses BEGIN IMMEDIATE so that the write lock is taken up front, where the
    /// busy timeout can wait for it, instead of failing with SQLITE_BUSY on the first write. Nested
    /// calls become savepoints, so helpers can be transactional on their own and still compose.
    @discardableResult
    public func transaction<T>(_ body: (Connection) throws -> T) throws -> T {
        if isInTransaction {
            return try savepoint(body)
        }
        try execute("BEGIN IMMEDIATE")
        let result: T
        do {
            result = try body(self)
            try execute("COMMIT")
        } catch {
            // Some errors (SQLITE_FULL, SQLITE_IOERR, ...) already rolled back on their own.
            if isInTransaction {
                try? execute("ROLLBACK")
            }
            throw error
        }
        return result
    }

    private func savepoint<T>(_ body: (Connection) throws -> T) throws -> T {
        try execute("SAVEPOINT grace_nested")
        let result: T
        do {
            result = try body(self)
        } catch {
            if isInTransaction {
                try? execute("ROLLBACK TO grace_nested")
                try? execute("RELEASE grace_nested")
            }
            throw error
        }
        try execute("RELEASE grace_nested")
        return result
    }
}

@available(*, unavailable)
extension Connection: Sendable {}
