extension GraceStore {
    /// Appends an event and returns its id: the next one SQLite's AUTOINCREMENT hands out, but never
    /// below `atLeast`. The floor lets the event hub keep ids increasing across a period in which
    /// the store could not be written and the hub numbered events itself (see `EventHub`); an
    /// explicit id above the sequence moves the sequence with it, so SQLite never hands out a lower
    /// one afterwards.
    public func appendEvent(
        type: String, atMs: Int64, gpu: String?, job: String?, dataJSON: String, atLeast: Int64 = 0
    ) throws -> Int64 {
        try database.withConnection { connection in
            try Self.appendEvent(
                connection, type: type, atMs: atMs, gpu: gpu, job: job, dataJSON: dataJSON, atLeast: atLeast)
        }
    }

    /// `appendEvent` inside a transaction the caller holds (the event hub's, which writes a job's
    /// change and the events it caused together).
    public static func appendEvent(
        _ connection: Connection, type: String, atMs: Int64, gpu: String?, job: String?, dataJSON: String,
        atLeast: Int64 = 0
    ) throws(DatabaseError) -> Int64 {
        try connection.run(
            """
            INSERT INTO events (id, type, at_ms, gpu, job, data_json) VALUES (
                max(?1, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) + 1),
                ?2, ?3, ?4, ?5, ?6)
            """,
            [
                .integer(atLeast), .text(type), .integer(atMs), SQLValue(gpu), SQLValue(job),
                .text(dataJSON),
            ])
        return connection.lastInsertRowID
    }

    /// Events with an id above `afterId`, oldest first, at most `limit`.
    public func events(after afterId: Int64, limit: Int) throws -> [EventRecord] {
        try database.withConnection { connection in
            try connection.query(
                "SELECT id, type, at_ms, gpu, job, data_json FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
                [.integer(afterId), SQLValue(limit)]
            ) { row in
                EventRecord(
                    id: row.int64(at: 0), type: row.string(at: 1) ?? "", atMs: row.int64(at: 2),
                    gpu: row.string(at: 3), job: row.string(at: 4), dataJSON: row.string(at: 5) ?? "{}")
            }
        }
    }

    /// Events with an id in `afterId + 1 ... upTo`, of `gpu` (nil: any) and of `types` (nil: any),
    /// oldest first, at most `limit`. Served from the `(gpu, id)` and `(type, id)` indexes, so the
    /// rows read are about the rows returned.
    public func events(
        after afterId: Int64, upTo: Int64, gpu: String?, types: Set<String>?, limit: Int
    ) throws -> [EventRecord] {
        var conditions = ["id > ?1", "id <= ?2"]
        var values: [SQLValue] = [.integer(afterId), .integer(upTo), SQLValue(limit)]
        if let gpu {
            values.append(.text(gpu))
            conditions.append("gpu = ?\(values.count)")
        }
        if let types {
            var placeholders: [String] = []
            for type in types.sorted() {
                values.append(.text(type))
                placeholders.append("?\(values.count)")
            }
            conditions.append(
                placeholders.isEmpty ? "0" : "type IN (\(placeholders.joined(separator: ", ")))")
        }
        return try database.withConnection { connection in
            try connection.query(
                """
                SELECT id, type, at_ms, gpu, job, data_json FROM events
                WHERE \(conditions.joined(separator: " AND ")) ORDER BY id LIMIT ?3
                """, values
            ) { row in
                EventRecord(
                    id: row.int64(at: 0), type: row.string(at: 1) ?? "", atMs: row.int64(at: 2),
                    gpu: row.string(at: 3), job: row.string(at: 4), dataJSON: row.string(at: 5) ?? "{}")
            }
        }
    }

    /// The oldest event still kept, or nil when none is.
    public func oldestEventId() throws -> Int64? {
        if case .integer(let id) = try database.scalar("SELECT min(id) FROM events") { return id }
        return nil
    }

    /// The newest event of `type` for each GPU that has one (at start: the last `device.state` each
    /// GPU was announced in, to compare with what the first scan finds).
    public func latestEventPerGPU(type: String) throws -> [EventRecord] {
        try database.withConnection { connection in
            try connection.query(
                """
                SELECT id, type, at_ms, gpu, job, data_json FROM events WHERE id IN (
                    SELECT max(id) FROM events WHERE type = ?1 AND gpu IS NOT NULL GROUP BY gpu)
                ORDER BY id
                """, [.text(type)]
            ) { row in
                EventRecord(
                    id: row.int64(at: 0), type: row.string(at: 1) ?? "", atMs: row.int64(at: 2),
                    gpu: row.string(at: 3), job: row.string(at: 4), dataJSON: row.string(at: 5) ?? "{}")
            }
        }
    }

    /// The highest id ever handed out (pruned or not), 0 before the first event.
    public func lastEventId() throws -> Int64 {
        if case .integer(let id) = try database.scalar(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'")
        {
            return id
        }
        return 0
    }

    /// Deletes the events older than `cutoffMs`, then the oldest beyond the newest `maxCount`.
    /// Returns how many were deleted.
    @discardableResult
    public func pruneEvents(olderThanMs cutoffMs: Int64, keepingAtMost maxCount: Int) throws -> Int {
        try database.transaction { connection in
            let old = try connection.run("DELETE FROM events WHERE at_ms < ?1", [.integer(cutoffMs)])
            let excess = try connection.run(
                """
                DELETE FROM events WHERE id <= (
                    SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1)
                """,
                [SQLValue(max(0, maxCount))])
            return old + excess
        }
    }
}
