/// The bytes of one PCI function's configuration space, and what can be read out of them.
///
/// A plain value over bytes that someone else read (sysfs `config`, a fixture, the simulator), so every
/// rule here is testable without a device. The bytes may be 64 (a non-root reader of sysfs `config`),
/// 256 (conventional space) or 4096 (PCI Express extended space), or any truncation of those: every
/// read past the end answers nil rather than trapping, and both capability walks stop there.
///
/// Registers are little-endian, as on the bus. A function that is gone (surprise removal, in reset,
/// behind a dead link) reads all-ones, which is why `isAllOnes` exists and the walks treat an
/// all-ones pointer or header as the end of the list.
public struct ConfigSpace: Hashable, Sendable {
    /// Conventional configuration space: the header and the standard capabilities.
    public static let conventionalSize = 0x100
    /// PCI Express extended configuration space.
    public static let extendedSize = 0x1000

    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    public init(bytes: some Sequence<UInt8>) {
        self.bytes = Array(bytes)
    }

    public var count: Int { bytes.count }

    // MARK: Raw reads

    public func read8(at offset: Int) -> UInt8? {
        guard offset >= 0, offset < bytes.count else { return nil }
        return bytes[offset]
    }

    public func read16(at offset: Int) -> UInt16? {
        guard offset >= 0, offset <= bytes.count - 2 else { return nil }
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    public func read32(at offset: Int) -> UInt32? {
        guard offset >= 0, offset <= bytes.count - 4 else { return nil }
        return UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
            | UInt32(bytes[offset + 3]) << 24
    }

    // MARK: Header

    public var vendorID: UInt16? { read16(at: 0x00) }
    public var deviceID: UInt16? { read16(at: 0x02) }
    public var command: UInt16? { read16(at: 0x04) }
    public var status: UInt16? { read16(at: 0x06) }

    /// The vendor/device dword reads 0xFFFFFFFF: nothing answered the config read, so the function
    /// is gone or still in reset. Every other field of such a space is meaningless.
    /// False when the dword is not there at all (we cannot tell, so we do not claim it is gone).
    public var isAllOnes: Bool { read32(at: 0x00) == 0xFFFF_FFFF }

    /// The raw Header Type register: bit 7 is multi-function, bits 6:0 the layout.
    public var headerType: UInt8? { read8(at: 0x0E) }

    /// The header layout: 0 endpoint, 1 PCI-to-PCI bridge, 2 CardBus bridge.
    public var headerLayout: UInt8? { headerType.map { $0 & 0x7F } }

    public var isMultiFunction: Bool { (headerType ?? 0) & 0x80 != 0 }

    // MARK: Standard capabilities

    /// Status bit 4 (Capabilities List): without it the pointer at 0x34 is not defined.
    public var hasCapabilityList: Bool {
        guard let status, !isAllOnes else { return false }
        return status & 0x10 != 0
    }

    /// The standard capability list, in chain order.
    ///
    /// Hardware and firmware do ship broken chains, so the walk is defensive the way the kernel's is:
    /// a pointer below 0x40 (into the header) ends the list, the two reserved low bits of each pointer
    /// are ignored, an id of 0xFF (all-ones) ends it, a pointer seen before ends it (a loop), and so
    /// does a pointer past the bytes we have.
    public func capabilities() -> [Capability] {
        guard hasCapabilityList else { return [] }
        // CardBus bridges keep their capability pointer at 0x14, everything else at 0x34.
        let pointerOffset = headerLayout == 2 ? 0x14 : 0x34
        guard var pointer = read8(at: pointerOffset).map(Int.init) else { return [] }
        var seen: Set<Int> = []
        var result: [Capability] = []
        while pointer >= 0x40 {
            let offset = pointer & ~0x3
            guard seen.insert(offset).inserted, let id = read8(at: offset), id != 0xFF,
                let next = read8(at: offset + 1)
            else { break }
            result.append(Capability(id: id, offset: offset))
            pointer = Int(next)
        }
        return result
    }

    /// The first standard capability with this id.
    public func capability(_ id: UInt8) -> Capability? {
        capabilities().first { $0.id == id }
    }

    // MARK: Extended capabilities

    /// The extended capability list starting at 0x100, in chain order.
    ///
    /// Empty when the bytes stop at 256 (conventional function, or a truncated read). The walk ends
    /// at a header of 0 (no extended capabilities) or all-ones (nothing answered), at a next pointer
    /// below 0x100 (0 is the normal end), at a pointer already visited, and at the end of the bytes.
    public func extendedCapabilities() -> [ExtendedCapability] {
        guard !isAllOnes else { return [] }
        var offset = Self.conventionalSize
        var seen: Set<Int> = []
        var result: [ExtendedCapability] = []
        while offset >= Self.conventionalSize, seen.insert(offset).inserted,
            let header = read32(at: offset), header != 0, header != 0xFFFF_FFFF
        {
            result.append(
                ExtendedCapability(
                    id: UInt16(truncatingIfNeeded: header),
                    version: UInt8(truncatingIfNeeded: (header >> 16) & 0xF),
                    offset: offset))
            // Bits 31:20, with the two reserved low bits masked as the kernel does.
            offset = Int((header >> 20) & 0xFFC)
        }
        return result
    }

    /// The first extended capability with this id.
    public func extendedCapability(_ id: UInt16) -> ExtendedCapability? {
        extendedCapabilities().first { $0.id == id }
    }
}

/// A standard (conventional space) capability: its id and where its header sits.
public struct Capability: Hashable, Sendable {
    public static let powerManagement: UInt8 = 0x01
    public static let vitalProductData: UInt8 = 0x03
    public static let msi: UInt8 = 0x05
    public static let vendorSpecific: UInt8 = 0x09
    public static let pciExpress: UInt8 = 0x10
    public static let msix: UInt8 = 0x11

    public let id: UInt8
    public let offset: Int

    public init(id: UInt8, offset: Int) {
        self.id = id
        self.offset = offset
    }
}

/// A PCI Express extended capability: id (bits 15:0 of its header), version (19:16) and offset.
public struct ExtendedCapability: Hashable, Sendable {
    public static let advancedErrorReporting: UInt16 = 0x0001
    public static let deviceSerialNumber: UInt16 = 0x0003
    public static let designatedVendorSpecific: UInt16 = 0x0023

    public let id: UInt16
    public let version: UInt8
    public let offset: Int

    public init(id: UInt16, version: UInt8, offset: Int) {
        self.id = id
        self.version = version
        self.offset = offset
    }
}
