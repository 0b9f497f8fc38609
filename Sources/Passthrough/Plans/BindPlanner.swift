/// Decides which driver a device would be bound to and what binding it takes, from reads only.
///
/// `auto` prefers the device's VFIO variant driver (found through modules.alias, the way
/// `modprobe -R` does, never by a hard-coded name) when that driver is registered, and plain
/// vfio-pci otherwise. A VM can use a device only when its whole IOMMU group is viable, so the plan
/// also looks at the other group members and refuses, or with `includeGroup` moves them too.
public struct BindPlanner: Sendable {
    public let root: SysfsRoot
    public let processes: ProcessTable
    public let aliases: ModulesAlias?

    public static let auto = "auto"

    public init(root: SysfsRoot, processes: ProcessTable = ProcessTable(), aliases: ModulesAlias?) {
        self.root = root
        self.processes = processes
        self.aliases = aliases
    }

    public func plan(_ target: BDF, driver requested: String = BindPlanner.auto, includeGroup: Bool = false)
        -> BindPlan
    {
        let topology = HostTopology(root: root)
        var plan = BindPlan(
            target: target, requested: requested, driver: requested, reason: "", originalDriver: nil,
            includeGroup: includeGroup, steps: [], groupMembers: [], refusal: nil)
        guard topology.exists(target) else {
            plan.refusal = .notFound(target)
            return plan
        }
        guard !topology.isBridge(target) else {
            plan.refusal = .notEndpoint(target)
            return plan
        }

        let isAuto = requested == Self.auto
        (plan.driver, plan.reason) = isAuto ? autoDriver(target, topology) : (requested, "requested")
        let current = topology.driver(target)
        plan.originalDriver = current

        // The kernel's viability rule (vfio_dev_driver_allowed): every other member must be unbound,
        // on a VFIO driver, on pci-stub, or a bridge (bridges may keep pcieport or any driver).
        let others = topology.iommuGroupMembers(target).filter { $0 != target }
        let blockers = Set(
            others.filter { member in
                guard let driver = topology.driver(member) else { return false }
                return !DriverNames.isVFIO(driver) && driver != DriverNames.pcieport
                    && driver != DriverNames.pciStub && !topology.isBridge(member)
            })

        var steps: [BindStep] = []
        if current != plan.driver {
            steps.append(
                BindStep(
                    bdf: target, fromDriver: current, toDriver: plan.driver,
                    previousOverride: topology.driverOverride(target)))
        }
        if includeGroup {
            for member in others where !topology.isBridge(member) {
                let driver = topology.driver(member)
                // Unbound members are bound too so the group is whole; pci-stub and pcieport are
                // already acceptable to VFIO and stay where they are.
                if let driver,
                    DriverNames.isVFIO(driver) || driver == DriverNames.pciStub
                        || driver == DriverNames.pcieport
                {
                    continue
                }
                let destination = isAuto ? autoDriver(member, topology).driver : DriverNames.vfioPCI
                steps.append(
                    BindStep(
                        bdf: member, fromDriver: driver, toDriver: destination,
                        previousOverride: topology.driverOverride(member)))
            }
        }

        plan.steps = steps
        plan.groupMembers = HolderSurvey(topology: topology, processes: processes).survey(
            [target] + others, target: target
        ) { bdf, _ in !includeGroup && blockers.contains(bdf) }

        if let missing = steps.map(\.toDriver).first(where: { !topology.driverExists($0) })
            ?? (topology.driverExists(plan.driver) ? nil : plan.driver)
        {
            plan.refusal = Refusal(
                code: .unknownDriver,
                message: "driver \(missing) is not registered: bus/pci/drivers/\(missing) does not exist",
                resolution: "load its module (modprobe \(missing)) or request another driver")
            return plan
        }
        if !includeGroup && !blockers.isEmpty {
            let held = plan.groupMembers.filter { blockers.contains($0.bdf) }
            let group = topology.iommuGroup(target).map(String.init) ?? "?"
            plan.refusal = Refusal(
                code: .groupNotViable,
                message: "IOMMU group \(group) of \(target) is not viable: "
                    + held.map { "\($0.bdf) is bound to \($0.driver ?? "")" }.joined(separator: ", "),
                resolution: "bind them too with \"group\": true, or unbind them", holders: held)
            return plan
        }
        // Unbinding a device whose group a VM has open blocks in the kernel until the VM lets go.
        if !steps.isEmpty, let entry = plan.groupMembers.first(where: { $0.bdf == target }),
            !entry.holders.isEmpty
        {
            plan.refusal = .held([entry], action: "rebind \(target)")
        }
        return plan
    }

    /// The variant driver when modules.alias names one for the device and it is registered, else
    /// vfio-pci, with the reason in words.
    private func autoDriver(_ bdf: BDF, _ topology: HostTopology) -> (driver: String, reason: String) {
        guard let aliases else {
            return (DriverNames.vfioPCI, "no modules.alias to look up a variant driver; plain vfio-pci")
        }
        guard let identity = topology.identity(bdf) else {
            return (DriverNames.vfioPCI, "device IDs unreadable; plain vfio-pci")
        }
        let modalias = identity.vfioModalias
        guard let variant = aliases.variantDriver(for: identity) else {
            return (
                DriverNames.vfioPCI,
                "no VFIO variant driver in modules.alias matches \(modalias); plain vfio-pci"
            )
        }
        guard topology.driverExists(variant) else {
            return (
                DriverNames.vfioPCI,
                "modules.alias names \(variant) for \(modalias) but bus/pci/drivers/\(variant) is absent "
                    + "(module not loaded); plain vfio-pci"
            )
        }
        return (variant, "modules.alias: \(variant) matches \(modalias)")
    }
}
