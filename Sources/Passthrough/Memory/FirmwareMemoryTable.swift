/// The device-memory figures firmware gives the nvgrace-gpu driver (ACPI `_DSD`
/// `nvidia,gpu-mem-base-pa` and `nvidia,gpu-mem-size`). No sysfs file shows them, so they come from the
/// host configuration or the simulator, and every layout says which.
public struct FirmwareMemoryTable: Hashable, Sendable {
    /// `host-config` or `simulator`.
    public var source: String
    public var entries: [BDF: FirmwareMemory]

    public init(source: String, entries: [BDF: FirmwareMemory]) {
        self.source = source
        self.entries = entries
    }

    public static let empty = FirmwareMemoryTable(source: "none", entries: [:])
}
