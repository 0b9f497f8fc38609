import Testing

@testable import Store

/// The tables that grow with traffic keep what their retention says, by age and by count.
@Suite struct GraceStoreRetentionTests {
    @Test("the audit trail keeps its newest lines: old ones go by age, then the excess by count")
    func auditRetention() throws {
        let store = try GraceStore(path: ":memory:")
        for at in 1...10 {
            try store.appendAudit(atMs: Int64(at) * 1000, actor: "a", action: "POST /x", target: "/x")
        }
        #expect(try store.pruneAudit(olderThanMs: 3000, keepingAtMost: 100) == 2)
        #expect(try store.auditEntries(limit: 100).map(\.atMs).min() == 3000)
        #expect(try store.pruneAudit(olderThanMs: 0, keepingAtMost: 5) == 3)
        #expect(try store.auditEntries(limit: 100).map(\.atMs) == [10000, 9000, 8000, 7000, 6000])
        #expect(try store.auditCount() == 5)
        // Everything is old: the table empties (the coalesce with no line at or after the cutoff).
        #expect(try store.pruneAudit(olderThanMs: 20000, keepingAtMost: 5) == 5)
        #expect(try store.auditCount() == 0)
    }

    @Test("folded refusals add up on their line, and the rest of its detail stays")
    func foldedRefusalsAddUp() throws {
        let store = try GraceStore(path: ":memory:")
        let line = try store.appendAudit(
            atMs: 1, actor: "anonymous@127.0.0.1", action: "POST /gpus/{bdf}/reset", target: "/gpus/x/reset",
            detailJSON: #"{"status":401,"channel":"tcp","source":"none"}"#)
        try store.foldAuditRepeats(id: line.id, repeated: 5, lastAtMs: 50)
        try store.foldAuditRepeats(id: line.id, repeated: 2, lastAtMs: 70)
        let detail = try #require(store.auditEntries(limit: 1).first?.detailJSON)
        #expect(detail == #"{"status":401,"channel":"tcp","source":"none","repeated":7,"lastAtMs":70}"#)
        #expect(throws: GraceStoreError.auditEntryNotFound(id: 99)) {
            try store.foldAuditRepeats(id: 99, repeated: 1, lastAtMs: 1)
        }
    }

    @Test("finished jobs go by age and by count; running ones and those a binding or a verdict names stay")
    func jobRetention() throws {
        let store = try GraceStore(path: ":memory:")
        let device = try store.upsertDevice(
            DeviceIdentity(
                bdf: "0000:0a:00.0", vendorId: "0x10de", deviceId: "0x2331", subsystemVendorId: "0x10de",
                subsystemDeviceId: "0x1626"), seenAtMs: 1)
        for index in 1...8 {
            let id = "job-\(index)"
            try store.insertJob(
                JobRecord(
                    id: id, kind: "reset", deviceId: device.id, bdf: "0000:0a:00.0", state: "queued",
                    phase: "queued", methodRequested: "auto", deadlineMs: 0, idempotencyKey: nil,
                    requestJSON: "{}", createdAtMs: Int64(index) * 1000))
            try store.appendAttempt(jobId: id, atMs: Int64(index) * 1000, message: "reset")
            // job-2 is still running; the others finished.
            if index != 2 {
                _ = try store.updateJob(id: id, state: "succeeded", finishedAtMs: Int64(index) * 1000 + 1)
            }
        }
        try store.setDesiredBindings([
            DesiredBinding(bdf: "0000:0a:00.0", driver: "vfio-pci", jobId: "job-1", setAtMs: 1)
        ])
        try store.saveRebootVerdict(RebootVerdict(bdf: "0000:0a:00.0", bootId: "b", jobId: "job-3", atMs: 1))

        // Older than 5 s: job-1 (named by a binding), job-2 (running), job-3 (a verdict) stay; job-4 goes.
        #expect(try store.pruneJobs(olderThanMs: 5000, keepingAtMost: 100) == 1)
        #expect(try store.job(id: "job-4") == nil)
        #expect(try store.jobCount() == 7)
        // At most 5: the oldest removable ones go (job-5, job-6), the kept ones whatever their age.
        #expect(try store.pruneJobs(olderThanMs: 0, keepingAtMost: 5) == 2)
        let left = try store.jobs(limit: 100, beforeCreatedAtMs: nil).map(\.id).sorted()
        #expect(left == ["job-1", "job-2", "job-3", "job-7", "job-8"])
        // Their attempts went with them.
        let attempts = try store.database.scalar("SELECT count(*) FROM job_attempts")
        #expect(attempts == .integer(5))
    }
}

/// A filtered resume reads what it returns (issue 19: a replay whose filter matched nothing walked the
/// whole log inside one content-reader call).
@Suite struct GraceStoreFilteredEventsTests {
    @Test("a GPU's or a type's events are read through their index, in order, within the range")
    func filteredReadsUseTheIndexes() throws {
        let store = try GraceStore(path: ":memory:")
        try store.database.transaction { connection in
            for index in 1...1000 {
                let gpu = index % 100 == 0 ? "0000:c3:00.0" : "0009:01:00.0"
                try connection.run(
                    "INSERT INTO events (type, at_ms, gpu, job, data_json) VALUES (?, ?, ?, NULL, '{}')",
                    [
                        .text(index % 2 == 0 ? "job.phase" : "device.state"), .integer(Int64(index)),
                        .text(gpu),
                    ])
            }
        }
        let picked = try store.events(after: 0, upTo: 1000, gpu: "0000:c3:00.0", types: nil, limit: 256)
        #expect(picked.map(\.id) == stride(from: 100, through: 1000, by: 100).map { Int64($0) })
        let ranged = try store.events(
            after: 100, upTo: 500, gpu: "0000:c3:00.0", types: ["job.phase"], limit: 2)
        #expect(ranged.map(\.id) == [200, 300])
        #expect(try store.events(after: 0, upTo: 1000, gpu: "0000:00:00.0", types: nil, limit: 256).isEmpty)
        #expect(try store.events(after: 0, upTo: 1000, gpu: nil, types: [], limit: 256).isEmpty)
        for (condition, index) in [
            ("gpu = '0000:c3:00.0'", "events_by_gpu"), ("type IN ('job.phase')", "events_by_type"),
        ] {
            let plan = try store.database.withConnection { connection in
                try connection.query(
                    "EXPLAIN QUERY PLAN SELECT id FROM events WHERE id > 0 AND id <= 1000 AND \(condition) ORDER BY id LIMIT 256"
                ) { $0.string(at: 3) ?? "" }
            }
            #expect(plan.contains { $0.contains(index) }, "\(plan)")
        }
    }
}
