/// A changing request as the audit trail records it.
public struct AuditedRequest: Sendable {
    public var method: String
    /// The route's template (`/gpus/{bdf}/reset`), or the raw path when no route matched.
    public var route: String
    /// The path as acted on, percent-decoded (from at most 200 bytes sent).
    public var path: String
    /// The path as sent, when it differs from `path`.
    public var rawPath: String?
    public var caller: Caller
    /// "unix", "tcp" or "tls".
    public var channel: String
}

/// Records every changing request, accepted or refused, with the identity that sent it.
public protocol RequestAuditor: Sendable {
    /// Before the handler runs. Throws when the trail cannot be written: the request is then refused
    /// (503) and nothing is done, so no change ever goes unrecorded.
    func begin(_ request: AuditedRequest) throws -> Int64
    /// The answer to the request `begin` recorded as `id`; `job` is the job it created or named.
    func finish(_ id: Int64, of request: AuditedRequest, status: Int, job: String?)
    /// A request refused at the edge (401, 403, 415, 400, ...), recorded in one step.
    func refused(_ request: AuditedRequest, status: Int)
    /// The row of the line `request` answered `status` (naming `job`) would be, for a handler that
    /// writes it in the service's store within its own transaction (`TransactionalAudit`); nil when
    /// this auditor does not write there.
    func line(for request: AuditedRequest, status: Int, job: String?) -> AuditLine?
    /// The line a handler will write with its change, on a route registered as doing so; nil
    /// when this auditor cannot (the server then records the request itself, before the handler).
    func handlerWritten(_ request: AuditedRequest) -> (any HandlerWrittenAudit)?
}

extension RequestAuditor {
    public func line(for request: AuditedRequest, status: Int, job: String?) -> AuditLine? { nil }
    public func handlerWritten(_ request: AuditedRequest) -> (any HandlerWrittenAudit)? { nil }
}

/// An audit line that a handler writes in the transaction making its change (the service's
/// `TransactionalAudit`); the edge only completes it with the answer.
public protocol HandlerWrittenAudit: AnyObject, Sendable {
    /// Completes the record once the answer is known.
    func finish(status: Int, job: String?) throws
}

/// One row of the service store's audit trail, before it is written.
public struct AuditLine: Sendable {
    public var actor: String
    public var action: String
    public var target: String
    public var detailJSON: String

    public init(actor: String, action: String, target: String, detailJSON: String) {
        self.actor = actor
        self.action = action
        self.target = target
        self.detailJSON = detailJSON
    }
}
