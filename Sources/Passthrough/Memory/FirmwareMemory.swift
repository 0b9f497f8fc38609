/// A GPU's coherent device memory as the firmware describes it: the ACPI `_DSD` properties
/// `nvidia,gpu-mem-base-pa` and `nvidia,gpu-mem-size` that nvgrace-gpu reads at probe.
///
/// sysfs does not show them, so a host hands them to the service as configuration; the simulator
/// hands over its own the same way.
public struct FirmwareMemory: Codable, Hashable, Sendable {
    public var physicalBase: UInt64
    public var length: UInt64

    public init(physicalBase: UInt64, length: UInt64) {
        self.physicalBase = physicalBase
        self.length = length
    }
}
