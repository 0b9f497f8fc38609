import Testing

@testable import Passthrough

@Suite struct NvidiaGPUCapabilityTests {
    /// A GPU whose NVIDIA DVSEC (when present) sits second in the chain, after a CXL DVSEC.
    static func gpu(bitmap: UInt16?) -> ConfigSpace {
        var fixture = ConfigSpaceFixture(vendor: 0x10DE, device: 0x2941)
        fixture.dvsec(at: 0x100, next: bitmap == nil ? 0 : 0x140, vendor: 0x1E98, id: 0)
        if let bitmap {
            fixture.dvsec(at: 0x140, next: 0, vendor: 0x10DE, id: 3, length: 0x10)
            fixture.put16(bitmap, at: 0x14A)
        }
        return fixture.space
    }

    @Test func absentDVSECMeansTheBug() {
        let space = Self.gpu(bitmap: nil)
        #expect(space.nvidiaGPUCapabilityBitmap == nil)
        #expect(space.hasMigHardwareBug)
    }

    @Test func bitClearMeansTheBug() {
        let space = Self.gpu(bitmap: 0xFFFE)
        #expect(space.nvidiaGPUCapabilityBitmap == 0xFFFE)
        #expect(space.hasMigHardwareBug)
    }

    @Test func bitSetMeansNoBug() {
        let space = Self.gpu(bitmap: 0x0001)
        #expect(space.nvidiaGPUCapabilityBitmap == 0x0001)
        #expect(!space.hasMigHardwareBug)
    }

    @Test func otherVendorsDVSECID3DoesNotCount() {
        var fixture = ConfigSpaceFixture()
        fixture.dvsec(at: 0x100, next: 0, vendor: 0x1E98, id: 3)
        fixture.put16(0x0001, at: 0x10A)
        #expect(fixture.space.hasMigHardwareBug)
    }

    @Test func truncatedConfigMeansTheBug() {
        // With only conventional space there is no DVSEC to find, as the kernel would conclude.
        let space = ConfigSpace(Array(Self.gpu(bitmap: 0x0001).bytes.prefix(256)))
        #expect(space.hasMigHardwareBug)
    }
}
