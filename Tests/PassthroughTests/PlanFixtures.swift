import Passthrough
import PassthroughSimulator

#if canImport(Glibc)
    import Glibc
#endif

/// A fake procfs in a temporary folder: `<pid>/comm` and `<pid>/fd/<n>` links, the shape
/// `ProcessTable` reads.
final class FakeProc {
    let folder: TestFolder
    var path: String { folder.path }
    var table: ProcessTable { ProcessTable(procRoot: path) }

    init() throws {
        folder = try TestFolder()
    }

    /// A process with `comm` (written with the kernel's trailing newline) and one link per target.
    func add(pid: Int32, command: String?, openFiles: [String]) throws {
        try folder.makeDirectory("\(pid)/fd")
        if let command { try writeText(path + "/\(pid)/comm", command + "\n") }
        for (index, target) in openFiles.enumerated() {
            guard symlink(target, path + "/\(pid)/fd/\(index)") == 0 else {
                throw KernelError(code: errno, path: "\(pid)/fd/\(index)")
            }
        }
    }
}

/// Replaces a file's content (creating it if needed).
func writeText(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw KernelError(code: errno, path: path) }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
        throw KernelError(code: errno, path: path)
    }
}

/// modules.alias as kmod writes it for a kernel with nvgrace-gpu, reduced to the lines that matter.
let demoModulesAlias = """
    # Aliases extracted from modules themselves.
    alias pci:v000010DEd*sv*sd*bc03sc02i00* nvidia
    alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci
    alias vfio_pci:v000010DEd00002342sv*sd*bc*sc*i* nvgrace_gpu_vfio_pci
    alias vfio_pci:v000010DEd00002345sv*sd*bc*sc*i* nvgrace_gpu_vfio_pci
    alias vfio_pci:v000010DEd00003182sv*sd*bc*sc*i* nvgrace_gpu_vfio_pci
    alias vfio_pci:v000015B3d00001021sv*sd*bc*sc*i* mlx5_vfio_pci

    """

/// What a plan could change by mistake: every device's driver link, override and reset methods.
func treeState(_ root: SysfsRoot) -> [String: String] {
    var state: [String: String] = [:]
    for name in root.list("bus/pci/devices") {
        let base = "bus/pci/devices/\(name)"
        state[name + "/driver"] = root.readLink(base + "/driver") ?? "-"
        state[name + "/driver_override"] = root.readOptionalString(base + "/driver_override") ?? "-"
        state[name + "/reset_method"] = root.readOptionalString(base + "/reset_method") ?? "-"
    }
    return state
}

/// A small host of its own, for topologies the demo host lacks: a two-function GPU (graphics and
/// audio) behind a root port, and an endpoint straight on the root bus.
struct TwoFunctionHost {
    let folder: TestFolder
    let root: SysfsRoot
    let kernel: SimulatedKernel

    static let port = BDF("0000:00:01.0")!
    static let gpu = BDF("0000:01:00.0")!
    static let audio = BDF("0000:01:00.1")!
    static let onRootBus = BDF("0000:00:02.0")!

    init(audioDriver: String?) throws {
        folder = try TestFolder()
        root = SysfsRoot(path: folder.path + "/sys")
        let functions = [
            SimulatedFunction(
                bdf: Self.port, parent: nil, vendor: 0x8086, device: 0x7a38, classCode: 0x06_0400,
                portType: .rootPort, driver: "pcieport", nativeDriver: "pcieport", iommuGroup: 1),
            SimulatedFunction(
                bdf: Self.gpu, parent: Self.port, vendor: 0x10de, device: 0x2684, classCode: 0x03_0000,
                resetMethods: ["flr", "bus"], driver: "vfio-pci", nativeDriver: "nvidia",
                driverOverride: "vfio-pci", iommuGroup: 2),
            SimulatedFunction(
                bdf: Self.audio, parent: Self.port, vendor: 0x10de, device: 0x22ba, classCode: 0x04_0300,
                resetMethods: ["flr"], driver: audioDriver, nativeDriver: "snd_hda_intel", iommuGroup: 2),
            SimulatedFunction(
                bdf: Self.onRootBus, parent: nil, vendor: 0x1af4, device: 0x1041, classCode: 0x02_0000,
                resetMethods: ["flr", "bus"], driver: "vfio-pci", nativeDriver: "virtio-pci",
                driverOverride: "vfio-pci", iommuGroup: 3),
        ]
        let drivers = ["pcieport", "vfio-pci", "nvidia", "snd_hda_intel", "virtio-pci"].map {
            SimulatedDriver(name: $0, overrideOnly: $0 == "vfio-pci")
        }
        let tree = try SysfsTreeBuilder(root: root, functions: functions, drivers: drivers)
        try tree.build()
        kernel = try SimulatedKernel(tree: tree)
    }
}
