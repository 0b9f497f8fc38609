import GraceHTTP
import Logging
import Store

/// Writes jobs to the store as they change, and keeps writing until the store takes them.
///
/// The engine's memory is the truth a client reads; the record follows it. When a write fails (a
/// full disk, a read-only filesystem) the newest version of the job is kept here and written again
/// every `retryInterval` until it succeeds; meanwhile the store is reported degraded, new jobs are
/// refused (nothing could record them), and reads of the job come from here. A version is never
/// written over a newer one: each carries the revision of the job's machine.
final class JobRecorder: Sendable {
    struct Health: Sendable, Equatable {
        /// Jobs whose newest version is not on disk yet.
        var pendingJobs: Int
        /// The last failed write, while any is pending.
        var lastError: String?
    }

    private struct Pending {
        var revision: Int
        var job: Job
    }

    private struct State {
        var pending: [String: Pending] = [:]
        /// The revision on disk, per live job (forgotten once the job is done and written).
        var written: [String: Int] = [:]
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

    /// The job has been inserted at `revision` (the engine does that itself, to refuse the request
    /// when it fails).
    func inserted(_ id: String, revision: Int) {
        state.withLock { $0.written[id] = revision }
    }

    /// Records `job` at `revision` now if the store takes it, else keeps it and retries. Returns
    /// whether this version (or a newer one) is on disk.
    @discardableResult
    func save(_ job: Job, revision: Int) -> Bool {
        let isNewer = state.withLock { state -> Bool in
            let known = max(state.written[job.id] ?? -1, state.pending[job.id]?.revision ?? -1)
            guard revision > known else { return false }
            state.pending[job.id] = Pending(revision: revision, job: job)
            return true
        }
        if isNewer { flush() }
        return state.withLock { ($0.written[job.id] ?? -1) >= revision }
    }

    /// The job is done and will not change again: forget its revision once it is on disk.
    func forget(_ id: String) {
        state.withLock { state in
            if state.pending[id] == nil { state.written[id] = nil }
        }
    }

    /// Writes every pending job, oldest revision first; stops at the first failure and leaves the rest
    /// to the retry thread.
    func flush() {
        writing.withLock { _ in
            while let next = state.withLock({ $0.pending.min { $0.value.revision < $1.value.revision } }) {
                do {
                    try store.saveJob(next.value.job.record)
                } catch {
                    let text = "\(error)"
                    let first = state.withLock { state -> Bool in
                        defer { state.lastError = text }
                        return state.lastError == nil
                    }
                    if first { logger.error("could not record job \(next.key): \(text); retrying") }
                    startRetrying()
                    return
                }
                let caughtUp = state.withLock { state -> Bool in
                    state.written[next.key] = max(state.written[next.key] ?? -1, next.value.revision)
                    if state.pending[next.key]?.revision == next.value.revision {
                        state.pending[next.key] = nil
                    }
                    if state.pending.isEmpty, state.lastError != nil {
                        state.lastError = nil
                        return true
                    }
                    return false
                }
                if caughtUp { logger.notice("the job records caught up with the store") }
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
