import Logging
import Store

/// The audit trail in SQLite's `audit_log`: one line per changing request, with who sent it, over
/// which channel, and what came of it.
final class StoreAuditor: RequestAuditor {
    /// `detail_json` of a request's line.
    struct Detail: Codable, Equatable {
        /// nil while the request is being handled.
        var status: Int?
        var job: String?
        var channel: String
        var role: String?
        var source: String
    }

    private let store: GraceStore
    private let logger: Logger

    init(store: GraceStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    func begin(_ request: AuditedRequest) throws -> Int64 {
        try store.appendAudit(
            actor: request.caller.name, action: "\(request.method) \(request.route)", target: request.path,
            detailJSON: JSON.encodeString(detail(request, status: nil, job: nil))
        ).id
    }

    func finish(_ id: Int64, status: Int, job: String?) {
        do {
            guard let entry = try store.auditEntries(limit: 1, beforeId: id + 1).first, entry.id == id,
                var detail = try? JSON.decode(Detail.self, from: Array(entry.detailJSON.utf8))
            else { return }
            detail.status = status
            detail.job = job
            try store.updateAuditDetail(id: id, detailJSON: JSON.encodeString(detail))
        } catch {
            logger.error("could not complete audit line \(id) (status \(status)): \(error)")
        }
    }

    func refused(_ request: AuditedRequest, status: Int) {
        do {
            try store.appendAudit(
                actor: request.caller.name, action: "\(request.method) \(request.route)",
                target: request.path,
                detailJSON: JSON.encodeString(detail(request, status: status, job: nil)))
        } catch {
            logger.error(
                "could not record a refused \(request.method) \(request.route) by \(request.caller.name): \(error)"
            )
        }
    }

    private func detail(_ request: AuditedRequest, status: Int?, job: String?) -> Detail {
        Detail(
            status: status, job: job, channel: request.channel, role: request.caller.role?.rawValue,
            source: request.caller.source.rawValue)
    }
}
