/// The device-memory figures firmware gives the nvgrace-gpu driver (ACPI `_DSD`
/// `nvidia,gpu-mem-base-pa` and `nvidia,gpu-mem-size`). No sysfs file shows them, so they come from the
/// host configuration or the simulator, and every layout says which.
public struct FirmwareMemoryTable: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var physicalBase: UInt64
        public var length: UInt64
        public init(physicalBase: UInt64, length: UInt64) {
            self.physicalBase = physicalBase
            self.length = length
        }
    }
    /// `host-config` or `simulator`.
    public var source: String
    public var entries: [BDF: Entry]

    public init(source: String, entries: [BDF: Entry]) {
        self.source = source
        self.entries = entries
    }

    public static let empty = FirmwareMemoryTable(source: "none", entries: [:])
}
