/// The rungs an escalating reset would climb for one device, in order, each with whether the guards
/// allow it and why: a function-level reset, a bus reset, removing the function and rescanning, and
/// last the verdict that only a reboot (a power cycle) will bring the device back.
///
/// Pure data from reads, like `ResetPlan`: the dry run returns it as is and the engine climbs only
/// the allowed rungs.
public struct EscalationLadder: Hashable, Sendable, Encodable {
    public enum Step: String, Hashable, Sendable, Codable {
        /// The first function-level method of `reset_method` (flr, pm, ...).
        case functionReset = "function_reset"
        /// `bus` or `cxl_bus`: the secondary bus behind the parent bridge.
        case busReset = "bus_reset"
        /// `remove` then `bus/pci/rescan`: the kernel forgets the function and enumerates it afresh.
        case removeRescan = "remove_rescan"
        /// Nothing software can do is left: the GPU needs the host power-cycled.
        case reboot
    }

    public struct Rung: Hashable, Sendable, Encodable {
        public var step: Step
        /// The kernel method (`flr`, `bus`), `remove+rescan`, or `reboot`; nil when the device has no
        /// method for this step.
        public var method: String?
        public var allowed: Bool
        /// Why it is allowed or not, in words.
        public var reason: String
        /// For a reset rung that is allowed: the plan the engine carries out.
        public var plan: ResetPlan?
        /// The functions this rung reaches (empty when not allowed).
        public var affected: [AffectedFunction]

        private enum CodingKeys: String, CodingKey {
            case step, method, allowed, reason, affected
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(step, forKey: .step)
            try container.encode(method, forKey: .method)
            try container.encode(allowed, forKey: .allowed)
            try container.encode(reason, forKey: .reason)
            try container.encode(affected, forKey: .affected)
        }
    }

    public var target: BDF
    public var rungs: [Rung]
    /// Set when nothing may be tried at all (no such device, a bridge, the device itself held).
    public var refusal: Refusal?

    /// The rungs that will run, in order (the reboot verdict is not one of them).
    public var runnable: [Rung] { rungs.filter { $0.allowed && $0.step != .reboot } }

    /// Every function some allowed rung reaches: what the job must claim.
    public var affected: [BDF] {
        Array(Set([target] + runnable.flatMap { $0.affected.map(\.bdf) })).sorted()
    }

    private enum CodingKeys: String, CodingKey {
        case target, rungs, refusal
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(target.description, forKey: .target)
        try container.encode(rungs, forKey: .rungs)
        try container.encode(refusal, forKey: .refusal)
    }
}
