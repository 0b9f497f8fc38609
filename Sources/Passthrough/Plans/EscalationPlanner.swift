/// Works out the escalation ladder for one device from reads only, with `ResetPlanner`'s guards for
/// each reset rung: a bus reset never for 10de:2340-237f, never on a root bus, never with a held
/// function behind the bridge; removing the function never while something holds it.
public struct EscalationPlanner: Sendable {
    public let root: SysfsRoot
    public let processes: ProcessTable

    public init(root: SysfsRoot, processes: ProcessTable = ProcessTable()) {
        self.root = root
        self.processes = processes
    }

    public func plan(_ target: BDF) -> EscalationLadder {
        let topology = HostTopology(root: root)
        let resets = ResetPlanner(root: root, processes: processes)
        var ladder = EscalationLadder(target: target, rungs: [], refusal: nil)
        guard topology.exists(target) else {
            ladder.refusal = .notFound(target)
            return ladder
        }
        guard !topology.isBridge(target) else {
            ladder.refusal = .notEndpoint(target)
            return ladder
        }
        let available = topology.resetMethods(target) ?? []
        let isBus = { (name: String) in ResetMethod(rawValue: name)?.resetsBus ?? false }

        // A function-level method touches only the target.
        let functionMethod = available.first { !isBus($0) }
        ladder.rungs.append(
            rung(.functionReset, method: functionMethod, resets: resets, target: target) {
                "the device's reset_method lists no function-level method (\(ResetMethods.format(available)))"
            })
        ladder.rungs.append(
            rung(.busReset, method: available.first(where: isBus), resets: resets, target: target) {
                // The kernel leaves `bus` out of a GH200's list because of its quirk: say which.
                if let identity = topology.identity(target),
                    NvgraceDevices.forbidsBusReset(vendorID: identity.vendorID, deviceID: identity.deviceID)
                {
                    return "\(target) must never get a bus reset: 10de:2340-237f (GH200) is left unusable "
                        + "by a secondary bus reset until the host is rebooted"
                }
                return "the device's reset_method lists no bus method (\(ResetMethods.format(available)))"
            })

        // Removing the function takes it from whoever holds it, as a reset would.
        let survey = HolderSurvey(topology: topology, processes: processes)
            .survey([target], target: target) { _, driver in !DriverNames.isVFIO(driver) }
        if survey.contains(where: \.isHeld) {
            let refusal = Refusal.held(survey, action: "remove \(target)")
            ladder.rungs.append(
                EscalationLadder.Rung(
                    step: .removeRescan, method: "remove+rescan", allowed: false, reason: refusal.message,
                    plan: nil, affected: []))
            // The target itself is held: no rung may touch it.
            ladder.refusal = refusal
        } else {
            ladder.rungs.append(
                EscalationLadder.Rung(
                    step: .removeRescan, method: "remove+rescan", allowed: true,
                    reason:
                        "the kernel forgets \(target) and enumerates it afresh; its driver is bound again after",
                    plan: nil, affected: survey))
        }
        ladder.rungs.append(
            EscalationLadder.Rung(
                step: .reboot, method: "reboot", allowed: true,
                reason: "when no rung brings the device back it needs the host power-cycled", plan: nil,
                affected: []))
        return ladder
    }

    private func rung(
        _ step: EscalationLadder.Step, method: String?, resets: ResetPlanner, target: BDF,
        missing: () -> String
    ) -> EscalationLadder.Rung {
        guard let method, let requested = ResetMethod(rawValue: method) else {
            return EscalationLadder.Rung(
                step: step, method: nil, allowed: false, reason: missing(), plan: nil, affected: [])
        }
        let plan = resets.plan(target, method: requested)
        if let refusal = plan.refusal {
            return EscalationLadder.Rung(
                step: step, method: method, allowed: false, reason: refusal.message, plan: nil, affected: [])
        }
        let reach =
            plan.affected.count > 1
            ? " (reaches \(plan.affected.map(\.bdf.description).joined(separator: ", ")))" : ""
        return EscalationLadder.Rung(
            step: step, method: method, allowed: true, reason: "\(method) is allowed\(reach)", plan: plan,
            affected: plan.affected)
    }
}
