/// A job's transitions as events of the stream, built from the job's own values (the write an
/// attempt made is the `SysfsWrite` itself, not text read back from its message).
enum JobEvents {
    /// The event `transition` announces, or nil when it announces none (`started`: its first phase
    /// follows at once).
    static func draft(_ transition: JobMachine.Transition, of job: Job) -> EventDraft? {
        let gpu = job.gpu.description
        switch transition {
        case .queued:
            return EventDraft(
                type: .jobQueued, gpu: gpu, job: job.id,
                payload: JobQueuedPayload(kind: job.kind.rawValue, method: job.methodRequested))
        case .started:
            return nil
        case .phase(let phase):
            return EventDraft(type: .jobPhase, gpu: gpu, job: job.id, payload: JobPhasePayload(phase: phase))
        case .attempt(let attempt):
            let number = (job.attempts.lastIndex(of: attempt) ?? job.attempts.count - 1) + 1
            return EventDraft(
                type: .jobAttempt, gpu: gpu, job: job.id,
                payload: JobAttemptPayload(
                    attempt: number, write: attempt.write?.description ?? attempt.message,
                    errno: attempt.errno.map { Int($0.rawValue) }, message: attempt.message))
        case .finished:
            return EventDraft(
                type: .jobFinished, gpu: gpu, job: job.id,
                payload: JobFinishedPayload(state: job.state.rawValue, error: job.failure?.detail))
        }
    }
}
