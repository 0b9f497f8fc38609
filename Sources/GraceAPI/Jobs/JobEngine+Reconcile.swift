import GraceHTTP
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
            return bindPlanning(bdf, driver: driver, includeGroup: false, gpu: gpu)
        }
    }
}
