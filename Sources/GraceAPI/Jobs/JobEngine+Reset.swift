import GraceHTTP
import Passthrough

extension JobEngine {
    /// The run stage of a reset, on the devices the job claimed: hold the device in D0, select the
    /// method, write `reset`, wait for readiness, verify the layout. What it changes is recorded as
    /// owed before it is changed, and put back when the job concludes.
    func runReset(_ id: String, plan: ResetPlan, probe kind: ReadinessProbeKind, expected: PCIExpectation) {
        guard let live = live(id), let method = plan.method else { return }
        let target = live.machine.job.gpu
        let root = host.root

        // Quiescing.
        handle(id) { $0.entered(.quiescing, atMs: Timestamp.nowMs()) }
        show(target, .resetting, for: id)
        guard holdInD0(target, for: id) else { return }
        handle(id) { $0.chose(method: method) }
        if let reason = live.token.reason {
            return finish(id, .cancelled, .cancelled(reason))
        }

        // Resetting: the plan narrows reset_method to the chosen method when it is not the first, and
        // puts the list back afterwards, whatever happens.
        handle(id) { $0.entered(.resetting, atMs: Timestamp.nowMs()) }
        handle(id) { $0.owes(plan.restoreWrites) }
        doubtBeforeReset(id)
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
        handle(id) { $0.entered(.verifying, atMs: Timestamp.nowMs()) }
        let differences = ReadinessProbe.make(kind: kind, bdf: target, root: root, expected: expected)
            .verifyLayout()
        if !differences.isEmpty {
            return finish(
                id, .failed,
                JobFailure(
                    .layoutDrift, summary: "Layout changed by the reset",
                    detail: "After the reset: " + differences.joined(separator: "; ") + ".",
                    resolution:
                        "Do not give this GPU to a VM: compare GET /gpus/\(target)/layout with its history, and reset it again or reboot the host."
                ))
        }
        finish(id, .succeeded, nil)
    }

    /// A vfio device nobody holds sits in D3hot under runtime PM, where its BARs read all-ones: keep it
    /// in D0 while the job works, and give control back afterwards (owed, and recorded as owed before
    /// the write). Returns false when the job has ended: the write stuck in the kernel.
    func holdInD0(_ device: BDF, for id: String) -> Bool {
        guard let control = PowerState.read(bdf: device, root: host.root).control, control != "on" else {
            return true
        }
        handle(id) { $0.owes([.powerControl(device, control)]) }
        let write = SysfsWrite.powerControl(device, "on")
        switch self.write(write, for: id, recordAttempts: false) {
        case .done:
            break
        case .stuck:
            finish(id, after: .stuck, of: write, during: "power control")
            return false
        default:
            note(id, "could not hold \(device) in D0 (power/control)")
        }
        return true
    }

    /// Polls the device's readiness probe until ready, the deadline or a cancel; records the outcome
    /// on the job. Returns true when the device is ready; otherwise the job has been finished.
    func waitUntilReady(_ id: String, kind: ReadinessProbeKind, expected: PCIExpectation) -> Bool {
        guard let live = live(id) else { return false }
        let target = live.machine.job.gpu
        handle(id) { $0.entered(.waitingReady, atMs: Timestamp.nowMs()) }
        show(target, .notReady, for: id)
        let probe = ReadinessProbe.make(kind: kind, bdf: target, root: host.root, expected: expected)
        let outcome = waitForReadiness(id, probe: probe, deadline: live.deadline, token: live.token)
        let readiness = Job.Readiness(
            probe: kind.rawValue, result: outcome.result.kind, waitedMs: outcome.waitedMs,
            polls: outcome.polls)
        handle(id) { $0.observed(readiness, notes: outcome.notes) }
        settle(target, after: outcome, for: id)
        switch outcome.result {
        case .ready:
            return true
        case .timedOut(let last):
            finish(id, .timedOut, .deadline("The device was not ready at the deadline: \(last)."))
        case .failed(let reason):
            finish(id, .timedOut, .deadline("\(reason)."))
        case .gone(let reason):
            finish(
                id, .failed,
                JobFailure.kernel(
                    KernelError(.operationNotSupportedByDevice, path: host.root.device(target)),
                    during: "readiness check"
                )
                .with(detail: "The device stopped answering: \(reason)."))
        case .cancelled(let reason):
            finish(id, .cancelled, .cancelled(reason))
        }
        return false
    }
}
