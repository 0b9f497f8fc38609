extension GraceStore {
    /// Appends one audit line and returns it with its id.
    @discardableResult
    public func appendAudit(
        atMs: Int64 = WallClock.nowMs(), actor: String, action: String, target: String,
        detailJSON: String = "{}"
    ) throws -> AuditEntry {
        let id = try database.withConnection { connection in
            try connection.run(
                "INSERT INTO audit_log (at_ms, actor, action, target, detail_json) VALUES (?, ?, ?, ?, ?)",
                [.integer(atMs), .text(actor), .text(action), .text(target), .text(detailJSON)])
            return connection.lastInsertRowID
        }
        return AuditEntry(
            id: id, atMs: atMs, actor: actor, action: action, target: target, detailJSON: detailJSON)
    }

    /// Replaces an audit line's detail once the outcome of what it records is known.
    public func updateAuditDetail(id: Int64, detailJSON: String) throws {
        let changed = try database.run(
            "UPDATE audit_log SET detail_json = ? WHERE id = ?", [.text(detailJSON), .integer(id)])
        guard changed > 0 else { throw GraceStoreError.auditEntryNotFound(id: id) }
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
