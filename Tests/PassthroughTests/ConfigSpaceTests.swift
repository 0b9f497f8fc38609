import Testing

@testable import Passthrough

@Suite struct ConfigSpaceReadTests {
    @Test func readsAreLittleEndian() {
        let space = ConfigSpace([0xDE, 0x10, 0x42, 0x23, 0x07, 0x00, 0x10, 0x00])
        #expect(space.read8(at: 0) == 0xDE)
        #expect(space.read16(at: 0) == 0x10DE)
        #expect(space.read32(at: 0) == 0x2342_10DE)
        #expect(space.read16(at: 1) == 0x4210)
        #expect(space.vendorID == 0x10DE)
        #expect(space.deviceID == 0x2342)
        #expect(space.status == 0x0010)
    }

    @Test func readsOutOfRangeAreNil() {
        let space = ConfigSpace([1, 2, 3, 4])
        #expect(space.read8(at: 4) == nil)
        #expect(space.read8(at: -1) == nil)
        #expect(space.read16(at: 3) == nil)
        #expect(space.read32(at: 1) == nil)
        #expect(space.read32(at: 0) == 0x0403_0201)
        #expect(ConfigSpace([]).read8(at: 0) == nil)
        #expect(ConfigSpace([]).vendorID == nil)
        #expect(ConfigSpace([]).isAllOnes == false)
        #expect(ConfigSpace([0xFF]).read16(at: 0) == nil)
        #expect(space.read32(at: Int.max) == nil)
    }

    @Test func headerType() {
        var fixture = ConfigSpaceFixture(size: 64)
        #expect(fixture.space.headerType == 0)
        #expect(fixture.space.headerLayout == 0)
        #expect(!fixture.space.isMultiFunction)
        fixture.put8(0x81, at: 0x0E)
        #expect(fixture.space.headerType == 0x81)
        #expect(fixture.space.headerLayout == 1)
        #expect(fixture.space.isMultiFunction)
    }

    @Test func allOnesConfigIsGoneAndHasNothing() {
        let space = ConfigSpace([UInt8](repeating: 0xFF, count: 4096))
        #expect(space.isAllOnes)
        #expect(space.vendorID == 0xFFFF)
        #expect(space.capabilities().isEmpty)
        #expect(space.extendedCapabilities().isEmpty)
        #expect(space.dvsecs().isEmpty)
        #expect(space.pciExpressCapability == nil)
        #expect(space.cxlRange1SizeLow() == nil)
    }

    @Test func onlyTheIDDwordDecidesAllOnes() {
        var fixture = ConfigSpaceFixture(vendor: 0xFFFF, device: 0x1234)
        #expect(!fixture.space.isAllOnes)
        fixture.put16(0xFFFF, at: 2)
        #expect(fixture.space.isAllOnes)
    }
}

@Suite struct CapabilityWalkTests {
    @Test func walksTheChainInOrder() {
        var fixture = ConfigSpaceFixture()
        fixture.capabilityList(first: 0x60)
        fixture.capability(Capability.powerManagement, at: 0x60, next: 0x68)
        fixture.capability(Capability.msi, at: 0x68, next: 0x78)
        fixture.capability(Capability.pciExpress, at: 0x78, next: 0xB4)
        fixture.capability(Capability.msix, at: 0xB4, next: 0)
        #expect(
            fixture.space.capabilities() == [
                Capability(id: 0x01, offset: 0x60), Capability(id: 0x05, offset: 0x68),
                Capability(id: 0x10, offset: 0x78), Capability(id: 0x11, offset: 0xB4),
            ])
        #expect(fixture.space.capability(Capability.pciExpress)?.offset == 0x78)
        #expect(fixture.space.capability(Capability.vendorSpecific) == nil)
    }

    @Test func statusBitClearMeansNoList() {
        var fixture = ConfigSpaceFixture()
        fixture.capabilityList(first: 0x40)
        fixture.capability(Capability.pciExpress, at: 0x40, next: 0)
        fixture.put16(0, at: 0x06)
        #expect(!fixture.space.hasCapabilityList)
        #expect(fixture.space.capabilities().isEmpty)
    }

    @Test func loopTerminates() {
        var fixture = ConfigSpaceFixture()
        fixture.capabilityList(first: 0x40)
        fixture.capability(Capability.powerManagement, at: 0x40, next: 0x50)
        fixture.capability(Capability.pciExpress, at: 0x50, next: 0x40)
        #expect(fixture.space.capabilities().map(\.offset) == [0x40, 0x50])

        var selfLoop = ConfigSpaceFixture()
        selfLoop.capabilityList(first: 0x40)
        selfLoop.capability(Capability.msi, at: 0x40, next: 0x40)
        #expect(selfLoop.space.capabilities().map(\.offset) == [0x40])
    }

    @Test func loopThroughReservedLowBitsTerminates() {
        // 0x52 and 0x50 name the same capability once the reserved bits are masked.
        var fixture = ConfigSpaceFixture()
        fixture.capabilityList(first: 0x50)
        fixture.capability(Capability.msi, at: 0x50, next: 0x52)
        #expect(fixture.space.capabilities() == [Capability(id: 0x05, offset: 0x50)])
    }

    @Test func pointersIntoTheHeaderEndTheList() {
        var fixture = ConfigSpaceFixture()
        fixture.capabilityList(first: 0x3C)
        #expect(fixture.space.capabilities().isEmpty)

        fixture.capabilityList(first: 0x40)
        fixture.capability(Capability.pciExpress, at: 0x40, next: 0x10)
        #expect(fixture.space.capabilities().map(\.offset) == [0x40])
    }

    @Test func garbageEndsTheList() {
        // An id of 0xFF is what a vanished device answers.
        var fixture = ConfigSpaceFixture()
        fixture.capabilityList(first: 0x40)
        fixture.capability(Capability.pciExpress, at: 0x40, next: 0x80)
        fixture.capability(0xFF, at: 0x80, next: 0x90)
        fixture.capability(Capability.msix, at: 0x90, next: 0)
        #expect(fixture.space.capabilities().map(\.offset) == [0x40])
    }

    @Test func pointerPastTheBytesEndsTheList() {
        // A 64-byte read (what a non-root reader of sysfs config gets) cannot follow any pointer.
        var fixture = ConfigSpaceFixture(size: 64)
        fixture.capabilityList(first: 0x40)
        #expect(fixture.space.capabilities().isEmpty)

        var short = ConfigSpaceFixture(size: 0x81)
        short.capabilityList(first: 0x40)
        short.capability(Capability.pciExpress, at: 0x40, next: 0x80)
        short.put8(Capability.msix, at: 0x80)
        #expect(short.space.capabilities().map(\.offset) == [0x40])
    }

    @Test func everyPointerValueTerminates() {
        // Whatever byte sits at each link, the walk ends and visits each offset at most once.
        for next in 0...255 {
            var fixture = ConfigSpaceFixture(size: 256)
            fixture.capabilityList(first: next)
            for offset in stride(from: 0x40, to: 0x100, by: 4) {
                fixture.capability(0x09, at: offset, next: (offset + next) & 0xFF)
            }
            let offsets = fixture.space.capabilities().map(\.offset)
            #expect(Set(offsets).count == offsets.count)
            #expect(offsets.allSatisfy { $0 >= 0x40 && $0 < 0x100 })
        }
    }
}

@Suite struct ExtendedCapabilityWalkTests {
    @Test func walksTheChainInOrder() {
        var fixture = ConfigSpaceFixture()
        fixture.extendedCapability(
            ExtendedCapability.advancedErrorReporting, version: 2, at: 0x100, next: 0x148)
        fixture.extendedCapability(ExtendedCapability.deviceSerialNumber, at: 0x148, next: 0x250)
        fixture.extendedCapability(0x000B, version: 1, at: 0x250, next: 0)
        #expect(
            fixture.space.extendedCapabilities() == [
                ExtendedCapability(id: 0x0001, version: 2, offset: 0x100),
                ExtendedCapability(id: 0x0003, version: 1, offset: 0x148),
                ExtendedCapability(id: 0x000B, version: 1, offset: 0x250),
            ])
        #expect(fixture.space.extendedCapability(ExtendedCapability.deviceSerialNumber)?.offset == 0x148)
        #expect(fixture.space.extendedCapability(0x0025) == nil)
    }

    @Test func truncatedConfigHasNoExtendedCapabilities() {
        var full = ConfigSpaceFixture()
        full.extendedCapability(ExtendedCapability.advancedErrorReporting, at: 0x100, next: 0)
        let truncated = ConfigSpace(Array(full.bytes.prefix(256)))
        #expect(full.space.extendedCapabilities().count == 1)
        #expect(truncated.extendedCapabilities().isEmpty)
        #expect(truncated.dvsecs().isEmpty)
    }

    @Test func zeroOrAllOnesHeaderEndsTheList() {
        let empty = ConfigSpaceFixture()
        #expect(empty.space.extendedCapabilities().isEmpty)

        var fixture = ConfigSpaceFixture()
        fixture.extendedCapability(ExtendedCapability.advancedErrorReporting, at: 0x100, next: 0x140)
        fixture.put32(0xFFFF_FFFF, at: 0x140)
        #expect(fixture.space.extendedCapabilities().map(\.offset) == [0x100])

        var allOnesFirst = ConfigSpaceFixture()
        allOnesFirst.put32(0xFFFF_FFFF, at: 0x100)
        #expect(allOnesFirst.space.extendedCapabilities().isEmpty)
    }

    @Test func loopTerminates() {
        var fixture = ConfigSpaceFixture()
        fixture.extendedCapability(ExtendedCapability.advancedErrorReporting, at: 0x100, next: 0x200)
        fixture.extendedCapability(ExtendedCapability.deviceSerialNumber, at: 0x200, next: 0x100)
        #expect(fixture.space.extendedCapabilities().map(\.offset) == [0x100, 0x200])

        var selfLoop = ConfigSpaceFixture()
        selfLoop.extendedCapability(ExtendedCapability.advancedErrorReporting, at: 0x100, next: 0x100)
        #expect(selfLoop.space.extendedCapabilities().map(\.offset) == [0x100])
    }

    @Test func pointerIntoConventionalSpaceEndsTheList() {
        var fixture = ConfigSpaceFixture()
        fixture.extendedCapability(ExtendedCapability.advancedErrorReporting, at: 0x100, next: 0x040)
        #expect(fixture.space.extendedCapabilities().map(\.offset) == [0x100])
    }

    @Test func pointerPastTheBytesEndsTheList() {
        var fixture = ConfigSpaceFixture(size: 0x200)
        fixture.extendedCapability(ExtendedCapability.advancedErrorReporting, at: 0x100, next: 0x1FE)
        #expect(fixture.space.extendedCapabilities().map(\.offset) == [0x100])

        var far = ConfigSpaceFixture(size: 0x200)
        far.extendedCapability(ExtendedCapability.advancedErrorReporting, at: 0x100, next: 0xFFC)
        #expect(far.space.extendedCapabilities().map(\.offset) == [0x100])
    }

    @Test func everyNextPointerTerminates() {
        // Chains built from every possible next value: the walk ends, without repeats, inside the bytes.
        for step in stride(from: 0, to: 0x1000, by: 0x44) {
            var fixture = ConfigSpaceFixture()
            for offset in stride(from: 0x100, to: 0x1000, by: 4) {
                fixture.extendedCapability(0x000B, at: offset, next: (offset + step) & 0xFFF)
            }
            let offsets = fixture.space.extendedCapabilities().map(\.offset)
            #expect(!offsets.isEmpty)
            #expect(Set(offsets).count == offsets.count)
            #expect(offsets.allSatisfy { $0 >= 0x100 && $0 <= 0xFFC })
        }
    }
}

@Suite struct PCIExpressCapabilityTests {
    /// An endpoint with a PCI Express capability at 0x60, after a PM capability at 0x40.
    static func endpoint(devcap: UInt32, linkCap: UInt32, linkStatus: UInt16) -> ConfigSpace {
        var fixture = ConfigSpaceFixture()
        fixture.capabilityList(first: 0x40)
        fixture.capability(Capability.powerManagement, at: 0x40, next: 0x60)
        fixture.capability(Capability.pciExpress, at: 0x60, next: 0)
        fixture.put32(devcap, at: 0x64)
        fixture.put32(linkCap, at: 0x6C)
        fixture.put16(linkStatus, at: 0x72)
        return fixture.space
    }

    @Test func linkCapabilitiesAndStatus() {
        // Gen5 x16 capable, running Gen4 x8, trained and active.
        let space = Self.endpoint(
            devcap: 1 << 28, linkCap: 0x0040_0105,
            linkStatus: 0x2000 | 0x0080 | 0x0004)
        #expect(space.pciExpressCapability?.offset == 0x60)
        #expect(space.linkCapabilities?.maxSpeedCode == 5)
        #expect(space.linkCapabilities?.maxWidth == 16)
        let status = space.linkStatus
        #expect(status?.currentSpeedCode == 4)
        #expect(status?.width == 8)
        #expect(status?.linkTraining == false)
        #expect(status?.dataLinkLayerLinkActive == true)
        #expect(space.supportsFunctionLevelReset == true)
    }

    @Test func linkTrainingAndNoFLR() {
        let space = Self.endpoint(devcap: 0x0000_8FC0, linkCap: 0x0000_0083, linkStatus: 0x0800 | 0x0011)
        #expect(space.linkStatus?.linkTraining == true)
        #expect(space.linkStatus?.dataLinkLayerLinkActive == false)
        #expect(space.linkStatus?.width == 1)
        #expect(space.linkStatus?.currentSpeedCode == 1)
        #expect(space.linkCapabilities?.maxWidth == 8)
        #expect(space.supportsFunctionLevelReset == false)
    }

    @Test func linkStatusBuiltFromFields() {
        let status = PCIeLinkStatus(
            speedCode: 4, width: 16, linkTraining: true, dataLinkLayerLinkActive: true)
        #expect(status.raw == 0x2904)
        #expect(PCIeLinkStatus(raw: status.raw) == status)
    }

    @Test func noPCIExpressCapability() {
        var fixture = ConfigSpaceFixture()
        fixture.capabilityList(first: 0x40)
        fixture.capability(Capability.powerManagement, at: 0x40, next: 0)
        #expect(fixture.space.pciExpressCapability == nil)
        #expect(fixture.space.linkStatus == nil)
        #expect(fixture.space.linkCapabilities == nil)
        #expect(fixture.space.supportsFunctionLevelReset == nil)
    }

    @Test func registersCutOffAreNil() {
        var fixture = ConfigSpaceFixture(size: 0x6C)
        fixture.capabilityList(first: 0x60)
        fixture.capability(Capability.pciExpress, at: 0x60, next: 0)
        fixture.put32(1 << 28, at: 0x64)
        #expect(fixture.space.supportsFunctionLevelReset == true)
        #expect(fixture.space.linkCapabilities == nil)
        #expect(fixture.space.linkStatus == nil)
    }
}
