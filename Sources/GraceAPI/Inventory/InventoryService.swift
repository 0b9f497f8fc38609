import GraceHTTP
import Logging
import Passthrough
import Store
import Synchronization

/// Keeps the published snapshot in step with the host: scans through the seam, records each GPU's
/// identity and layout in the store (a new snapshot only when the layout changed), then publishes.
///
/// `refresh()` blocks on sysfs, libpci and SQLite; it runs on the refresher's own thread or a caller's
/// dedicated thread, never on an HTTP thread and never on Swift's cooperative pool.
public final class InventoryService: Sendable {
    public let inventory: HostInventory
    let store: GraceStore
    let logger: Logger
    private let published = Mutex(InventorySnapshot.empty)
    /// The inventory as last read, and what was recorded of it.
    private let refreshing = Mutex(RefreshState())
    /// Serialises store recordings (held while writing, without `refreshing`).
    private let recording = Mutex(())
    /// Serialises announcements, so that `device.state` events leave in the order the changes were
    /// published whichever thread publishes.
    private let announcing = Mutex(())
    private let stateObserver = Mutex<Observer<DeviceStateChange>?>(nil)
    typealias RecordedKey = (identity: DeviceIdentity, layoutJSON: String)

    private struct RefreshState {
        /// Device row and last recorded layout text per BDF, so that an unchanged host costs no writes.
        var known: [String: RecordedKey] = [:]
        var history: [String: [LayoutSnapshot]] = [:]
        /// Every GPU seen since the start, as last seen: one that disappears stays listed as missing.
        var lastSeen: [String: GPUDevice] = [:]
        var present: Set<String> = []
        /// Identity and names from the last scan, to re-describe a device without rescanning the bus.
        var functions: [String: PCIFunction] = [:]
        /// States jobs impose (resetting, not_ready, wedged) over what a scan says.
        var overlay: [String: DeviceState] = [:]
        /// GPUs whose readiness probe has not said ready since their last reset: shown `not_ready`
        /// however their config space reads.
        var doubts: [String: ReadinessDoubt] = [:]
        var doubtGeneration: UInt64 = 0
        /// Changes of shown state not yet announced, oldest first (see `announceChanges`).
        var unannounced: [DeviceStateChange] = []
        /// What the health watch last saw, laid over every scan's `unknown`.
        var health: [String: GPUHealth] = [:]
        /// When a snapshot was last published (by anything: a scan, a job, the health watch).
        var publishedAtMs: Int64 = 0
        var takenAtMs: Int64 = 0
        /// Every read of the host takes a number before it starts; a device keeps the number of the
        /// read that last described it, so a slow full scan that began before a job's quick re-read
        /// cannot overwrite it with older facts when it finishes later.
        var generation: UInt64 = 0
        var readGeneration: [String: UInt64] = [:]

        mutating func nextGeneration() -> UInt64 {
            generation += 1
            return generation
        }

        /// Records what a read found about `bdf` (nil: absent), unless a newer read already did.
        mutating func merge(_ bdf: String, _ gpu: GPUDevice?, read: UInt64) {
            guard read >= readGeneration[bdf] ?? 0 else { return }
            readGeneration[bdf] = read
            if let gpu {
                lastSeen[bdf] = gpu.keepingConfigFacts(of: lastSeen[bdf])
                present.insert(bdf)
            } else {
                present.remove(bdf)
            }
        }
    }

    static let historyLimit = 50

    /// Told of each new layout snapshot that drifted (the metrics count them); set once, at wiring.
    private let driftObserver = Mutex<Observer<String>?>(nil)
    private let refreshObserver = Mutex<Observer<InventorySnapshot>?>(nil)

    public init(inventory: HostInventory, store: GraceStore, logger: Logger) {
        self.inventory = inventory
        self.store = store
        self.logger = logger
    }

    public var snapshot: InventorySnapshot { published.withLock { $0 } }

    /// Scans, publishes, then records. Throws only when libpci cannot read the tree at all; a store
    /// failure is logged and the snapshot still published (reads must not depend on the disk).
    @discardableResult
    public func refresh() throws(PCIScanError) -> InventorySnapshot {
        let scanned = try scanAndPublish()
        recordLayouts(scanned.gpus, at: scanned.takenAtMs)
        let snapshot = self.snapshot
        notifyRefreshObserver(snapshot)
        return snapshot
    }

    /// Outside every lock: the observer may read the host and submit jobs.
    private func notifyRefreshObserver(_ snapshot: InventorySnapshot) {
        refreshObserver.withLock { $0 }?.notify(snapshot)
    }

    /// What a scan found, for `recordLayouts` to record after the snapshot is out.
    public struct Scan: Sendable {
        public let gpus: [GPUDevice]
        public let takenAtMs: Int64
    }

    /// Scans the bus and publishes what it found, without touching the store: answers come from
    /// memory and must not wait on the disk (a first start writes a row and a layout per GPU, each
    /// a synced transaction; see bench/RESULTS.md). `recordLayouts` records them afterwards.
    public func scanAndPublish() throws(PCIScanError) -> Scan {
        let read = refreshing.withLock { $0.nextGeneration() }
        let functions = try inventory.managedFunctions()
        let gpus = ParallelDescribe.describe(functions, with: inventory)
        let now = Timestamp.nowMs()
        refreshing.withLock { state in
            for function in functions { state.functions[function.bdf.description] = function }
            for gpu in gpus { state.merge(gpu.bdf, gpu, read: read) }
            let found = Set(gpus.map(\.bdf))
            for bdf in state.lastSeen.keys where !found.contains(bdf) {
                state.merge(bdf, nil, read: read)
            }
            state.takenAtMs = now
            _ = publish(&state, because: "rescan")
        }
        announceChanges()
        return Scan(gpus: gpus, takenAtMs: now)
    }

    /// Records the identity and layout of each GPU whose recorded ones differ (nothing for an
    /// unchanged host), all in one transaction, then republishes the layout histories if any changed.
    /// The store is written without holding the snapshot's lock, so jobs' state changes are not held
    /// up by the disk; recordings are serialised among themselves so that two never record the same
    /// change twice. When the store fails nothing is remembered as recorded: the error is logged and
    /// the next scan or re-read records the same GPUs again.
    public func recordLayouts(_ gpus: [GPUDevice], at now: Int64) {
        recording.withLock { _ in
            let known = refreshing.withLock { $0.known }
            var pending: [(bdf: String, layout: RecordedLayout, key: RecordedKey)] = []
            // A GPU never described awake has no layout to record yet (its memory was not read).
            for gpu in gpus where gpu.describedFrom != .sysfs {
                let identity = DeviceIdentity(
                    bdf: gpu.bdf, vendorId: gpu.vendorId, deviceId: gpu.deviceId,
                    subsystemVendorId: gpu.subsystemVendorId, subsystemDeviceId: gpu.subsystemDeviceId)
                let layout = RecordedLayout(gpu)
                let layoutJSON = JSON.encodeString(layout)
                if let recorded = known[gpu.bdf], recorded.identity == identity,
                    recorded.layoutJSON == layoutJSON
                {
                    continue
                }
                pending.append((gpu.bdf, layout, (identity, layoutJSON)))
            }
            guard !pending.isEmpty else { return }
            let outcomes: [GraceStore.LayoutRecordingOutcome]
            do {
                outcomes = try store.recordLayouts(
                    pending.map {
                        GraceStore.LayoutRecording(
                            identity: $0.key.identity, layoutJSON: $0.key.layoutJSON, seenAtMs: now)
                    },
                    historyLimit: Self.historyLimit,
                    describeChange: { index, previous in
                        guard let old = try? JSON.decode(RecordedLayout.self, from: Array(previous.utf8))
                        else {
                            return "layout changed"
                        }
                        return pending[index].layout.changes(from: old)
                    })
            } catch {
                logger.error(
                    "could not record the layouts of \(pending.count) GPUs (\(pending[0].bdf) first); the next scan tries again: \(error)"
                )
                return
            }
            for (entry, outcome) in zip(pending, outcomes) where outcome.isNew && outcome.snapshot.drift {
                logger.warning(
                    "layout drift on \(entry.bdf): \(outcome.snapshot.changeSummary ?? "changed")")
                driftObserver.withLock { $0 }?.notify(entry.bdf)
            }
            refreshing.withLock { state in
                for (entry, outcome) in zip(pending, outcomes) {
                    state.known[entry.bdf] = entry.key
                    var history = outcome.history
                    // The newest snapshot's text read back from the store is the text just
                    // remembered: keep one copy of it (at 4096 GPUs the second was megabytes).
                    if let newest = history.first, newest.layoutJSON == entry.key.layoutJSON {
                        history[0].layoutJSON = entry.key.layoutJSON
                    }
                    state.history[entry.bdf] = history
                }
                _ = publish(&state, because: "rescan")
            }
            announceChanges()
        }
        // After a scan's or a re-read's descriptions and bodies, recorded or not.
        HeapTrim.now()
    }

    /// Calls `observer` after every full scan and every uevent-driven re-read with the snapshot
    /// published (the binding reconciler compares successive ones); set once, at wiring.
    public func observeRefresh(_ observer: @escaping @Sendable (InventorySnapshot) -> Void) {
        refreshObserver.withLock { $0 = Observer(observer) }
    }

    /// Reads a few devices again (a job's affected set) and republishes, without rescanning the bus or
    /// writing to the store: the fast path that lets a job's outcome and the GPU's new state appear
    /// together. A full `refresh()` afterwards records layouts.
    public func reprobe(
        _ devices: Set<BDF>, clearing states: Bool, because cause: String = "re-read",
        announcing: Bool = true
    ) {
        let (known, read) = refreshing.withLock { state in
            (devices.compactMap { state.functions[$0.description] }, state.nextGeneration())
        }
        let described = known.map { function in
            (function.bdf.description, inventory.isPresent(function.bdf) ? inventory.describe(function) : nil)
        }
        refreshing.withLock { state in
            for (bdf, gpu) in described {
                if states { state.overlay[bdf] = nil }
                state.merge(bdf, gpu, read: read)
            }
            _ = publish(&state, because: cause)
        }
        if announcing { announceChanges() }
    }

    // MARK: Change-driven re-reads (kernel uevents)

    /// What `reread(_:)` did.
    public enum RereadOutcome: Sendable, Equatable {
        /// These GPUs were read again and republished (possibly none: the events named no managed
        /// function and no group-mate of one).
        case reread(Set<String>)
        /// A function appeared that the last scan did not know, or a known address now holds another
        /// device: only a full `refresh()` (libpci, names) can describe it.
        case needsFullScan
    }

    /// Re-reads the functions a kernel uevent named, and the managed GPUs that share an IOMMU group
    /// with them (their `iommuGroup.members[].driver` shows the named one's driver), then records
    /// their layouts and republishes, without rescanning the bus. A removed function shows `missing`,
    /// a re-added one is listed again, a driver change is reflected.
    public func reread(_ named: Set<BDF>) -> RereadOutcome {
        let plan = refreshing.withLock { state -> (targets: [PCIFunction], unknown: [BDF], read: UInt64) in
            var targets: [String: PCIFunction] = [:]
            var unknown: [BDF] = []
            let names = Set(named.map(\.description))
            for bdf in named {
                if let function = state.functions[bdf.description] {
                    targets[bdf.description] = function
                } else {
                    unknown.append(bdf)
                }
            }
            for gpu in state.lastSeen.values where targets[gpu.bdf] == nil {
                guard let members = gpu.iommuGroup?.members,
                    members.contains(where: { names.contains($0.bdf) }),
                    let function = state.functions[gpu.bdf]
                else { continue }
                targets[gpu.bdf] = function
            }
            return (Array(targets.values), unknown, state.nextGeneration())
        }
        // An unknown function that is gone, or that this service would not manage, changes nothing.
        for bdf in plan.unknown where inventory.isPresent(bdf) && inventory.mightManage(bdf) {
            return .needsFullScan
        }
        var described: [(String, GPUDevice?)] = []
        for function in plan.targets {
            guard inventory.isPresent(function.bdf) else {
                described.append((function.bdf.description, nil))
                continue
            }
            // A re-added address may hold a different card: its identity needs libpci's names.
            guard inventory.hasIdentity(function) else { return .needsFullScan }
            described.append((function.bdf.description, inventory.describe(function)))
        }
        refreshing.withLock { state in
            for (bdf, gpu) in described { state.merge(bdf, gpu, read: plan.read) }
            _ = publish(&state, because: "kernel device event")
        }
        announceChanges()
        recordLayouts(described.compactMap(\.1), at: Timestamp.nowMs())
        // A driver changed behind graced's back reaches the reconciler through uevents, not only rescans.
        notifyRefreshObserver(snapshot)
        return .reread(Set(described.map(\.0)))
    }

    /// Sets (or with nil clears) the state a job imposes on a GPU, and republishes at once without
    /// rescanning the host.
    public func setState(
        _ bdf: String, _ deviceState: DeviceState?, because cause: String = "job", announcing: Bool = true
    ) {
        refreshing.withLock { state in
            state.overlay[bdf] = deviceState
            _ = publish(&state, because: cause)
        }
        if announcing { announceChanges() }
    }

    /// Sets the health the watch saw on a GPU and republishes, only when it changed (an unchanged GPU
    /// keeps its encoded body and ETag, so a polling dashboard keeps getting 304).
    public func setHealth(_ bdf: String, _ health: GPUHealth) {
        setHealth([bdf: health])
    }

    /// How long a look that found nothing new may wait to be shown, on a host of `gpus`: each look
    /// moves `checkedAt`, and republishing the list for that alone (megabytes at fleet scale, ~60 µs
    /// of CPU per GPU) every few seconds was most of an idle fleet host's cost. 75 ms per GPU keeps
    /// that cost near 0.1 % of a core at any size: a small host shows every look (under a second),
    /// one of 4096 GPUs every five minutes at most.
    static func unchangedLookDelayMs(gpus: Int) -> Int64 {
        min(300_000, Int64(gpus) * 75)
    }

    /// Sets the health the watch saw on each GPU and republishes once: at once when what any GPU's
    /// health says changed (its status or reasons), else only when no snapshot was published for
    /// `unchangedLookDelayMs` (the new `checkedAt` values go out with the next one anyway).
    public func setHealth(_ seen: [String: GPUHealth], nowMs: Int64 = Timestamp.nowMs()) {
        refreshing.withLock { state in
            var changed = false
            var looked = false
            for (bdf, health) in seen where state.health[bdf] != health {
                let before = state.health[bdf]
                if before?.status != health.status || before?.reasons != health.reasons { changed = true }
                looked = true
                state.health[bdf] = health
            }
            let delay = Self.unchangedLookDelayMs(gpus: state.lastSeen.count)
            if changed || (looked && nowMs - state.publishedAtMs >= delay) {
                _ = publish(&state, because: "health watch")
            }
        }
        announceChanges()
    }

    /// Calls `observer` with the GPU's address whenever a new layout snapshot drifted.
    public func observeLayoutDrift(_ observer: @escaping @Sendable (String) -> Void) {
        driftObserver.withLock { $0 = Observer(observer) }
    }

    /// The scanned GPUs, the vanished ones as missing, the jobs' states and the readiness doubts over
    /// them. Every GPU whose shown state differs from the last publication's is queued for
    /// `announceChanges` with `cause`.
    private func publish(_ state: inout RefreshState, because cause: String) -> InventorySnapshot {
        state.publishedAtMs = Timestamp.nowMs()
        // BDF strings are fixed-width lowercase hex, so their text order is their numeric order.
        let gpus = state.lastSeen.values.sorted { $0.bdf < $1.bdf }
            .map { gpu in
                var gpu = gpu
                gpu.health = state.health[gpu.bdf] ?? .unknown
                if !state.present.contains(gpu.bdf) {
                    gpu.state = .missing
                }
                if let imposed = state.overlay[gpu.bdf], imposed == .wedged || state.present.contains(gpu.bdf)
                {
                    gpu.state = imposed
                }
                if gpu.state == .ready, state.doubts[gpu.bdf] != nil {
                    gpu.state = .notReady
                }
                return gpu
            }
        let previous = self.snapshot
        for gpu in gpus {
            if let before = previous.gpu(gpu.bdf)?.state, before != gpu.state {
                state.unannounced.append(
                    DeviceStateChange(bdf: gpu.bdf, from: before, to: gpu.state, reason: cause))
            }
        }
        let snapshot = InventorySnapshot(
            gpus: gpus, layoutHistory: state.history, takenAtMs: state.takenAtMs, reusing: previous)
        published.withLock { $0 = snapshot }
        return snapshot
    }

    // MARK: Shown state: changes and readiness evidence

    /// Calls `observer` with every change of a GPU's shown state, in order, once; set once, at wiring.
    public func observeStateChanges(_ observer: @escaping @Sendable (DeviceStateChange) -> Void) {
        stateObserver.withLock { $0 = Observer(observer) }
    }

    /// Hands the changes published so far to the observer, outside the snapshot's lock. Successive
    /// changes of one GPU within one hand-over are told as one (`resetting -> not_ready ->
    /// needs_reboot` as `resetting -> needs_reboot`); a GPU back where it started is not told at all.
    /// Every publishing method calls this before it returns, except `reprobe` when asked to wait: a
    /// job that ends announces once its outcome shows.
    public func announceChanges() {
        announcing.withLock { _ in
            let pending = refreshing.withLock { state in
                defer { state.unannounced.removeAll() }
                return state.unannounced
            }
            guard !pending.isEmpty, let observer = stateObserver.withLock({ $0 }) else { return }
            for change in Self.coalesced(pending) { observer.notify(change) }
        }
    }

    static func coalesced(_ changes: [DeviceStateChange]) -> [DeviceStateChange] {
        var result: [DeviceStateChange] = []
        var index: [String: Int] = [:]
        for change in changes {
            if let at = index[change.bdf], result[at].to == change.from {
                result[at].to = change.to
                result[at].reason = change.reason
            } else {
                index[change.bdf] = result.count
                result.append(change)
            }
        }
        return result.filter { $0.from != $0.to }
    }

    /// Doubts the readiness of `devices` (a reset was issued on them, or a write hung): they show
    /// `not_ready` until their probe says ready. Returns each doubt's generation.
    @discardableResult
    public func doubtReadiness(
        _ devices: [BDF: (probe: ReadinessProbeKind, expected: PCIExpectation)], reason: String,
        because cause: String
    ) -> [BDF: UInt64] {
        guard !devices.isEmpty else { return [:] }
        let now = Timestamp.nowMs()
        let generations = refreshing.withLock { state -> [BDF: UInt64] in
            var generations: [BDF: UInt64] = [:]
            for (bdf, what) in devices {
                state.doubtGeneration += 1
                generations[bdf] = state.doubtGeneration
                state.doubts[bdf.description] = ReadinessDoubt(
                    reason: reason, sinceMs: now, probe: what.probe, expected: what.expected,
                    generation: state.doubtGeneration)
            }
            _ = publish(&state, because: cause)
            return generations
        }
        announceChanges()
        return generations
    }

    /// What the probe said of a doubted GPU: ready lifts the doubt (unless a newer one was raised
    /// since `generation`) and reads the GPU again, so that what a read during its reset saw (all-ones
    /// config) is not shown any longer; not ready keeps it with `reason` as the latest word.
    public func settleReadiness(
        _ bdf: BDF, ready: Bool, reason: String, generation: UInt64?, because cause: String
    ) {
        let lifted = refreshing.withLock { state -> Bool in
            guard let doubt = state.doubts[bdf.description],
                generation.map({ $0 == doubt.generation }) ?? true
            else { return false }
            if ready {
                state.doubts[bdf.description] = nil
                return true
            }
            state.doubts[bdf.description]?.reason = reason
            return false
        }
        if lifted {
            reprobe([bdf], clearing: false, because: cause)
        }
    }

    /// The doubt over `bdf`, if any.
    public func readinessDoubt(_ bdf: BDF) -> ReadinessDoubt? {
        refreshing.withLock { $0.doubts[bdf.description] }
    }

    /// Every GPU whose readiness is in doubt.
    public var readinessDoubts: [String: ReadinessDoubt] {
        refreshing.withLock { $0.doubts }
    }
}
