/// Decides how a device would be reset and whether GraceAPI may do it, from reads only.
///
/// The rules, in order: the device must exist and be an endpoint; it must have a reset method and the
/// requested one must be among them; a bus reset needs a bridge above the device and must not hit the
/// GH200 no-bus-reset quirk; and nothing the reset reaches may be in use (a VM with the VFIO group
/// open, or a host driver on any affected function).
public struct ResetPlanner: Sendable {
    public let root: SysfsRoot
    public let processes: ProcessTable

    public init(root: SysfsRoot, processes: ProcessTable = ProcessTable()) {
        self.root = root
        self.processes = processes
    }

    public func plan(_ target: BDF, method requested: ResetMethod = .auto) -> ResetPlan {
        let topology = HostTopology(root: root)
        var plan = ResetPlan(
            target: target, requested: requested, method: nil, reason: "", availableMethods: [],
            affected: [], refusal: nil)
        func refuse(_ refusal: Refusal, _ reason: String) -> ResetPlan {
            plan.refusal = refusal
            plan.reason = reason
            return plan
        }

        guard topology.exists(target) else { return refuse(.notFound(target), "device not found") }
        guard !topology.isBridge(target) else { return refuse(.notEndpoint(target), "device is a bridge") }

        let available = topology.resetMethods(target) ?? []
        plan.availableMethods = available
        guard let first = available.first else {
            return refuse(
                Refusal(
                    code: .noResetMethod,
                    message: "\(target) has no reset method: its reset_method list is empty or absent",
                    resolution:
                        "restore the kernel's list with `echo default > reset_method`; a device without FLR, "
                        + "PM or bus reset cannot be reset by the kernel"),
                "no reset method")
        }

        let method: String
        if requested == .auto {
            method = first
            plan.reason = "first method in reset_method (\(first))"
        } else {
            guard available.contains(requested.rawValue) else {
                return refuse(
                    Refusal(
                        code: .unsupportedMethod,
                        message:
                            "\(target) does not support reset method \(requested.rawValue); available: "
                            + available.joined(separator: ", "),
                        resolution: "request one of \(available.joined(separator: ", ")), or auto"),
                    "requested method not available")
            }
            method = requested.rawValue
            plan.reason = "requested"
        }
        plan.method = method

        let resetsBus = ResetMethod(rawValue: method)?.resetsBus ?? false
        if resetsBus {
            if topology.isOnRootBus(target) {
                return refuse(
                    Refusal(
                        code: .rootBus,
                        message: "\(target) is on a root bus: no bridge above it can reset its bus",
                        resolution: "use a function-level method: "
                            + available.filter { !(ResetMethod(rawValue: $0)?.resetsBus ?? false) }
                            .joined(separator: ", ")),
                    plan.reason)
            }
            if let identity = topology.identity(target),
                NvgraceDevices.forbidsBusReset(vendorID: identity.vendorID, deviceID: identity.deviceID)
            {
                return refuse(
                    Refusal(
                        code: .busResetForbidden,
                        message:
                            "\(target) (\(hex(identity.vendorID, width: 4)):\(hex(identity.deviceID, width: 4))) "
                            + "must not get a bus reset: the kernel marks 10de:2340-237f with "
                            + "PCI_DEV_FLAGS_NO_BUS_RESET because a secondary bus reset leaves a GH200 "
                            + "unusable until the host is rebooted",
                        resolution: "request flr or acpi (firmware _RST) instead"),
                    plan.reason)
            }
        }

        // A bus reset hits everything behind the parent bridge; other methods only the function.
        let reached = resetsBus ? topology.functionsSharingBus(target) : [target]
        let survey = HolderSurvey(topology: topology, processes: processes)
        plan.affected = survey.survey(reached, target: target) { bdf, driver in
            // GraceAPI resets only devices it owns through VFIO; a host driver on the target or on a
            // swept-along function would have its device reset under it. Switch ports are harmless.
            guard !DriverNames.isVFIO(driver) else { return false }
            return bdf == target || driver != DriverNames.pcieport
        }
        if plan.affected.contains(where: \.isHeld) {
            plan.refusal = .held(plan.affected, action: "reset \(target) with \(method)")
        }
        return plan
    }
}
