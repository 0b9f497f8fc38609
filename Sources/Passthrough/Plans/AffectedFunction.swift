/// One function a plan touches, with its driver and whoever holds it.
public struct AffectedFunction: Hashable, Sendable, Encodable {
    public enum Role: String, Hashable, Sendable, Codable {
        /// The device the request names.
        case target
        /// Another function swept along: behind the same bridge (bus reset) or in the same IOMMU group.
        case sibling
    }

    public var bdf: BDF
    public var driver: String?
    public var role: Role
    /// Processes with the function's VFIO group open.
    public var holders: [Holder]
    /// Whether the bound driver itself is in the way (a host driver that would lose its device).
    public var heldByDriver: Bool

    public init(bdf: BDF, driver: String?, role: Role, holders: [Holder] = [], heldByDriver: Bool = false) {
        self.bdf = bdf
        self.driver = driver
        self.role = role
        self.holders = holders
        self.heldByDriver = heldByDriver && driver != nil
    }

    /// Who is in the way, in words (`driver nvidia, pid 4242 (qemu-system-aar)`); nil when free.
    public var heldBy: String? {
        var reasons: [String] = []
        if heldByDriver, let driver { reasons.append("driver \(driver)") }
        reasons += holders.map(\.description)
        return reasons.isEmpty ? nil : reasons.joined(separator: ", ")
    }

    public var isHeld: Bool { heldByDriver || !holders.isEmpty }

    private enum CodingKeys: String, CodingKey {
        case bdf, driver, role, holders, heldBy
    }

    /// `driver` and `heldBy` are null rather than left out: the contract lists every member.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(bdf.description, forKey: .bdf)
        try container.encode(driver, forKey: .driver)
        try container.encode(role, forKey: .role)
        try container.encode(holders, forKey: .holders)
        try container.encode(heldBy, forKey: .heldBy)
    }
}
