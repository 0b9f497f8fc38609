/// What a reset of one device would do, decided before anything is written: the kernel method, the
/// functions it reaches, who holds them, and whether GraceAPI refuses.
///
/// A plan is pure data computed from reads, so `dryRun` returns it as is and the engine carries out
/// `writes` only when `refusal` is nil.
public struct ResetPlan: Hashable, Sendable, Encodable {
    public var target: BDF
    public var requested: ResetMethod
    /// The kernel method the reset will use; nil when none could be chosen.
    public var method: String?
    /// Why this method: `first method in reset_method (flr)`, `requested`.
    public var reason: String
    /// The device's `reset_method` list when the plan was made, in the kernel's order.
    public var availableMethods: [String]
    /// Every function the reset reaches, in BDF order; empty when refused before that was worked out.
    public var affected: [AffectedFunction]
    public var refusal: Refusal?

    public init(
        target: BDF, requested: ResetMethod, method: String?, reason: String, availableMethods: [String],
        affected: [AffectedFunction], refusal: Refusal?
    ) {
        self.target = target
        self.requested = requested
        self.method = method
        self.reason = reason
        self.availableMethods = availableMethods
        self.affected = affected
        self.refusal = refusal
    }

    /// The writes that perform the reset, in order; empty when refused.
    ///
    /// The `reset` attribute walks `reset_method` in order, so a method that is not first is selected
    /// by narrowing the list to it, and the original list is written back afterwards
    /// (`restoreWrites`, which the engine must run even when the reset failed).
    public var writes: [SysfsWrite] {
        guard refusal == nil, let method else { return [] }
        if availableMethods.first == method { return [.reset(target)] }
        return [.resetMethod(target, method), .reset(target)]
    }

    /// Puts the device's `reset_method` list back after `writes` narrowed it; empty when nothing was
    /// narrowed.
    public var restoreWrites: [SysfsWrite] {
        guard refusal == nil, let method, availableMethods.first != method else { return [] }
        return [.resetMethod(target, ResetMethods.format(availableMethods))]
    }

    private enum CodingKeys: String, CodingKey {
        case target, requested, method, reason, availableMethods, affected, refusal, writes, restoreWrites
    }

    /// `method` and `refusal` are null rather than left out: the contract lists every member.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(target.description, forKey: .target)
        try container.encode(requested, forKey: .requested)
        try container.encode(method, forKey: .method)
        try container.encode(reason, forKey: .reason)
        try container.encode(availableMethods, forKey: .availableMethods)
        try container.encode(affected, forKey: .affected)
        try container.encode(refusal, forKey: .refusal)
        try container.encode(writes.map(PlannedWrite.init), forKey: .writes)
        try container.encode(restoreWrites.map(PlannedWrite.init), forKey: .restoreWrites)
    }
}
