import Passthrough

/// What a job does.
enum JobKind: String, Codable, Sendable {
    case reset
    case bind
    case unbind
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
    case succeeded
    case failed
    case timedOut = "timed_out"
    case cancelled
    case interrupted
}

/// One job, as the engine keeps it in memory while it lives and as the API shows it.
struct Job: Sendable {
    struct Phase: Codable, Sendable, Equatable {
        var name: String
        var startedAtMs: Int64
        var endedAtMs: Int64?
    }

    struct Attempt: Codable, Sendable, Equatable {
        var atMs: Int64
        var errno: Int32?
        var message: String
    }

    struct Readiness: Codable, Sendable, Equatable {
        var probe: String
        var result: String
        var waitedMs: Int
        var polls: Int
    }

    /// A job's failure, in the API's problem shape; `errno` when the kernel said no, else null.
    struct Failure: Codable, Sendable, Equatable {
        var type: String
        var title: String
        var status: Int
        var detail: String
        var resolution: String
        @NullEncodable var errno: Int32?
        @NullEncodable var errnoName: String?
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
    var failure: Failure?
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
    mutating func finish(_ state: JobState, failure: Failure? = nil, atMs now: Int64 = Timestamp.nowMs()) {
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

/// `GET /jobs/{id}`: the job in the API's words (decodable too, for clients and tests).
///
/// What has not happened yet (a phase still running, a job not finished, a probe not run) is null,
/// never left out: the contract lists every member, so a client reads one shape in every state.
struct JobView: Codable {
    struct Phase: Codable {
        var name: String
        var startedAt: String
        @NullEncodable var endedAt: String?
    }
    struct Method: Codable {
        var requested: String
        /// Null until the job has chosen the method (a reset's plan, a bind's driver).
        @NullEncodable var used: String?
    }
    struct Attempt: Codable {
        var at: String
        /// Null when the write succeeded.
        @NullEncodable var errno: Int32?
        @NullEncodable var errnoName: String?
        var message: String
    }

    var id: String
    var kind: String
    var gpu: String
    var state: String
    var phase: String
    var phases: [Phase]
    var method: Method
    var deadline: String
    var attempts: [Attempt]
    @NullEncodable var readiness: Job.Readiness?
    var affected: [String]
    var notes: [String]
    @NullEncodable var error: Job.Failure?
    var createdAt: String
    @NullEncodable var finishedAt: String?
    @NullEncodable var requestedBy: String?

    init(_ job: Job) {
        id = job.id
        kind = job.kind.rawValue
        gpu = job.gpu.description
        requestedBy = job.details.requestedBy
        state = job.state.rawValue
        phase = job.phase
        phases = job.phases.map {
            Phase(
                name: $0.name, startedAt: Timestamp.rfc3339(ms: $0.startedAtMs),
                endedAt: $0.endedAtMs.map(Timestamp.rfc3339))
        }
        method = Method(requested: job.methodRequested, used: job.methodUsed)
        deadline = Timestamp.rfc3339(ms: job.details.deadlineMs)
        attempts = job.attempts.map {
            Attempt(
                at: Timestamp.rfc3339(ms: $0.atMs), errno: $0.errno,
                errnoName: $0.errno.map { KernelError(code: $0, path: "").name }, message: $0.message)
        }
        readiness = job.details.readiness
        affected = job.details.affected
        notes = job.details.notes
        error = job.failure
        createdAt = Timestamp.rfc3339(ms: job.createdAtMs)
        finishedAt = job.finishedAtMs.map(Timestamp.rfc3339)
    }
}
