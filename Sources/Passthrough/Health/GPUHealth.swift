/// `health` of a GPU as the API shows it: a status, when the watch last looked, and each problem it
/// sees with the time it was first seen. Times are RFC 3339 text, made by the caller (Passthrough
/// keeps milliseconds and leaves formatting to the service).
public struct GPUHealth: Codable, Hashable, Sendable {
    public struct Finding: Codable, Hashable, Sendable {
        public var reason: HealthReason
        public var detail: String
        /// When the watch first saw this reason, in this streak.
        public var since: String

        public init(reason: HealthReason, detail: String, since: String) {
            self.reason = reason
            self.detail = detail
            self.since = since
        }
    }

    public var status: HealthStatus
    /// Null before the first check, and while a job has held the GPU since graced started.
    @NullEncodable public var checkedAt: String?
    public var reasons: [Finding]

    public init(status: HealthStatus, checkedAt: String?, reasons: [Finding]) {
        self.status = status
        self.checkedAt = checkedAt
        self.reasons = reasons
    }

    /// Not looked at yet.
    public static let unknown = GPUHealth(status: .unknown, checkedAt: nil, reasons: [])
}
