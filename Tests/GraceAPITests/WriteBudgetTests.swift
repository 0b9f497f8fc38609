import Store
import Testing

@testable import GraceAPI

/// What a job costs the disk: every committed write transaction is an fsync (WAL, `synchronous =
/// FULL`), so they are counted through the store's own connection, not timed.
@Suite("Write budget", .serialized)
struct WriteBudgetTests {
    @Test("a plain reset of the simulated H100 costs at most 4 synced transactions, submission to finish")
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
        #expect(spent <= 4, "a plain reset cost \(spent) synced transactions")
    }
}
