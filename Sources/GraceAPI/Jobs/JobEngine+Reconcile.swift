import Passthrough

extension JobEngine {
    /// A reconcile job: puts `bdf` on `driver` (nil: no driver) through the bind or unbind planner,
    /// recorded and audited like any job, with kind `reconcile`.
    func submitReconcile(_ bdf: BDF, driver: String?) -> Submission {
        submit(
            bdf, kind: .reconcile, methodRequested: driver ?? "none", deadlineSeconds: nil,
            requestJSON: JSON.encodeString(ReconcileRequest(driver: driver)), idempotencyKey: nil,
            requestedBy: "graced (reconcile)", dryRun: false
        ) { gpu in
            guard let driver else {
                let plan = UnbindPlanner(root: host.root, processes: processes)
                    .plan(bdf, to: .none, recordedOriginal: nil)
                return (plan.refusal, [bdf], .unbind(plan), dryRun: nil)
            }
            let plan = BindPlanner(root: host.root, processes: processes, aliases: aliases)
                .plan(bdf, driver: driver, includeGroup: false)
            return (
                plan.refusal, plan.steps.map(\.bdf),
                .bind(
                    plan, probe: gpu.readinessProbe,
                    expected: PCIExpectation(gpu)
                        ?? PCIExpectation(
                            vendorID: 0xffff, deviceID: 0xffff, linkSpeed: nil, linkWidth: nil, bars: [])),
                dryRun: nil
            )
        }
    }
}
