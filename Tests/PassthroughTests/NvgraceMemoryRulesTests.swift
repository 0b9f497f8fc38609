import SystemPackage
import Testing

@testable import Passthrough

private let mib: UInt64 = 1 << 20
private let gib: UInt64 = 1 << 30
/// Where a GH200's device memory typically starts in the host physical map.
private let base: UInt64 = 0x4000_0000_0000

@Suite struct NvgraceMemoryRulesTests {
    func layout(_ length: UInt64, bug: Bool) throws -> DeviceMemory {
        try NvgraceMemoryRules.layout(
            physicalBase: base, length: length, hasMigHardwareBug: bug, source: "test")
    }

    /// The invariants every layout keeps, whatever the length.
    func checkInvariants(_ memory: DeviceMemory) {
        #expect(memory.regions.first?.physicalBase == memory.physicalBase)
        #expect(memory.regions.reduce(0) { $0 + $1.length } == memory.length)
        for (region, next) in zip(memory.regions, memory.regions.dropFirst()) {
            #expect(region.physicalBase + region.length == next.physicalBase)
        }
        for region in memory.regions {
            #expect(region.reportedSize.nonzeroBitCount == 1)
            #expect(region.reportedSize >= region.length)
            #expect(region.holeBytes == region.reportedSize - region.length)
        }
    }

    @Test func graceHopper96GiB() throws {
        let memory = try layout(0x18_0000_0000, bug: true)
        #expect(memory.length == 96 * gib)
        #expect(memory.migHardwareBug)
        #expect(memory.source == "test")
        #expect(
            memory.regions == [
                MemoryRegion(
                    name: .usemem, bar: 4, physicalBase: base, length: 95 * gib, reportedSize: 128 * gib),
                MemoryRegion(
                    name: .resmem, bar: 2, physicalBase: base + 95 * gib, length: gib, reportedSize: gib),
            ])
        #expect(memory.regions[0].holeBytes == 33 * gib)
        #expect(memory.regions[1].holeBytes == 0)
        checkInvariants(memory)
    }

    @Test func graceHopper144GiB() throws {
        let memory = try layout(144 * gib, bug: true)
        #expect(memory.regions.map(\.name) == [.usemem, .resmem])
        #expect(memory.regions[0].length == 143 * gib)
        #expect(memory.regions[0].reportedSize == 256 * gib)
        #expect(memory.regions[0].holeBytes == 113 * gib)
        #expect(memory.regions[1].physicalBase == base + 143 * gib)
        #expect(memory.regions[1].length == gib)
        #expect(memory.regions[1].reportedSize == gib)
        checkInvariants(memory)
    }

    @Test func graceHopperUnalignedLength() throws {
        // 95.875 GiB: usemem is rounded down to 512 MiB blocks; the remainder joins resmem.
        let memory = try layout(0x17_F800_0000, bug: true)
        let usemem = memory.regions[0]
        let resmem = memory.regions[1]
        #expect(usemem.length == 0x17_A000_0000)
        #expect(usemem.length == 94 * gib + 512 * mib)
        // Sized from 94.875 GiB, before the round-down.
        #expect(usemem.reportedSize == 128 * gib)
        #expect(resmem.physicalBase == base + 0x17_A000_0000)
        #expect(resmem.length == gib + 384 * mib)
        #expect(resmem.reportedSize == 2 * gib)
        #expect(resmem.holeBytes == 640 * mib)
        checkInvariants(memory)
    }

    @Test func graceBlackwell192GiB() throws {
        let memory = try layout(192 * gib, bug: false)
        #expect(!memory.migHardwareBug)
        #expect(
            memory.regions == [
                MemoryRegion(
                    name: .usemem, bar: 4, physicalBase: base, length: 192 * gib, reportedSize: 256 * gib)
            ])
        #expect(memory.regions[0].holeBytes == 64 * gib)
        checkInvariants(memory)
    }

    @Test(arguments: [(UInt64(96), UInt64(128)), (186, 256), (288, 512), (256, 256), (1, 1)])
    func graceBlackwellReportedSize(lengthGiB: UInt64, reportedGiB: UInt64) throws {
        let memory = try layout(lengthGiB * gib, bug: false)
        #expect(memory.regions.count == 1)
        #expect(memory.regions[0].length == lengthGiB * gib)
        #expect(memory.regions[0].reportedSize == reportedGiB * gib)
        checkInvariants(memory)
    }

    @Test func graceBlackwellDoesNotRoundDown() throws {
        // Without the bug there is no 512 MiB rule: odd lengths are kept whole.
        let memory = try layout(0x17_F800_0001, bug: false)
        #expect(memory.regions[0].length == 0x17_F800_0001)
        #expect(memory.regions[0].reportedSize == 128 * gib)
    }

    @Test func zeroLengthIsNoMemory() {
        #expect(throws: NvgraceMemoryError.noMemory) { try layout(0, bug: true) }
        #expect(throws: NvgraceMemoryError.noMemory) { try layout(0, bug: false) }
        #expect(NvgraceMemoryError.noMemory.errno == Errno.noMemory)
    }

    @Test func shorterThanTheCarveOutOverflows() {
        #expect(throws: NvgraceMemoryError.overflow(physicalBase: base, length: 512 * mib)) {
            try layout(512 * mib, bug: true)
        }
        #expect(NvgraceMemoryError.overflow(physicalBase: 0, length: 0).errno == Errno.overflow)
    }

    @Test func nothingLeftAfterRoundDownIsInvalid() {
        // Exactly the carve-out, and the carve-out plus less than one block.
        #expect(throws: NvgraceMemoryError.noUsableMemory(length: gib)) { try layout(gib, bug: true) }
        #expect(throws: NvgraceMemoryError.noUsableMemory(length: gib + 511 * mib)) {
            try layout(gib + 511 * mib, bug: true)
        }
        #expect(NvgraceMemoryError.noUsableMemory(length: 0).errno == .invalidArgument)
    }

    @Test func smallestGraceHopperLayout() throws {
        let memory = try layout(gib + 512 * mib, bug: true)
        #expect(memory.regions[0].length == 512 * mib)
        #expect(memory.regions[0].reportedSize == 512 * mib)
        #expect(memory.regions[1].length == gib)
        checkInvariants(memory)
    }

    @Test func baseOverflowIsAnError() {
        #expect(throws: NvgraceMemoryError.self) {
            try NvgraceMemoryRules.layout(
                physicalBase: UInt64.max - gib, length: 4 * gib, hasMigHardwareBug: true, source: "test")
        }
    }

    @Test func hugeLengthsDoNotTrap() {
        // The BAR size would need 2^64: refused rather than wrapped.
        #expect(throws: NvgraceMemoryError.self) {
            try NvgraceMemoryRules.layout(
                physicalBase: 0, length: (1 << 63) + 1, hasMigHardwareBug: false, source: "test")
        }
    }

    @Test func roundUpToPowerOfTwo() {
        #expect(NvgraceMemoryRules.roundUpToPowerOfTwo(0) == nil)
        #expect(NvgraceMemoryRules.roundUpToPowerOfTwo(1) == 1)
        #expect(NvgraceMemoryRules.roundUpToPowerOfTwo(3) == 4)
        #expect(NvgraceMemoryRules.roundUpToPowerOfTwo(gib) == gib)
        #expect(NvgraceMemoryRules.roundUpToPowerOfTwo(gib + 1) == 2 * gib)
        #expect(NvgraceMemoryRules.roundUpToPowerOfTwo(1 << 63) == 1 << 63)
        #expect(NvgraceMemoryRules.roundUpToPowerOfTwo((1 << 63) + 1) == nil)
    }
}
