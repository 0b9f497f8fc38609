/// A query that named something the store does not have.
public enum GraceStoreError: Error, Hashable, Sendable {
    case deviceNotFound(id: Int64)
    case jobNotFound(id: String)
    case phaseNotFound(jobId: String, seq: Int)
    case auditEntryNotFound(id: Int64)
    /// A new job's Idempotency-Key already belongs to another job.
    case idempotencyKeyTaken(key: String, jobId: String)
}
