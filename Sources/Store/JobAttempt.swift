/// One try at an operation within a job, kept so that retries and their errno are auditable.
public struct JobAttempt: Hashable, Sendable {
    /// 1-based position within the job.
    public var seq: Int
    public var atMs: Int64
    /// When the kernel write returned; nil while it is (or was, when the daemon died) in the kernel.
    public var returnedAtMs: Int64?
    /// The kernel's errno when the attempt failed with one.
    public var errno: Int32?
    public var message: String

    public init(seq: Int, atMs: Int64, returnedAtMs: Int64? = nil, errno: Int32? = nil, message: String) {
        self.seq = seq
        self.atMs = atMs
        self.returnedAtMs = returnedAtMs
        self.errno = errno
        self.message = message
    }
}
