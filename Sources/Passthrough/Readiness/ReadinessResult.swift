/// How a readiness wait ended.
public enum ReadinessResult: Hashable, Sendable, CustomStringConvertible {
    case ready
    /// The deadline passed; the reason of the last "not ready" observation says what was missing.
    case timedOut(lastReason: String)
    /// The device stopped answering for good (ENODEV).
    case gone(String)
    /// The check gave a final verdict of its own (ETIME for CXL).
    case failed(String)
    /// The token was cancelled; its reason.
    case cancelled(String)

    /// "ready", "timed_out", "gone", "failed", "cancelled": a stable name for JSON and the database,
    /// spelled like the API's job states.
    public var kind: String {
        switch self {
        case .ready: "ready"
        case .timedOut: "timed_out"
        case .gone: "gone"
        case .failed: "failed"
        case .cancelled: "cancelled"
        }
    }

    /// The reason, nil for `.ready`.
    public var reason: String? {
        switch self {
        case .ready: nil
        case .timedOut(let why), .gone(let why), .failed(let why), .cancelled(let why): why
        }
    }

    public init?(kind: String, reason: String?) {
        let why = reason ?? ""
        switch kind {
        case "ready": self = .ready
        case "timed_out": self = .timedOut(lastReason: why)
        case "gone": self = .gone(why)
        case "failed": self = .failed(why)
        case "cancelled": self = .cancelled(why)
        default: return nil
        }
    }

    public var description: String { reason.map { "\(kind): \($0)" } ?? kind }
}

/// `{"kind": "timed_out", "reason": "..."}`: flat, so a client can switch on `kind`.
extension ReadinessResult: Codable {
    private enum CodingKeys: String, CodingKey {
        case kind
        case reason
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(String.self, forKey: .kind)
        let reason = try container.decodeIfPresent(String.self, forKey: .reason)
        guard let result = ReadinessResult(kind: kind, reason: reason) else {
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container, debugDescription: "unknown readiness result \(kind)")
        }
        self = result
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encodeIfPresent(reason, forKey: .reason)
    }
}
