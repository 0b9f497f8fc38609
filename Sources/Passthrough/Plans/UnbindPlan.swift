/// What returning a device from VFIO would do: where it goes (`original`, a named driver, or
/// nowhere), the exact writes, and any refusal.
public struct UnbindPlan: Hashable, Sendable, Encodable {
    /// Where the request sends the device.
    public enum Destination: Hashable, Sendable {
        /// The driver recorded before GraceAPI bound the device.
        case original
        /// Leave it unbound, override cleared.
        case none
        case driver(String)

        /// `original`, `none`, or any other text as a driver name.
        public init(_ text: String) {
            switch text {
            case "original": self = .original
            case "none": self = .none
            default: self = .driver(text)
            }
        }

        public var name: String {
            switch self {
            case .original: "original"
            case .none: "none"
            case .driver(let name): name
            }
        }
    }

    public var target: BDF
    public var requested: Destination
    /// The driver bound when the plan was made.
    public var currentDriver: String?
    /// The driver the device will be on afterwards; nil for `none` (left unbound) or when refused
    /// before one was known. The engine verifies the `driver` link against it.
    public var expectedDriver: String?
    public var reason: String
    /// The writes, in order; empty when refused or when the device is already where it should be.
    public var writes: [SysfsWrite]
    public var refusal: Refusal?

    public init(
        target: BDF, requested: Destination, currentDriver: String?, expectedDriver: String?, reason: String,
        writes: [SysfsWrite], refusal: Refusal?
    ) {
        self.target = target
        self.requested = requested
        self.currentDriver = currentDriver
        self.expectedDriver = expectedDriver
        self.reason = reason
        self.writes = writes
        self.refusal = refusal
    }

    public var isAlreadyDone: Bool { refusal == nil && writes.isEmpty }

    private enum CodingKeys: String, CodingKey {
        case target, requested, currentDriver, expectedDriver, reason, writes, refusal
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(target.description, forKey: .target)
        try container.encode(requested.name, forKey: .requested)
        try container.encodeIfPresent(currentDriver, forKey: .currentDriver)
        try container.encodeIfPresent(expectedDriver, forKey: .expectedDriver)
        try container.encode(reason, forKey: .reason)
        try container.encode(writes.map(PlannedWrite.init), forKey: .writes)
        try container.encodeIfPresent(refusal, forKey: .refusal)
    }
}
