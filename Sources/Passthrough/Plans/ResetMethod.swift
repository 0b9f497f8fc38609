/// A reset method as the API takes it: `auto` (whatever the kernel would try first) or one of the
/// kernel's `reset_method` names, which are the raw values; or `escalate`, a ladder of them.
public enum ResetMethod: String, Codable, CaseIterable, Hashable, Sendable {
    case auto
    case flr
    case pm
    case bus
    case cxlBus = "cxl_bus"
    case acpi
    case deviceSpecific = "device_specific"
    case afFLR = "af_flr"
    /// Not a kernel method: climb the ladder (`EscalationPlanner`) until the device is back.
    case escalate

    /// Methods that reset a whole secondary bus, and with it every function behind the parent bridge.
    public var resetsBus: Bool { self == .bus || self == .cxlBus }
}
