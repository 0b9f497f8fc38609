import Passthrough

#if canImport(Glibc)
    import Glibc
#endif

/// The standard demo host: a sysfs tree in a folder and the kernel that acts on it, so the whole
/// service runs (`graced --simulate`, the tests) without hardware. A real host recorded by
/// `graced capture` can take the demo's place (`create(in:from:)`, `--from-capture`).
///
/// Four GH200 on Grace root ports (one with device memory not 512 MiB aligned), one Blackwell-Next GPU
/// with the CXL device DVSEC, a discrete H100 with an HDMI audio function beside it behind a PCIe
/// switch without ACS (so GPU, audio function and a NIC share one IOMMU group), and an NVMe drive:
/// GPUs bound to nvgrace, nvidia and vfio-pci, and devices that must never be listed as GPUs. The
/// VFIO-bound GPUs start idle, so runtime suspended in D3hot, as a real host leaves them.
///
/// Beside `sys` the folder holds `proc` (simulated processes; pid 1 holds nothing), `dev/vfio` and
/// `modules.alias`.
public struct SimulatedHost: Sendable {
    /// The folder given to `create(in:)`; the tree is its `sys` folder.
    public let folder: String
    public let root: SysfsRoot
    public let kernel: SimulatedKernel
    /// Counts the config space read through `root` (and can make it cost what it costs on a host).
    public var configReads: ConfigReadMeter { root.configReads ?? ConfigReadMeter() }
    /// What the firmware's ACPI `_DSD` would say for each nvgrace GPU; sysfs does not show it.
    public let firmwareMemory: [BDF: FirmwareMemory]

    /// Builds the demo host under `<folder>/sys`. The folder is created if needed; an existing
    /// non-empty `sys` in it is refused (EEXIST) rather than overwritten or deleted.
    public static func create(in folder: String) throws(KernelError) -> SimulatedHost {
        let root = try emptyRoot(in: folder)
        let tree = try SysfsTreeBuilder(root: root, functions: demoFunctions, drivers: demoDrivers)
        try tree.build()
        return try start(tree, in: folder, firmwareMemory: demoFirmwareMemory)
    }

    /// Builds a captured host under `<folder>/sys` (see `CaptureTreeBuilder`): the same kernel
    /// semantics as the demo host, on the devices, drivers and IOMMU groups the capture shows.
    public static func create(in folder: String, from capture: HostCapture) throws(HostCaptureError)
        -> SimulatedHost
    {
        let builder = try CaptureTreeBuilder(capture)
        let root: SysfsRoot
        do {
            root = try emptyRoot(in: folder)
        } catch {
            throw .kernel(error)
        }
        let tree = try builder.build(at: root)
        do {
            return try start(tree, in: folder, firmwareMemory: builder.firmwareMemory)
        } catch {
            throw .kernel(error)
        }
    }

    /// `<folder>/sys`, refused when it exists with something in it.
    private static func emptyRoot(in folder: String) throws(KernelError) -> SysfsRoot {
        let root = SysfsRoot(path: folder + "/sys")
        if access(root.path, F_OK) == 0 && !root.list("").isEmpty {
            throw KernelError(code: EEXIST, path: "")
        }
        return root
    }

    /// The kernel over a built tree, pid 1, and the `modules.alias` beside the tree.
    private static func start(
        _ tree: SysfsTreeBuilder, in folder: String, firmwareMemory: [BDF: FirmwareMemory]
    )
        throws(KernelError) -> SimulatedHost
    {
        let kernel = try SimulatedKernel(tree: tree, hostFolder: folder)
        try kernel.addProcess(pid: 1, command: "systemd")
        try TreeFiles(root: SysfsRoot(path: folder)).create(
            "modules.alias", text: SimulatedModulesAlias.text(nvgraceDevices: nvgraceDeviceIDs.sorted()))
        return SimulatedHost(
            folder: folder, root: tree.root.metered(by: ConfigReadMeter()), kernel: kernel,
            firmwareMemory: firmwareMemory)
    }

    /// The fake `/proc` where simulated holders appear (`<pid>/comm`, `<pid>/fd/<n>`).
    public var procRoot: String { kernel.procRoot }

    /// The fake `/dev`, with `vfio/vfio` and a `vfio/<group>` node per group with a VFIO-bound member.
    public var devRoot: String { kernel.devRoot }

    /// The host's `modules.alias`, with nvgrace_gpu_vfio_pci's device IDs.
    public var modulesAliasPath: String { folder + "/modules.alias" }

    /// Builds the demo host in a new folder under `$TMPDIR`, else `/dev/shm`, else `/tmp`.
    ///
    /// Memory-backed `/dev/shm` is preferred: sysfs lives in memory too, and building the tree on a
    /// shared disk costs a write per attribute (about half a second for the demo host).
    public static func createTemporary(prefix: String = "graceapi-sim") throws(KernelError) -> SimulatedHost {
        try create(in: try temporaryFolder(prefix: prefix))
    }

    /// Builds a captured host in a new temporary folder, removed again when the capture cannot be laid out.
    public static func createTemporary(prefix: String = "graceapi-sim", from capture: HostCapture)
        throws(HostCaptureError) -> SimulatedHost
    {
        // Checked before any folder exists: most bad captures never touch the disk.
        _ = try CaptureTreeBuilder(capture)
        let folder: String
        do {
            folder = try temporaryFolder(prefix: prefix)
        } catch {
            throw .kernel(error)
        }
        do {
            return try create(in: folder, from: capture)
        } catch {
            try? TreeFiles(root: SysfsRoot(path: folder)).removeTree("")
            throw error
        }
    }

    private static func temporaryFolder(prefix: String) throws(KernelError) -> String {
        let base =
            getenv("TMPDIR").map { String(cString: $0) }
            ?? (access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp")
        var template = Array((base + "/" + prefix + "-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw KernelError(code: errno, path: base) }
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Deletes the folder with the tree and anything kept beside it. Pending readiness timers find
    /// their files gone and do nothing.
    public func removeFiles() throws(KernelError) {
        // Everything in the folder goes: the tree and whatever the caller kept beside it (a database).
        try TreeFiles(root: SysfsRoot(path: folder)).removeTree("")
    }

    // MARK: The demo layout

    private static func at(_ text: String) -> BDF { BDF(text)! }

    public static let gh200IDs: Set<UInt16> = [0x2342, 0x2345, 0x2348]
    /// 10de:3182, which pci.ids (2026.08.22) names GB110 [B300 SXM6 AC]; the simulator gives it the
    /// Blackwell-Next shape (the CXL device DVSEC instead of the nvgrace BAR0 registers).
    public static let blackwellNextID: UInt16 = 0x3182
    /// What nvgrace_gpu_vfio_pci claims: the GH200 family, GB200 (0x2941), 0x31C2 and Blackwell-Next.
    public static let nvgraceDeviceIDs: Set<UInt16> = gh200IDs.union([0x2941, 0x31C2, blackwellNextID])
    /// A made-up ID for the H100's HDMI audio function.
    public static let h100AudioID: UInt16 = 0x22a3

    public static let demoDrivers: [SimulatedDriver] = [
        SimulatedDriver(name: "nvidia", vendor: 0x10de, classCode: 0x03_0000, classMask: 0xff_0000),
        SimulatedDriver(
            name: "nvgrace_gpu_vfio_pci", overrideOnly: true, vendor: 0x10de, devices: nvgraceDeviceIDs),
        SimulatedDriver(name: "vfio-pci", overrideOnly: true),
        SimulatedDriver(name: "mlx5_core", vendor: 0x15b3),
        SimulatedDriver(name: "nvme", classCode: 0x01_0802),
        SimulatedDriver(name: "pcieport", classCode: 0x06_0400),
        SimulatedDriver(name: "snd_hda_intel", classCode: 0x04_0300, classMask: 0xff_ff00),
    ]

    /// GH200 number n (0...3) sits in PCI domain 0x0009 + 0x10n.
    private static let gh200Drivers = ["nvgrace_gpu_vfio_pci", "nvidia", "nvgrace_gpu_vfio_pci", "nvidia"]
    private static let gh200MemoryLengths: [UInt64] = [
        0x18_0000_0000, 0x18_0000_0000, 0x17_F800_0000, 0x18_0000_0000,
    ]

    public static let demoFirmwareMemory: [BDF: FirmwareMemory] = {
        var memory: [BDF: FirmwareMemory] = [:]
        for n in 0..<4 {
            memory[at("00\(n)9:01:00.0")] = FirmwareMemory(
                physicalBase: 0x4000_0000_0000 + UInt64(n) * 0x100_0000_0000, length: gh200MemoryLengths[n])
        }
        memory[at("0008:01:00.0")] = FirmwareMemory(physicalBase: 0x4400_0000_0000, length: 0x30_0000_0000)
        return memory
    }()

    private static func rootPort(_ bdf: String, group: Int, numaNode: Int, link: SimulatedFunction.Link)
        -> SimulatedFunction
    {
        SimulatedFunction(
            bdf: at(bdf), parent: nil, vendor: 0x10de, device: 0x22b2, classCode: 0x06_0400,
            portType: .rootPort, numaNode: numaNode, link: link, driver: "pcieport", nativeDriver: "pcieport",
            iommuGroup: group, acs: true, irq: 40 + group)
    }

    public static let demoFunctions: [SimulatedFunction] = {
        var functions: [SimulatedFunction] = []
        let gen5 = SimulatedFunction.Link(generation: 5, width: 16)

        // Grace Hopper: no NVIDIA DVSEC id 3 (the MIG hardware bug), FLR only (the no-bus-reset quirk).
        for n in 0..<4 {
            let port = "00\(n)9:00:00.0"
            let window = 0x6400_0000_0000 + UInt64(n) * 0x40_0000_0000
            functions.append(rootPort(port, group: 9 + 2 * n, numaNode: n, link: gen5))
            let driver = gh200Drivers[n]
            functions.append(
                SimulatedFunction(
                    bdf: at("00\(n)9:01:00.0"), parent: at(port), vendor: 0x10de, device: 0x2342,
                    subsystemVendor: 0x10de, subsystemDevice: 0x16b0, classCode: 0x03_0200, revision: 0xa1,
                    bars: [
                        BAR(
                            index: 0, start: window + 0x20_0400_0000, size: 16 << 20, is64Bit: true,
                            prefetchable: false),
                        BAR(index: 2, start: window, size: 128 << 30, is64Bit: true, prefetchable: true),
                        BAR(
                            index: 4, start: window + 0x20_0000_0000, size: 32 << 20, is64Bit: true,
                            prefetchable: true),
                    ],
                    numaNode: n, link: gen5, resetMethods: ["flr"], driver: driver, nativeDriver: "nvidia",
                    driverOverride: driver == "nvidia" ? nil : driver, iommuGroup: 10 + 2 * n,
                    serialNumber: 0x48b0_2d03_00a1_0000 + UInt64(n), msixTableSize: 6, irq: 60 + n))
        }

        // Blackwell-Next: readiness through the CXL device DVSEC, no MIG bug, bus reset allowed.
        let blackwellWindow: UInt64 = 0x6000_0000_0000
        functions.append(
            rootPort("0008:00:00.0", group: 7, numaNode: 0, link: .init(generation: 6, width: 16)))
        functions.append(
            SimulatedFunction(
                bdf: at("0008:01:00.0"), parent: at("0008:00:00.0"), vendor: 0x10de, device: blackwellNextID,
                subsystemVendor: 0x10de, subsystemDevice: 0x20f0, classCode: 0x03_0200, revision: 0xa1,
                bars: [
                    BAR(
                        index: 0, start: blackwellWindow + 0x40_0400_0000, size: 64 << 20, is64Bit: true,
                        prefetchable: false),
                    BAR(index: 2, start: blackwellWindow, size: 256 << 30, is64Bit: true, prefetchable: true),
                    BAR(
                        index: 4, start: blackwellWindow + 0x40_0000_0000, size: 32 << 20, is64Bit: true,
                        prefetchable: true),
                ],
                numaNode: 0, link: .init(generation: 6, width: 16), resetMethods: ["flr", "bus"],
                driver: "nvgrace_gpu_vfio_pci", nativeDriver: "nvidia",
                driverOverride: "nvgrace_gpu_vfio_pci",
                iommuGroup: 8, serialNumber: 0x48b0_2d03_00b2_0000, msixTableSize: 8,
                nvidiaCapabilityBitmap: 0x0001, cxlRange1: .init(size: 0x30_0000_0000, timeoutCode: 4),
                irq: 58))

        // A discrete H100 and a NIC behind a switch whose downstream ports lack ACS: one IOMMU group.
        functions.append(rootPort("0000:c0:01.0", group: 2, numaNode: 0, link: gen5))
        functions.append(
            SimulatedFunction(
                bdf: at("0000:c1:00.0"), parent: at("0000:c0:01.0"), vendor: 0x1000, device: 0xc030,
                classCode: 0x06_0400, portType: .upstreamPort, numaNode: 0, link: gen5, driver: "pcieport",
                nativeDriver: "pcieport", iommuGroup: 3, irq: 43))
        for (slot, group) in [(0, 4), (1, 5)] {
            functions.append(
                SimulatedFunction(
                    bdf: at("0000:c2:0\(slot).0"), parent: at("0000:c1:00.0"), vendor: 0x1000, device: 0xc030,
                    classCode: 0x06_0400, portType: .downstreamPort, numaNode: 0, link: gen5,
                    driver: "pcieport",
                    nativeDriver: "pcieport", iommuGroup: group, irq: 44 + slot))
        }
        functions.append(
            SimulatedFunction(
                bdf: at("0000:c3:00.0"), parent: at("0000:c2:00.0"), vendor: 0x10de, device: 0x2331,
                subsystemVendor: 0x10de, subsystemDevice: 0x1626, classCode: 0x03_0200, revision: 0xa1,
                bars: [
                    BAR(index: 0, start: 0x9a00_0000, size: 16 << 20, is64Bit: false, prefetchable: false),
                    BAR(
                        index: 1, start: 0x2100_0000_0000, size: 128 << 30, is64Bit: true, prefetchable: true),
                    BAR(index: 3, start: 0x2120_0000_0000, size: 32 << 20, is64Bit: true, prefetchable: true),
                ],
                numaNode: 0, link: gen5, resetMethods: ["flr", "bus"], driver: "vfio-pci",
                nativeDriver: "nvidia",
                driverOverride: "vfio-pci", iommuGroup: 6, serialNumber: 0x48b0_2d03_0031_0000,
                msixTableSize: 6,
                irq: 50))
        // Its HDMI audio function: same slot, so the H100 is multi-function and a bus reset would hit
        // both (the reason the service refuses one while the audio function is in use).
        functions.append(
            SimulatedFunction(
                bdf: at("0000:c3:00.1"), parent: at("0000:c2:00.0"), vendor: 0x10de, device: h100AudioID,
                subsystemVendor: 0x10de, subsystemDevice: 0x1626, classCode: 0x04_0300, revision: 0xa1,
                bars: [
                    BAR(index: 0, start: 0x9b08_0000, size: 16 << 10, is64Bit: false, prefetchable: false)
                ],
                numaNode: 0, link: gen5, resetMethods: ["flr"], driver: "snd_hda_intel",
                nativeDriver: "snd_hda_intel", iommuGroup: 6, irq: 52))
        functions.append(
            SimulatedFunction(
                bdf: at("0000:c4:00.0"), parent: at("0000:c2:01.0"), vendor: 0x15b3, device: 0x1021,
                subsystemVendor: 0x15b3, subsystemDevice: 0x0041, classCode: 0x02_0000,
                bars: [
                    BAR(index: 0, start: 0x2140_0000_0000, size: 32 << 20, is64Bit: true, prefetchable: true)
                ],
                numaNode: 0, link: gen5, resetMethods: ["flr"], driver: "mlx5_core",
                nativeDriver: "mlx5_core",
                iommuGroup: 6, serialNumber: 0xb83f_d203_00a0_1c2e, msixTableSize: 64, irq: 51))

        // An NVMe drive on its own root port.
        functions.append(
            rootPort("0000:00:01.0", group: 0, numaNode: -1, link: .init(generation: 4, width: 4)))
        functions.append(
            SimulatedFunction(
                bdf: at("0000:01:00.0"), parent: at("0000:00:01.0"), vendor: 0x144d, device: 0xa80a,
                subsystemVendor: 0x144d, subsystemDevice: 0xa801, classCode: 0x01_0802,
                bars: [BAR(index: 0, start: 0x7000_0000, size: 16 << 10, is64Bit: true, prefetchable: false)],
                numaNode: -1, link: .init(generation: 4, width: 4), resetMethods: ["flr", "bus"],
                driver: "nvme",
                nativeDriver: "nvme", iommuGroup: 1, msixTableSize: 130, irq: 41))
        return functions
    }()
}
