extension GraceStore {
    private static let snapshotColumns = "id, device_id, taken_at_ms, layout_json, drift, change_summary"

    /// Records `layoutJSON` for the device unless it is exactly the latest recorded layout.
    ///
    /// A first snapshot has no drift; a changed one has drift and the summary `describeChange`
    /// writes from the previous JSON. `describeChange` runs inside the transaction, so it must not
    /// call back into the store.
    /// - Returns: the new snapshot, or the unchanged latest one with `isNew` false.
    @discardableResult
    public func recordLayout(
        deviceId: Int64, layoutJSON: String, takenAtMs: Int64,
        describeChange: (_ previousJSON: String) -> String
    ) throws -> (snapshot: LayoutSnapshot, isNew: Bool) {
        try database.transaction { connection in
            let previous = try Self.latestLayout(connection, deviceId: deviceId)
            // Byte comparison: String == treats canonically equivalent Unicode as equal, and the
            // caller's canonical encoding makes bytes the rule.
            if let previous, previous.layoutJSON.utf8.elementsEqual(layoutJSON.utf8) {
                return (previous, false)
            }
            let summary = previous.map { describeChange($0.layoutJSON) }
            try connection.run(
                """
                INSERT INTO layout_snapshots (device_id, taken_at_ms, layout_json, drift, change_summary)
                VALUES (?, ?, ?, ?, ?)
                """,
                [
                    .integer(deviceId), .integer(takenAtMs), .text(layoutJSON), SQLValue(previous != nil),
                    SQLValue(summary),
                ])
            let snapshot = LayoutSnapshot(
                id: connection.lastInsertRowID, deviceId: deviceId, takenAtMs: takenAtMs,
                layoutJSON: layoutJSON, drift: previous != nil, changeSummary: summary)
            return (snapshot, true)
        }
    }

    /// The device's snapshots, newest first.
    ///
    /// "Newest" is insertion order, not `taken_at_ms`: drift is judged against the row recorded
    /// before, and the wall clock may step backwards between two recordings.
    public func layoutHistory(deviceId: Int64, limit: Int) throws -> [LayoutSnapshot] {
        try database.withConnection { connection in
            try connection.query(
                "SELECT \(Self.snapshotColumns) FROM layout_snapshots WHERE device_id = ? ORDER BY id DESC LIMIT ?",
                [.integer(deviceId), SQLValue(limit)], row: Self.snapshot)
        }
    }

    public func latestLayout(deviceId: Int64) throws -> LayoutSnapshot? {
        try database.withConnection { connection in
            try Self.latestLayout(connection, deviceId: deviceId)
        }
    }

    private static func latestLayout(_ connection: Connection, deviceId: Int64) throws(DatabaseError)
        -> LayoutSnapshot?
    {
        try connection.query(
            "SELECT \(snapshotColumns) FROM layout_snapshots WHERE device_id = ? ORDER BY id DESC LIMIT 1",
            [.integer(deviceId)], row: snapshot
        ).first
    }

    private static func snapshot(_ row: borrowing Statement) -> LayoutSnapshot {
        LayoutSnapshot(
            id: row.int64(at: 0), deviceId: row.int64(at: 1), takenAtMs: row.int64(at: 2),
            layoutJSON: row.string(at: 3) ?? "", drift: row.bool(at: 4), changeSummary: row.string(at: 5))
    }
}
