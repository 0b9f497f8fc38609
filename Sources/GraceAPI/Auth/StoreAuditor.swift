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
        try append(request, status: nil)
    }

    /// Rewrites the line's detail from the request itself: nothing needs reading back.
    func finish(_ id: Int64, of request: AuditedRequest, status: Int, job: String?) {
        do {
            try store.updateAuditDetail(
                id: id, detailJSON: JSON.encodeString(detail(request, status: status, job: job)))
        } catch {
            logger.error("could not complete audit line \(id) (status \(status)): \(error)")
        }
    }

    func refused(_ request: AuditedRequest, status: Int) {
        do {
            try append(request, status: status)
        } catch {
            logger.error(
                "could not record a refused \(request.method) \(request.route) by \(request.caller.name): \(error)"
            )
        }
    }

    @discardableResult
    private func append(_ request: AuditedRequest, status: Int?) throws -> Int64 {
        try store.appendAudit(
            actor: request.caller.name, action: "\(request.method) \(request.route)", target: request.path,
            detailJSON: JSON.encodeString(detail(request, status: status, job: nil))
        ).id
    }

    private func detail(_ request: AuditedRequest, status: Int?, job: String?) -> Detail {
        Detail(
            status: status, job: job, channel: request.channel, role: request.caller.role?.rawValue,
            source: request.caller.source.rawValue)
    }
}
