extension GraceStore {
    /// Records (or replaces) the verdict on the GPU.
    public func saveRebootVerdict(_ verdict: RebootVerdict) throws {
        try database.run(
            """
            INSERT INTO reboot_verdicts (bdf, boot_id, job_id, at_ms) VALUES (?, ?, ?, ?)
            ON CONFLICT (bdf) DO UPDATE SET boot_id = excluded.boot_id, job_id = excluded.job_id,
                at_ms = excluded.at_ms
            """,
            [.text(verdict.bdf), .text(verdict.bootId), .text(verdict.jobId), .integer(verdict.atMs)])
    }

    /// Every verdict, in BDF order.
    public func rebootVerdicts() throws -> [RebootVerdict] {
        try database.withConnection { connection in
            try connection.query("SELECT bdf, boot_id, job_id, at_ms FROM reboot_verdicts ORDER BY bdf", []) {
                row in
                RebootVerdict(
                    bdf: row.string(at: 0) ?? "", bootId: row.string(at: 1) ?? "",
                    jobId: row.string(at: 2) ?? "",
                    atMs: row.int64(at: 3))
            }
        }
    }

    /// Lifts the verdict on the GPU; false when there was none.
    @discardableResult
    public func deleteRebootVerdict(bdf: String) throws -> Bool {
        try database.run("DELETE FROM reboot_verdicts WHERE bdf = ?", [.text(bdf)]) > 0
    }
}
