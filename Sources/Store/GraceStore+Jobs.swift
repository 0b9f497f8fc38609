extension GraceStore {
    private static let jobColumns = """
        id, kind, device_id, bdf, state, phase, method_requested, method_used, deadline_ms, idempotency_key,
        request_json, result_json, error_json, created_at_ms, finished_at_ms
        """

    /// Stores a new job together with any phases and attempts it already carries.
    /// - Throws: `GraceStoreError.idempotencyKeyTaken` when another job holds its Idempotency-Key.
    public func insertJob(_ job: JobRecord) throws {
        do {
            try insertJobRows(job)
        } catch let error as DatabaseError where error.code == DatabaseError.constraintUnique {
            if let key = job.idempotencyKey, let owner = try self.job(idempotencyKey: key), owner.id != job.id
            {
                throw GraceStoreError.idempotencyKeyTaken(key: key, jobId: owner.id)
            }
            throw error
        }
    }

    private func insertJobRows(_ job: JobRecord) throws {
        try database.transaction { connection in
            try Self.insertJob(connection, job)
        }
    }

    /// Inserts a new job's rows inside a transaction the caller holds (the event hub's, to store the
    /// job and its `job.queued` event together). A unique-key failure comes back as the
    /// `DatabaseError` it is: `idempotencyConflict` says whose key it was.
    public static func insertJob(_ connection: Connection, _ job: JobRecord) throws(DatabaseError) {
        try connection.run(
            "INSERT INTO jobs (\(Self.jobColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(job.id), .text(job.kind), .integer(job.deviceId), .text(job.bdf), .text(job.state),
                .text(job.phase), .text(job.methodRequested), SQLValue(job.methodUsed),
                .integer(job.deadlineMs), SQLValue(job.idempotencyKey), .text(job.requestJSON),
                SQLValue(job.resultJSON), SQLValue(job.errorJSON), .integer(job.createdAtMs),
                SQLValue(job.finishedAtMs),
            ])
        for phase in job.phases {
            try Self.writePhase(connection, jobId: job.id, phase)
        }
        for attempt in job.attempts {
            try Self.writeAttempt(connection, jobId: job.id, attempt)
        }
    }

    /// The error an insert of `job` that failed with `error` stands for: `idempotencyKeyTaken` when
    /// another job holds its key, else `error` itself.
    public func idempotencyConflict(inserting job: JobRecord, failedWith error: any Error) -> any Error {
        guard let databaseError = error as? DatabaseError,
            databaseError.code == DatabaseError.constraintUnique,
            let key = job.idempotencyKey, let owner = try? self.job(idempotencyKey: key), owner.id != job.id
        else { return error }
        return GraceStoreError.idempotencyKeyTaken(key: key, jobId: owner.id)
    }

    /// Changes the given fields of a job; nil leaves a field as it is.
    /// - Returns: the job as stored afterwards.
    @discardableResult
    public func updateJob(
        id: String, state: String? = nil, phase: String? = nil, methodUsed: String? = nil,
        resultJSON: String? = nil, errorJSON: String? = nil, finishedAtMs: Int64? = nil
    ) throws -> JobRecord {
        try database.transaction { connection in
            let changed = try connection.run(
                """
                UPDATE jobs SET
                    state = coalesce(?2, state),
                    phase = coalesce(?3, phase),
                    method_used = coalesce(?4, method_used),
                    result_json = coalesce(?5, result_json),
                    error_json = coalesce(?6, error_json),
                    finished_at_ms = coalesce(?7, finished_at_ms)
                WHERE id = ?1
                """,
                [
                    .text(id), SQLValue(state), SQLValue(phase), SQLValue(methodUsed), SQLValue(resultJSON),
                    SQLValue(errorJSON), SQLValue(finishedAtMs),
                ])
            guard changed > 0, let job = try Self.job(connection, id: id) else {
                throw GraceStoreError.jobNotFound(id: id)
            }
            return job
        }
    }

    /// Starts the job's next phase and makes it the job's current phase.
    @discardableResult
    public func appendPhase(jobId: String, name: String, startedAtMs: Int64) throws -> JobPhase {
        try database.transaction { connection in
            let changed = try connection.run(
                "UPDATE jobs SET phase = ? WHERE id = ?", [.text(name), .text(jobId)])
            guard changed > 0 else { throw GraceStoreError.jobNotFound(id: jobId) }
            let seq = try Self.nextSeq(connection, table: "job_phases", jobId: jobId)
            let phase = JobPhase(seq: seq, name: name, startedAtMs: startedAtMs)
            try Self.writePhase(connection, jobId: jobId, phase)
            return phase
        }
    }

    public func endPhase(jobId: String, seq: Int, endedAtMs: Int64) throws {
        let changed = try database.run(
            "UPDATE job_phases SET ended_at_ms = ? WHERE job_id = ? AND seq = ?",
            [.integer(endedAtMs), .text(jobId), SQLValue(seq)])
        guard changed > 0 else { throw GraceStoreError.phaseNotFound(jobId: jobId, seq: seq) }
    }

    @discardableResult
    public func appendAttempt(jobId: String, atMs: Int64, errno: Int32? = nil, message: String) throws
        -> JobAttempt
    {
        try database.transaction { connection in
            guard try connection.scalar("SELECT 1 FROM jobs WHERE id = ?", [.text(jobId)]) != nil else {
                throw GraceStoreError.jobNotFound(id: jobId)
            }
            let seq = try Self.nextSeq(connection, table: "job_attempts", jobId: jobId)
            let attempt = JobAttempt(seq: seq, atMs: atMs, errno: errno, message: message)
            try Self.writeAttempt(connection, jobId: jobId, attempt)
            return attempt
        }
    }

    public func job(id: String) throws -> JobRecord? {
        try database.withConnection { connection in
            try Self.job(connection, id: id)
        }
    }

    /// A position in the newest-first job list: the creation time and id of the last job seen.
    /// Ties in creation time are broken by id, so paging never skips or repeats a job.
    public struct JobCursor: Hashable, Sendable {
        public var createdAtMs: Int64
        public var id: String
        public init(createdAtMs: Int64, id: String) {
            self.createdAtMs = createdAtMs
            self.id = id
        }
    }

    /// Jobs newest first, optionally filtered by BDF, kind and state, after a cursor.
    public func jobs(
        bdf: String? = nil, kind: String? = nil, state: String? = nil, limit: Int,
        after cursor: JobCursor? = nil
    ) throws -> [JobRecord] {
        // Only the filters in use go into the SQL, so SQLite can pick the (bdf, created_at_ms) index.
        var conditions: [String] = []
        var values: [SQLValue] = []
        for (column, value) in [("bdf", bdf), ("kind", kind), ("state", state)] {
            if let value {
                conditions.append("\(column) = ?")
                values.append(.text(value))
            }
        }
        if let cursor {
            conditions.append("(created_at_ms < ? OR (created_at_ms = ? AND id < ?))")
            values += [.integer(cursor.createdAtMs), .integer(cursor.createdAtMs), .text(cursor.id)]
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        values.append(SQLValue(limit))
        let sql = "SELECT \(Self.jobColumns) FROM jobs \(filter) ORDER BY created_at_ms DESC, id DESC LIMIT ?"
        return try database.withConnection { connection in
            try Self.withSteps(connection, connection.query(sql, values, row: Self.jobRow))
        }
    }

    /// Jobs newest first, paged by creation time alone.
    public func jobs(bdf: String? = nil, state: String? = nil, limit: Int, beforeCreatedAtMs: Int64?)
        throws -> [JobRecord]
    {
        try jobs(
            bdf: bdf, state: state, limit: limit,
            after: beforeCreatedAtMs.map { JobCursor(createdAtMs: $0, id: "") })
    }

    /// The job created with this idempotency key, if any.
    public func job(idempotencyKey: String) throws -> JobRecord? {
        try database.withConnection { connection in
            let rows = try connection.query(
                "SELECT \(Self.jobColumns) FROM jobs WHERE idempotency_key = ? ORDER BY created_at_ms DESC LIMIT 1",
                [.text(idempotencyKey)], row: Self.jobRow)
            return try Self.withSteps(connection, rows).first
        }
    }

    /// Writes a job as it now is, in one transaction (its phases and attempts in place: none is
    /// deleted).
    public func saveJob(_ job: JobRecord) throws {
        try database.transaction { connection in
            try Self.saveJob(connection, job, since: nil)
        }
    }

    /// Writes what changed in a job since `previous` (the version last written; nil: unknown) inside
    /// a transaction the caller holds: the job row's changing columns, and only the phases and
    /// attempts that are new or differ. Phases and attempts are only ever appended or completed, so
    /// nothing is deleted; one that differs is rewritten in place.
    public static func saveJob(_ connection: Connection, _ job: JobRecord, since previous: JobRecord?) throws
    {
        try connection.run(
            """
            UPDATE jobs SET state = ?, phase = ?, method_used = ?, result_json = ?, error_json = ?,
                finished_at_ms = ?
            WHERE id = ?
            """,
            [
                .text(job.state), .text(job.phase), SQLValue(job.methodUsed), SQLValue(job.resultJSON),
                SQLValue(job.errorJSON), SQLValue(job.finishedAtMs), .text(job.id),
            ])
        guard connection.changes > 0 else { throw GraceStoreError.jobNotFound(id: job.id) }
        let phases = Dictionary((previous?.phases ?? []).map { ($0.seq, $0) }) { first, _ in first }
        for phase in job.phases where phases[phase.seq] != phase {
            try writePhase(connection, jobId: job.id, phase)
        }
        let attempts = Dictionary((previous?.attempts ?? []).map { ($0.seq, $0) }) { first, _ in first }
        for attempt in job.attempts where attempts[attempt.seq] != attempt {
            try writeAttempt(connection, jobId: job.id, attempt)
        }
    }

    /// Marks every job left queued or running as interrupted, finished at `atMs`.
    ///
    /// Called at startup, before any job runs: whatever those jobs were doing, the daemon that was
    /// doing it is gone. Their open phases stay open, since when they really ended is unknown.
    /// - Returns: the jobs as they are after the change.
    public func markRunningJobsInterrupted(atMs: Int64) throws -> [JobRecord] {
        let unfinished = JobRecord.unfinishedStates.map { SQLValue.text($0) }
        let placeholders = Array(repeating: "?", count: unfinished.count).joined(separator: ", ")
        return try database.transaction { connection in
            let ids = try connection.query(
                "SELECT id FROM jobs WHERE state IN (\(placeholders)) ORDER BY created_at_ms, id", unfinished
            ) { row in row.string(at: 0) ?? "" }
            var jobs: [JobRecord] = []
            for id in ids {
                try connection.run(
                    "UPDATE jobs SET state = ?, finished_at_ms = ? WHERE id = ?",
                    [.text(JobRecord.interruptedState), .integer(atMs), .text(id)])
                if let job = try Self.job(connection, id: id) {
                    jobs.append(job)
                }
            }
            return jobs
        }
    }

    // MARK: Rows

    private static func job(_ connection: Connection, id: String) throws(DatabaseError) -> JobRecord? {
        let rows = try connection.query(
            "SELECT \(jobColumns) FROM jobs WHERE id = ?", [.text(id)], row: jobRow)
        return try withSteps(connection, rows).first
    }

    /// Fills in phases and attempts for jobs read from the `jobs` table alone.
    private static func withSteps(_ connection: Connection, _ jobs: [JobRecord]) throws(DatabaseError)
        -> [JobRecord]
    {
        var filled = jobs
        for index in filled.indices {
            let id = SQLValue.text(filled[index].id)
            filled[index].phases = try connection.query(
                "SELECT seq, name, started_at_ms, ended_at_ms FROM job_phases WHERE job_id = ? ORDER BY seq",
                [id]
            ) { row in
                JobPhase(
                    seq: Int(row.int64(at: 0)), name: row.string(at: 1) ?? "", startedAtMs: row.int64(at: 2),
                    endedAtMs: row.optionalInt64(at: 3))
            }
            filled[index].attempts = try connection.query(
                """
                SELECT seq, at_ms, errno, message, returned_at_ms FROM job_attempts WHERE job_id = ?
                ORDER BY seq
                """, [id]
            ) { row in
                JobAttempt(
                    seq: Int(row.int64(at: 0)), atMs: row.int64(at: 1),
                    returnedAtMs: row.optionalInt64(at: 4),
                    errno: row.optionalInt64(at: 2).map { Int32(truncatingIfNeeded: $0) },
                    message: row.string(at: 3) ?? "")
            }
        }
        return filled
    }

    private static func jobRow(_ row: borrowing Statement) -> JobRecord {
        JobRecord(
            id: row.string(at: 0) ?? "", kind: row.string(at: 1) ?? "", deviceId: row.int64(at: 2),
            bdf: row.string(at: 3) ?? "", state: row.string(at: 4) ?? "", phase: row.string(at: 5) ?? "",
            methodRequested: row.string(at: 6) ?? "", methodUsed: row.string(at: 7),
            deadlineMs: row.int64(at: 8), idempotencyKey: row.string(at: 9),
            requestJSON: row.string(at: 10) ?? "",
            resultJSON: row.string(at: 11), errorJSON: row.string(at: 12), createdAtMs: row.int64(at: 13),
            finishedAtMs: row.optionalInt64(at: 14))
    }

    private static func nextSeq(_ connection: Connection, table: String, jobId: String) throws(DatabaseError)
        -> Int
    {
        // `table` is one of our own constants, never caller input.
        let value = try connection.scalar(
            "SELECT coalesce(max(seq), 0) + 1 FROM \(table) WHERE job_id = ?", [.text(jobId)])
        if case .integer(let seq) = value { return Int(seq) }
        return 1
    }

    /// Inserts a phase, or rewrites it where its seq is already stored (a phase that ended).
    private static func writePhase(_ connection: Connection, jobId: String, _ phase: JobPhase)
        throws(DatabaseError)
    {
        try connection.run(
            """
            INSERT INTO job_phases (job_id, seq, name, started_at_ms, ended_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
            ON CONFLICT (job_id, seq) DO UPDATE SET name = ?3, started_at_ms = ?4, ended_at_ms = ?5
            """,
            [
                .text(jobId), SQLValue(phase.seq), .text(phase.name), .integer(phase.startedAtMs),
                SQLValue(phase.endedAtMs),
            ])
    }

    /// Inserts an attempt, or rewrites it where its seq is already stored (the kernel returned).
    private static func writeAttempt(_ connection: Connection, jobId: String, _ attempt: JobAttempt)
        throws(DatabaseError)
    {
        try connection.run(
            """
            INSERT INTO job_attempts (job_id, seq, at_ms, errno, message, returned_at_ms)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT (job_id, seq) DO UPDATE SET at_ms = ?3, errno = ?4, message = ?5, returned_at_ms = ?6
            """,
            [
                .text(jobId), SQLValue(attempt.seq), .integer(attempt.atMs), SQLValue(attempt.errno),
                .text(attempt.message), SQLValue(attempt.returnedAtMs),
            ])
    }
}

extension GraceStore {
    /// Deletes finished jobs (with their phases and attempts) created before `cutoffMs`, then the
    /// oldest finished ones beyond the newest `maxCount` jobs. A job that has not finished, or that a
    /// desired binding or a reboot verdict names, is kept whatever its age. Returns how many went.
    @discardableResult
    public func pruneJobs(olderThanMs cutoffMs: Int64, keepingAtMost maxCount: Int) throws -> Int {
        try database.transaction { connection in
            let removable = """
                finished_at_ms IS NOT NULL
                AND id NOT IN (SELECT job_id FROM desired_bindings WHERE job_id IS NOT NULL)
                AND id NOT IN (SELECT job_id FROM reboot_verdicts)
                """
            // Jobs are inserted in time order: the old ones are the lowest rowids.
            let old = try connection.run(
                """
                DELETE FROM jobs WHERE \(removable) AND rowid < coalesce(
                    (SELECT rowid FROM jobs WHERE created_at_ms >= ?1 ORDER BY rowid LIMIT 1),
                    (SELECT max(rowid) + 1 FROM jobs))
                """, [.integer(cutoffMs)])
            // The kept ones count towards the limit: the oldest removable ones go until it is met.
            let excess = try connection.run(
                """
                DELETE FROM jobs WHERE rowid IN (
                    SELECT rowid FROM jobs WHERE \(removable) ORDER BY rowid
                    LIMIT max(0, (SELECT count(*) FROM jobs) - ?1))
                """, [SQLValue(max(0, maxCount))])
            return old + excess
        }
    }

    /// Rows in `jobs` (for the soak benchmark and tests).
    public func jobCount() throws -> Int {
        guard case .integer(let count) = try database.scalar("SELECT count(*) FROM jobs") else { return 0 }
        return Int(count)
    }
}
