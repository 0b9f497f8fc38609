import Passthrough

/// A driver of the simulated host: a folder under `bus/pci/drivers` and the kernel's matching rule.
public struct SimulatedDriver: Sendable, Hashable {
    public var name: String
    /// Binds only to a device whose `driver_override` names it (vfio-pci, the nvgrace variant driver).
    public var overrideOnly: Bool
    /// The static ID table, reduced to what the demo needs: vendor, optional device IDs, class.
    public var vendor: UInt16?
    public var devices: Set<UInt16>?
    public var classCode: UInt32?
    public var classMask: UInt32

    public init(
        name: String, overrideOnly: Bool = false, vendor: UInt16? = nil, devices: Set<UInt16>? = nil,
        classCode: UInt32? = nil, classMask: UInt32 = 0xffffff
    ) {
        self.name = name
        self.overrideOnly = overrideOnly
        self.vendor = vendor
        self.devices = devices
        self.classCode = classCode
        self.classMask = classMask
    }

    /// `pci_match_device()`: an override names exactly one driver and matches it whatever the IDs
    /// (the kernel's dummy "any" ID); without one, override-only drivers never match.
    public func matches(_ function: SimulatedFunction, override: String?) -> Bool {
        if let override { return override == name }
        if overrideOnly { return false }
        if let vendor, vendor != function.vendor { return false }
        if let devices, !devices.contains(function.device) { return false }
        if let classCode, function.classCode & classMask != classCode & classMask { return false }
        return true
    }
}
