import Testing

@testable import Passthrough
@testable import PassthroughSimulator

#if canImport(Glibc)
    import Glibc
#endif

/// The simulated host: its tree, its config spaces, and (in the nested suites) its kernel.
@Suite struct SimulatorTests {
    static let gpus = [
        "0008:01:00.0", "0009:01:00.0", "0019:01:00.0", "0029:01:00.0", "0039:01:00.0", "0000:c3:00.0",
    ]
    static let bridges = [
        "0000:00:01.0", "0000:c0:01.0", "0000:c1:00.0", "0000:c2:00.0", "0000:c2:01.0", "0008:00:00.0",
        "0009:00:00.0", "0019:00:00.0", "0029:00:00.0", "0039:00:00.0",
    ]
    static let others = ["0000:01:00.0", "0000:c3:00.1", "0000:c4:00.0"]

    @Test func treeListsEveryFunction() throws {
        try withDemoHost { host in
            let expected = (Self.gpus + Self.bridges + Self.others).sorted()
            #expect(host.root.list("bus/pci/devices") == expected)
            #expect(host.kernel.presentDevices.map(\.description) == expected)
            for name in ["nvidia", "nvgrace_gpu_vfio_pci", "vfio-pci", "mlx5_core", "nvme"] {
                #expect(host.root.exists("bus/pci/drivers/\(name)/bind"))
                #expect(host.root.exists("bus/pci/drivers/\(name)/unbind"))
            }
            #expect(host.root.exists("bus/pci/drivers_probe"))
            #expect(host.root.exists("bus/pci/rescan"))
        }
    }

    @Test func gh200AttributesReadLikeSysfs() throws {
        try withDemoHost { host in
            let root = host.root
            let device = root.device(bdf("0009:01:00.0"))
            func read(_ name: String) throws -> String { try root.readString(device + "/" + name) }
            #expect(try read("vendor") == "0x10de")
            #expect(try read("device") == "0x2342")
            #expect(try read("subsystem_vendor") == "0x10de")
            #expect(try read("class") == "0x030200")
            #expect(try read("revision") == "0xa1")
            #expect(try read("numa_node") == "0")
            #expect(try read("current_link_speed") == "32.0 GT/s PCIe")
            #expect(try read("max_link_width") == "16")
            #expect(try read("reset_method") == "flr")
            #expect(try read("driver_override") == "nvgrace_gpu_vfio_pci")
            // Bound to the VFIO variant driver, idle, control auto: runtime suspended.
            #expect(try read("power_state") == "D3hot")
            #expect(try read("power/control") == "auto")
            #expect(try read("power/runtime_status") == "suspended")
            #expect(root.exists(device + "/reset"))
            #expect(root.linkName(device + "/driver") == "nvgrace_gpu_vfio_pci")
            #expect(try root.readString(root.device(bdf("0019:01:00.0")) + "/driver_override") == "(null)")
            #expect(root.linkName(root.device(bdf("0019:01:00.0")) + "/driver") == "nvidia")

            let raw = try root.readBytes(device + "/resource")
            let lines = String(decoding: raw, as: UTF8.self).split(separator: "\n")
            #expect(lines.count == 13)
            #expect(lines[0] == "0x0000642004000000 0x0000642004ffffff 0x0000000000140204")
            #expect(lines[2].hasSuffix(" 0x000000000014220c"))
            #expect(lines[1] == "0x0000000000000000 0x0000000000000000 0x0000000000000000")

            // BAR0 as a sparse file; in D3hot the nvgrace readiness words read all-ones, while the GPU
            // on the native driver stays in D0 and reads 0xFF (ready).
            var status = stat()
            #expect(stat(root.absolute(device + "/resource0"), &status) == 0)
            #expect(status.st_size == 16 << 20)
            let native = root.device(bdf("0019:01:00.0"))
            #expect(try root.readString(native + "/power_state") == "D0")
            for offset in SysfsTreeBuilder.nvgraceReadyOffsets {
                #expect(
                    try root.readBytes(device + "/resource0", offset: offset, count: 4) == [
                        0xFF, 0xFF, 0xFF, 0xFF,
                    ])
                #expect(
                    try root.readBytes(native + "/resource0", offset: offset, count: 4) == [0xFF, 0, 0, 0])
            }
        }
    }

    @Test func bridgesHaveNoResetFileAndNonGPUsKeepTheirClasses() throws {
        try withDemoHost { host in
            for port in Self.bridges {
                let device = host.root.device(bdf(port))
                #expect(try host.root.readString(device + "/class") == "0x060400")
                #expect(!host.root.exists(device + "/reset"))
                #expect(try host.root.readString(device + "/reset_method") == "")
                let lines = try host.root.readString(device + "/resource").split(separator: "\n")
                #expect(lines.count == 17)
            }
            let nic = host.root.device(bdf("0000:c4:00.0"))
            #expect(try host.root.readString(nic + "/class") == "0x020000")
            #expect(host.root.linkName(nic + "/driver") == "mlx5_core")
            let nvme = host.root.device(bdf("0000:01:00.0"))
            #expect(try host.root.readString(nvme + "/class") == "0x010802")
            #expect(try host.root.readString(nvme + "/numa_node") == "-1")
            #expect(host.root.linkName(nvme + "/driver") == "nvme")
        }
    }

    @Test func everyLinkIsRelativeAndResolves() throws {
        try withDemoHost { host in
            let root = host.root
            let real = root.resolve("")!
            for name in root.list("bus/pci/devices") {
                let entry = "bus/pci/devices/\(name)"
                let target = try #require(root.readLink(entry))
                #expect(!target.hasPrefix("/"))
                let folder = try #require(root.resolve(entry))
                #expect(folder.hasPrefix(real + "/devices/pci"))
                #expect(folder.hasSuffix("/" + name))
                for link in ["driver", "iommu_group"] where root.readLink(entry + "/" + link) != nil {
                    #expect(!root.readLink(entry + "/" + link)!.hasPrefix("/"))
                    #expect(root.resolve(entry + "/" + link) != nil, "\(name)/\(link) dangles")
                }
                if let driver = root.linkName(entry + "/driver") {
                    #expect(root.resolve(entry + "/driver") == root.resolve("bus/pci/drivers/\(driver)"))
                    #expect(root.resolve("bus/pci/drivers/\(driver)/\(name)") == folder)
                }
                let group = try #require(root.linkName(entry + "/iommu_group"))
                #expect(root.resolve(entry + "/iommu_group") == root.resolve("kernel/iommu_groups/\(group)"))
                #expect(root.resolve("kernel/iommu_groups/\(group)/devices/\(name)") == folder)
            }
        }
    }

    @Test func parentBridgeIsTheFolderAbove() throws {
        try withDemoHost { host in
            let root = host.root
            func parent(_ device: String) -> String? {
                root.resolve("bus/pci/devices/\(device)")?.split(separator: "/").dropLast().last.map(
                    String.init)
            }
            #expect(parent("0009:01:00.0") == "0009:00:00.0")
            #expect(parent("0008:01:00.0") == "0008:00:00.0")
            #expect(parent("0000:c3:00.0") == "0000:c2:00.0")
            #expect(parent("0000:c2:00.0") == "0000:c1:00.0")
            #expect(parent("0000:c1:00.0") == "0000:c0:01.0")
            #expect(parent("0000:c0:01.0") == "pci0000:c0")
            #expect(parent("0000:01:00.0") == "0000:00:01.0")
        }
    }

    @Test func iommuGroupsAreUniqueExceptTheSwitch() throws {
        try withDemoHost { host in
            let root = host.root
            var groups: [String: [String]] = [:]
            for name in root.list("bus/pci/devices") {
                groups[root.linkName("bus/pci/devices/\(name)/iommu_group")!, default: []].append(name)
            }
            let shared = groups.values.filter { $0.count > 1 }
            let members = ["0000:c3:00.0", "0000:c3:00.1", "0000:c4:00.0"]
            #expect(shared.map { $0.sorted() } == [members])
            let group = root.linkName("bus/pci/devices/0000:c3:00.0/iommu_group")!
            #expect(root.list("kernel/iommu_groups/\(group)/devices") == members)
        }
    }

    @Test func theH100HasAnAudioSiblingInItsGroup() throws {
        try withDemoHost { host in
            let root = host.root
            let audio = root.device(bdf("0000:c3:00.1"))
            #expect(try root.readString(audio + "/class") == "0x040300")
            #expect(try root.readString(audio + "/vendor") == "0x10de")
            #expect(try root.readString(audio + "/device") == "0x22a3")
            #expect(root.linkName(audio + "/driver") == "snd_hda_intel")
            #expect(root.exists("bus/pci/drivers/snd_hda_intel/0000:c3:00.1"))
            #expect(root.resolve(audio)?.split(separator: "/").dropLast().last == "0000:c2:00.0")
            #expect(root.linkName(audio + "/iommu_group") == "6")
            #expect(try root.readString(root.device(bdf("0000:c3:00.0")) + "/reset_method") == "flr bus")
            // Header type bit 7 on both functions of the slot, not on a single-function GPU.
            for (device, multi) in [("0000:c3:00.0", true), ("0000:c3:00.1", true), ("0009:01:00.0", false)] {
                let header = try ConfigReader(root, bdf(device)).u8(0x0E)
                #expect((header & 0x80 != 0) == multi, "\(device)")
                #expect(header & 0x7F == 0)
            }
        }
    }

    @Test func modulesAliasNamesTheVariantDriver() throws {
        try withDemoHost { host in
            #expect(host.modulesAliasPath == host.folder + "/modules.alias")
            let bytes = try SysfsRoot(path: host.folder).readBytes("modules.alias")
            let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("# ") == true)
            for id in ["2342", "2345", "2348", "2941", "31C2", "3182"] {
                #expect(
                    lines.contains("alias vfio_pci:v000010DEd0000\(id)sv*sd*bc*sc*i* nvgrace_gpu_vfio_pci"))
            }
            #expect(lines.filter { $0.hasSuffix(" nvgrace_gpu_vfio_pci") }.count == 6)
            #expect(lines.contains("alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci"))
            for module in ["nvme", "mlx5_core", "nvidia"] {
                #expect(
                    lines.contains { $0.hasPrefix("alias pci:v") && $0.hasSuffix(" " + module) }, "\(module)")
            }
            #expect(
                lines.dropFirst().allSatisfy { $0.hasPrefix("alias ") && $0.split(separator: " ").count == 3 }
            )
        }
    }

    @Test func firmwareMemoryIsHandedOver() throws {
        try withDemoHost { host in
            let memory = host.firmwareMemory
            #expect(memory.count == 5)
            #expect(memory[bdf("0009:01:00.0")]?.length == 0x18_0000_0000)
            #expect(memory[bdf("0029:01:00.0")]?.length == 0x17_F800_0000)
            #expect(memory[bdf("0008:01:00.0")]?.length == 0x30_0000_0000)
            #expect(Set(memory.values.map(\.physicalBase)).count == 5)
            #expect(memory[bdf("0000:c3:00.0")] == nil)
        }
    }

    @Test func createRefusesAnExistingTree() throws {
        try withDemoHost { host in
            #expect(throws: KernelError.self) { try SimulatedHost.create(in: host.folder) }
        }
    }

    @Test func lspciParsesTheTree() throws {
        guard access("/usr/bin/lspci", X_OK) == 0 else { return }
        try withDemoHost { host in
            let result = run(
                "/usr/bin/lspci -A linux-sysfs -O sysfs.path=\(host.root.pciBusPath) -D -nn -vv -k")
            #expect(result.status == 0, "\(result.output)")
            let output = result.output
            for device in Self.gpus + Self.bridges + Self.others {
                #expect(output.contains(device + " "), "lspci lost \(device)")
            }
            #expect(output.contains("[10de:2342] (rev a1)"))
            #expect(output.contains("[10de:2331]"))
            #expect(output.contains("Kernel driver in use: nvgrace_gpu_vfio_pci"))
            #expect(output.contains("Kernel driver in use: vfio-pci"))
            #expect(output.contains("Vendor=1e98 ID=0000"))
            #expect(output.contains("Vendor=10de ID=0003"))
            #expect(output.contains("FLReset+"))
            #expect(output.contains("Speed 32GT/s, Width x16"))
            #expect(output.contains("(64-bit, prefetchable) [size=128G]"))
            #expect(output.contains("Device Serial Number"))
            // The H100's audio function, and the H100 itself flagged multi-function.
            #expect(output.contains("0000:c3:00.1 Audio device [0403]: NVIDIA Corporation"))
            #expect(output.contains("[10de:22a3] (rev a1)"))
            #expect(output.contains("Kernel driver in use: snd_hda_intel"))
            #expect(output.contains("Status: D3 NoSoftRst+"), "the idle VFIO GPUs read D3hot in PMCSR")
        }
    }
}
