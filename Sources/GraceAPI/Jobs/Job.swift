import GraceHTTP
import Passthrough
import SystemPackage

/// What a job does.
enum JobKind: String, Codable, Sendable {
    case reset
    case bind
    case unbind
    /// Puts a function back on its desired driver (`BindingReconciler`); runs as a bind or unbind.
    case reconcile
}

/// Where a job is in its life; the terminal states are final.
enum JobState: String, Codable, Sendable, CaseIterable {
    case queued
    case running
    case succeeded
    case failed
    case timedOut = "timed_out"
    case cancelled
    /// The daemon died while the job was queued or running (found at startup).
    case interrupted

    var isTerminal: Bool { self != .queued && self != .running }
}

/// The steps of a job, recorded with their times.
enum JobPhaseName: String, Codable, Sendable {
    case queued
    case quiescing
    case resetting
    case binding
    case unbinding
    case waitingReady = "waiting_ready"
    case verifying
    /// An escalating reset removes the function and rescans the bus.
    case rescanning
    case succeeded
    case failed
    case timedOut = "timed_out"
    case cancelled
    case interrupted
}

/// One job, as the engine keeps it in memory while it lives and as the store records it.
struct Job: Sendable {
    struct Phase: Codable, Sendable, Equatable {
        var name: String
        var startedAtMs: Int64
        var endedAtMs: Int64?
    }

    /// One kernel write, recorded before it is issued and completed when it returns: an attempt
    /// without `returnedAtMs` was still in the kernel when the record was written.
    struct Attempt: Sendable, Equatable {
        var atMs: Int64
        var returnedAtMs: Int64? = nil
        var errno: Errno?
        var message: String
        /// The write itself, for the event stream; nil for attempts read back from the store (their
        /// message names it for people).
        var write: SysfsWrite? = nil

        /// The kernel returned from the attempt's write (nil error: it succeeded).
        mutating func complete(_ write: SysfsWrite, error: KernelError?, atMs now: Int64, late: Bool = false)
        {
            returnedAtMs = now
            self.write = write
            errno = error?.errno
            let outcome = error.map(\.message) ?? "ok"
            message = "\(write): \(outcome)" + (late ? " (returned after the deadline)" : "")
        }
    }

    /// The attempt of `job` still waiting for the kernel (a write the job gave up on), if any.
    static func stuckAttempt(of write: SysfsWrite, in job: Job) -> Int? {
        job.attempts.lastIndex { $0.returnedAtMs == nil }
    }

    struct Readiness: Codable, Sendable, Equatable {
        var probe: String
        var result: String
        var waitedMs: Int
        var polls: Int
    }

    /// One rung of an escalating reset: what it tried, how it ended and when.
    struct Rung: Codable, Sendable, Equatable {
        /// `function_reset`, `bus_reset`, `remove_rescan`.
        var step: String
        /// The kernel method (`flr`, `bus`) or `remove+rescan`.
        var method: String
        var startedAtMs: Int64
        var endedAtMs: Int64?
        /// Nil while it runs; `recovered`, `not_ready`, `layout_changed`, `failed`, `skipped`.
        var outcome: String?
        var detail: String?
        /// The rung's share of the job's deadline.
        var deadlineMs: Int64
    }

    /// What the job stores beside its columns (result_json).
    struct Details: Codable, Sendable, Equatable {
        var readiness: Readiness?
        var affected: [String]
        var notes: [String]
        var deadlineMs: Int64
        /// For a bind: the driver the function had before, so that an unbind can give it back.
        var originalDriver: String?
        /// The identity that submitted the job (nil for jobs stored before identities existed).
        var requestedBy: String?
        /// Writes that put back what the job changed and that it has not carried out yet; a job found
        /// interrupted at startup carries them out then.
        var owedRestores: [OwedRestore]?
        /// An escalating reset's rungs, in the order tried; nil for every other job.
        var rungs: [Rung]? = nil
    }

    var id: String
    var kind: JobKind
    var gpu: BDF
    var deviceId: Int64
    var state: JobState
    var phases: [Phase]
    var methodRequested: String
    var methodUsed: String?
    var attempts: [Attempt] = []
    var details: Details
    var failure: JobFailure?
    var createdAtMs: Int64
    var finishedAtMs: Int64?
    var idempotencyKey: String?
    var requestJSON: String

    var phase: String { phases.last?.name ?? JobPhaseName.queued.rawValue }

    mutating func enter(_ phase: JobPhaseName, atMs now: Int64 = Timestamp.nowMs()) {
        if phases.indices.last.map({ phases[$0].endedAtMs == nil }) == true {
            phases[phases.count - 1].endedAtMs = now
        }
        phases.append(Phase(name: phase.rawValue, startedAtMs: now))
    }

    /// Ends the job in a terminal state: the last phase closes and a phase named after the outcome
    /// marks when it ended.
    mutating func finish(_ state: JobState, failure: JobFailure? = nil, atMs now: Int64 = Timestamp.nowMs()) {
        precondition(state.isTerminal)
        self.state = state
        self.failure = failure
        enter(JobPhaseName(rawValue: state.rawValue) ?? .failed, atMs: now)
        phases[phases.count - 1].endedAtMs = now
        finishedAtMs = now
    }

    mutating func note(_ text: String) {
        details.notes.append(text)
    }
}
