@testable import Passthrough

/// Builds config-space bytes for tests: a header, then capabilities and extended capabilities
/// written where the test says, so each test shows its own chain.
struct ConfigSpaceFixture {
    var bytes: [UInt8]

    /// A function with the given IDs, an endpoint header, and no capabilities.
    init(size: Int = ConfigSpace.extendedSize, vendor: UInt16 = 0x10DE, device: UInt16 = 0x2342) {
        bytes = [UInt8](repeating: 0, count: size)
        put16(vendor, at: 0x00)
        put16(device, at: 0x02)
    }

    mutating func put8(_ value: UInt8, at offset: Int) {
        bytes[offset] = value
    }

    mutating func put16(_ value: UInt16, at offset: Int) {
        for index in 0..<2 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }

    mutating func put32(_ value: UInt32, at offset: Int) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }

    /// Sets Status bit 4 and the pointer at 0x34.
    mutating func capabilityList(first: Int) {
        put16(0x0010, at: 0x06)
        put8(UInt8(first), at: 0x34)
    }

    mutating func capability(_ id: UInt8, at offset: Int, next: Int) {
        put8(id, at: offset)
        put8(UInt8(next), at: offset + 1)
    }

    mutating func extendedCapability(_ id: UInt16, version: UInt8 = 1, at offset: Int, next: Int) {
        put32(UInt32(id) | UInt32(version) << 16 | UInt32(next) << 20, at: offset)
    }

    mutating func dvsec(
        at offset: Int, next: Int, vendor: UInt16, id: UInt16, revision: UInt8 = 0, length: Int = 0x38
    ) {
        extendedCapability(ExtendedCapability.designatedVendorSpecific, at: offset, next: next)
        put32(UInt32(vendor) | UInt32(revision) << 16 | UInt32(length) << 20, at: offset + 4)
        put16(id, at: offset + 8)
    }

    var space: ConfigSpace { ConfigSpace(bytes) }

    /// The CXL type-3 device of the QEMU lab guest, as its config space reads there: a Device Serial
    /// Number capability at 0x100 (QEMU's `sn=`), then the CXL device DVSEC at 0x10C whose Range 1
    /// Size Low (0x128) reads 0x1000004b.
    static func qemuCXLType3() -> ConfigSpaceFixture {
        var fixture = ConfigSpaceFixture(vendor: 0x8086, device: 0x0D93)
        fixture.put8(0x02, at: 0x0B)  // class 0502: memory controller, CXL
        fixture.put8(0x05, at: 0x0A)
        fixture.capabilityList(first: 0x40)
        fixture.capability(Capability.pciExpress, at: 0x40, next: 0)
        fixture.extendedCapability(ExtendedCapability.deviceSerialNumber, at: 0x100, next: 0x10C)
        fixture.put32(0x1234, at: 0x104)
        fixture.dvsec(at: 0x10C, next: 0, vendor: 0x1E98, id: 0, revision: 1, length: 0x38)
        fixture.put32(0x1000_004B, at: 0x128)
        return fixture
    }
}
