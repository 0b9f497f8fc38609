extension GraceStore {
    /// Appends one audit line and returns it with its id.
    @discardableResult
    public func appendAudit(
        atMs: Int64 = WallClock.nowMs(), actor: String, action: String, target: String,
        detailJSON: String = "{}"
    ) throws -> AuditEntry {
        try database.withConnection { connection in
            try Self.appendAudit(
                connection, atMs: atMs, actor: actor, action: action, target: target, detailJSON: detailJSON)
        }
    }

    /// `appendAudit` inside a transaction the caller holds (a job's outcome is written with its end).
    @discardableResult
    public static func appendAudit(
        _ connection: Connection, atMs: Int64, actor: String, action: String, target: String,
        detailJSON: String
    ) throws(DatabaseError) -> AuditEntry {
        try connection.run(
            "INSERT INTO audit_log (at_ms, actor, action, target, detail_json) VALUES (?, ?, ?, ?, ?)",
            [.integer(atMs), .text(actor), .text(action), .text(target), .text(detailJSON)])
        return AuditEntry(
            id: connection.lastInsertRowID, atMs: atMs, actor: actor, action: action, target: target,
            detailJSON: detailJSON)
    }

    /// Replaces an audit line's detail once the outcome of what it records is known.
    public func updateAuditDetail(id: Int64, detailJSON: String) throws {
        let changed = try database.run(
            "UPDATE audit_log SET detail_json = ? WHERE id = ?", [.text(detailJSON), .integer(id)])
        guard changed > 0 else { throw GraceStoreError.auditEntryNotFound(id: id) }
    }

    /// Records on a line that `repeated` more refusals of its kind followed it, the last at
    /// `lastAtMs` (added to what an earlier call counted).
    public func foldAuditRepeats(id: Int64, repeated: Int, lastAtMs: Int64) throws {
        let changed = try database.run(
            """
            UPDATE audit_log SET detail_json = json_set(detail_json,
                '$.repeated', coalesce(json_extract(detail_json, '$.repeated'), 0) + ?1, '$.lastAtMs', ?2)
            WHERE id = ?3
            """, [.integer(Int64(repeated)), .integer(lastAtMs), .integer(id)])
        guard changed > 0 else { throw GraceStoreError.auditEntryNotFound(id: id) }
    }

    /// Deletes the lines older than `cutoffMs`, then the oldest beyond the newest `maxCount`.
    /// Returns how many were deleted.
    @discardableResult
    public func pruneAudit(olderThanMs cutoffMs: Int64, keepingAtMost maxCount: Int) throws -> Int {
        try database.transaction { connection in
            // Lines are appended in time order: the old ones are the lowest ids, found from the start
            // of the table without an index on time.
            let old = try connection.run(
                """
                DELETE FROM audit_log WHERE id < coalesce(
                    (SELECT id FROM audit_log WHERE at_ms >= ?1 ORDER BY id LIMIT 1),
                    (SELECT max(id) + 1 FROM audit_log))
                """, [.integer(cutoffMs)])
            let excess = try connection.run(
                "DELETE FROM audit_log WHERE id <= (SELECT id FROM audit_log ORDER BY id DESC LIMIT 1 OFFSET ?1)",
                [SQLValue(max(0, maxCount))])
            return old + excess
        }
    }

    /// Lines in the trail (for the soak benchmark and tests).
    public func auditCount() throws -> Int {
        guard case .integer(let count) = try database.scalar("SELECT count(*) FROM audit_log") else {
            return 0
        }
        return Int(count)
    }

    /// Audit lines newest first, optionally only those older than `beforeId` (for paging).
    public func auditEntries(limit: Int, beforeId: Int64? = nil) throws -> [AuditEntry] {
        try database.withConnection { connection in
            try connection.query(
                """
                SELECT id, at_ms, actor, action, target, detail_json FROM audit_log
                WHERE ?1 IS NULL OR id < ?1 ORDER BY id DESC LIMIT ?2
                """,
                [SQLValue(beforeId), SQLValue(limit)]
            ) { row in
                AuditEntry(
                    id: row.int64(at: 0), atMs: row.int64(at: 1), actor: row.string(at: 2) ?? "",
                    action: row.string(at: 3) ?? "", target: row.string(at: 4) ?? "",
                    detailJSON: row.string(at: 5) ?? "")
            }
        }
    }
}
