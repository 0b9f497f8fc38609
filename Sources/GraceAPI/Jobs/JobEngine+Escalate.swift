import GraceHTTP
import Passthrough
import Store

extension JobEngine {
    /// How one rung ended.
    enum RungResult {
        /// The device is ready and its layout verified: the climb is over.
        case recovered
        /// It did not bring the device back (the outcome and why): the next rung may run.
        case notRecovered(outcome: String, detail: String)
        /// The job ended during the rung (cancelled, a write stuck, the deadline).
        case ended
    }

    /// The run stage of `method: escalate`: each allowed rung of the ladder in order, each with an
    /// equal share of what is left of the deadline, until one brings the device back ready and
    /// verified. When none does, the job fails with `needs-reboot` and the GPU shows `needs_reboot`.
    func runEscalation(
        _ id: String, ladder: EscalationLadder, probe kind: ReadinessProbeKind, expected: PCIExpectation
    ) {
        guard let live = live(id) else { return }
        let target = live.machine.job.gpu
        handle(id) { $0.entered(.quiescing, atMs: Timestamp.nowMs()) }
        show(target, .resetting, for: id)
        guard holdInD0(target, for: id) else { return }
        // What the function was bound to: a rescan gives it its boot-time driver, and it is put back.
        let driver = host.root.linkName(host.root.device(target) + "/driver")
        let rungs = ladder.runnable
        var tried: [String] = []
        for (index, rung) in rungs.enumerated() {
            if let reason = live.token.reason { return finish(id, .cancelled, .cancelled(reason)) }
            let remaining = ContinuousClock.now.duration(to: live.deadline)
            guard remaining > .zero else {
                return finish(
                    id, .timedOut, .deadline("The deadline passed before the \(rung.step.rawValue) rung."))
            }
            let share = remaining / (rungs.count - index)
            let rungDeadline = ContinuousClock.now + share
            let method = rung.method ?? rung.step.rawValue
            let now = Timestamp.nowMs()
            handle(id) {
                $0.rungStarted(
                    rung.step, method: method, atMs: now, deadlineMs: now + Self.milliseconds(share))
            }
            tried.append(method)
            let result: RungResult
            switch rung.step {
            case .functionReset, .busReset:
                result = climbReset(id, rung: rung, deadline: rungDeadline, kind: kind, expected: expected)
            case .removeRescan:
                result = climbRescan(
                    id, driver: driver, deadline: rungDeadline, kind: kind, expected: expected)
            case .reboot:
                continue
            }
            switch result {
            case .recovered:
                handle(id) { $0.rungEnded(outcome: "recovered", detail: nil, atMs: Timestamp.nowMs()) }
                return finish(id, .succeeded, nil)
            case .notRecovered(let outcome, let detail):
                handle(id) { $0.rungEnded(outcome: outcome, detail: detail, atMs: Timestamp.nowMs()) }
                note(id, "\(method) did not bring \(target) back: \(detail)")
            case .ended:
                handle(id) {
                    $0.rungEnded(
                        outcome: "ended", detail: "the job ended during this rung", atMs: Timestamp.nowMs())
                }
                return
            }
        }
        finish(id, .failed, .needsReboot(target, tried: tried))
    }

    /// A reset rung: the plan's writes (narrowing `reset_method` to the rung's method, owed back),
    /// then readiness within the rung's deadline, then the layout.
    private func climbReset(
        _ id: String, rung: EscalationLadder.Rung, deadline: ContinuousClock.Instant,
        kind: ReadinessProbeKind,
        expected: PCIExpectation
    ) -> RungResult {
        guard let plan = rung.plan else { return .notRecovered(outcome: "skipped", detail: "no plan") }
        // A bus reset reaches every function behind the bridge: all of them must be the job's.
        if rung.step == .busReset, let live = live(id) {
            let behind = HostTopology(root: host.root).functionsSharingBus(plan.target)
            if let outsider = behind.first(where: { !live.devices.contains($0) }) {
                return .notRecovered(
                    outcome: "skipped",
                    detail: "\(outsider) is behind the same bridge but not in the job's affected set")
            }
        }
        handle(id) { $0.entered(.resetting, atMs: Timestamp.nowMs()) }
        handle(id) { $0.owes(plan.restoreWrites) }
        doubtBeforeReset(id)
        for write in plan.writes {
            switch self.write(write, for: id, recordAttempts: true) {
            case .done: continue
            case .failed(let error):
                return .notRecovered(outcome: "failed", detail: "\(write): \(error.name) (\(error.message))")
            case let other:
                finish(id, after: other, of: write, during: "\(rung.method ?? "reset") rung")
                return .ended
            }
        }
        return readyAndVerified(id, deadline: deadline, kind: kind, expected: expected)
    }

    /// The remove-and-rescan rung: the kernel forgets the function and finds it again, with its
    /// boot-time driver; the driver it had is bound again before readiness is checked.
    private func climbRescan(
        _ id: String, driver original: String?, deadline: ContinuousClock.Instant, kind: ReadinessProbeKind,
        expected: PCIExpectation
    ) -> RungResult {
        guard let target = live(id)?.machine.job.gpu else { return .ended }
        handle(id) { $0.entered(.rescanning, atMs: Timestamp.nowMs()) }
        doubtBeforeReset(id)
        // The parent bridge's bus is rescanned, not the whole host: a function removed elsewhere
        // on purpose stays removed. Without a bridge (a root bus) only the host-wide rescan reaches it.
        let rescan =
            HostTopology(root: host.root).parentBridge(target).map { SysfsWrite.rescanBus($0) } ?? .rescan
        for write in [SysfsWrite.remove(target), rescan] {
            switch self.write(write, for: id, recordAttempts: true) {
            case .done: continue
            case .failed(let error):
                return .notRecovered(outcome: "failed", detail: "\(write): \(error.name) (\(error.message))")
            case let other:
                finish(id, after: other, of: write, during: "remove and rescan")
                return .ended
            }
        }
        guard HostTopology(root: host.root).exists(target) else {
            return .notRecovered(outcome: "gone", detail: "\(target) did not come back from the rescan")
        }
        let root = host.root
        let current = root.linkName(root.device(target) + "/driver")
        if let original, current != original {
            var writes: [SysfsWrite] = [.driverOverride(target, original)]
            if let current { writes.append(.unbind(target, driver: current)) }
            writes.append(.driversProbe(target))
            for write in writes {
                switch self.write(write, for: id, recordAttempts: true) {
                case .done: continue
                case .failed(let error):
                    note(id, "could not bind \(target) back to \(original): \(write): \(error.name)")
                case let other:
                    finish(id, after: other, of: write, during: "rebinding after the rescan")
                    return .ended
                }
            }
            let now = root.linkName(root.device(target) + "/driver")
            if now != original {
                note(id, "after the rescan \(target) is on \(now ?? "no driver"), not \(original)")
            }
        }
        guard holdInD0(target, for: id) else { return .ended }
        return readyAndVerified(id, deadline: deadline, kind: kind, expected: expected)
    }

    /// Readiness until the rung's deadline, then the layout against the one recorded before.
    private func readyAndVerified(
        _ id: String, deadline: ContinuousClock.Instant, kind: ReadinessProbeKind, expected: PCIExpectation
    ) -> RungResult {
        guard let live = live(id) else { return .ended }
        let target = live.machine.job.gpu
        handle(id) { $0.entered(.waitingReady, atMs: Timestamp.nowMs()) }
        show(target, .notReady, for: id)
        let probe = ReadinessProbe.make(kind: kind, bdf: target, root: host.root, expected: expected)
        let outcome = waitForReadiness(
            id, probe: probe, deadline: min(deadline, live.deadline), token: live.token)
        handle(id) { machine in
            machine.change { details in
                details.readiness = Job.Readiness(
                    probe: kind.rawValue, result: outcome.result.kind, waitedMs: outcome.waitedMs,
                    polls: outcome.polls)
                details.notes += outcome.notes
            }
        }
        settle(target, after: outcome, for: id)
        switch outcome.result {
        case .ready:
            break
        case .cancelled(let reason):
            finish(id, .cancelled, .cancelled(reason))
            return .ended
        case .timedOut(let last):
            return .notRecovered(
                outcome: "not_ready", detail: "not ready within its share of the deadline: \(last)")
        case .failed(let reason), .gone(let reason):
            return .notRecovered(outcome: "not_ready", detail: reason)
        }
        handle(id) { $0.entered(.verifying, atMs: Timestamp.nowMs()) }
        let differences = ReadinessProbe.make(kind: kind, bdf: target, root: host.root, expected: expected)
            .verifyLayout()
        guard differences.isEmpty else {
            return .notRecovered(outcome: "layout_changed", detail: differences.joined(separator: "; "))
        }
        return .recovered
    }

    /// Where `needs_reboot` lives: not in the `DeviceMachine` table, whose entries mean "a job holds
    /// this device" (claims, the health watch and `isHeld` read it so), while `needs_reboot` is a
    /// verdict about a free device. So the engine keeps the set beside the table (rescans never touch
    /// it) and shows it through the inventory's overlay, which a rescan does not clear either; only a
    /// job's re-read clears the overlay, and this runs right after that re-read, before the outcome
    /// shows. A later successful reset of the GPU (any method) lifts it.
    ///
    /// The verdict is stored with the kernel's boot id: a restart of graced keeps it (an upgrade must
    /// not hand a broken GPU out as ready), and the power cycle that cures the GPU lifts it, because
    /// the next start sees another boot (`restoreRebootVerdicts`).
    func applyRebootVerdict(_ id: String) {
        enum Verdict { case given, kept, lifted }
        let verdict = state.withLock { state -> (BDF, Verdict)? in
            guard let live = state.jobs[id], case .concluding(let outcome) = live.machine.state else {
                return nil
            }
            let target = live.machine.job.gpu
            if outcome.failure?.reason == .needsReboot {
                state.rebootNeeded.insert(target)
                return (target, .given)
            } else if live.machine.job.kind == .reset && outcome.state == .succeeded {
                guard state.rebootNeeded.remove(target) != nil else { return nil }
                return (target, .lifted)
            }
            return state.rebootNeeded.contains(target) ? (target, .kept) : nil
        }
        guard let (target, verdict) = verdict else { return }
        switch verdict {
        case .given, .kept:
            if verdict == .given, let bootId {
                do {
                    try store.saveRebootVerdict(
                        RebootVerdict(
                            bdf: target.description, bootId: bootId, jobId: id, atMs: Timestamp.nowMs()))
                } catch {
                    logger.error("could not record that \(target) needs a reboot: \(error)")
                }
            }
            // Announced with the job's outcome, as one change from what the job showed last.
            inventory.setState(
                target.description, .needsReboot, because: "job \(id): no reset method brought it back",
                announcing: false)
        case .lifted:
            do {
                try store.deleteRebootVerdict(bdf: target.description)
            } catch {
                logger.error("could not record that \(target) no longer needs a reboot: \(error)")
            }
            logger.notice("\(target) was reset successfully: no longer needs_reboot")
        }
    }

    /// At start: the verdicts given in this boot show again; those from an earlier boot are lifted
    /// (the host was power-cycled, which is the cure).
    func restoreRebootVerdicts() {
        let verdicts: [RebootVerdict]
        do {
            verdicts = try store.rebootVerdicts()
        } catch {
            logger.error("could not read which GPUs need a reboot: \(error)")
            return
        }
        for verdict in verdicts {
            guard let device = BDF(verdict.bdf), let bootId, verdict.bootId == bootId else {
                logger.notice(
                    "\(verdict.bdf) needed a reboot (job \(verdict.jobId)); the host has booted since")
                _ = try? store.deleteRebootVerdict(bdf: verdict.bdf)
                continue
            }
            state.withLock { _ = $0.rebootNeeded.insert(device) }
            inventory.setState(verdict.bdf, .needsReboot, because: "restart: a reboot verdict of this boot")
            logger.warning(
                "\(verdict.bdf) still needs a reboot (job \(verdict.jobId) gave it up in this boot)")
        }
    }

    /// Whether an escalating reset gave up on `device`.
    func needsReboot(_ device: BDF) -> Bool {
        state.read { $0.rebootNeeded.contains(device) }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
