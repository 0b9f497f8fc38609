import Passthrough

/// The host the service manages, as the seam presents it: where to read, how to write, the firmware
/// memory figures sysfs cannot show, and — only on a simulated host — the simulator's fault controls.
public struct ServiceHost: Sendable {
    public var root: SysfsRoot
    public var writer: any KernelWriter
    public var firmwareMemory: FirmwareMemoryTable
    public var selection: DeviceSelection
    /// Where processes are listed, to find who holds `/dev/vfio/<group>` (`/proc` in production).
    public var procRoot: String
    /// The kernel's module aliases, to find a device's VFIO variant driver; nil when unknown.
    public var modulesAliasPath: String?
    /// Present only with `--simulate`; it backs the `/simulator` routes and nothing else.
    public var simulator: SimulatedKernel?

    public init(
        root: SysfsRoot, writer: any KernelWriter, firmwareMemory: FirmwareMemoryTable,
        selection: DeviceSelection = .displayClass, procRoot: String = "/proc",
        modulesAliasPath: String? = nil,
        simulator: SimulatedKernel?
    ) {
        self.procRoot = procRoot
        self.modulesAliasPath = modulesAliasPath
        self.root = root
        self.writer = writer
        self.firmwareMemory = firmwareMemory
        self.selection = selection
        self.simulator = simulator
    }
}
