import Passthrough
import PassthroughSimulator
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real H200 passed through to a KVM guest, replayed from its capture and read by the real code:
/// libpci, the inventory, config space parsing and the reset planner.
@Suite("H200 capture")
struct H200CaptureTests {
    let gpu = bdf("0000:00:06.0")

    @Test("the fixture predates format and version and reads as version 1; failed reads keep their errno")
    func fixtureFormat() throws {
        let capture = try CaptureFixtures.h200()
        #expect(capture.format == nil && capture.version == nil)
        #expect(capture.devices.count == 7 && capture.iommuGroups.isEmpty)
        #expect(capture.drivers["nvidia"] == ["0000:00:06.0"] && capture.modules == ["nvidia", "nvidia_uvm"])
        let function = try #require(capture.devices["0000:00:06.0"])
        #expect(
            function.attributes["power/autosuspend_delay_ms"]
                == .failed(errno: 5, error: "Input/output error"))
        #expect(function.config.count == 4096 && function.configLength == 4096)
        #expect(function.linkName("driver") == "nvidia" && function.linkName("iommu_group") == nil)
        #expect(function.files["resource2"] == 256 << 30)

        // Written again it gains format and version, and reads back the same.
        let again = try HostCapture.decode(capture.encoded())
        #expect(again.format == HostCapture.formatName && again.version == HostCapture.currentVersion)
        #expect(again.devices == capture.devices && again.drivers == capture.drivers)
    }

    @Test("libpci lists all seven functions of the tree the capture builds, with no kernel behind it")
    func plainTree() throws {
        let folder = try TestFolder()
        let root = SysfsRoot(path: folder.path + "/sys")
        _ = try CaptureTreeBuilder(try CaptureFixtures.h200()).build(at: root)
        let functions = try PCIScanner.scan(root)
        #expect(
            functions.map(\.bdf.description) == [
                "0000:00:00.0", "0000:00:01.0", "0000:00:02.0", "0000:00:03.0", "0000:00:04.0",
                "0000:00:05.0",
                "0000:00:06.0",
            ])
        // Links are relative and resolve inside the tree.
        let base = root.device(gpu)
        #expect(root.readLink(base + "/driver") == "../../../bus/pci/drivers/nvidia")
        #expect(root.resolve(base + "/driver") == root.resolve("bus/pci/drivers/nvidia"))
        #expect(root.readLink(base) == "../../../devices/pci0000:00/0000:00:06.0")
    }

    @Test("the inventory sees one GPU at 0000:00:06.0: identity, driver, BARs, link, reset methods")
    func inventory() throws {
        try withH200Host { host in
            let gpus = try HostInventory(root: host.root).scan()
            #expect(gpus.map(\.bdf) == ["0000:00:06.0"])
            let gpu = try #require(gpus.first)
            #expect(gpu.vendorId == "0x10de" && gpu.deviceId == "0x2335")
            #expect(gpu.subsystemVendorId == "0x10de" && gpu.subsystemDeviceId == "0x18bf")
            // Debian 12's pci.ids predates the H200, so graced's own table names it (a newer file
            // gives the same name).
            #expect(gpu.deviceName == "GH100 [H200 SXM 141GB]" && gpu.nameSource != .unnamed)
            #expect(gpu.classCode == "0x030200" && gpu.revision == "0xa1")
            #expect(gpu.driver == "nvidia")
            #expect(gpu.bars.map(\.index) == [0, 2, 4])
            #expect(gpu.bars.map(\.size) == [16 << 20, 256 << 30, 32 << 20])
            #expect(gpu.bars.allSatisfy { $0.is64Bit && $0.prefetchable })
            #expect(gpu.link == PCILink(currentSpeed: 32, currentWidth: 16, maxSpeed: 32, maxWidth: 16))
            #expect(gpu.resetMethods == ["flr"])
            #expect(gpu.readinessProbe == .pci && gpu.state == .ready && gpu.memory == nil)
            #expect(gpu.parentBridge == nil)
        }
    }

    @Test("no IOMMU group, NUMA node -1 and driver_override (null) read as unknown and none")
    func unknowns() throws {
        try withH200Host { host in
            let gpu = try #require(try HostInventory(root: host.root).scan().first)
            #expect(gpu.iommuGroup == nil && gpu.numaNode == nil && gpu.driverOverride == nil)
            let base = host.root.device(self.gpu)
            #expect(host.root.readOptionalString(base + "/numa_node") == "-1")
            #expect(host.root.readOptionalString(base + "/driver_override") == "(null)")
            #expect(!host.root.exists(base + "/iommu_group") && host.root.list("kernel/iommu_groups").isEmpty)
            // The attribute whose read failed with EIO is absent: readers see what a failed read gives them.
            #expect(!host.root.exists(base + "/power/autosuspend_delay_ms"))
            #expect(host.root.readOptionalString(base + "/power/control") == "on")
        }
    }

    @Test("the extended capability walk steps over the hypervisor's Null headers to the serial number")
    func extendedCapabilities() throws {
        try withH200Host { host in
            let config = ConfigSpace(try host.root.readBytes(host.root.device(gpu) + "/config"))
            #expect(config.count == 4096)
            let chain = config.extendedCapabilities()
            #expect(chain.map(\.offset) == [0x100, 0x12c, 0x134, 0x1b8, 0x248, 0x250, 0x2a4, 0x2b8, 0x2f0])
            #expect(chain.map(\.id) == [0, 0x18, 0, 0x1, 0, 0, 0xb, 0x4, 0x3])
            #expect(config.extendedCapability(0x18)?.offset == 0x12c)  // Latency Tolerance Reporting
            #expect(config.extendedCapability(ExtendedCapability.advancedErrorReporting)?.offset == 0x1b8)
            #expect(config.extendedCapability(0x0b)?.offset == 0x2a4)  // vendor-specific
            #expect(config.extendedCapability(0x04)?.offset == 0x2b8)  // Power Budgeting
            let serial = try #require(config.extendedCapability(ExtendedCapability.deviceSerialNumber))
            #expect(serial.offset == 0x2f0 && config.bytes[0x2f4..<0x2fc].allSatisfy { $0 == 0 })
            // Conventional capabilities: PM, MSI, PCI Express, MSI-X.
            #expect(config.capabilities().map(\.offset) == [0x40, 0x48, 0x60, 0xb0])
            #expect(config.supportsFunctionLevelReset == true)
            #expect(config.linkCapabilities?.maxWidth == 16)
        }
    }

    @Test("a reset is refused while nvidia holds the GPU; the resolution says to bind it to vfio-pci first")
    func resetRefused() throws {
        try withH200Host { host in
            let plan = ResetPlanner(root: host.root, processes: ProcessTable(procRoot: host.procRoot)).plan(
                gpu)
            #expect(plan.method == "flr" && plan.availableMethods == ["flr"])
            let refusal = try #require(plan.refusal)
            #expect(refusal.code == .held && refusal.kind == .inTheWay)
            #expect(refusal.holders.map(\.bdf) == [gpu] && refusal.holders.first?.driver == "nvidia")
            #expect(refusal.resolution.contains("bind it to vfio-pci first"))
            #expect(plan.writes.isEmpty)
        }
    }

    @Test("the simulated kernel binds the captured GPU to vfio-pci and resets it, as on the demo host")
    func kernelSemantics() async throws {
        let host = try SimulatedHost.createTemporary(
            prefix: "graceapi-h200", from: try CaptureFixtures.h200())
        defer { try? host.removeFiles() }
        try host.kernel.perform(.driverOverride(gpu, "vfio-pci"))
        try host.kernel.perform(.unbind(gpu, driver: "nvidia"))
        try host.kernel.perform(.driversProbe(gpu))
        #expect(host.root.linkName(host.root.device(gpu) + "/driver") == "vfio-pci")
        #expect(host.root.list("bus/pci/drivers/nvidia").filter { BDF($0) != nil }.isEmpty)
        // power/control stays `on` as captured, so the idle VFIO device does not suspend.
        #expect(host.kernel.runtimePower(gpu) == .active)

        let planner = ResetPlanner(root: host.root, processes: ProcessTable(procRoot: host.procRoot))
        #expect(planner.plan(gpu).refusal == nil)
        try host.kernel.setFaults(SimulatorFaults(readyAfterMs: 50), for: gpu)
        try host.kernel.perform(.reset(gpu))
        // A plain PCI device reads all-ones while in reset, then comes back.
        let config = host.root.device(gpu) + "/config"
        #expect(ConfigSpace(try host.root.readBytes(config)).isAllOnes)
        let back = try await waitUntil { host.kernel.isReady(gpu) == true }
        #expect(back != nil)
        #expect(ConfigSpace(try host.root.readBytes(config)).deviceID == 0x2335)
    }
}
