import SystemPackage
import Testing

@testable import Passthrough
@testable import PassthroughSimulator

/// The checks one observation at a time, over hand-written config bytes and sysfs files.
struct ReadinessProbeTests {
    // MARK: Generic PCI

    @Test func pciReadyWhenIDsAndLinkAreBack() throws {
        try withReadinessTree { tree in
            #expect(tree.probe(.pci).observe(elapsedMs: 0) == .ready)
        }
    }

    @Test func changedIDsAreNotReadyAndNameBoth() throws {
        try withReadinessTree { tree in
            // A GPU that came back in recovery mode answers with another device ID.
            try tree.write(config: ReadinessTree.config(device: 0x2300))
            let observation = tree.probe(.pci).observe(elapsedMs: 0)
            #expect(observation == .notReady("IDs read 10de:2300, expected 10de:2342"))
        }
    }

    @Test func allOnesAndCRSAreNotReadyNotGone() throws {
        try withReadinessTree { tree in
            try tree.write(config: [UInt8](repeating: 0xFF, count: 4096))
            try tree.write("power_state", "D3cold")
            #expect(
                tree.probe(.pci).observe(elapsedMs: 0)
                    == .notReady("config space reads all-ones (power_state D3cold)"))
            var crs = ReadinessTree.config()
            crs[0] = 0x01
            crs[1] = 0x00
            try tree.write(config: crs)
            let observation = tree.probe(.pci).observe(elapsedMs: 0)
            guard case .notReady(let why) = observation else {
                Issue.record("CRS read as \(observation)")
                return
            }
            #expect(why.hasPrefix("CRS"))
        }
    }

    @Test func missingFolderOrConfigIsGone() throws {
        try withReadinessTree { tree in
            tree.delete("config")
            #expect(tree.probe(.pci).observe(elapsedMs: 0) == .gone("config unreadable: ENOENT"))
            try tree.files.removeTree(tree.devicePath)
            let observation = tree.probe(.pci).observe(elapsedMs: 0)
            guard case .gone(let why) = observation else {
                Issue.record("a vanished device read as \(observation)")
                return
            }
            #expect(why.contains("0000:41:00.0"))
        }
    }

    @Test func linkTrainingIsNotReady() throws {
        try withReadinessTree { tree in
            let training = PCIeLinkStatus(
                speedCode: 1, width: 16, linkTraining: true, dataLinkLayerLinkActive: false)
            try tree.write(config: ReadinessTree.config(linkStatus: training))
            #expect(
                tree.probe(.pci).observe(elapsedMs: 0) == .notReady("link is training (Link Status 0x0901)"))
        }
    }

    @Test func aDegradedLinkIsNotReady() throws {
        try withReadinessTree { tree in
            // Link Status says what the kernel's current_link_speed/width files would: 8 GT/s x4.
            let degraded = PCIeLinkStatus(
                speedCode: 3, width: 4, linkTraining: false, dataLinkLayerLinkActive: true)
            try tree.write(config: ReadinessTree.config(linkStatus: degraded))
            #expect(
                tree.probe(.pci).observe(elapsedMs: 0)
                    == .notReady("link at 8 GT/s x4, expected 32 GT/s x16"))
            // A poll after the first reads Link Status at the offset the first found.
            let probe = tree.probe(.pci)
            _ = probe.observe(elapsedMs: 0)
            #expect(probe.observe(elapsedMs: 1) == .notReady("link at 8 GT/s x4, expected 32 GT/s x16"))
            try tree.write(config: ReadinessTree.config())
            #expect(probe.observe(elapsedMs: 2) == .ready)
            // No PCI Express capability (a conventional PCI function) and no link files: nothing to
            // compare, so no objection.
            var conventional = ConfigSpaceFixture(vendor: 0x10DE, device: 0x2342)
            conventional.put16(0x0006, at: 0x04)
            try tree.write(config: conventional.bytes)
            tree.delete("current_link_speed")
            tree.delete("current_link_width")
            #expect(tree.probe(.pci).observe(elapsedMs: 0) == .ready)
            // A record without a link: nothing is compared.
            try tree.write(config: ReadinessTree.config(linkStatus: degraded))
            var unrecorded = ReadinessTree.expected
            unrecorded.linkSpeed = nil
            unrecorded.linkWidth = nil
            #expect(tree.probe(.pci, expected: unrecorded).observe(elapsedMs: 0) == .ready)
        }
    }

    // MARK: CXL DVSEC

    static func register(valid: Bool, active: Bool, code: UInt8 = 0) -> CXLRange1SizeLow {
        CXLRange1SizeLow(
            memoryInfoValid: valid, memoryActive: active, activeTimeoutCode: code, sizeLowUnits: 3)
    }

    @Test func cxlValidThenActiveIsReady() throws {
        try withReadinessTree { tree in
            let probe = tree.probe(.cxlDVSEC)
            try tree.write(
                config: ReadinessTree.config(cxl: Self.register(valid: false, active: false, code: 2)))
            #expect(
                probe.observe(elapsedMs: 0)
                    == .notReady("waiting for Memory_Info_Valid (Range 1 Size Low 0x30004000)"))
            try tree.write(
                config: ReadinessTree.config(cxl: Self.register(valid: true, active: false, code: 2)))
            #expect(
                probe.observe(elapsedMs: 900)
                    == .notReady(
                        "Memory_Info_Valid seen, waiting for Memory_Active (Range 1 Size Low 0x30004001, up to 16 s)"
                    ))
            // Past the 1 s for valid, but valid was seen: phase 2 runs on its own 16 s.
            #expect(probe.observe(elapsedMs: 16_900).description.hasPrefix("not ready"))
            try tree.write(
                config: ReadinessTree.config(cxl: Self.register(valid: true, active: true, code: 2)))
            #expect(probe.observe(elapsedMs: 16_901) == .ready)
            #expect(
                probe.notes == ["Memory_Info_Valid seen after 900 ms; Memory_Active timeout 16 s (code 2)"])
        }
    }

    @Test func cxlValidMissingForASecondFails() throws {
        try withReadinessTree { tree in
            let probe = tree.probe(.cxlDVSEC)
            try tree.write(config: ReadinessTree.config(cxl: Self.register(valid: false, active: false)))
            #expect(probe.observe(elapsedMs: 0).description.hasPrefix("not ready"))
            #expect(probe.observe(elapsedMs: 1000).description.hasPrefix("not ready"))
            #expect(
                probe.observe(elapsedMs: 1001)
                    == .failed("Memory_Info_Valid not set within 1 s (Range 1 Size Low 0x30000000)"))
        }
    }

    @Test func cxlWithoutTheDVSECNeverSeesValid() throws {
        try withReadinessTree { tree in
            let probe = tree.probe(.cxlDVSEC)
            #expect(
                probe.observe(elapsedMs: 0).description.hasPrefix("not ready: waiting for Memory_Info_Valid"))
            #expect(
                probe.observe(elapsedMs: 1001)
                    == .failed(
                        "Memory_Info_Valid not set within 1 s (CXL device DVSEC (1e98:0) not found in config space)"
                    ))
        }
    }

    @Test func cxlFollowsTheDVSECWhenItMoves() throws {
        try withReadinessTree { tree in
            let probe = tree.probe(.cxlDVSEC)
            try tree.write(config: ReadinessTree.config(cxl: Self.register(valid: true, active: false)))
            #expect(probe.observe(elapsedMs: 0).description.hasPrefix("not ready: Memory_Info_Valid seen"))
            // Another layout after the reset: a serial number capability first, the DVSEC at 0x110.
            var fixture = ConfigSpaceFixture()
            fixture.bytes = ReadinessTree.config()
            fixture.extendedCapability(ExtendedCapability.deviceSerialNumber, at: 0x100, next: 0x110)
            fixture.dvsec(at: 0x110, next: 0, vendor: CXLRange1SizeLow.dvsecVendorID, id: 0)
            fixture.put32(
                Self.register(valid: true, active: true).raw, at: 0x110 + CXLRange1SizeLow.offsetInDVSEC)
            try tree.write(config: fixture.bytes)
            #expect(probe.observe(elapsedMs: 5) == .ready)
        }
    }

    @Test func cxlActiveMissingPastItsTimeoutFails() throws {
        try withReadinessTree { tree in
            let probe = tree.probe(.cxlDVSEC)
            try tree.write(
                config: ReadinessTree.config(cxl: Self.register(valid: true, active: false, code: 0)))
            #expect(probe.observe(elapsedMs: 10).description.hasPrefix("not ready"))
            #expect(probe.observe(elapsedMs: 1010).description.hasPrefix("not ready"))
            #expect(
                probe.observe(elapsedMs: 1011) == .failed("Memory_Active not set within 1 s (timeout code 0)")
            )
        }
    }

    @Test func cxlAllOnesRegisterIsNotReadyEvenWithItsBitsSet() throws {
        try withReadinessTree { tree in
            try tree.write(config: ReadinessTree.config(cxl: CXLRange1SizeLow(raw: 0xFFFF_FFFF)))
            #expect(
                tree.probe(.cxlDVSEC).observe(elapsedMs: 0)
                    == .notReady("CXL Range 1 Size Low reads all-ones"))
        }
    }

    @Test func cxlChecksTheIDsFirst() throws {
        try withReadinessTree { tree in
            let ready = Self.register(valid: true, active: true)
            try tree.write(config: ReadinessTree.config(device: 0x2300, cxl: ready))
            #expect(
                tree.probe(.cxlDVSEC).observe(elapsedMs: 0)
                    == .notReady("IDs read 10de:2300, expected 10de:2342"))
        }
    }

    @Test func cxlDefaultDeadlineIsOneSecondPlusTheActiveTimeout() {
        #expect(
            CXLDVSECCheck.defaultDeadlineSeconds(
                register: Self.register(valid: false, active: false, code: 0)) == 2)
        #expect(
            CXLDVSECCheck.defaultDeadlineSeconds(register: Self.register(valid: true, active: true, code: 4))
                == 257)
        // Reserved codes are clamped to 256 s, as the kernel does.
        #expect(
            CXLDVSECCheck.defaultDeadlineSeconds(register: Self.register(valid: true, active: true, code: 7))
                == 257)
    }

    // MARK: nvgrace BAR0

    @Test func nvgraceReadsBothWordsThroughTheMapping() throws {
        try withReadinessTree { tree in
            let probe = tree.probe(.nvgraceBAR0)
            try tree.writeBAR0(words: 0)
            #expect(
                probe.observe(elapsedMs: 0)
                    == .notReady("BAR0 C2C link status 0x00, HBM training 0x00 (ready is 0xff)"))
            try tree.writeBAR0(words: NvgraceBAR0Check.readyValue)
            #expect(probe.observe(elapsedMs: 1) == .ready)
            #expect(probe.notes.isEmpty)
        }
    }

    @Test func nvgraceAllOnesNamesThePowerState() throws {
        try withReadinessTree { tree in
            try tree.writeBAR0(words: 0xFFFF_FFFF)
            try tree.write("power_state", "D3hot")
            #expect(
                tree.probe(.nvgraceBAR0).observe(elapsedMs: 0) == .notReady("BAR0 reads all-ones in D3hot"))
            try tree.write("power_state", "D0")
            #expect(tree.probe(.nvgraceBAR0).observe(elapsedMs: 0) == .notReady("BAR0 reads all-ones"))
        }
    }

    @Test func nvgraceDoesNotTouchBAR0WithMemoryDecodingOff() throws {
        try withReadinessTree { tree in
            try tree.writeBAR0(words: NvgraceBAR0Check.readyValue)
            var config = ReadinessTree.config()
            config[0x04] = 0x04  // bus master only
            try tree.write(config: config)
            #expect(
                tree.probe(.nvgraceBAR0).observe(elapsedMs: 0)
                    == .notReady("BAR0 memory decoding is disabled (Command 0x0004)"))
        }
    }

    @Test func nvgraceNeedsTheGenericChecksFirst() throws {
        try withReadinessTree { tree in
            try tree.writeBAR0(words: NvgraceBAR0Check.readyValue)
            try tree.write(config: ReadinessTree.config(device: 0x2300))
            #expect(
                tree.probe(.nvgraceBAR0).observe(elapsedMs: 0)
                    == .notReady("IDs read 10de:2300, expected 10de:2342"))
        }
    }

    @Test func nvgraceWithoutResource0FallsBackOnceWithANote() throws {
        try withReadinessTree { tree in
            let probe = tree.probe(.nvgraceBAR0)
            #expect(probe.observe(elapsedMs: 0) == .ready)
            // Once fallen back it stays the generic check, even if the file shows up with zeros.
            try tree.writeBAR0(words: 0)
            #expect(probe.observe(elapsedMs: 1) == .ready)
            #expect(probe.notes == ["BAR0 resource0 is missing; fell back to the generic PCI checks"])
        }
    }

    @Test func nvgraceMappingErrors() {
        #expect(
            NvgraceBAR0Check.mapFailure(errno: Errno.invalidArgument)
                == .unavailable("BAR0 mapping refused (EINVAL): a driver holds the regions"))
        #expect(
            NvgraceBAR0Check.mapFailure(errno: Errno.operationNotSupportedByDevice)
                == .failed("BAR0 mapping failed: ENODEV"))
    }

    @Test func nvgraceTooSmallBAR0FallsBack() throws {
        try withReadinessTree { tree in
            try tree.files.createSparse(tree.devicePath + "/resource0", size: 0x1000)
            let probe = tree.probe(.nvgraceBAR0)
            #expect(probe.observe(elapsedMs: 0) == .ready)
            #expect(probe.notes.count == 1)
            #expect(probe.notes.first?.hasPrefix("BAR0 is 4096 bytes") == true)
        }
    }

    // MARK: Layout, power, expectation

    @Test func verifyLayoutReportsAChangedBARSize() throws {
        try withReadinessTree { tree in
            #expect(tree.probe(.pci).verifyLayout().isEmpty)
            var shrunk = ReadinessTree.bar2
            shrunk.size = 32 << 30
            try tree.write("resource", ReadinessTree.resource([ReadinessTree.bar0, shrunk]))
            #expect(
                tree.probe(.pci).verifyLayout()
                    == ["BAR 2 size 32 GiB (0x800000000), expected 64 GiB (0x1000000000)"])
        }
    }

    @Test func layoutDifferencesNameEveryField() {
        let moved = BAR(index: 0, start: 0x9b00_0000, size: 32 << 20, is64Bit: false, prefetchable: true)
        let extra = BAR(index: 4, start: 0x1000, size: 4096, is64Bit: false, prefetchable: false)
        let differences = LayoutVerifier.differences(
            expected: [ReadinessTree.bar0, ReadinessTree.bar2], actual: [moved, extra])
        #expect(
            differences == [
                "BAR 0 start 0x9b000000, expected 0x9a000000",
                "BAR 0 is 32-bit, expected 64-bit",
                "BAR 0 is prefetchable, expected non-prefetchable",
                "BAR 2 missing, expected 64 GiB (0x1000000000) at 0x200000000000",
                "BAR 4 appeared: 4 KiB (0x1000) at 0x1000",
            ])
    }

    @Test func verifyLayoutReportsAnUnreadableResourceFile() throws {
        try withReadinessTree { tree in
            tree.delete("resource")
            #expect(tree.probe(.pci).verifyLayout() == ["resource unreadable: ENOENT"])
        }
    }

    @Test func powerStateReadsWhatIsThere() throws {
        try withReadinessTree { tree in
            #expect(
                PowerState.read(bdf: ReadinessTree.device, root: tree.root)
                    == PowerState(state: "D0", runtimeStatus: "active", control: "on"))
            tree.delete("power/control")
            try tree.write("power_state", "D3hot")
            let power = PowerState.read(bdf: ReadinessTree.device, root: tree.root)
            #expect(power == PowerState(state: "D3hot", runtimeStatus: "active", control: nil))
            #expect(power.isD3 && !power.isD3cold)
        }
    }

    @Test func expectationRecordedFromTheTree() throws {
        try withReadinessTree { tree in
            #expect(
                PCIExpectation.record(bdf: ReadinessTree.device, root: tree.root) == ReadinessTree.expected)
            try tree.write(config: [UInt8](repeating: 0xFF, count: 256))
            #expect(PCIExpectation.record(bdf: ReadinessTree.device, root: tree.root) == nil)
        }
    }
}
