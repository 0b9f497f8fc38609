import Store
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// What a job costs the disk: every committed write transaction is an fsync (WAL, `synchronous =
/// FULL`), so they are counted through the store's own connection, not timed.
@Suite("Write budget", .serialized)
struct WriteBudgetTests {
    /// One transaction per point where the record must be on disk: the insert (with the request's
    /// audit line and `job.queued`), before the `power/control` write that holds the idle H100 in D0
    /// (the restore it owes is recorded first), before the reset write (its attempt), before the
    /// readiness wait sleeps (a daemon killed during it is found `waiting_ready`), and the end (with
    /// the restores done, `job.finished`, the GPU's state and the audit line of the outcome). It was
    /// 24 before each step was written as one transaction.
    static let plainResetBudget = 5

    @Test("a plain reset of the simulated H100 costs 5 synced transactions, submission to finish")
    func plainReset() async throws {
        let service = try await RunningService.start()
        let store = service.application.engine.store
        let before = store.database.committedWriteTransactions
        let job = try await service.submit(JobTests.h100, "reset")
        let done = try await service.waitForJob(job.id)
        #expect(done.state == "succeeded", "\(done.error?.detail ?? "")")
        // Its end is written when the job.finished event and the job's own audit line are stored.
        try await waitFor(seconds: 15) {
            let finished = try store.events(after: 0, limit: 10_000).contains {
                $0.type == "job.finished" && $0.job == job.id
            }
            let audited = try store.auditEntries(limit: 100).contains {
                $0.actor == "graced" && $0.action == "job.reset" && $0.detailJSON.contains(job.id)
            }
            return finished && audited
        }
        try await service.waitUntilFree(JobTests.h100)
        let spent = store.database.committedWriteTransactions - before
        #expect(spent <= Self.plainResetBudget, "a plain reset cost \(spent) synced transactions")
        // The request's line was written with the job, complete: its answer and the job it created.
        let request = try #require(
            try store.auditEntries(limit: 100).first { $0.action == "POST /gpus/{bdf}/reset" })
        let detail = try JSON.decode(StoreAuditor.Detail.self, from: Array(request.detailJSON.utf8))
        #expect(detail.status == 202 && detail.job == job.id, "\(request.detailJSON)")
    }
}
