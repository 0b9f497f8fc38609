import GraceHTTP
import Passthrough

extension JobEngine {
    /// The run stage of a bind: the plan's writes (driver_override, unbind, drivers_probe per
    /// function), then the `driver` links checked (probing succeeds even when nothing bound), then
    /// readiness. Any failure reverts what was done.
    func runBind(_ id: String, plan: BindPlan, probe kind: ReadinessProbeKind, expected: PCIExpectation) {
        guard live(id) != nil else { return }
        handle(id) { machine in
            _ = machine.chose(method: plan.driver)
            return machine.change { $0.originalDriver = plan.originalDriver }
                + machine.entered(.binding, atMs: Timestamp.nowMs())
        }
        let root = host.root
        guard holdInD0(plan.target, for: id) else { return }
        guard
            perform(
                plan.writes, expecting: plan.expectedDrivers.mapValues { Optional($0) },
                revert: { plan.revertWrites(reading: root) }, for: id, what: "bind")
        else { return }
        guard waitUntilReady(id, kind: kind, expected: expected) else { return }
        settled(id)
        finish(id, .succeeded, nil)
    }

    /// The run stage of an unbind: clear or set the override, unbind, probe, check the links.
    func runUnbind(_ id: String, plan: UnbindPlan) {
        guard live(id) != nil else { return }
        handle(id) { machine in
            _ = machine.chose(method: plan.expectedDriver ?? "none")
            return machine.entered(.unbinding, atMs: Timestamp.nowMs())
        }
        guard
            perform(
                plan.writes, expecting: [plan.target: plan.expectedDriver], revert: { [] }, for: id,
                what: "unbind")
        else { return }
        settled(id)
        finish(id, .succeeded, nil)
    }

    /// The functions are on their drivers: the observers hear of it while the job still holds them.
    private func settled(_ id: String) {
        guard let job = live(id)?.machine.job else { return }
        observers.bindingsSettled(job)
    }

    /// Runs `writes` in order; stops at the first failure, reverts, and finishes the job. Then checks
    /// that every function ended on the driver expected. Returns true when all went as planned.
    private func perform(
        _ writes: [SysfsWrite], expecting expected: [BDF: String?], revert: () -> [SysfsWrite],
        for id: String,
        what: String
    ) -> Bool {
        for write in writes {
            let outcome = self.write(write, for: id, recordAttempts: true)
            guard outcome == .done else {
                // A stuck write leaves the device to the kernel: writing the revert would hang too.
                if outcome != .stuck { notes(restore(revert()), for: id) }
                finish(id, after: outcome, of: write, during: what)
                return false
            }
        }
        let wrong = expected.keys.sorted().compactMap { device -> String? in
            let actual = host.root.linkName(host.root.device(device) + "/driver")
            let wanted = expected[device] ?? nil
            return actual == wanted
                ? nil : "\(device) is on \(actual ?? "no driver"), expected \(wanted ?? "no driver")"
        }
        guard wrong.isEmpty else {
            notes(restore(revert()), for: id)
            finish(
                id, .failed,
                JobFailure(
                    .driverNotBound, summary: "The driver did not bind",
                    detail: "After the \(what): " + wrong.joined(separator: "; ")
                        + ". The kernel accepted the writes but the driver's probe did not take the device.",
                    resolution:
                        "Check that the driver's module is loaded (modprobe) and the host's kernel log for its probe error."
                ))
            return false
        }
        return true
    }

    private func notes(_ notes: [String], for id: String) {
        for text in notes { note(id, text) }
    }
}
