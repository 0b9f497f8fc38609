import CSQLite

/// A failure reported by SQLite, with the statement that caused it.
public struct DatabaseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The extended result code (`SQLITE_CONSTRAINT_UNIQUE`, not just `SQLITE_CONSTRAINT`), since
    /// callers need to tell a duplicate from a missing parent row.
    public let code: Int32
    public let message: String
    /// The SQL being prepared or run, when there was one.
    public let sql: String?

    public init(code: Int32, message: String, sql: String? = nil) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    // The extended codes are function-like macros in sqlite3.h, which Swift does not import.
    public static let constraintCheck: Int32 = SQLITE_CONSTRAINT | (1 << 8)
    public static let constraintForeignKey: Int32 = SQLITE_CONSTRAINT | (3 << 8)
    public static let constraintNotNull: Int32 = SQLITE_CONSTRAINT | (5 << 8)
    public static let constraintPrimaryKey: Int32 = SQLITE_CONSTRAINT | (6 << 8)
    public static let constraintUnique: Int32 = SQLITE_CONSTRAINT | (8 << 8)

    /// The primary result code (`SQLITE_CONSTRAINT`, `SQLITE_BUSY`, ...).
    public var primaryCode: Int32 { code & 0xff }

    public var isConstraintViolation: Bool { primaryCode == SQLITE_CONSTRAINT }

    public var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }

    public var description: String {
        let name = String(cString: sqlite3_errstr(code))
        var text = "SQLite error \(code) (\(name)): \(message)"
        if let sql {
            text += " [SQL: \(sql)]"
        }
        return text
    }

    /// The connection's last error; only meaningful while the caller still holds the connection lock,
    /// because another thread's call would overwrite it.
    static func last(_ db: OpaquePointer?, code: Int32, sql: String?) -> DatabaseError {
        let message = db.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
        return DatabaseError(
            code: code, message: message ?? String(cString: sqlite3_errstr(code)), sql: sql)
    }
}
