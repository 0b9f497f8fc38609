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
            try Self.recordLayout(
                connection, deviceId: deviceId, layoutJSON: layoutJSON, takenAtMs: takenAtMs,
                describeChange: describeChange)
        }
    }

    /// One device seen with its layout, for `recordLayouts`.
    public struct LayoutRecording: Sendable {
        public var identity: DeviceIdentity
        public var layoutJSON: String
        public var seenAtMs: Int64

        public init(identity: DeviceIdentity, layoutJSON: String, seenAtMs: Int64) {
            self.identity = identity
            self.layoutJSON = layoutJSON
            self.seenAtMs = seenAtMs
        }
    }

    /// What `recordLayouts` did for one recording.
    public struct LayoutRecordingOutcome: Sendable {
        public var device: DeviceRecord
        /// The new snapshot, or the unchanged latest one with `isNew` false.
        public var snapshot: LayoutSnapshot
        public var isNew: Bool
        /// The device's snapshots after the recording, newest first, at most `historyLimit`.
        public var history: [LayoutSnapshot]
    }

    /// `upsertDevice` then `recordLayout` for each recording, and the device's history, all in one
    /// transaction: one synced commit for a whole scan where one per device cost a first start
    /// 8192 of them at 4096 GPUs. All or nothing: when it throws, nothing was recorded, and the
    /// caller records the whole batch again later.
    ///
    /// `describeChange` gets the recording's index and the previous JSON; it runs inside the
    /// transaction, so it must not call back into the store.
    public func recordLayouts(
        _ recordings: [LayoutRecording], historyLimit: Int,
        describeChange: (_ index: Int, _ previousJSON: String) -> String
    ) throws -> [LayoutRecordingOutcome] {
        guard !recordings.isEmpty else { return [] }
        // A whole scan's rows pass through SQLite's page cache; the pages are on disk once it is
        // done, so the cache hands them back (a first start at 4096 GPUs filled its 2 MB).
        defer { database.releaseMemory() }
        return try database.transaction { connection in
            var results: [LayoutRecordingOutcome] = []
            results.reserveCapacity(recordings.count)
            for (index, recording) in recordings.enumerated() {
                let device = try Self.upsertDevice(
                    connection, recording.identity, seenAtMs: recording.seenAtMs)
                let (snapshot, isNew) = try Self.recordLayout(
                    connection, deviceId: device.id, layoutJSON: recording.layoutJSON,
                    takenAtMs: recording.seenAtMs, describeChange: { describeChange(index, $0) })
                let history = try Self.layoutHistory(connection, deviceId: device.id, limit: historyLimit)
                results.append(
                    LayoutRecordingOutcome(device: device, snapshot: snapshot, isNew: isNew, history: history)
                )
            }
            return results
        }
    }

    private static func recordLayout(
        _ connection: Connection, deviceId: Int64, layoutJSON: String, takenAtMs: Int64,
        describeChange: (_ previousJSON: String) -> String
    ) throws -> (snapshot: LayoutSnapshot, isNew: Bool) {
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

    /// The device's snapshots, newest first.
    ///
    /// "Newest" is insertion order, not `taken_at_ms`: drift is judged against the row recorded
    /// before, and the wall clock may step backwards between two recordings.
    public func layoutHistory(deviceId: Int64, limit: Int) throws -> [LayoutSnapshot] {
        try database.withConnection { connection in
            try Self.layoutHistory(connection, deviceId: deviceId, limit: limit)
        }
    }

    private static func layoutHistory(_ connection: Connection, deviceId: Int64, limit: Int)
        throws(DatabaseError)
        -> [LayoutSnapshot]
    {
        try connection.query(
            "SELECT \(snapshotColumns) FROM layout_snapshots WHERE device_id = ? ORDER BY id DESC LIMIT ?",
            [.integer(deviceId), SQLValue(limit)], row: snapshot)
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
