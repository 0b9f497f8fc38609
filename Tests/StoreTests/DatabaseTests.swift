import CSQLite
import Dispatch
import Testing

@testable import Store

private struct Boom: Error {}

@Suite struct DatabaseTests {
    @Test("each committed write transaction is counted once; reads and rollbacks are not")
    func countsCommittedWrites() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (i INTEGER)")
        let start = db.committedWriteTransactions
        try db.run("INSERT INTO t VALUES (1)")
        #expect(db.committedWriteTransactions == start + 1, "an autocommitted insert is one")
        try db.transaction { connection in
            try connection.run("INSERT INTO t VALUES (2)")
            try connection.run("INSERT INTO t VALUES (3)")
            try connection.transaction { nested in try nested.run("INSERT INTO t VALUES (4)") }
        }
        #expect(db.committedWriteTransactions == start + 2, "a transaction with a savepoint is one")
        _ = try db.scalar("SELECT count(*) FROM t")
        #expect(db.committedWriteTransactions == start + 2, "a read is none")
        #expect(throws: Boom.self) {
            try db.transaction { connection in
                try connection.run("INSERT INTO t VALUES (5)")
                throw Boom()
            }
        }
        #expect(db.committedWriteTransactions == start + 2, "a rollback is none")
    }

    @Test func bindAndColumnRoundTripEveryType() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n)")
        let text = "Grâce \u{1F680} 'quoted'\u{0}after-nul"
        let bytes: [UInt8] = [0, 1, 0x7f, 0x80, 0xff]
        let values: [SQLValue] = [.integer(Int64.min), .real(-2.5), .text(text), .blob(bytes), .null]
        try db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?)", values)
        try db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [.integer(Int64.max), .null, .null, .blob([]), 7])

        try db.withConnection { connection in
            let statement = try connection.prepare("SELECT i, r, s, b, n FROM t ORDER BY rowid")
            #expect(statement.columnCount == 5)
            #expect(statement.columnName(at: 2) == "s")

            #expect(try statement.step() == true)
            #expect(statement.int64(at: 0) == Int64.min)
            #expect(statement.double(at: 1) == -2.5)
            #expect(statement.string(at: 2) == text)
            #expect(statement.blob(at: 3) == bytes)
            #expect(statement.isNull(at: 4) == true)
            #expect(statement.string(at: 4) == nil)
            #expect(statement.blob(at: 4) == nil)
            #expect(statement.optionalInt64(at: 4) == nil)
            #expect((0..<5).map { statement.value(at: $0) } == values)

            #expect(try statement.step() == true)
            #expect(statement.optionalInt64(at: 0) == Int64.max)
            #expect(statement.isNull(at: 1) == true)
            #expect(statement.value(at: 2) == .null)
            // An empty blob is a value, not NULL.
            #expect(statement.isNull(at: 3) == false)
            #expect(statement.blob(at: 3) == [])
            #expect(statement.value(at: 4) == .integer(7))

            #expect(try statement.step() == false)
        }
    }

    @Test func statementRebindsAfterReset() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (k TEXT, v INTEGER)")
        let total = try db.withConnection { connection in
            let insert = try connection.prepare("INSERT INTO t VALUES (?1, ?2)")
            #expect(insert.parameterCount == 2)
            for number in 1...3 {
                try insert.bind(.text("k\(number)"), at: 1)
                try insert.bind(.integer(Int64(number)), at: 2)
                #expect(try insert.step() == false)
                insert.reset()
            }
            insert.finalize()
            return try connection.scalar("SELECT sum(v) FROM t")
        }
        #expect(total == .integer(6))
    }

    @Test func bindingOutOfRangeThrows() throws {
        let db = try Database(path: ":memory:")
        let error = #expect(throws: DatabaseError.self) {
            try db.withConnection { connection in
                let statement = try connection.prepare("SELECT ?")
                try statement.bind(1, at: 2)
            }
        }
        #expect(error?.primaryCode == SQLITE_RANGE)
        #expect(error?.sql == "SELECT ?")
    }

    @Test func transactionCommitsOnReturnAndRollsBackOnThrow() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (v INTEGER)")

        #expect(throws: Boom.self) {
            try db.transaction { connection in
                try connection.run("INSERT INTO t VALUES (1)")
                try connection.run("INSERT INTO t VALUES (2)")
                throw Boom()
            }
        }
        #expect(try db.scalar("SELECT count(*) FROM t") == .integer(0))

        let inserted = try db.transaction { connection in
            try connection.run("INSERT INTO t VALUES (3)")
        }
        #expect(inserted == 1)
        #expect(try db.scalar("SELECT count(*) FROM t") == .integer(1))
        // No transaction is left open either way.
        #expect(db.withConnection { $0.isInTransaction } == false)
    }

    @Test func nestedTransactionRollsBackOnlyItself() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (v INTEGER)")
        try db.transaction { connection in
            try connection.run("INSERT INTO t VALUES (1)")
            #expect(throws: Boom.self) {
                try connection.transaction { inner in
                    try inner.run("INSERT INTO t VALUES (2)")
                    throw Boom()
                }
            }
            try connection.transaction { inner in
                try inner.run("INSERT INTO t VALUES (3)")
            }
        }
        let rows = try db.withConnection { connection in
            try connection.query("SELECT v FROM t ORDER BY v") { $0.int64(at: 0) }
        }
        #expect(rows == [1, 3])
    }

    @Test func migrationsApplyOnceAndSurviveReopen() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("migrate.db")
        let scripts = [
            "CREATE TABLE a (v INTEGER);",
            "CREATE TABLE b (v INTEGER); INSERT INTO b VALUES (42);",
        ]
        do {
            let db = try Database(path: path)
            #expect(try db.userVersion() == 0)
            #expect(try db.migrate(scripts) == 2)
            #expect(try db.userVersion() == 2)
            #expect(try db.migrate(scripts) == 0)
            // Had the second script run twice, b would hold two rows (or CREATE would have failed).
            #expect(try db.scalar("SELECT count(*) FROM b") == .integer(1))
        }
        do {
            let db = try Database(path: path)
            #expect(try db.userVersion() == 2)
            #expect(try db.migrate(scripts) == 0)
            #expect(try db.migrate(scripts + ["CREATE TABLE c (v INTEGER);"]) == 1)
            #expect(try db.userVersion() == 3)
            #expect(try db.scalar("SELECT count(*) FROM c") == .integer(0))
        }
    }

    @Test func failedMigrationKeepsPreviousVersion() throws {
        let db = try Database(path: ":memory:")
        let scripts = ["CREATE TABLE a (v INTEGER);", "CREATE TABLE b (v INTEGER); CREATE TABLE oops ("]
        #expect(throws: DatabaseError.self) { try db.migrate(scripts) }
        #expect(try db.userVersion() == 1)
        #expect(try db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'b'") == .integer(0))
    }

    @Test func newerSchemaIsRefused() throws {
        let db = try Database(path: ":memory:")
        try db.execute("PRAGMA user_version = 5")
        let error = #expect(throws: DatabaseError.self) { try db.migrate(["CREATE TABLE a (v INTEGER);"]) }
        #expect(error?.message.contains("newer") == true)
        #expect(try db.userVersion() == 5)
    }

    @Test func fileDatabaseUsesWALAndForeignKeys() throws {
        let directory = TemporaryDirectory()
        let db = try Database(path: directory.file("wal.db"))
        #expect(try db.journalMode() == "wal")
        #expect(try db.scalar("PRAGMA foreign_keys") == .integer(1))
        try db.execute("CREATE TABLE t (v INTEGER)")
        #expect(directory.exists("wal.db-wal"))

        let memory = try Database(path: ":memory:")
        #expect(try memory.journalMode() == "memory")
    }

    @Test func constraintViolationThrowsWithCodeMessageAndSQL() throws {
        let db = try Database(path: ":memory:")
        try db.execute(
            """
            CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT UNIQUE);
            CREATE TABLE child (parent_id INTEGER NOT NULL REFERENCES parent (id));
            """)
        try db.run("INSERT INTO parent (name) VALUES (?)", ["gpu"])
        let sql = "INSERT INTO parent (name) VALUES (?)"
        let unique = #expect(throws: DatabaseError.self) { try db.run(sql, ["gpu"]) }
        #expect(unique?.code == DatabaseError.constraintUnique)
        #expect(unique?.isConstraintViolation == true)
        #expect(unique?.message.contains("UNIQUE constraint failed: parent.name") == true)
        #expect(unique?.sql == sql)
        #expect(unique?.description.contains(sql) == true)

        let foreign = #expect(throws: DatabaseError.self) { try db.run("INSERT INTO child VALUES (99)") }
        #expect(foreign?.code == DatabaseError.constraintForeignKey)
    }

    @Test func badSQLIsReported() throws {
        let db = try Database(path: ":memory:")
        let syntax = #expect(throws: DatabaseError.self) { try db.run("SELEC 1") }
        #expect(syntax?.primaryCode == SQLITE_ERROR)
        #expect(syntax?.message.contains("syntax error") == true)

        let script = "CREATE TABLE a (v); CREATE TABLE b (v)"
        let twoStatements = #expect(throws: DatabaseError.self) { try db.run(script) }
        #expect(twoStatements?.code == SQLITE_MISUSE)
        #expect(try db.scalar("SELECT count(*) FROM sqlite_master") == .integer(0))
    }

    @Test func openingAnImpossiblePathThrows() {
        let error = #expect(throws: DatabaseError.self) {
            _ = try Database(path: "/nonexistent-grace-dir/x/y.db")
        }
        #expect(error?.primaryCode == SQLITE_CANTOPEN)
    }

    @Test func busyTimeoutWaitsForAnotherConnectionsWriteLock() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("busy.db")
        let holder = try Database(path: path)
        try holder.execute("CREATE TABLE t (v INTEGER)")
        try holder.execute("BEGIN IMMEDIATE")

        let impatient = try Database(path: path, busyTimeoutMs: 0)
        let busy = #expect(throws: DatabaseError.self) { try impatient.run("INSERT INTO t VALUES (1)") }
        #expect(busy?.isBusy == true)

        let patient = try Database(path: path)
        let released = DispatchSemaphore(value: 0)
        DispatchQueue(label: "holder").asyncAfter(deadline: .now() + .milliseconds(200)) {
            try? holder.execute("COMMIT")
            released.signal()
        }
        #expect(try patient.run("INSERT INTO t VALUES (2)") == 1)
        released.wait()
        #expect(try holder.scalar("SELECT count(*) FROM t") == .integer(1))
    }
}
