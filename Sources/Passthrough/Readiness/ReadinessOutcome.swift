/// Everything a readiness wait found out, for the job record.
public struct ReadinessOutcome: Hashable, Sendable, Codable {
    public var result: ReadinessResult
    /// From the start of the wait to the outcome, on the monotonic clock.
    public var waitedMs: Int
    /// How many observations were made.
    public var polls: Int
    /// The probe's notes (fallbacks taken, phases begun).
    public var notes: [String]
    /// The last observation, as text ("not ready: link is training ..."); empty if none was made.
    public var lastObservation: String

    public init(result: ReadinessResult, waitedMs: Int, polls: Int, notes: [String], lastObservation: String)
    {
        self.result = result
        self.waitedMs = waitedMs
        self.polls = polls
        self.notes = notes
        self.lastObservation = lastObservation
    }

    public var isReady: Bool { result == .ready }
}
