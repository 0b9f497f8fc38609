import GraceHTTP
import Logging
import Passthrough
import Synchronization

/// Looks at every managed GPU that no job holds, every few seconds, and publishes what it sees as
/// the GPU's `health`: fallen off the bus (all-ones config), D3cold, a link trained below its
/// maximum, a changed identity, AER counters rising. A GPU that dropped off while idle is reported
/// before anyone asks for a reset.
///
/// Each look is cheap (four config dwords once the PCI Express capability is found) and never wakes
/// the device (see `HealthObservation`). A GPU a job holds is not
/// looked at: a reset makes it read all-ones on purpose. The watch does not know jobs; it asks
/// `isHeld`, before and after the look, and drops a look that a job overlapped.
public final class HealthWatch: Sendable {
    let inventory: InventoryService
    let root: SysfsRoot
    let isHeld: @Sendable (BDF) -> Bool
    let logger: Logger
    private let memory = Mutex<[String: HealthMemory]>([:])
    /// Where each GPU's PCI Express capability is (0: none), found by its first look: later looks
    /// read the link registers there and not the capability list again.
    private let pciExpressOffsets = Mutex<[String: Int]>([:])
    /// Serialises looks: the periodic one and a test's.
    private let looking = Mutex(())
    private let intervalSeconds: Double
    private let worker = Mutex<PeriodicWorker?>(nil)
    /// The last GPU a budgeted check looked at: the next one goes on after it.
    private let cursor = Mutex<String?>(nil)

    /// Looks per periodic check: every GPU on hosts of up to this many, so a GPU that drops off is
    /// reported within one interval.
    static let minimumLooksPerCheck = 256
    /// On larger hosts each check looks at the next share of the GPUs, so that every GPU is looked at
    /// within this long, and the watch's idle cost stops growing with the fleet (at 4096 GPUs, all of
    /// them every 5 s cost 3 % of a core).
    static let sweepSeconds = 60.0

    /// How many GPUs a periodic check looks at, of `count`.
    static func looksPerCheck(of count: Int, intervalSeconds: Double) -> Int {
        let share = (Double(count) * intervalSeconds / sweepSeconds).rounded(.up)
        return min(count, max(minimumLooksPerCheck, Int(share)))
    }

    /// `intervalSeconds` 0 starts no timer (tests call `check()` themselves).
    public init(
        inventory: InventoryService, intervalSeconds: Double, logger: Logger,
        isHeld: @escaping @Sendable (BDF) -> Bool
    ) {
        self.inventory = inventory
        root = inventory.inventory.root
        self.isHeld = isHeld
        self.logger = logger
        self.intervalSeconds = intervalSeconds
    }

    /// Looks at every idle GPU once and publishes the results, all in one publication: one per
    /// GPU rebuilt the whole list once per GPU, quadratic in the GPUs (at 4096 a check took minutes).
    /// Blocks on sysfs: call it from a dedicated thread (the periodic worker's, or `offPool` in tests).
    public func check() {
        check(atMost: nil)
    }

    /// Looks at up to `limit` GPUs (all when nil), going on after the last one looked at and
    /// wrapping around, in one publication.
    func check(atMost limit: Int?) {
        looking.withLock { _ in
            let gpus = inventory.snapshot.gpus
            var turn = gpus
            if let limit, limit < gpus.count {
                let after = cursor.withLock { $0 }
                let start = after.flatMap { last in gpus.firstIndex { $0.bdf > last } } ?? 0
                turn = Array((gpus[start...] + gpus[..<start]).prefix(limit))
            }
            cursor.withLock { $0 = turn.last?.bdf }
            var seen: [String: GPUHealth] = [:]
            for gpu in turn {
                if let health = look(at: gpu) { seen[gpu.bdf] = health }
            }
            // A job that took a GPU since its look has the last word on it.
            inventory.setHealth(seen.filter { bdf, _ in BDF(bdf).map { !isHeld($0) } ?? false })
            recheckDoubts()
        }
        // A look at every GPU and a new snapshot leave megabytes freed at fleet scale.
        HeapTrim.now()
    }

    /// A GPU shown `not_ready` because its probe has not said ready since its last reset (and no job
    /// or follow-up is probing it) gets one look of that probe: ready lifts the doubt. So a GPU that
    /// recovers after its follow-up gave up is shown ready within one interval.
    private func recheckDoubts() {
        for (bdf, doubt) in inventory.readinessDoubts {
            guard let device = BDF(bdf), !isHeld(device), inventory.snapshot.gpu(bdf)?.state == .notReady
            else {
                continue
            }
            let observation = ReadinessProbe.make(
                kind: doubt.probe, bdf: device, root: root, expected: doubt.expected
            )
            .observe(elapsedMs: 0)
            guard observation.isReady, !isHeld(device) else { continue }
            inventory.settleReadiness(
                device, ready: true, reason: "ready", generation: doubt.generation,
                because: "health watch: its \(doubt.probe.rawValue) probe says ready")
        }
    }

    /// What the watch sees of the GPU now, or nil when it does not look (missing, wedged, held).
    private func look(at gpu: GPUDevice) -> GPUHealth? {
        guard let bdf = BDF(gpu.bdf) else { return nil }
        // A missing GPU has nothing to read, and a wedged one has a kernel write stuck on it.
        guard gpu.state != .missing, gpu.state != .wedged else {
            if gpu.state == .missing {
                memory.withLock { $0[gpu.bdf] = nil }
                pciExpressOffsets.withLock { $0[gpu.bdf] = nil }
            }
            return nil
        }
        guard !isHeld(bdf) else { return nil }
        let observation = HealthObservation.read(
            bdf: bdf, upstream: gpu.parentBridge.flatMap { BDF($0) }, root: root,
            pciExpressAt: pciExpressOffsets.withLock { $0[gpu.bdf] })
        guard !isHeld(bdf) else { return nil }
        let now = Timestamp.nowMs()
        let (findings, previous) = memory.withLock { memory in
            let previous = memory[gpu.bdf] ?? HealthMemory()
            let result = HealthEvaluator.evaluate(observation, memory: previous, nowMs: now)
            memory[gpu.bdf] = result.memory
            return (result.findings, previous.findings)
        }
        // A device that stopped answering or changed may come back laid out differently: find the
        // capability again then.
        let relocate = findings.contains { $0.reason == .allOnes || $0.reason == .identityChanged }
        pciExpressOffsets.withLock {
            $0[gpu.bdf] = relocate ? nil : observation.pciExpressOffset ?? $0[gpu.bdf]
        }
        if findings.map(\.reason) != previous.map(\.reason) {
            if findings.isEmpty {
                logger.notice("health of \(gpu.bdf): ok again")
            } else {
                logger.warning(
                    "health of \(gpu.bdf): \(findings.map { "\($0.reason.rawValue): \($0.detail)" }.joined(separator: "; "))"
                )
            }
        }
        return Self.view(findings, checkedAtMs: now)
    }

    static func view(_ findings: [HealthFinding], checkedAtMs: Int64) -> GPUHealth {
        GPUHealth(
            status: findings.map(\.reason.status).max() ?? .ok,
            checkedAt: Timestamp.rfc3339(ms: checkedAtMs),
            reasons: findings.map {
                GPUHealth.Finding(
                    reason: $0.reason, detail: $0.detail, since: Timestamp.rfc3339(ms: $0.sinceMs))
            })
    }

    func start() {
        guard intervalSeconds > 0 else { return }
        let periodic = PeriodicWorker(intervalSeconds: intervalSeconds) { [self] in
            check(
                atMost: Self.looksPerCheck(
                    of: inventory.snapshot.gpus.count, intervalSeconds: intervalSeconds))
        }
        worker.withLock { $0 = periodic }
        periodic.start()
    }

    func stop() {
        let periodic = worker.withLock { worker -> PeriodicWorker? in
            defer { worker = nil }
            return worker
        }
        periodic?.stop()
    }
}
