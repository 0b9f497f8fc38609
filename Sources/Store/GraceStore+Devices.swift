extension GraceStore {
    private static let deviceColumns = """
        id, bdf, vendor_id, device_id, subsystem_vendor_id, subsystem_device_id, first_seen_ms, last_seen_ms
        """

    /// Records that `identity` was seen: inserts it, or widens its first/last-seen window.
    public func upsertDevice(_ identity: DeviceIdentity, seenAtMs: Int64) throws -> DeviceRecord {
        try database.withConnection { connection in
            try Self.upsertDevice(connection, identity, seenAtMs: seenAtMs)
        }
    }

    static func upsertDevice(_ connection: Connection, _ identity: DeviceIdentity, seenAtMs: Int64)
        throws(DatabaseError) -> DeviceRecord
    {
        // min/max rather than plain assignment: rescans can be reported out of order.
        let sql = """
            INSERT INTO devices (bdf, vendor_id, device_id, subsystem_vendor_id, subsystem_device_id,
                                 first_seen_ms, last_seen_ms)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
            ON CONFLICT (bdf, vendor_id, device_id, subsystem_vendor_id, subsystem_device_id) DO UPDATE SET
                first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
                last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)
            RETURNING \(Self.deviceColumns)
            """
        let values: [SQLValue] = [
            .text(identity.bdf), .text(identity.vendorId), .text(identity.deviceId),
            .text(identity.subsystemVendorId), .text(identity.subsystemDeviceId), .integer(seenAtMs),
        ]
        let rows = try connection.query(sql, values, row: deviceRecord)
        // RETURNING yields exactly one row for an upsert that did not throw.
        return rows[0]
    }

    /// The identity most recently seen at `bdf`, if any.
    public func device(bdf: String) throws -> DeviceRecord? {
        try database.withConnection { connection in
            try connection.query(
                """
                SELECT \(Self.deviceColumns) FROM devices WHERE bdf = ?
                ORDER BY last_seen_ms DESC, id DESC LIMIT 1
                """,
                [.text(bdf.lowercased())], row: Self.deviceRecord
            ).first
        }
    }

    public func device(id: Int64) throws -> DeviceRecord? {
        try database.withConnection { connection in
            try connection.query(
                "SELECT \(Self.deviceColumns) FROM devices WHERE id = ?", [.integer(id)],
                row: Self.deviceRecord
            ).first
        }
    }

    private static func deviceRecord(_ row: borrowing Statement) -> DeviceRecord {
        DeviceRecord(
            id: row.int64(at: 0),
            identity: DeviceIdentity(
                bdf: row.string(at: 1) ?? "", vendorId: row.string(at: 2) ?? "",
                deviceId: row.string(at: 3) ?? "", subsystemVendorId: row.string(at: 4) ?? "",
                subsystemDeviceId: row.string(at: 5) ?? ""),
            firstSeenMs: row.int64(at: 6), lastSeenMs: row.int64(at: 7))
    }
}
