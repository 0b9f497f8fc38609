import Passthrough

/// Builds a 4096-byte PCI Express configuration space, the bytes sysfs `config` returns to root.
///
/// The bytes are real register layouts (type 0 header for endpoints, type 1 for bridges, a standard
/// capability chain from 0x34 and an extended chain from 0x100), so any parser that works on a real
/// device works on these, and lspci decodes them.
public struct ConfigSpaceBuilder: Sendable {
    /// Where each capability landed; the simulated kernel changes registers through these.
    public struct Layout: Sendable, Hashable {
        public var powerManagement: Int?
        public var express: Int?
        public var msix: Int?
        public var serialNumber: Int?
        public var acs: Int?
        public var nvidiaDVSEC: Int?
        public var cxlDVSEC: Int?

        /// Range 1 Size Low of the CXL device DVSEC (`PCI_DVSEC_CXL_RANGE_SIZE_LOW(0)` = +0x1C).
        public var cxlRange1SizeLow: Int? { cxlDVSEC.map { $0 + CXL.range1SizeLow } }
        /// PMCSR, the power state register (+4 of the PM capability).
        public var powerControlStatus: Int? { powerManagement.map { $0 + 4 } }
        /// Link Status (+0x12 of the PCI Express capability).
        public var linkStatus: Int? { express.map { $0 + 0x12 } }
    }

    /// Header registers.
    public enum Header {
        public static let vendor = 0x00
        public static let device = 0x02
        public static let command = 0x04
        public static let status = 0x06
        public static let revision = 0x08
        public static let classCode = 0x09
        public static let headerType = 0x0E
        public static let bar0 = 0x10
        public static let primaryBus = 0x18
        public static let subsystemVendor = 0x2C
        public static let subsystemDevice = 0x2E
        public static let capabilityPointer = 0x34
        public static let interruptLine = 0x3C
        public static let interruptPin = 0x3D
        /// Status bit 4: a capability list is present at 0x34.
        public static let statusCapabilityList: UInt16 = 1 << 4
    }

    /// Capability IDs (standard, then extended).
    public enum CapabilityID {
        public static let powerManagement: UInt8 = 0x01
        public static let express: UInt8 = 0x10
        public static let msix: UInt8 = 0x11
        public static let serialNumber: UInt16 = 0x0003
        public static let acs: UInt16 = 0x000D
        public static let dvsec: UInt16 = 0x0023
    }

    /// The NVIDIA GPU capability DVSEC that nvgrace-gpu reads for the MIG hardware bug.
    public enum NvidiaDVSEC {
        public static let vendor: UInt16 = 0x10DE
        public static let id: UInt16 = 3
        /// The 16-bit bitmap word; bit 0 = MIG supported with cached resmem (no bug).
        public static let bitmap = 0x0A
        public static let length = 0x0C
    }

    /// The CXL device DVSEC (CXL r2.0+ §8.1.3) and its Range 1 Size Low bits.
    public enum CXL {
        public static let vendor: UInt16 = 0x1E98
        public static let id: UInt16 = 0
        public static let revision: UInt8 = 1
        public static let length = 0x3C
        public static let capability = 0x0A
        public static let range1SizeHigh = 0x18
        public static let range1SizeLow = 0x1C
        public static let memoryInfoValid: UInt32 = 1 << 0
        public static let memoryActive: UInt32 = 1 << 1
        public static let timeoutShift: UInt32 = 13
        public static let timeoutMask: UInt32 = 0x7 << 13
    }

    public static let size = 4096
    public static let extendedStart = 0x100

    public private(set) var bytes: [UInt8]
    public private(set) var layout = Layout()
    private var lastStandard: Int?
    private var nextStandard = 0x40
    private var lastExtended: Int?
    private var nextExtended = extendedStart

    /// The config space a real device showed (a capture), with the layout found by walking its
    /// capability lists, so the simulated kernel can change the same registers in it.
    public init(captured bytes: [UInt8]) {
        self.bytes = bytes
        let space = ConfigSpace(bytes)
        layout.powerManagement = space.capability(CapabilityID.powerManagement)?.offset
        layout.express = space.capability(CapabilityID.express)?.offset
        layout.msix = space.capability(CapabilityID.msix)?.offset
        layout.serialNumber = space.extendedCapability(CapabilityID.serialNumber)?.offset
        layout.acs = space.extendedCapability(CapabilityID.acs)?.offset
        layout.nvidiaDVSEC = space.findDVSEC(vendor: NvidiaDVSEC.vendor, id: NvidiaDVSEC.id)?.offset
        layout.cxlDVSEC = space.findDVSEC(vendor: CXL.vendor, id: CXL.id)?.offset
    }

    /// An empty header of the given type (0 endpoint, 1 bridge) with IDs, class and revision set,
    /// memory decoding and bus mastering on (a device a driver has enabled).
    public init(
        vendor: UInt16, device: UInt16, classCode: UInt32, revision: UInt8, headerType: UInt8,
        subsystemVendor: UInt16 = 0, subsystemDevice: UInt16 = 0
    ) {
        bytes = [UInt8](repeating: 0, count: Self.size)
        write16(vendor, at: Header.vendor)
        write16(device, at: Header.device)
        write16(0x0006, at: Header.command)
        bytes[Header.revision] = revision
        bytes[Header.classCode] = UInt8(truncatingIfNeeded: classCode)
        bytes[Header.classCode + 1] = UInt8(truncatingIfNeeded: classCode >> 8)
        bytes[Header.classCode + 2] = UInt8(truncatingIfNeeded: classCode >> 16)
        bytes[Header.headerType] = headerType
        if headerType & 0x7f == 0 {
            // Type 1 headers keep bridge registers at 0x2C; subsystem IDs live there only for type 0.
            write16(subsystemVendor, at: Header.subsystemVendor)
            write16(subsystemDevice, at: Header.subsystemDevice)
        }
    }

    // MARK: Registers

    public mutating func write8(_ value: UInt8, at offset: Int) {
        bytes[offset] = value
    }

    public mutating func write16(_ value: UInt16, at offset: Int) {
        bytes[offset] = UInt8(truncatingIfNeeded: value)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
    }

    public mutating func write32(_ value: UInt32, at offset: Int) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }

    public static func read16(_ bytes: [UInt8], at offset: Int) -> UInt16 {
        UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    public static func read32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }

    /// Little-endian bytes of a 32-bit register value, for patching a single register in a file.
    public static func littleEndian(_ value: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    // MARK: Header contents

    /// Writes the BAR register(s) for a memory BAR: bits 3:0 say 64-bit (0b100) and prefetchable
    /// (0b1000); a 64-bit BAR takes the next register for the upper half of the address.
    public mutating func setBAR(_ bar: BAR) {
        let offset = Header.bar0 + 4 * bar.index
        var low = UInt32(truncatingIfNeeded: bar.start) & ~0xF
        if bar.is64Bit { low |= 0x4 }
        if bar.prefetchable { low |= 0x8 }
        write32(low, at: offset)
        if bar.is64Bit { write32(UInt32(truncatingIfNeeded: bar.start >> 32), at: offset + 4) }
    }

    /// A bridge's bus numbers; its windows are written closed (base above limit).
    public mutating func setBridgeBuses(primary: UInt8, secondary: UInt8, subordinate: UInt8) {
        bytes[Header.primaryBus] = primary
        bytes[Header.primaryBus + 1] = secondary
        bytes[Header.primaryBus + 2] = subordinate
        write16(0x00F0, at: 0x1C)  // I/O base > limit
        write16(0xFFF0, at: 0x20)  // memory base
        write16(0x0000, at: 0x22)  // memory limit
        write16(0xFFF1, at: 0x24)  // prefetchable base (64-bit capable)
        write16(0x0001, at: 0x26)  // prefetchable limit
    }

    public mutating func setInterrupt(line: UInt8, pin: UInt8) {
        bytes[Header.interruptLine] = line
        bytes[Header.interruptPin] = pin
    }

    // MARK: Standard capabilities

    /// Appends a standard capability of `length` bytes and links it into the chain from 0x34.
    private mutating func appendStandard(id: UInt8, length: Int) -> Int {
        let offset = nextStandard
        precondition(offset + length <= Self.extendedStart, "standard capabilities overflow 0x100")
        bytes[offset] = id
        bytes[offset + 1] = 0
        if let last = lastStandard {
            bytes[last + 1] = UInt8(offset)
        } else {
            bytes[Header.capabilityPointer] = UInt8(offset)
            write16(Self.read16(bytes, at: Header.status) | Header.statusCapabilityList, at: Header.status)
        }
        lastStandard = offset
        nextStandard = (offset + length + 3) & ~3
        return offset
    }

    /// PCI Power Management, version 3, in D0. `noSoftReset` set means a D3hot→D0 transition keeps
    /// state, which is also what rules out the kernel's `pm` reset method.
    public mutating func addPowerManagement(noSoftReset: Bool) {
        let offset = appendStandard(id: CapabilityID.powerManagement, length: 8)
        write16(0x0003, at: offset + 2)
        write16(noSoftReset ? 0x0008 : 0x0000, at: offset + 4)
        layout.powerManagement = offset
    }

    /// PCI Express capability, version 2: Device Capabilities (FLR at bit 28), Link Capabilities
    /// (max speed and width, DLL Link Active Reporting for downstream-facing ports) and Link Status
    /// (current speed and width, Data Link Layer Link Active at bit 13).
    public mutating func addExpress(
        portType: SimulatedFunction.PortType, functionLevelReset: Bool, link: SimulatedFunction.Link,
        portNumber: UInt8 = 0
    ) {
        let offset = appendStandard(id: CapabilityID.express, length: 0x3C)
        let downstreamFacing = portType == .rootPort || portType == .downstreamPort
        write16(0x0002 | UInt16(portType.rawValue) << 4 | (downstreamFacing ? 0x0100 : 0), at: offset + 2)
        var deviceCapabilities: UInt32 = 0x1 | 0x7 << 6 | 0x7 << 9 | 1 << 15
        if functionLevelReset { deviceCapabilities |= 1 << 28 }
        write32(deviceCapabilities, at: offset + 0x04)
        write16(0x2830, at: offset + 0x08)
        var linkCapabilities = UInt32(link.maxGeneration) | UInt32(link.maxWidth) << 4 | 0x2 << 10
        if downstreamFacing { linkCapabilities |= 1 << 20 }
        linkCapabilities |= UInt32(portNumber) << 24
        write32(linkCapabilities, at: offset + 0x0C)
        write16(0x0040, at: offset + 0x10)
        let linkStatus = UInt16(link.currentGeneration) | UInt16(link.currentWidth) << 4 | 1 << 12 | 1 << 13
        write16(linkStatus, at: offset + 0x12)
        write32(0x0000_001F, at: offset + 0x24)
        write32(UInt32((1 << link.maxGeneration) - 1) << 1, at: offset + 0x2C)
        write16(UInt16(link.maxGeneration), at: offset + 0x30)
        layout.express = offset
    }

    /// MSI-X with its table at BAR0+0x10000 and the pending-bit array at BAR0+0x20000.
    public mutating func addMSIX(tableSize: Int) {
        let offset = appendStandard(id: CapabilityID.msix, length: 12)
        write16(UInt16(max(tableSize, 1) - 1), at: offset + 2)
        write32(0x0001_0000, at: offset + 4)
        write32(0x0002_0000, at: offset + 8)
        layout.msix = offset
    }

    // MARK: Extended capabilities

    /// Appends an extended capability: header id 15:0, version 19:16, next 31:20.
    private mutating func appendExtended(id: UInt16, version: UInt8, length: Int) -> Int {
        let offset = nextExtended
        precondition(offset + length <= Self.size, "extended capabilities overflow 4096")
        write32(UInt32(id) | UInt32(version) << 16, at: offset)
        if let last = lastExtended {
            let header = Self.read32(bytes, at: last) & 0x000F_FFFF
            write32(header | UInt32(offset) << 20, at: last)
        }
        lastExtended = offset
        nextExtended = (offset + length + 3) & ~3
        return offset
    }

    public mutating func addSerialNumber(_ serial: UInt64) {
        let offset = appendExtended(id: CapabilityID.serialNumber, version: 1, length: 0x0C)
        write32(UInt32(truncatingIfNeeded: serial), at: offset + 4)
        write32(UInt32(truncatingIfNeeded: serial >> 32), at: offset + 8)
        layout.serialNumber = offset
    }

    /// Access Control Services with source validation, request and completion redirect and upstream
    /// forwarding, all enabled: what makes the kernel put each child in its own IOMMU group.
    public mutating func addACS() {
        let offset = appendExtended(id: CapabilityID.acs, version: 1, length: 8)
        write16(0x001F, at: offset + 4)
        write16(0x001D, at: offset + 6)
        layout.acs = offset
    }

    /// A Designated Vendor-Specific Extended Capability: header 1 at +4 (vendor 15:0, revision 19:16,
    /// length 31:20), header 2 at +8 (DVSEC id 15:0). Returns its offset.
    public mutating func addDVSEC(vendor: UInt16, revision: UInt8, id: UInt16, length: Int) -> Int {
        let offset = appendExtended(id: CapabilityID.dvsec, version: 1, length: length)
        write32(UInt32(vendor) | UInt32(revision & 0xF) << 16 | UInt32(length) << 20, at: offset + 4)
        write16(id, at: offset + 8)
        return offset
    }

    public mutating func addNvidiaDVSEC(bitmap: UInt16) {
        let offset = addDVSEC(
            vendor: NvidiaDVSEC.vendor, revision: 0, id: NvidiaDVSEC.id, length: NvidiaDVSEC.length)
        write16(bitmap, at: offset + NvidiaDVSEC.bitmap)
        layout.nvidiaDVSEC = offset
    }

    /// The CXL device DVSEC with Range 1 reporting a ready memory range: Mem_Capable, HW init mode,
    /// one HDM range; Size High/Low carry the size (Low holds size bits 31:28 in bits 31:28).
    public mutating func addCXLDevice(range: SimulatedFunction.CXLRange) {
        let offset = addDVSEC(vendor: CXL.vendor, revision: CXL.revision, id: CXL.id, length: CXL.length)
        write16(0x001E, at: offset + CXL.capability)
        write32(UInt32(truncatingIfNeeded: range.size >> 32), at: offset + CXL.range1SizeHigh)
        write32(Self.cxlRange1SizeLow(range, valid: true, active: true), at: offset + CXL.range1SizeLow)
        layout.cxlDVSEC = offset
    }

    /// The Range 1 Size Low value for the range in a given readiness state.
    public static func cxlRange1SizeLow(_ range: SimulatedFunction.CXLRange, valid: Bool, active: Bool)
        -> UInt32
    {
        var value = UInt32(truncatingIfNeeded: range.size) & 0xF000_0000
        value |= UInt32(range.timeoutCode & 0x7) << CXL.timeoutShift
        if valid { value |= CXL.memoryInfoValid }
        if active { value |= CXL.memoryActive }
        return value
    }

    // MARK: Whole functions

    /// The config space of a simulated function. Bridges need their bus numbers; every function of
    /// a multi-function device sets header type bit 7, which is how enumeration knows to probe
    /// functions 1 to 7.
    public static func configSpace(
        for function: SimulatedFunction, secondaryBus: UInt8 = 0, subordinateBus: UInt8 = 0,
        multiFunction: Bool = false
    ) -> ConfigSpaceBuilder {
        var builder = ConfigSpaceBuilder(
            vendor: function.vendor, device: function.device, classCode: function.classCode,
            revision: function.revision, headerType: (function.isBridge ? 1 : 0) | (multiFunction ? 0x80 : 0),
            subsystemVendor: function.subsystemVendor, subsystemDevice: function.subsystemDevice)
        for bar in function.bars { builder.setBAR(bar) }
        if function.isBridge {
            builder.setBridgeBuses(
                primary: function.bdf.bus, secondary: secondaryBus, subordinate: subordinateBus)
        }
        // INTA, so the pin agrees with the `irq` attribute.
        builder.setInterrupt(line: UInt8(truncatingIfNeeded: function.irq), pin: 1)
        builder.addPowerManagement(noSoftReset: !function.resetMethods.contains("pm"))
        builder.addExpress(
            portType: function.portType, functionLevelReset: function.resetMethods.contains("flr"),
            link: function.link, portNumber: function.bdf.device)
        if let size = function.msixTableSize { builder.addMSIX(tableSize: size) }
        if let serial = function.serialNumber { builder.addSerialNumber(serial) }
        if function.acs { builder.addACS() }
        if let range = function.cxlRange1 { builder.addCXLDevice(range: range) }
        if let bitmap = function.nvidiaCapabilityBitmap { builder.addNvidiaDVSEC(bitmap: bitmap) }
        return builder
    }
}
