/// What binding a device (and with `includeGroup`, the rest of its IOMMU group) to a VFIO driver would
/// do: the resolved driver, one step per function to move, the exact writes, and any refusal.
public struct BindPlan: Hashable, Sendable, Encodable {
    public var target: BDF
    /// What the request asked for: `auto`, `vfio-pci` or a driver name.
    public var requested: String
    /// The driver the target will be bound to.
    public var driver: String
    /// How `driver` was chosen (a modules.alias match, a fallback, the request).
    public var reason: String
    /// The target's driver when the plan was made, to be recorded for a later unbind to `original`.
    public var originalDriver: String?
    public var includeGroup: Bool
    /// Functions to move, target first, then group members in BDF order. Empty when already done.
    public var steps: [BindStep]
    /// Every function of the target's IOMMU group (the target included), with who holds it.
    public var groupMembers: [AffectedFunction]
    public var refusal: Refusal?

    public init(
        target: BDF, requested: String, driver: String, reason: String, originalDriver: String?,
        includeGroup: Bool, steps: [BindStep], groupMembers: [AffectedFunction], refusal: Refusal?
    ) {
        self.target = target
        self.requested = requested
        self.driver = driver
        self.reason = reason
        self.originalDriver = originalDriver
        self.includeGroup = includeGroup
        self.steps = steps
        self.groupMembers = groupMembers
        self.refusal = refusal
    }

    /// True when there is nothing to write: the target is on its driver and no member needs moving.
    public var isAlreadyDone: Bool { refusal == nil && steps.isEmpty }

    /// Every write, step after step; empty when refused. The engine runs them in order and then checks
    /// each function's `driver` link against `expectedDrivers`.
    public var writes: [SysfsWrite] {
        refusal == nil ? steps.flatMap(\.writes) : []
    }

    /// The driver each moved function must be on afterwards.
    public var expectedDrivers: [BDF: String] {
        Dictionary(steps.map { ($0.bdf, $0.toDriver) }, uniquingKeysWith: { first, _ in first })
    }

    public func expectedDriver(for bdf: BDF) -> String? { expectedDrivers[bdf] }

    /// Undoes a failed bind, latest step first, given what each function is bound to now
    /// (`HostTopology.driver`): the previous override back, the new driver released when it differs
    /// from the original, and a probe so the original driver takes the device again.
    public func revertWrites(currentDriver: (BDF) -> String?) -> [SysfsWrite] {
        steps.reversed().flatMap { $0.revertWrites(currentDriver: currentDriver($0.bdf)) }
    }

    /// `revertWrites` with the current drivers read from the tree.
    public func revertWrites(reading root: SysfsRoot) -> [SysfsWrite] {
        let topology = HostTopology(root: root)
        return revertWrites(currentDriver: topology.driver)
    }

    private enum CodingKeys: String, CodingKey {
        case target, requested, driver, reason, originalDriver, includeGroup, steps, groupMembers, refusal
        case writes
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(target.description, forKey: .target)
        try container.encode(requested, forKey: .requested)
        try container.encode(driver, forKey: .driver)
        try container.encode(reason, forKey: .reason)
        try container.encodeIfPresent(originalDriver, forKey: .originalDriver)
        try container.encode(includeGroup, forKey: .includeGroup)
        try container.encode(steps, forKey: .steps)
        try container.encode(groupMembers, forKey: .groupMembers)
        try container.encodeIfPresent(refusal, forKey: .refusal)
        try container.encode(writes.map(PlannedWrite.init), forKey: .writes)
    }
}
