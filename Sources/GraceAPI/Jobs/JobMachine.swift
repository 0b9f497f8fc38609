import Passthrough

/// The life of one job as one value: where it is (`state`), the job as the API shows it, and the
/// restores it owes. One function per event; each returns what the engine must do, so every race
/// (a cancel arriving while the job starts, twice, or after it ended) has exactly one answer, and
/// tests can drive a job event by event without threads, the kernel or SQLite.
///
/// The engine holds every live job's machine under one lock and carries out the actions after
/// releasing it, in order.
struct JobMachine: Sendable {
    enum State: Sendable, Equatable {
        /// Accepted, its devices claimed; waiting for a worker.
        case queued
        /// A worker runs its stages; `cancelRequested` once a cancel has arrived.
        case running(cancelRequested: String?)
        /// The run ended with this outcome; the devices are being read again, so that a client that
        /// sees the job finished also sees the GPUs as they now are.
        case concluding(Outcome)
        /// Terminal, as shown; its record may still be on its way to the disk.
        case finished
    }

    struct Outcome: Sendable, Equatable {
        var state: JobState
        var failure: JobFailure?
    }

    /// What a transition announces (to the event stream and the other observers).
    enum Transition: Sendable, Equatable {
        case queued
        case started
        case phase(String)
        case attempt(Job.Attempt)
        case finished
    }

    enum Action: Sendable, Equatable {
        /// Run the job's stages (on the worker that asked).
        case run
        /// Write the job as it now is before going on: a transition is recorded before the kernel
        /// write it announces.
        case persist
        case publish(Transition)
        /// Wake the job's polls and backoff sleeps.
        case signalCancellation(String)
        /// The job ended without running (cancelled in the queue): free its devices and store it, off
        /// the caller's thread.
        case concludeElsewhere
        /// Wake the clients waiting for this job (`?wait=`).
        case notifyWaiters
    }

    private(set) var state: State = .queued
    private(set) var job: Job
    /// Bumped on every change, so the recorder never writes an older version over a newer one.
    private(set) var revision = 0
    private(set) var restores: [SysfsWrite] = []

    init(job: Job) {
        self.job = job
    }

    var isTerminal: Bool { state == .finished }

    var cancelReason: String? {
        if case .running(let reason) = state { return reason }
        return nil
    }

    /// The job was accepted and stored.
    mutating func submitted() -> [Action] {
        [.publish(.queued)]
    }

    /// A worker took the job from the queue.
    mutating func started() -> [Action] {
        guard state == .queued else { return [] }
        state = .running(cancelRequested: nil)
        change { $0.state = .running }
        return [.run, .persist, .publish(.started)]
    }

    mutating func entered(_ phase: JobPhaseName, atMs now: Int64) -> [Action] {
        guard case .running = state else { return [] }
        change { $0.enter(phase, atMs: now) }
        return [.persist, .publish(.phase(phase.rawValue))]
    }

    mutating func chose(method: String) -> [Action] {
        change { $0.methodUsed = method }
        return []
    }

    mutating func noted(_ text: String) -> [Action] {
        change { $0.note(text) }
        return []
    }

    /// The readiness probe's outcome. No kernel write depends on it, so it is recorded with the next
    /// transition rather than on its own: the client waiting for the outcome does not wait on the disk.
    mutating func observed(_ readiness: Job.Readiness, notes: [String]) -> [Action] {
        change {
            $0.details.readiness = readiness
            $0.details.notes += notes
        }
        return []
    }

    mutating func change(details: (inout Job.Details) -> Void) -> [Action] {
        change { details(&$0.details) }
        return [.persist]
    }

    /// A kernel write the job records is about to be issued: recorded first, so a daemon that dies in
    /// it leaves a record saying the write was issued.
    mutating func writeIssued(_ write: SysfsWrite, atMs now: Int64) -> [Action] {
        let attempt = Job.Attempt(atMs: now, errno: nil, message: "\(write): issued", write: write)
        change { $0.attempts.append(attempt) }
        return [.persist, .publish(.attempt(attempt))]
    }

    /// The kernel returned from the last issued write (nil error: it succeeded).
    mutating func writeReturned(_ write: SysfsWrite, error: KernelError?, atMs now: Int64) -> [Action] {
        guard let index = job.attempts.indices.last, job.attempts[index].returnedAtMs == nil else {
            return []
        }
        change { $0.attempts[index].complete(write, error: error, atMs: now) }
        return [.persist, .publish(.attempt(job.attempts[index]))]
    }

    /// A write the job gave up on at its deadline returned after all, in whatever state the job is now.
    mutating func lateWriteReturned(_ write: SysfsWrite, error: KernelError?, atMs now: Int64) -> [Action] {
        guard let index = Job.stuckAttempt(of: write, in: job) else { return [] }
        change { $0.attempts[index].complete(write, error: error, atMs: now, late: true) }
        return [.persist, .publish(.attempt(job.attempts[index]))]
    }

    /// The kernel had not returned at the deadline.
    mutating func writeStuck(_ write: SysfsWrite, recorded: Bool) -> [Action] {
        if recorded, let index = job.attempts.indices.last, job.attempts[index].returnedAtMs == nil {
            change { $0.attempts[index].message = "\(write): still blocked in the kernel at the deadline" }
        }
        // A write to the device would hang as well: nothing more is owed to it.
        restores.removeAll()
        change { $0.details.owedRestores = nil }
        return ended(.timedOut, .wedged(write)) + [.persist]
    }

    /// The job changed something it must put back, recorded before the change is made.
    mutating func owes(_ writes: [SysfsWrite]) -> [Action] {
        guard !writes.isEmpty else { return [] }
        restores += writes
        let owed = restores.compactMap(OwedRestore.init)
        change { $0.details.owedRestores = owed.isEmpty ? nil : owed }
        return [.persist]
    }

    /// How the run ended; the first outcome wins. The job shows it once `concluded()`.
    mutating func ended(_ outcome: JobState, _ failure: JobFailure?) -> [Action] {
        guard case .running = state else { return [] }
        state = .concluding(Outcome(state: outcome, failure: failure))
        return []
    }

    /// The run returned without naming an outcome (it should not): it failed.
    mutating func ranOut() -> [Action] {
        guard case .running = state else { return [] }
        return ended(.failed, nil)
    }

    /// The devices have been read again: the outcome becomes the job's state. The clients waiting for
    /// it hear first; the event log's write (a synced SQLite insert) comes after, off their path.
    mutating func concluded(atMs now: Int64) -> [Action] {
        guard case .concluding(let outcome) = state else { return [] }
        state = .finished
        change { $0.finish(outcome.state, failure: outcome.failure, atMs: now) }
        return [.notifyWaiters, .publish(.finished)]
    }

    /// The restores were carried out (with notes for those that failed): nothing is owed any more.
    mutating func restored(notes: [String]) -> [Action] {
        restores.removeAll()
        change {
            $0.details.notes += notes
            $0.details.owedRestores = nil
        }
        return [.persist]
    }

    /// An escalating reset starts a rung: recorded before the rung's first write.
    mutating func rungStarted(
        _ step: EscalationLadder.Step, method: String, atMs now: Int64, deadlineMs: Int64
    ) -> [Action] {
        guard case .running = state else { return [] }
        let rung = Job.Rung(
            step: step.rawValue, method: method, startedAtMs: now, endedAtMs: nil, outcome: nil, detail: nil,
            deadlineMs: deadlineMs)
        change {
            $0.details.rungs = ($0.details.rungs ?? []) + [rung]
            $0.methodUsed = method
        }
        return [.persist]
    }

    /// The rung that runs ended: `recovered` ends the climb, anything else lets the next rung run.
    mutating func rungEnded(outcome: String, detail: String?, atMs now: Int64) -> [Action] {
        guard let index = job.details.rungs?.indices.last, job.details.rungs?[index].endedAtMs == nil else {
            return []
        }
        change {
            $0.details.rungs?[index].endedAtMs = now
            $0.details.rungs?[index].outcome = outcome
            $0.details.rungs?[index].detail = detail
        }
        return [.persist]
    }

    mutating func cancelRequested(_ reason: String, atMs now: Int64) -> [Action] {
        switch state {
        case .queued:
            state = .finished
            change { $0.finish(.cancelled, failure: .cancelled(reason), atMs: now) }
            return [.signalCancellation(reason), .notifyWaiters, .publish(.finished), .concludeElsewhere]
        case .running(cancelRequested: nil):
            state = .running(cancelRequested: reason)
            return [.signalCancellation(reason)]
        case .running, .concluding, .finished:
            return []
        }
    }

    private mutating func change(_ body: (inout Job) -> Void) {
        body(&job)
        revision += 1
    }
}
