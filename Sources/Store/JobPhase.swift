/// One step of a job (unbind, reset, rebind, ...), in the order it started.
public struct JobPhase: Hashable, Sendable {
    /// 1-based position within the job.
    public var seq: Int
    public var name: String
    public var startedAtMs: Int64
    /// Nil while the phase is running, and for a phase cut short by a daemon crash.
    public var endedAtMs: Int64?

    public init(seq: Int, name: String, startedAtMs: Int64, endedAtMs: Int64? = nil) {
        self.seq = seq
        self.name = name
        self.startedAtMs = startedAtMs
        self.endedAtMs = endedAtMs
    }
}
