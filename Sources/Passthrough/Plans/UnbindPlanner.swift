/// Decides how a device leaves its VFIO driver, from reads only.
///
/// Returning to a native driver is the kernel's sequence in reverse of a bind: clear
/// `driver_override`, unbind, `drivers_probe` (the bus then matches the device's own ID table entry).
/// A driver that binds only by override (vfio-pci, a variant, or any driver named explicitly) is
/// reached by naming it in `driver_override` instead.
public struct UnbindPlanner: Sendable {
    public let root: SysfsRoot
    public let processes: ProcessTable

    public init(root: SysfsRoot, processes: ProcessTable = ProcessTable()) {
        self.root = root
        self.processes = processes
    }

    /// - Parameter recordedOriginal: the driver the device had before GraceAPI bound it, as recorded
    ///   then; nil when nothing was recorded.
    public func plan(
        _ target: BDF, to destination: UnbindPlan.Destination = .original, recordedOriginal: String?
    )
        -> UnbindPlan
    {
        let topology = HostTopology(root: root)
        var plan = UnbindPlan(
            target: target, requested: destination, currentDriver: nil, expectedDriver: nil, reason: "",
            writes: [], refusal: nil)
        guard topology.exists(target) else {
            plan.refusal = .notFound(target)
            return plan
        }
        guard !topology.isBridge(target) else {
            plan.refusal = .notEndpoint(target)
            return plan
        }
        let current = topology.driver(target)
        plan.currentDriver = current

        // What to write to driver_override: "" clears it so the native driver matches again.
        let override: String
        switch destination {
        case .none:
            override = ""
            plan.reason = "requested: leave the device unbound"
        case .original:
            guard let original = recordedOriginal, !original.isEmpty else {
                plan.refusal = Refusal(
                    code: .noOriginalDriver,
                    message:
                        "no driver was recorded for \(target) before it was bound, and its native driver "
                        + "cannot be read from sysfs",
                    resolution: "name the driver to return to (\"driver\": \"nvidia\"), or \"none\" to leave "
                        + "it unbound")
                return plan
            }
            plan.expectedDriver = original
            plan.reason = "the driver recorded before binding (\(original))"
            override = DriverNames.isVFIO(original) ? original : ""
        case .driver(let name):
            plan.expectedDriver = name
            plan.reason = "requested"
            // The recorded native driver comes back by clearing the override; any other name must be
            // forced with one.
            override = name == recordedOriginal && !DriverNames.isVFIO(name) ? "" : name
        }
        if let expected = plan.expectedDriver, !topology.driverExists(expected) {
            plan.refusal = Refusal(
                code: .unknownDriver,
                message: "driver \(expected) is not registered: bus/pci/drivers/\(expected) does not exist",
                resolution: "load its module (modprobe \(expected)) or name another driver, or \"none\"")
            return plan
        }

        var writes: [SysfsWrite] = []
        if current != plan.expectedDriver {
            writes.append(.driverOverride(target, override))
            if let current { writes.append(.unbind(target, driver: current)) }
            if plan.expectedDriver != nil { writes.append(.driversProbe(target)) }
        } else if case .none = destination, topology.driverOverride(target) != nil {
            // Already unbound; only the leftover override goes.
            writes.append(.driverOverride(target, ""))
        }
        plan.writes = writes

        // An unbind of a VFIO device that a VM has open blocks in the kernel until the VM closes it.
        if current != nil, !writes.isEmpty,
            let entry = HolderSurvey(topology: topology, processes: processes).survey(
                [target], target: target, driverHolds: { _, _ in false }
            ).first, entry.isHeld
        {
            plan.refusal = .held([entry], action: "unbind \(target)")
            plan.writes = []
        }
        return plan
    }
}
