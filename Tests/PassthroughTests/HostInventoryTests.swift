import Passthrough
import PassthroughSimulator
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Host inventory")
struct HostInventoryTests {
    @Test("the demo host lists its six GPUs and neither the NIC nor the NVMe drive")
    func demoHostGPUs() throws {
        try withDemoHost { host in
            let gpus = try HostInventory(
                root: host.root,
                firmwareMemory: FirmwareMemoryTable(source: "simulator", entries: host.firmwareMemory)
            ).scan()
            #expect(
                gpus.map(\.bdf) == [
                    "0000:c3:00.0", "0008:01:00.0", "0009:01:00.0", "0019:01:00.0", "0029:01:00.0",
                    "0039:01:00.0",
                ])
            #expect(!gpus.contains { $0.bdf == "0000:c4:00.0" || $0.bdf == "0000:01:00.0" })
            #expect(gpus.allSatisfy { $0.classCode.hasPrefix("0x03") && $0.state == .ready })
        }
    }

    @Test("a GH200 reports its identity, links, group, BARs and the resmem/usemem split with the hole")
    func gh200() throws {
        try withDemoHost { host in
            let inventory = HostInventory(
                root: host.root,
                firmwareMemory: FirmwareMemoryTable(source: "simulator", entries: host.firmwareMemory))
            let gpus = try inventory.scan()
            let gpu = try #require(gpus.first { $0.bdf == "0009:01:00.0" })
            #expect(gpu.vendorId == "0x10de" && gpu.deviceId == "0x2342")
            #expect(gpu.readinessProbe == .nvgraceBAR0)
            #expect(gpu.resetMethods == ["flr"])
            #expect(gpu.parentBridge == "0009:00:00.0")
            #expect(gpu.iommuGroup?.members.map(\.bdf) == ["0009:01:00.0"])
            #expect(gpu.driver == gpu.driverOverride)
            #expect(gpu.bars.map(\.index) == [0, 2, 4])
            let memory = try #require(gpu.memory)
            #expect(memory.source == "simulator" && memory.migHardwareBug && memory.length == 96 << 30)
            let usemem = try #require(memory.regions.first { $0.name == .usemem })
            let resmem = try #require(memory.regions.first { $0.name == .resmem })
            #expect(usemem.bar == 4 && usemem.length == 95 << 30 && usemem.reportedSize == 128 << 30)
            #expect(usemem.holeBytes == 33 << 30)
            #expect(resmem.bar == 2 && resmem.length == 1 << 30 && resmem.reportedSize == 1 << 30)
            #expect(resmem.physicalBase == memory.physicalBase + usemem.length)

            let unaligned = try #require(gpus.first { $0.bdf == "0029:01:00.0" }?.memory)
            #expect(unaligned.length == 0x17F8_0000_00)
            #expect(unaligned.regions.first { $0.name == .usemem }?.length == 0x17A0_0000_00)
            #expect(unaligned.regions.first { $0.name == .resmem }?.reportedSize == 2 << 30)
        }
    }

    @Test("the CXL GPU uses the CXL probe, the H100 shares its group with its audio function and the NIC")
    func otherGPUs() throws {
        try withDemoHost { host in
            let gpus = try HostInventory(root: host.root).scan()
            let cxl = try #require(gpus.first { $0.bdf == "0008:01:00.0" })
            #expect(cxl.readinessProbe == .cxlDVSEC)
            #expect(cxl.memory == nil, "no firmware figures were given, so no layout")
            let h100 = try #require(gpus.first { $0.bdf == "0000:c3:00.0" })
            #expect(h100.readinessProbe == .pci && h100.deviceName == "GH100 [H100 PCIe]")
            #expect(
                h100.iommuGroup?.members == [
                    .init(bdf: "0000:c3:00.0", driver: "vfio-pci"),
                    .init(bdf: "0000:c3:00.1", driver: "snd_hda_intel"),
                    .init(bdf: "0000:c4:00.0", driver: "mlx5_core"),
                ])
            #expect(h100.bars.first { $0.index == 1 }?.size == 128 << 30)
        }
    }

    @Test("class prefixes match by their length")
    func classPrefixes() throws {
        let virtioRNG: UInt32 = 0x00ff00
        #expect(ClassPrefix("0x00ff")?.matches(virtioRNG) == true)
        #expect(ClassPrefix("0x00")?.matches(virtioRNG) == true)
        #expect(ClassPrefix("0xff")?.matches(virtioRNG) == false)
        #expect(
            ClassPrefix("010802")?.matches(0x010802) == true
                && ClassPrefix("010802")?.matches(0x010801) == false)
        for bad in ["", "0x1", "0x123", "0x12345678", "zz", "0x0g"] { #expect(ClassPrefix(bad) == nil) }
    }

    @Test("a selection adds classes and addresses")
    func selection() throws {
        try withDemoHost { host in
            let nvme = try HostInventory(
                root: host.root, selection: DeviceSelection(classPrefixes: [ClassPrefix("0x0108")!])
            )
            .scan()
            #expect(nvme.map(\.bdf) == ["0000:01:00.0"])
            let nic = try HostInventory(
                root: host.root,
                selection: DeviceSelection(classPrefixes: [], addresses: [BDF("0000:c4:00.0")!])
            ).scan()
            #expect(nic.map(\.bdf) == ["0000:c4:00.0"])
        }
    }

    /// The functions of the real-kernel lab guest (QEMU q35 with an IOMMU, Linux 6.1), as measured there.
    @Test("a fixture tree of the lab guest: IDs, reset methods, groups and the CXL DVSEC at 0x10c")
    func labGuestFixture() throws {
        let folder = try TestFolder()
        let root = SysfsRoot(path: folder.path + "/sys")
        let rootPorts = (1...3).map { BDF(domain: 0, bus: 0, device: 0x10 + UInt8($0), function: 0)! }
        let cxlPort = BDF("0000:0c:00.0")!
        var functions = (rootPorts + [cxlPort]).enumerated().map { index, port in
            SimulatedFunction(
                bdf: port, parent: nil, vendor: 0x1b36, device: 0x000c, classCode: 0x060400,
                portType: .rootPort,
                driver: "pcieport", iommuGroup: 20 + index)
        }
        functions += [
            SimulatedFunction(
                bdf: BDF("0000:01:00.0")!, parent: rootPorts[0], vendor: 0x1b36, device: 0x0010,
                classCode: 0x010802,
                bars: [BAR(index: 0, start: 0xfe60_0000, size: 0x4000, is64Bit: true, prefetchable: false)],
                resetMethods: ["flr", "bus"], driver: "nvme", nativeDriver: "nvme", iommuGroup: 1),
            SimulatedFunction(
                bdf: BDF("0000:02:00.0")!, parent: rootPorts[1], vendor: 0x1af4, device: 0x1044,
                classCode: 0x00ff00,
                resetMethods: ["flr", "pm", "bus"], driver: "virtio-pci", nativeDriver: "virtio-pci",
                iommuGroup: 2),
            SimulatedFunction(
                bdf: BDF("0000:03:00.0")!, parent: rootPorts[2], vendor: 0x8086, device: 0x10d3,
                classCode: 0x020000,
                resetMethods: ["pm", "bus"], driver: "e1000e", nativeDriver: "e1000e", iommuGroup: 3),
            SimulatedFunction(
                bdf: BDF("0000:0d:00.0")!, parent: cxlPort, vendor: 0x8086, device: 0x0d93,
                classCode: 0x050210,
                resetMethods: ["bus"], driver: "cxl_pci", nativeDriver: "cxl_pci", iommuGroup: 4,
                serialNumber: 0x1234, cxlRange1: .init(size: 256 << 20, timeoutCode: 0)),
        ]
        let drivers = ["pcieport", "nvme", "virtio-pci", "e1000e", "cxl_pci", "vfio-pci"].map {
            SimulatedDriver(name: $0)
        }
        try SysfsTreeBuilder(root: root, functions: functions, drivers: drivers).build()
        // The register as the guest read it: valid, active, timeout code 0, 256 MiB, plus the media and
        // memory class bits QEMU sets.
        try overwrite(root.absolute("bus/pci/devices/0000:0d:00.0/config"), at: 0x128, with: 0x1000_004b)

        let selection = DeviceSelection(
            classPrefixes: ["0x0108", "0x0502", "0x0200"].compactMap { ClassPrefix($0) },
            addresses: [BDF("0000:02:00.0")!])
        let devices = try HostInventory(root: root, selection: selection).scan()
        #expect(devices.map(\.bdf) == ["0000:01:00.0", "0000:02:00.0", "0000:03:00.0", "0000:0d:00.0"])
        #expect(
            devices.map(\.resetMethods) == [["flr", "bus"], ["flr", "pm", "bus"], ["pm", "bus"], ["bus"]])
        #expect(devices.map(\.driver) == ["nvme", "virtio-pci", "e1000e", "cxl_pci"])
        #expect(devices.map { $0.iommuGroup?.members.count } == [1, 1, 1, 1])
        #expect(
            devices.map(\.vendorName) == [
                "Red Hat, Inc.", "Red Hat, Inc.", "Intel Corporation", "Intel Corporation",
            ])

        let cxl = devices[3]
        #expect(cxl.readinessProbe == .cxlDVSEC && cxl.state == .ready)
        let config = ConfigSpace(try root.readBytes("bus/pci/devices/0000:0d:00.0/config"))
        #expect(config.extendedCapability(ExtendedCapability.deviceSerialNumber)?.offset == 0x100)
        let (offset, register) = try #require(config.cxlRange1SizeLow())
        #expect(offset == 0x10c)
        #expect(
            register.raw == 0x1000_004b && register.activeTimeoutSeconds == 1 && register.sizeLowMiB == 256)
        #expect(devices[0].readinessProbe == .pci)
    }

    @Test("a CXL device whose memory is not active reads as not ready; all-ones config as not ready")
    func instantState() throws {
        try withDemoHost { host in
            let path = host.root.absolute("bus/pci/devices/0008:01:00.0/config")
            let register = try #require(host.kernel.configLayout(for: bdf("0008:01:00.0"))?.cxlRange1SizeLow)
            try overwrite(path, at: register, with: 0x0000_8001)  // valid, not active, timeout code 4
            try overwrite(host.root.absolute("bus/pci/devices/0000:c3:00.0/config"), at: 0, with: 0xffff_ffff)
            let gpus = try HostInventory(root: host.root).scan()
            #expect(gpus.first { $0.bdf == "0008:01:00.0" }?.state == .notReady)
            #expect(gpus.first { $0.bdf == "0000:c3:00.0" }?.state == .notReady)
        }
    }
}

/// Writes a little-endian dword into a file, as a device's config register would read.
func overwrite(_ path: String, at offset: Int, with value: UInt32) throws {
    let fd = open(path, O_WRONLY)
    guard fd >= 0 else { throw KernelError(code: errno, path: path) }
    defer { close(fd) }
    var little = value.littleEndian
    guard pwrite(fd, &little, 4, off_t(offset)) == 4 else { throw KernelError(code: errno, path: path) }
}
