import Testing

@testable import Passthrough

@Suite struct DVSECTests {
    @Test func findsSeveralDVSECsInAChain() {
        // AER, then three DVSECs from different owners, then a DSN: only the DVSECs are returned,
        // each identified by its own headers.
        var fixture = ConfigSpaceFixture()
        fixture.extendedCapability(
            ExtendedCapability.advancedErrorReporting, version: 2, at: 0x100, next: 0x148)
        fixture.dvsec(at: 0x148, next: 0x180, vendor: 0x1E98, id: 0, revision: 2, length: 0x3C)
        fixture.dvsec(at: 0x180, next: 0x1C0, vendor: 0x10DE, id: 3, revision: 1, length: 0x10)
        fixture.dvsec(at: 0x1C0, next: 0x200, vendor: 0x1E98, id: 8, revision: 0, length: 0x24)
        fixture.extendedCapability(ExtendedCapability.deviceSerialNumber, at: 0x200, next: 0)
        let space = fixture.space
        #expect(
            space.dvsecs() == [
                DVSEC(offset: 0x148, vendorID: 0x1E98, revision: 2, length: 0x3C, id: 0),
                DVSEC(offset: 0x180, vendorID: 0x10DE, revision: 1, length: 0x10, id: 3),
                DVSEC(offset: 0x1C0, vendorID: 0x1E98, revision: 0, length: 0x24, id: 8),
            ])
        #expect(space.findDVSEC(vendor: 0x1E98, id: 0)?.offset == 0x148)
        #expect(space.findDVSEC(vendor: 0x10DE, id: 3)?.offset == 0x180)
        #expect(space.findDVSEC(vendor: 0x1E98, id: 8)?.offset == 0x1C0)
        // Both halves of the name must match.
        #expect(space.findDVSEC(vendor: 0x10DE, id: 0) == nil)
        #expect(space.findDVSEC(vendor: 0x1E98, id: 3) == nil)
    }

    @Test func firstMatchWins() {
        var fixture = ConfigSpaceFixture()
        fixture.dvsec(at: 0x100, next: 0x140, vendor: 0x1E98, id: 0, revision: 1)
        fixture.dvsec(at: 0x140, next: 0, vendor: 0x1E98, id: 0, revision: 2)
        #expect(fixture.space.findDVSEC(vendor: 0x1E98, id: 0)?.offset == 0x100)
    }

    @Test func dvsecLoopTerminates() {
        var fixture = ConfigSpaceFixture()
        fixture.dvsec(at: 0x100, next: 0x140, vendor: 0x1E98, id: 0)
        fixture.dvsec(at: 0x140, next: 0x100, vendor: 0x10DE, id: 3)
        #expect(fixture.space.dvsecs().map(\.offset) == [0x100, 0x140])
    }

    @Test func dvsecCutOffByTheEndIsSkipped() {
        var fixture = ConfigSpaceFixture(size: 0x108)
        fixture.extendedCapability(ExtendedCapability.designatedVendorSpecific, at: 0x100, next: 0)
        fixture.put32(0x0381_1E98, at: 0x104)
        #expect(fixture.space.extendedCapabilities().count == 1)
        #expect(fixture.space.dvsecs().isEmpty)
    }

    @Test func qemuCXLType3Guest() {
        let space = ConfigSpaceFixture.qemuCXLType3().space
        #expect(space.vendorID == 0x8086)
        #expect(space.deviceID == 0x0D93)
        #expect(
            space.extendedCapabilities() == [
                ExtendedCapability(id: 0x0003, version: 1, offset: 0x100),
                ExtendedCapability(id: 0x0023, version: 1, offset: 0x10C),
            ])
        let dvsec = space.findDVSEC(vendor: CXLRange1SizeLow.dvsecVendorID, id: CXLRange1SizeLow.dvsecID)
        #expect(dvsec == DVSEC(offset: 0x10C, vendorID: 0x1E98, revision: 1, length: 0x38, id: 0))

        let found = space.cxlRange1SizeLow()
        #expect(found?.dvsecOffset == 0x10C)
        let register = found?.register
        #expect(register?.raw == 0x1000_004B)
        #expect(register?.memoryInfoValid == true)
        #expect(register?.memoryActive == true)
        #expect(register?.activeTimeoutCode == 0)
        #expect(register?.activeTimeoutSeconds == 1)
        #expect(register?.sizeLowMiB == 256)
        #expect(register?.readiness == .ready)
        // No NVIDIA DVSEC on this device.
        #expect(space.nvidiaGPUCapabilityBitmap == nil)
    }
}
