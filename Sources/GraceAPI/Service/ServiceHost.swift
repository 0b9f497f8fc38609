import GraceHTTP
import Passthrough

/// The host the service manages, as the seam presents it: where to read, how to write, the firmware
/// memory figures sysfs cannot show, and any routes the host brings beyond the service's own.
public struct ServiceHost: Sendable {
    /// Adds routes to the service's router; run once, after the service's own routes.
    public typealias RouteExtension = @Sendable (inout Router) -> Void

    public var root: SysfsRoot
    public var writer: any KernelWriter
    public var firmwareMemory: FirmwareMemoryTable
    public var selection: DeviceSelection
    /// Where processes are listed, to find who holds `/dev/vfio/<group>` (`/proc` in production).
    public var procRoot: String
    /// The kernel's module aliases, to find a device's VFIO variant driver; nil when unknown.
    public var modulesAliasPath: String?
    /// Whether the host is a simulation; `GET /status` says so.
    public var isSimulation: Bool
    /// Routes beyond the service's own: with `--simulate`, the simulator's fault controls (from the
    /// GraceSimulation target, so that the service never sees a simulator type). None in production.
    public var routeExtensions: [RouteExtension]

    public init(
        root: SysfsRoot, writer: any KernelWriter, firmwareMemory: FirmwareMemoryTable,
        selection: DeviceSelection = .displayClass, procRoot: String = "/proc",
        modulesAliasPath: String? = nil, isSimulation: Bool = false,
        routeExtensions: [RouteExtension] = []
    ) {
        self.procRoot = procRoot
        self.modulesAliasPath = modulesAliasPath
        self.root = root
        self.writer = writer
        self.firmwareMemory = firmwareMemory
        self.selection = selection
        self.isSimulation = isSimulation
        self.routeExtensions = routeExtensions
    }
}
