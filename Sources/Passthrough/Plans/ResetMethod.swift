/// A reset method as the API takes it: `auto` (whatever the kernel would try first) or one of the
/// kernel's `reset_method` names, which are the raw values.
public enum ResetMethod: String, Codable, CaseIterable, Hashable, Sendable {
    case auto
    case flr
    case pm
    case bus
    case cxlBus = "cxl_bus"
    case acpi
    case deviceSpecific = "device_specific"
    case afFLR = "af_flr"

    /// Methods that reset a whole secondary bus, and with it every function behind the parent bridge.
    public var resetsBus: Bool { self == .bus || self == .cxlBus }
}
