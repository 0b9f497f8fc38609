import GraceAPI
import Passthrough
import PassthroughSimulator

extension ServiceHost {
    /// A simulated host as the service sees it: its tree, its kernel as the writer, its processes
    /// and module aliases, and (with `faultRoutes`) the `/simulator` fault routes on its kernel.
    ///
    /// - Parameters:
    ///   - firmware: the firmware memory figures; by default the simulated firmware's own.
    ///   - faultRoutes: false for a service that runs on the simulated tree as it would on a real
    ///     host (no fault routes, `simulated: false` in `GET /status`).
    public static func simulated(
        _ host: SimulatedHost, firmware: FirmwareMemoryTable? = nil,
        selection: DeviceSelection = .displayClass, faultRoutes: Bool = true
    ) -> ServiceHost {
        let kernel = host.kernel
        return ServiceHost(
            root: host.root, writer: kernel,
            firmwareMemory: firmware
                ?? FirmwareMemoryTable(source: "simulator", entries: host.firmwareMemory),
            selection: selection, procRoot: host.procRoot, modulesAliasPath: host.modulesAliasPath,
            isSimulation: faultRoutes,
            routeExtensions: faultRoutes
                ? [{ router in SimulatorRoutes.register(in: &router, simulator: kernel) }] : [])
    }
}
