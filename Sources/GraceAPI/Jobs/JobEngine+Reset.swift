import Passthrough

extension JobEngine {
    /// The run stage of a reset, under the locks of the affected set: hold the device in D0, select
    /// the method, write `reset`, wait for readiness, verify the layout, put things back.
    func runReset(_ id: String, plan: ResetPlan, probe kind: ReadinessProbeKind, expected: PCIExpectation) {
        guard let live = live(id), let method = plan.method else { return }
        let target = live.job.gpu
        let root = host.root

        // Quiescing.
        update(id) { $0.enter(.quiescing) }
        inventory.setState(target.description, .resetting)
        guard holdInD0(target, for: id) else { return }
        update(id) { $0.methodUsed = method }
        if let reason = live.token.reason {
            return finish(id, .cancelled, Self.cancelledFailure(reason))
        }

        // Resetting: the plan narrows reset_method to the chosen method when it is not the first, and
        // puts the list back afterwards, whatever happens.
        update(id) { $0.enter(.resetting) }
        restoreLater(plan.restoreWrites, for: id)
        for write in plan.writes {
            let isReset = write == .reset(target)
            let outcome = self.write(write, for: id, recordAttempts: isReset)
            guard outcome == .done else {
                return finish(
                    id, after: outcome, of: write,
                    during: isReset ? "reset" : "selection of the \(method) method")
            }
        }

        // Waiting for readiness.
        guard waitUntilReady(id, kind: kind, expected: expected) else { return }

        // Verifying: the BARs must be those recorded before the reset.
        update(id) { $0.enter(.verifying) }
        let differences = ReadinessProbe.make(kind: kind, bdf: target, root: root, expected: expected)
            .verifyLayout()
        if !differences.isEmpty {
            return finish(
                id, .failed,
                Self.failure(
                    "layout-drift", "Layout changed by the reset", status: 502,
                    detail: "After the reset: " + differences.joined(separator: "; ") + ".",
                    resolution:
                        "Do not give this GPU to a VM: compare GET /gpus/\(target)/layout with its history, and reset it again or reboot the host."
                ))
        }
        finish(id, .succeeded, nil)
    }

    /// A vfio device nobody holds sits in D3hot under runtime PM, where its BARs read all-ones: keep it
    /// in D0 while the job works, and give control back afterwards (a pending restore). Returns false
    /// when the job has ended: the write stuck in the kernel.
    func holdInD0(_ device: BDF, for id: String) -> Bool {
        guard let control = PowerState.read(bdf: device, root: host.root).control, control != "on" else {
            return true
        }
        let write = SysfsWrite.powerControl(device, "on")
        switch self.write(write, for: id, recordAttempts: false) {
        case .done:
            restoreLater([.powerControl(device, control)], for: id)
        case .stuck:
            finish(id, after: .stuck, of: write, during: "power control")
            return false
        default:
            update(id) { $0.note("could not hold \(device) in D0 (power/control)") }
        }
        return true
    }

    /// Polls the device's readiness probe until ready, the deadline or a cancel; records the outcome
    /// on the job. Returns true when the device is ready; otherwise the job has been finished.
    func waitUntilReady(_ id: String, kind: ReadinessProbeKind, expected: PCIExpectation) -> Bool {
        guard let live = live(id) else { return false }
        let target = live.job.gpu
        update(id) { $0.enter(.waitingReady) }
        inventory.setState(target.description, .notReady)
        let probe = ReadinessProbe.make(kind: kind, bdf: target, root: host.root, expected: expected)
        let outcome = ReadinessWaiter.wait(
            for: probe, deadline: live.deadline, token: live.token, policy: configuration.pollPolicy)
        update(id) { job in
            job.details.readiness = Job.Readiness(
                probe: kind.rawValue,
                result: outcome.result.kind,
                waitedMs: outcome.waitedMs, polls: outcome.polls)
            job.details.notes += outcome.notes
        }
        switch outcome.result {
        case .ready:
            return true
        case .timedOut(let last):
            finish(id, .timedOut, Self.deadlineFailure("The device was not ready at the deadline: \(last)."))
        case .failed(let reason):
            finish(id, .timedOut, Self.deadlineFailure("\(reason)."))
        case .gone(let reason):
            finish(
                id, .failed,
                Self.kernelFailure(
                    KernelError(code: KernelError.enodev, path: host.root.device(target)),
                    during: "readiness check"
                )
                .with(detail: "The device stopped answering: \(reason)."))
        case .cancelled(let reason):
            finish(id, .cancelled, Self.cancelledFailure(reason))
        }
        return false
    }

}

extension Job.Failure {
    func with(detail: String) -> Job.Failure {
        var copy = self
        copy.detail = detail
        return copy
    }
}
