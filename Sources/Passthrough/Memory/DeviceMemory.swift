/// The device memory of an nvgrace GPU as the nvgrace-gpu VFIO driver exposes it to a guest.
public struct DeviceMemory: Codable, Hashable, Sendable {
    /// Where `physicalBase` and `length` came from: `host-config`, `simulator`.
    /// The regions are derived from them by the kernel's rules.
    public var source: String
    public var physicalBase: UInt64
    public var length: UInt64
    /// Grace Hopper's MIG hardware bug (NVIDIA DVSEC id 3 absent, or bit 0 of its word at +0xA clear):
    /// 1 GiB of resmem is carved from the end.
    public var migHardwareBug: Bool
    public var regions: [MemoryRegion]
    public init(
        source: String, physicalBase: UInt64, length: UInt64, migHardwareBug: Bool, regions: [MemoryRegion]
    ) {
        self.source = source
        self.physicalBase = physicalBase
        self.length = length
        self.migHardwareBug = migHardwareBug
        self.regions = regions
    }
}

/// One fake BAR backed by device memory.
public struct MemoryRegion: Codable, Hashable, Sendable {
    public enum Name: String, Codable, Hashable, Sendable {
        case usemem
        case resmem
    }
    public var name: Name
    /// The BAR the guest sees it as: 2 for resmem, 4 for usemem.
    public var bar: Int
    public var physicalBase: UInt64
    /// The real bytes of memory.
    public var length: UInt64
    /// The power-of-two BAR size the guest sees.
    public var reportedSize: UInt64
    /// `reportedSize - length`: bytes that read as 0xFF and drop writes.
    public var holeBytes: UInt64
    public init(name: Name, bar: Int, physicalBase: UInt64, length: UInt64, reportedSize: UInt64) {
        self.name = name
        self.bar = bar
        self.physicalBase = physicalBase
        self.length = length
        self.reportedSize = reportedSize
        self.holeBytes = reportedSize - length
    }
}
