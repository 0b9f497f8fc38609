import GraceHTTP
import Logging
import Passthrough
import Synchronization

/// Re-probes a GPU whose job ended without its readiness probe's verdict (cancelled, timed out, a
/// hung write that finally returned, interrupted by a restart), until the probe says ready or for a
/// bounded time, on a thread of its own; the verdict is published through the inventory's readiness
/// evidence (`InventoryService.settleReadiness`), and from there as a `device.state` event.
///
/// At most one follow-up per GPU: a new one, or a job taking the GPU, stops the one before. One that
/// ends without ready leaves the GPU `not_ready`; the health watch looks again at every check.
///
/// Like a job, a follow-up keeps the GPU in D0 while it probes (an idle vfio-bound GPU runtime-
/// suspends to D3hot, where its BARs read all-ones and the nvgrace probe cannot tell), through the
/// engine's watchdog, and gives `power/control` back when it ends.
final class ReadinessFollowUp: Sendable {
    private let inventory: InventoryService
    private let root: SysfsRoot
    private let policy: PollPolicy
    private let logger: Logger
    private let executor: KernelWriteExecutor
    /// The longest a follow-up polls: a probe's own ceiling (nvgrace: 30 s) plus a margin, at most this.
    let boundSeconds: Double

    /// One follow-up: its cancellation, and whether it has ended (its writes given back).
    private final class Run: Sendable {
        let token = CancellationToken()
        let ended = GuardedValue(false)
    }

    private let running = Mutex<[BDF: Run]>([:])
    /// Follow-ups not yet ended, so that `stopAll` can wait for them.
    private let active = GuardedValue(0)

    init(
        inventory: InventoryService, root: SysfsRoot, policy: PollPolicy, executor: KernelWriteExecutor,
        logger: Logger, boundSeconds: Double = 60
    ) {
        self.inventory = inventory
        self.root = root
        self.policy = policy
        self.executor = executor
        self.logger = logger
        self.boundSeconds = boundSeconds
    }

    /// Starts re-probing `device` if its readiness is in doubt (nothing otherwise).
    func follow(_ device: BDF, after cause: String) {
        guard let doubt = inventory.readinessDoubt(device) else { return }
        let run = Run()
        let earlier = running.withLock { running in
            defer { running[device] = run }
            return running[device]
        }
        Self.stop(earlier, reason: "a newer follow-up")
        active.withLock { $0 += 1 }
        startDedicatedThread { [self] in
            // Listed until its writes are given back: `cancel` either finds it and waits, or finds
            // nothing left to wait for.
            defer {
                running.withLock { running in
                    if running[device] === run { running[device] = nil }
                }
                run.ended.withLock { $0 = true }
                active.withLock { $0 -= 1 }
            }
            let control = holdInD0(device)
            probe(device, doubt: doubt, token: run.token, cause: cause)
            if let control { giveBack(device, control) }
        }
    }

    /// A job takes these devices: their follow-ups stop (the job's own probe has the last word), and
    /// this returns once they have given `power/control` back, so the job finds it as it was.
    func cancel(_ devices: Set<BDF>) {
        let runs = running.withLock { running in devices.compactMap { running.removeValue(forKey: $0) } }
        for run in runs { Self.stop(run, reason: "a job took the GPU") }
    }

    /// At shutdown: every follow-up stops, and this returns once they have.
    func stopAll() {
        let runs = running.withLock { running in
            defer { running.removeAll() }
            return Array(running.values)
        }
        for run in runs { run.token.cancel(reason: "shutdown") }
        active.wait(until: .now + .seconds(30), for: { $0 == 0 }) { _, _ in }
    }

    /// Whether a follow-up is polling `device` now.
    func isFollowing(_ device: BDF) -> Bool {
        running.withLock { $0[device] != nil }
    }

    private static func stop(_ run: Run?, reason: String) {
        guard let run else { return }
        run.token.cancel(reason: reason)
        run.ended.wait(until: .now + .seconds(30), for: { $0 }) { _, _ in }
    }

    /// One look of the probe, with the GPU held in D0 for it (at start: a suspended GPU's BAR0 reads
    /// all-ones, which says nothing about its readiness).
    func probeOnce(_ device: BDF, kind: ReadinessProbeKind, expected: PCIExpectation) -> ProbeObservation {
        let control = holdInD0(device)
        defer { if let control { giveBack(device, control) } }
        return ReadinessProbe.make(kind: kind, bdf: device, root: root, expected: expected).observe(
            elapsedMs: 0)
    }

    /// `power/control` = `on` when it is not; returns the value to give back (nil: nothing changed).
    private func holdInD0(_ device: BDF) -> String? {
        guard let control = PowerState.read(bdf: device, root: root).control, control != "on" else {
            return nil
        }
        guard executor.perform(.powerControl(device, "on"), deadline: .now + .seconds(5)) == .done else {
            return nil
        }
        return control
    }

    private func giveBack(_ device: BDF, _ control: String) {
        let write = SysfsWrite.powerControl(device, control)
        if executor.perform(write, deadline: .now + .seconds(5)) != .done {
            logger.warning("readiness follow-up: could not put back \(write)")
        }
    }

    private func probe(_ device: BDF, doubt: ReadinessDoubt, token: CancellationToken, cause: String) {
        let probe = ReadinessProbe.make(kind: doubt.probe, bdf: device, root: root, expected: doubt.expected)
        let bound = min(boundSeconds, Self.ceilingSeconds(doubt.probe) + 5)
        let outcome = ReadinessWaiter.wait(
            for: probe, deadline: .now + .milliseconds(Int64(bound * 1000)), token: token, policy: policy)
        let reason = "readiness follow-up after \(cause)"
        switch outcome.result {
        case .ready:
            logger.notice("\(device): its \(doubt.probe.rawValue) probe says ready again (\(reason))")
            inventory.settleReadiness(
                device, ready: true, reason: "ready", generation: doubt.generation, because: reason)
        case .timedOut(let last):
            logger.warning("\(device) still not ready after \(Int(bound)) s of follow-up: \(last)")
            inventory.settleReadiness(
                device, ready: false, reason: last, generation: doubt.generation, because: reason)
        case .failed(let why), .gone(let why):
            inventory.settleReadiness(
                device, ready: false, reason: why, generation: doubt.generation, because: reason)
        case .cancelled:
            break
        }
    }

    /// The probe's own ceiling: how long a GPU of this kind may take to be ready after a reset.
    static func ceilingSeconds(_ kind: ReadinessProbeKind) -> Double {
        switch kind {
        case .nvgraceBAR0: NvgraceBAR0Check.ceilingSeconds
        case .cxlDVSEC: 64
        case .pci: 10
        }
    }
}
