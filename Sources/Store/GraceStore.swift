/// The service's persistent state: devices, their layout history, jobs and the audit log.
///
/// Thread-safe: every method takes the database lock for its whole duration, and multi-statement
/// updates run in one transaction.
public final class GraceStore: Sendable {
    public let database: Database

    /// Wraps an open database, bringing its schema up to date first.
    public init(database: Database) throws {
        try database.migrate(GraceSchema.migrations)
        self.database = database
    }

    /// Opens (creating if needed) the store at `path`, or an in-memory one for ":memory:".
    public convenience init(path: String) throws {
        try self.init(database: Database(path: path))
    }
}
