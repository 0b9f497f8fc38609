import Testing

@testable import Passthrough

@Suite struct CXLRange1SizeLowTests {
    @Test(arguments: [
        (UInt8(0), 1), (1, 4), (2, 16), (3, 64), (4, 256), (5, 256), (6, 256), (7, 256),
    ])
    func timeoutCode(code: UInt8, seconds: Int) {
        // Valid but not yet active, as a device reads while its memory trains.
        let raw = UInt32(code) << 13 | 0x1
        let register = CXLRange1SizeLow(raw: raw)
        #expect(register.activeTimeoutCode == code)
        #expect(register.activeTimeoutSeconds == seconds)
        #expect(register.memoryInfoValid)
        #expect(!register.memoryActive)
        #expect(register.readiness == .notReady)
        #expect(
            CXLRange1SizeLow(memoryInfoValid: true, memoryActive: false, activeTimeoutCode: code) == register)
    }

    @Test func qemuValue() {
        let register = CXLRange1SizeLow(raw: 0x1000_004B)
        #expect(register.memoryInfoValid)
        #expect(register.memoryActive)
        #expect(register.activeTimeoutCode == 0)
        #expect(register.activeTimeoutSeconds == 1)
        #expect(register.sizeLowUnits == 1)
        #expect(register.sizeLowMiB == 256)
        #expect(!register.isAllOnes)
        #expect(register.readiness == .ready)
    }

    @Test func allOnesIsGoneNotReady() {
        let register = CXLRange1SizeLow(raw: 0xFFFF_FFFF)
        #expect(register.isAllOnes)
        // The bits read as set, which is exactly why all-ones must be checked first.
        #expect(register.memoryInfoValid && register.memoryActive)
        #expect(register.readiness == .gone)
    }

    @Test func notValidNotActive() {
        #expect(CXLRange1SizeLow(raw: 0).readiness == .notReady)
        #expect(CXLRange1SizeLow(raw: 0x2).readiness == .notReady)
        #expect(CXLRange1SizeLow(raw: 0x3).readiness == .ready)
    }

    @Test func sizeLowField() {
        #expect(CXLRange1SizeLow(raw: 0xF000_0003).sizeLowMiB == 15 * 256)
        let built = CXLRange1SizeLow(
            memoryInfoValid: true, memoryActive: true, activeTimeoutCode: 4, sizeLowUnits: 2)
        #expect(built.raw == 0x2000_8003)
        #expect(built.activeTimeoutSeconds == 256)
    }

    @Test func registerInAllOnesSpaceAndMissingDVSEC() {
        var fixture = ConfigSpaceFixture.qemuCXLType3()
        fixture.put32(0xFFFF_FFFF, at: 0x128)
        #expect(fixture.space.cxlRange1SizeLow()?.register.readiness == .gone)

        #expect(ConfigSpaceFixture().space.cxlRange1SizeLow() == nil)
        // The register itself cut off by a short read.
        let short = ConfigSpace(Array(ConfigSpaceFixture.qemuCXLType3().bytes.prefix(0x128)))
        #expect(short.findDVSEC(vendor: 0x1E98, id: 0) != nil)
        #expect(short.cxlRange1SizeLow() == nil)
    }
}
