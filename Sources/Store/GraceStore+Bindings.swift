extension GraceStore {
    /// Records (or replaces) the desired driver of each function, in one transaction.
    public func setDesiredBindings(_ bindings: [DesiredBinding]) throws {
        guard !bindings.isEmpty else { return }
        try database.transaction { connection in
            for binding in bindings {
                try connection.run(
                    """
                    INSERT INTO desired_bindings (bdf, driver, job_id, set_at_ms) VALUES (?, ?, ?, ?)
                    ON CONFLICT (bdf) DO UPDATE SET driver = excluded.driver, job_id = excluded.job_id,
                        set_at_ms = excluded.set_at_ms
                    """,
                    [
                        .text(binding.bdf), SQLValue(binding.driver), SQLValue(binding.jobId),
                        .integer(binding.setAtMs),
                    ])
            }
        }
    }

    /// Every desired binding, in BDF order.
    public func desiredBindings() throws -> [DesiredBinding] {
        try database.withConnection { connection in
            try connection.query(
                "SELECT bdf, driver, job_id, set_at_ms FROM desired_bindings ORDER BY bdf", []
            ) { row in
                DesiredBinding(
                    bdf: row.string(at: 0) ?? "", driver: row.string(at: 1), jobId: row.string(at: 2),
                    setAtMs: row.int64(at: 3))
            }
        }
    }

    /// Forgets the function's desired binding; false when there was none.
    @discardableResult
    public func deleteDesiredBinding(bdf: String) throws -> Bool {
        try database.run("DELETE FROM desired_bindings WHERE bdf = ?", [.text(bdf)]) > 0
    }
}
