import GraceHTTP
import Store
import Synchronization

/// The audit line of a changing request that its handler writes in the transaction making the
/// change (a job's insert, with its `job.queued` event), complete with the answer it will give: the
/// change and its record are one synced write, and neither exists without the other.
///
/// The server leaves the line to the handler only on routes registered as writing it
/// (`Router.add(..., auditsInTransaction: true)`) and only for an auditor that writes to the
/// service's store. A handler that makes no change (a refusal, an Idempotency-Key's repeat) does not
/// write it, and the server records the answer afterwards, as for any request.
public final class TransactionalAudit: HandlerWrittenAudit {
    /// A line written inside a transaction not yet committed.
    public struct Receipt: Sendable {
        var id: Int64
        var status: Int
        var job: String?
    }

    let request: AuditedRequest
    private let auditor: any RequestAuditor
    private let committed = Mutex<Receipt?>(nil)

    init(request: AuditedRequest, auditor: any RequestAuditor) {
        self.request = request
        self.auditor = auditor
    }

    /// Appends the line, saying the request will be answered `status` naming `job`, inside the
    /// caller's transaction; `commit` the receipt once that transaction has committed.
    public func write(in connection: Connection, status: Int, job: String?) throws -> Receipt? {
        guard let line = auditor.line(for: request, status: status, job: job) else { return nil }
        let entry = try GraceStore.appendAudit(
            connection, atMs: WallClock.nowMs(), actor: line.actor, action: line.action, target: line.target,
            detailJSON: line.detailJSON)
        return Receipt(id: entry.id, status: status, job: job)
    }

    public func commit(_ receipt: Receipt?) {
        guard let receipt else { return }
        committed.withLock { $0 = receipt }
    }

    /// Completes the record once the answer is known: nothing when the line written says it
    /// already, the line corrected when the answer differs, a line of its own when the handler wrote
    /// none (it made no change).
    public func finish(status: Int, job: String?) throws {
        if let written = committed.withLock({ $0 }) {
            guard written.status != status || written.job != job else { return }
            auditor.finish(written.id, of: request, status: status, job: job)
            return
        }
        let id = try auditor.begin(request)
        auditor.finish(id, of: request, status: status, job: job)
    }
}
