import GraceHTTP
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
        /// Refusals of the same kind folded into this line after it (see `RefusalFolding`); absent
        /// (0) for every other line.
        var repeated: Int?
        /// When the last of them came.
        var lastAtMs: Int64?
        /// The target as sent, when percent-encoding made it differ from the line's target.
        var rawTarget: String?
    }

    private let store: GraceStore
    private let logger: Logger
    let refusals: RefusalFolding

    init(store: GraceStore, logger: Logger, refusals: RefusalFolding = RefusalFolding()) {
        self.store = store
        self.logger = logger
        self.refusals = refusals
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
        let key = RefusalFolding.Key(
            account: request.caller.account, action: "\(request.method) \(request.route)", status: status,
            channel: request.channel)
        let (decision, closed) = refusals.admit(key, nowMs: WallClock.nowMs())
        complete(closed)
        guard case .write(let folding) = decision else { return }
        var request = request
        if folding == .overflow {
            request.caller.name = Self.overflowActor
            request.path = ""
        }
        do {
            refusals.opened(folding, rowId: try append(request, status: status))
        } catch {
            logger.error(
                "could not record a refused \(request.method) \(request.route) by \(request.caller.name): \(error)"
            )
        }
    }

    /// The actor of the line that counts the refusals beyond the kinds followed one by one.
    static let overflowActor = "(callers beyond those followed one by one)"

    /// Completes the lines of folding windows that closed (the retention worker calls this every
    /// minute, and `stop` at shutdown with every window).
    func complete(_ closed: [RefusalFolding.Closed]) {
        for window in closed {
            do {
                try store.foldAuditRepeats(
                    id: window.rowId, repeated: window.repeated, lastAtMs: window.lastAtMs)
            } catch GraceStoreError.auditEntryNotFound {
                // The retention took the line within its minute (a tiny --audit-max-rows): its count
                // goes with it, as the line itself would have a moment later.
                logger.notice(
                    "audit line \(window.rowId) was pruned before its \(window.repeated) folded refusals were counted"
                )
            } catch {
                logger.error(
                    "could not count \(window.repeated) folded refusals into audit line \(window.rowId): \(error)"
                )
            }
        }
    }

    /// Writes the counts of every folding window, closed or not (at shutdown).
    func flushRefusals() {
        complete(refusals.closeAll())
    }

    func handlerWritten(_ request: AuditedRequest) -> (any HandlerWrittenAudit)? {
        TransactionalAudit(request: request, auditor: self)
    }

    func line(for request: AuditedRequest, status: Int, job: String?) -> AuditLine? {
        AuditLine(
            actor: request.caller.name, action: "\(request.method) \(request.route)", target: request.path,
            detailJSON: JSON.encodeString(detail(request, status: status, job: job)))
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
            source: request.caller.source.rawValue, rawTarget: request.rawPath)
    }
}
