import GraceHTTP
import Passthrough

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
        /// Null while the write is in the kernel, or when the daemon died before it returned.
        @NullEncodable var returnedAt: String?
        /// Null when the write succeeded (or has not returned).
        @NullEncodable var errno: Int32?
        @NullEncodable var errnoName: String?
        var message: String
    }

    /// One rung of an escalating reset.
    struct Rung: Codable {
        var step: String
        var method: String
        var startedAt: String
        @NullEncodable var endedAt: String?
        /// Null while the rung runs.
        @NullEncodable var outcome: String?
        @NullEncodable var detail: String?
        var deadline: String
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
    /// An escalating reset's rungs in the order tried; null for every other job.
    @NullEncodable var rungs: [Rung]?
    @NullEncodable var error: Failure?
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
                at: Timestamp.rfc3339(ms: $0.atMs), returnedAt: $0.returnedAtMs.map(Timestamp.rfc3339),
                errno: $0.errno?.rawValue, errnoName: $0.errno?.name, message: $0.message)
        }
        readiness = job.details.readiness
        affected = job.details.affected
        notes = job.details.notes
        rungs = job.details.rungs?.map {
            Rung(
                step: $0.step, method: $0.method, startedAt: Timestamp.rfc3339(ms: $0.startedAtMs),
                endedAt: $0.endedAtMs.map(Timestamp.rfc3339), outcome: $0.outcome, detail: $0.detail,
                deadline: Timestamp.rfc3339(ms: $0.deadlineMs))
        }
        error = job.failure.map(JobProblems.view)
        createdAt = Timestamp.rfc3339(ms: job.createdAtMs)
        finishedAt = job.finishedAtMs.map(Timestamp.rfc3339)
    }
}
