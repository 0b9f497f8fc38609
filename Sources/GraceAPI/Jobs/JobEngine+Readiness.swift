import Passthrough

extension JobEngine {
    /// Polls a job's readiness probe (`ReadinessWaiter`). Before the wait first sleeps, the job's
    /// record is committed and its devices' events stop being held until the wait ends: a wait can
    /// last minutes, and what happens to the GPU meanwhile is told as it happens.
    func waitForReadiness(
        _ id: String, probe: ReadinessProbe, deadline: ContinuousClock.Instant, token: CancellationToken
    ) -> ReadinessOutcome {
        let gpus = Set((live(id)?.devices ?? []).map(\.description))
        let events = events
        let clock = CommittingClock { [self] in
            commitRecord(id)
            events?.release(gpus)
        }
        let outcome = ReadinessWaiter.wait(
            for: probe, deadline: deadline, token: token, policy: configuration.pollPolicy, clock: clock)
        if clock.slept { events?.hold(gpus) }
        return outcome
    }

    /// The readiness of `devices` is in doubt from now on (a reset is about to be written, or a write
    /// hung): each shows `not_ready` until its probe says ready. Devices the inventory does not list
    /// (a bridge, a non-GPU sibling behind the same bus) are not shown anyway.
    func doubt(_ devices: Set<BDF>, reason: String, because cause: String) {
        let snapshot = inventory.snapshot
        var doubted: [BDF: (probe: ReadinessProbeKind, expected: PCIExpectation)] = [:]
        for device in devices {
            guard let gpu = snapshot.gpu(device.description), let expected = PCIExpectation(gpu) else {
                continue
            }
            doubted[device] = (gpu.readinessProbe, expected)
        }
        inventory.doubtReadiness(doubted, reason: reason, because: cause)
    }

    /// Every device of job `id` is about to be reset by it.
    func doubtBeforeReset(_ id: String) {
        guard let live = live(id) else { return }
        doubt(
            live.devices, reason: "reset by job \(id); its probe has not said ready since",
            because: "job \(id)")
    }

    /// What the job's readiness wait found on `device`: ready lifts the doubt; anything else leaves
    /// the device `not_ready` with the probe's last word (a cancelled wait is followed up after the job).
    func settle(_ device: BDF, after outcome: ReadinessOutcome, for id: String) {
        let cause = "job \(id)"
        switch outcome.result {
        case .ready:
            inventory.settleReadiness(device, ready: true, reason: "ready", generation: nil, because: cause)
        case .timedOut(let last):
            inventory.settleReadiness(device, ready: false, reason: last, generation: nil, because: cause)
        case .failed(let why), .gone(let why):
            inventory.settleReadiness(device, ready: false, reason: why, generation: nil, because: cause)
        case .cancelled(let why):
            inventory.settleReadiness(
                device, ready: false, reason: "the readiness wait was cancelled (\(why))", generation: nil,
                because: cause)
        }
    }

    /// At start, before the server answers: a GPU whose last job touched it and did not prove it
    /// ready (timed out, cancelled, failed, interrupted by a restart) is doubted again and followed up,
    /// as it was when graced stopped. The evidence is the job record itself; nothing else is stored,
    /// and a GPU whose last job succeeded (or that no job touched) is not woken to be looked at.
    func verifyReadinessAtStart() {
        for gpu in inventory.snapshot.gpus where gpu.state == .ready {
            guard let device = BDF(gpu.bdf), !isHeld(device),
                let last = try? store.jobs(bdf: gpu.bdf, limit: 1, beforeCreatedAtMs: nil).first,
                let job = Job(record: last), job.kind != .unbind,
                [.timedOut, .cancelled, .failed, .interrupted].contains(job.state)
            else { continue }
            doubt(
                [device],
                reason: "its last job (\(job.id)) ended \(job.state.rawValue) before graced restarted",
                because: "start")
            followUps.follow(device, after: "the start of graced")
        }
    }
}
