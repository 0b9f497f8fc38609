/// The parts of a job a client follows (a subset of `GET /jobs/{id}`).
public struct JobSummary: Decodable, Sendable {
    public struct Phase: Decodable, Sendable {
        public var name: String
        public var startedAt: String
    }
    public struct Method: Decodable, Sendable {
        public var requested: String
        public var used: String?
    }
    public struct Readiness: Decodable, Sendable {
        public var probe: String
        public var result: String
        public var waitedMs: Int
        public var polls: Int
    }

    public var id: String
    public var kind: String
    public var gpu: String
    public var state: String
    public var phase: String
    public var phases: [Phase]
    public var method: Method
    public var readiness: Readiness?
    public var error: ProblemSummary?
    public var createdAt: String

    public static let terminalStates: Set<String> = [
        "succeeded", "failed", "timed_out", "cancelled", "interrupted",
    ]
    public var isFinished: Bool { Self.terminalStates.contains(state) }
}

/// An RFC 9457 problem as the service sends it.
public struct ProblemSummary: Decodable, Sendable {
    public var type: String?
    public var title: String
    public var status: Int?
    public var detail: String
    public var resolution: String
    public var errnoName: String?
    /// On a 403: the role the operation needs ("viewer", "operator" or "admin"), and the caller's.
    public var requiredRole: String?
    public var role: String?
}

/// One GPU as `GET /gpus` lists it (the columns a listing shows).
public struct GPUSummary: Decodable, Sendable {
    public var bdf: String
    public var vendorId: String
    public var deviceId: String
    public var deviceName: String
    public var driver: String?
    public var readinessProbe: String
    public var state: String
}
