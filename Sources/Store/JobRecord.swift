/// A persisted job, mirroring the `jobs` row plus its phases and attempts.
///
/// State, phase and method are free-form strings here; their vocabulary belongs to the jobs engine.
public struct JobRecord: Hashable, Sendable {
    /// The states a job is in while some daemon is still responsible for it.
    public static let unfinishedStates = ["queued", "running"]
    /// The state given to unfinished jobs found at startup: their daemon died mid-job.
    public static let interruptedState = "interrupted"

    /// A UUID string chosen by the caller.
    public var id: String
    public var kind: String
    public var deviceId: Int64
    public var bdf: String
    public var state: String
    public var phase: String
    public var methodRequested: String
    /// Nil until the engine has picked a method.
    public var methodUsed: String?
    public var deadlineMs: Int64
    public var idempotencyKey: String?
    public var requestJSON: String
    public var resultJSON: String?
    public var errorJSON: String?
    public var createdAtMs: Int64
    public var finishedAtMs: Int64?
    public var phases: [JobPhase]
    public var attempts: [JobAttempt]

    public init(
        id: String, kind: String, deviceId: Int64, bdf: String, state: String, phase: String,
        methodRequested: String, methodUsed: String? = nil, deadlineMs: Int64, idempotencyKey: String? = nil,
        requestJSON: String, resultJSON: String? = nil, errorJSON: String? = nil, createdAtMs: Int64,
        finishedAtMs: Int64? = nil, phases: [JobPhase] = [], attempts: [JobAttempt] = []
    ) {
        self.id = id
        self.kind = kind
        self.deviceId = deviceId
        self.bdf = bdf
        self.state = state
        self.phase = phase
        self.methodRequested = methodRequested
        self.methodUsed = methodUsed
        self.deadlineMs = deadlineMs
        self.idempotencyKey = idempotencyKey
        self.requestJSON = requestJSON
        self.resultJSON = resultJSON
        self.errorJSON = errorJSON
        self.createdAtMs = createdAtMs
        self.finishedAtMs = finishedAtMs
        self.phases = phases
        self.attempts = attempts
    }
}
