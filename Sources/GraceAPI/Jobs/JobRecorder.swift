import GraceHTTP
import Logging
import Store

/// Writes jobs to the store as they change, and keeps writing until the store takes them.
///
/// The engine's memory is the truth a client reads; the record follows it. When a write fails (a
/// full disk, a read-only filesystem) the newest version of the job is kept here and written again
/// every `retryInterval` until it succeeds; meanwhile the store is reported degraded, new jobs are
/// refused (nothing could record them), and reads of the job come from here. A version is never
/// written over a newer one: each carries the revision of the job's machine. A write is what changed
/// since the version on disk (new phases and attempts appended, changed ones rewritten in place), in
/// the transaction that also stores the events the change caused (see `Commit`).
final class JobRecorder: Sendable {
    /// Runs a job's write (nil: nothing new to write) in one transaction with the events it caused;
    /// returns whether the write was committed. The event hub's `commit`.
    typealias Commit = (_ write: ((Connection) throws -> Void)?) -> Bool

    struct Health: Sendable, Equatable {
        /// Jobs whose newest version is not on disk yet.
        var pendingJobs: Int
        /// The last failed write, while any is pending.
        var lastError: String?
    }

    private struct Pending {
        var revision: Int
        var job: Job
        /// The job's outcome goes into the audit trail with this write.
        var audit: Bool
    }

    private struct State {
        var pending: [String: Pending] = [:]
        /// The revision on disk, per live job (forgotten once the job is done and written).
        var written: [String: Int] = [:]
        /// The version on disk, per live job: what the next write is compared with.
        var onDisk: [String: JobRecord] = [:]
        var lastError: String?
        var retrying = false
        var stopped = false
    }

    private let store: GraceStore
    private let logger: Logger
    private let retryInterval: Duration
    private let state = GuardedValue(State())
    /// Held while writing, so that versions reach the disk in the order they were taken.
    private let writing = GuardedValue(())

    init(store: GraceStore, logger: Logger, retryInterval: Duration = .seconds(1)) {
        self.store = store
        self.logger = logger
        self.retryInterval = retryInterval
    }

    /// Degraded from a failed write until every pending record is written (a record merely on its way
    /// to the disk, as every record is for a moment, is no degradation).
    var health: Health {
        state.withLock { state in
            guard let error = state.lastError else { return Health(pendingJobs: 0, lastError: nil) }
            return Health(pendingJobs: state.pending.count, lastError: error)
        }
    }

    var isDegraded: Bool { state.withLock { $0.lastError != nil } }

    /// A job whose newest version has not reached the disk yet.
    func pendingJob(_ id: String) -> Job? {
        state.withLock { $0.pending[id]?.job }
    }

    var pendingJobs: [Job] {
        state.withLock { $0.pending.values.map(\.job) }
    }

    /// The job has been inserted at `revision` as `record` (the engine does that itself, to refuse
    /// the request when it fails).
    func inserted(_ id: String, revision: Int, record: JobRecord) {
        state.withLock { state in
            state.written[id] = revision
            state.onDisk[id] = record
        }
    }

    /// Records `job` at `revision` now if the store takes it, else keeps it and retries; with `audit`,
    /// its outcome is appended to the audit trail in the same transaction. `commit` runs the write
    /// with the events it caused (without it: a transaction of its own), and is called even when
    /// this version is already on disk, for the events. Returns whether this version (or a newer
    /// one) is on disk.
    @discardableResult
    func save(_ job: Job, revision: Int, audit: Bool = false, through commit: Commit? = nil) -> Bool {
        writing.withLock { _ in
            let known = state.withLock { state -> (previous: JobRecord?, audit: Bool)? in
                let known = max(state.written[job.id] ?? -1, state.pending[job.id]?.revision ?? -1)
                guard revision > known else { return nil }
                // An outcome still owed to the audit trail goes with whichever version is written.
                return (state.onDisk[job.id], audit || state.pending[job.id]?.audit == true)
            }
            guard let (previous, audit) = known else {
                _ = commit?(nil)
                return
            }
            let record = job.record
            let write = Self.write(record, of: job, since: previous, audit: audit)
            var failure: (any Error)?
            if let commit {
                if !commit(write) { failure = RecordNotCommitted() }
            } else {
                do { try store.database.transaction(write) } catch { failure = error }
            }
            if let failure {
                state.withLock { state in
                    state.pending[job.id] = Pending(revision: revision, job: job, audit: audit)
                }
                failed(job.id, failure)
            } else {
                wrote(job.id, revision: revision, record: record)
            }
        }
        return state.withLock { ($0.written[job.id] ?? -1) >= revision }
    }

    /// The event hub stored the events without the job's write (it failed; the hub says no more).
    private struct RecordNotCommitted: Error, CustomStringConvertible {
        var description: String { "the job's write was rolled back (see the event log's error)" }
    }

    /// The job is done and will not change again: forget it once it is on disk.
    func forget(_ id: String) {
        state.withLock { state in
            if state.pending[id] == nil {
                state.written[id] = nil
                state.onDisk[id] = nil
            }
        }
    }

    /// Writes every pending job, oldest revision first; stops at the first failure and leaves the rest
    /// to the retry thread.
    func flush() {
        writing.withLock { _ in
            while let next = state.withLock({ $0.pending.min { $0.value.revision < $1.value.revision } }) {
                let previous = state.withLock { $0.onDisk[next.key] }
                let record = next.value.job.record
                do {
                    try store.database.transaction(
                        Self.write(record, of: next.value.job, since: previous, audit: next.value.audit))
                } catch {
                    failed(next.key, error)
                    return
                }
                wrote(next.key, revision: next.value.revision, record: record)
            }
        }
    }

    private func wrote(_ id: String, revision: Int, record: JobRecord) {
        let caughtUp = state.withLock { state -> Bool in
            if revision >= state.written[id] ?? -1 {
                state.written[id] = revision
                state.onDisk[id] = record
            }
            if let pending = state.pending[id], pending.revision <= revision {
                state.pending[id] = nil
            }
            if state.pending.isEmpty, state.lastError != nil {
                state.lastError = nil
                return true
            }
            return false
        }
        if caughtUp { logger.notice("the job records caught up with the store") }
    }

    private func failed(_ id: String, _ error: any Error) {
        let text = "\(error)"
        let first = state.withLock { state -> Bool in
            defer { state.lastError = text }
            return state.lastError == nil
        }
        if first { logger.error("could not record job \(id): \(text); retrying") }
        startRetrying()
    }

    /// What changed in `record` since `previous` (nil: unknown, so everything), and with `audit` the
    /// job's outcome as a line of the audit trail.
    private static func write(_ record: JobRecord, of job: Job, since previous: JobRecord?, audit: Bool)
        -> (Connection) throws -> Void
    {
        let outcome = audit ? JSON.encodeString(JobView(job)) : nil
        return { connection in
            try GraceStore.saveJob(connection, record, since: previous)
            if let outcome {
                try GraceStore.appendAudit(
                    connection, atMs: job.finishedAtMs ?? Timestamp.nowMs(), actor: "graced",
                    action: "job.\(job.kind.rawValue)", target: job.gpu.description, detailJSON: outcome)
            }
        }
    }

    /// Stops the retry thread (at shutdown, after a last flush).
    func stop() {
        state.withLock { $0.stopped = true }
    }

    private func startRetrying() {
        let start = state.withLock { state -> Bool in
            guard !state.retrying, !state.stopped else { return false }
            state.retrying = true
            return true
        }
        guard start else { return }
        startDedicatedThread { [self] in
            while true {
                let stop = state.wait(until: .now + retryInterval, for: { $0.stopped }) { state, stopped in
                    if stopped || state.pending.isEmpty {
                        state.retrying = false
                        return true
                    }
                    return false
                }
                if stop { return }
                flush()
            }
        }
    }
}
