import GraceHTTP
import Logging
import Passthrough
import Store
import Synchronization

/// Keeps functions on the drivers graced last put them on (`desired_bindings`): at startup, and
/// after every scan in which a function's driver changed, a function whose driver is not the desired
/// one gets a reconcile job, unless something holds it (then it is reported and left alone).
///
/// It acts on changes, not on states: a function it could not fix (a driver that will not probe) is
/// looked at again only when its driver changes, so nothing loops; a held one is looked at again on
/// every scan (which writes nothing while it is held), so it is put right once the holder lets go. A function already
/// on its desired driver is never written to.
public final class BindingReconciler: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Submit reconcile jobs.
        case apply
        /// Only log and report in `GET /bindings`.
        case report
    }

    /// What the reconciler last did about a function that was not on its desired driver.
    enum Verdict: Sendable, Equatable {
        case submitted(job: String)
        /// Someone holds it (a job, a VM, a host driver in the way): left alone.
        case held(String)
        /// `--reconcile report`: left alone.
        case reported
        /// Not possible now (the function just came back and the inventory has not caught up, a
        /// write is stuck): looked at again at the next scan.
        case waiting(String)
        case refused(String)
    }

    private struct State {
        /// The driver each desired function had at the last look (`.some(nil)`: none; absent: never
        /// looked, or the function was absent).
        var seen: [String: String?] = [:]
        var verdicts: [String: Verdict] = [:]
        var active = false
    }

    let engine: JobEngine
    let store: GraceStore
    let root: SysfsRoot
    let mode: Mode
    let logger: Logger
    /// Held for a whole comparison, so two scans finishing together never both submit.
    private let state = Mutex(State())

    init(engine: JobEngine, store: GraceStore, root: SysfsRoot, mode: Mode, logger: Logger) {
        self.engine = engine
        self.store = store
        self.root = root
        self.mode = mode
        self.logger = logger
    }

    /// From now on scans are compared; the first comparison is the startup one (after the engine has
    /// dealt with the jobs a dead daemon left, so their restores come first).
    func start() {
        state.withLock { $0.active = true }
        compare()
    }

    /// The driver the function is on now (nil: none); nil twice when the function is absent.
    func currentDriver(_ bdf: String) -> String?? {
        guard let address = BDF(bdf), HostTopology(root: root).exists(address) else { return nil }
        return .some(root.linkName(root.device(address) + "/driver"))
    }

    func verdict(_ bdf: String) -> Verdict? {
        state.withLock { $0.verdicts[bdf] }
    }

    /// A bind or unbind through graced is about to succeed (it still holds its functions): what they
    /// are on now is what graced itself did, so it counts as seen and is not fought, even when the
    /// request said `"persist": false` and the desired binding still names another driver. That
    /// one is applied again at the next start, or when the driver changes behind graced's back.
    func settled(_ job: Job) {
        state.withLock { state in
            for bdf in job.details.affected {
                guard let current = currentDriver(bdf) else { continue }
                state.seen[bdf] = current
                state.verdicts[bdf] = nil
            }
        }
    }

    /// Forgets what was seen of a function whose desired binding was deleted.
    func forget(_ bdf: String) {
        state.withLock { state in
            state.seen[bdf] = nil
            state.verdicts[bdf] = nil
        }
    }

    /// Compares every desired binding with the host; acts on those that differ and changed since
    /// the last look (or were never looked at).
    func compare() {
        let bindings: [DesiredBinding]
        do {
            bindings = try store.desiredBindings()
        } catch {
            logger.error("could not read the desired bindings: \(error)")
            return
        }
        state.withLock { state in
            guard state.active else { return }
            for binding in bindings {
                guard let current = currentDriver(binding.bdf) else {
                    state.seen[binding.bdf] = nil
                    continue
                }
                let previous = state.seen[binding.bdf]
                state.seen[binding.bdf] = current
                if current == binding.driver {
                    state.verdicts[binding.bdf] = nil
                    continue
                }
                // Unchanged since the last look: acted on already, unless it was held or not yet
                // possible then (looking again writes nothing while that lasts).
                let earlier = state.verdicts[binding.bdf]
                if let previous, previous == current, earlier?.isRetried != true { continue }
                let (verdict, message) = act(on: binding, current: current)
                state.verdicts[binding.bdf] = verdict
                // Said once per verdict, not at every scan while a holder keeps it.
                if verdict != earlier { logger.notice("reconcile: \(message)") }
            }
        }
    }

    private func act(on binding: DesiredBinding, current: String?) -> (Verdict, String) {
        let bdf = binding.bdf
        let wanted = binding.driver ?? "no driver"
        let what = "\(bdf) is on \(current ?? "no driver"), desired \(wanted)"
        guard let address = BDF(bdf) else { return (.refused("not a PCI address"), what) }
        if engine.isHeld(address) {
            return (.held("a job holds it"), "\(what); a job holds it: left alone")
        }
        guard mode == .apply else {
            return (.reported, "\(what) (report only)")
        }
        switch engine.submitReconcile(address, driver: binding.driver) {
        case .accepted(let job), .repeated(let job):
            return (.submitted(job: job.id), "\(what): job \(job.id)")
        case .refused(.plan(let refusal)) where refusal.kind == .inTheWay:
            return (.held(refusal.message), "\(what); held, left alone: \(refusal.message)")
        case .refused(.busy(_, let job)):
            return (.held("job \(job.id) holds it"), "\(what); job \(job.id) holds it: left alone")
        case .refused(let refusal) where Self.isPassing(refusal):
            // The inventory has not caught up with a function that just came back, a write is
            // stuck, the store is behind: the next scan tries again.
            return (.waiting("\(refusal)"), "\(what); not yet: \(refusal)")
        case .refused(let refusal):
            return (.refused("\(refusal)"), "\(what); not reconciled: \(refusal)")
        case .dryRun:
            return (.refused("dry run"), what)
        }
    }

    /// Refusals that say "not now" rather than "never".
    private static func isPassing(_ refusal: SubmitRefusal) -> Bool {
        switch refusal {
        case .gpuMissing, .gpuWedged, .kernelWritesStuck, .storeUnavailable, .storeDegraded, .shuttingDown:
            true
        case .plan(let refusal):
            refusal.kind == .absent
        case .deadlineOutOfRange, .gpuNotFound, .idempotencyKeyReused, .busy:
            false
        }
    }

    /// When a bind or unbind through graced is about to succeed (its functions checked on their
    /// drivers, still held by the job): the drivers they are on now are their desired ones, unless
    /// the request said `"persist": false`. Only a success records: a failed bind reverted its
    /// writes, and recording it would make every rescan retry it.
    static func recordDesired(_ job: Job, root: SysfsRoot, store: GraceStore, logger: Logger) {
        guard job.kind == .bind || job.kind == .unbind else { return }
        let bytes = Array(job.requestJSON.utf8)
        let persist =
            job.kind == .bind
            ? (try? JSON.decode(BindRequest.self, from: bytes))?.persist
            : (try? JSON.decode(UnbindRequest.self, from: bytes))?.persist
        guard persist != false else { return }
        let bindings = job.details.affected.compactMap { text -> DesiredBinding? in
            guard let bdf = BDF(text), HostTopology(root: root).exists(bdf) else { return nil }
            return DesiredBinding(
                bdf: text, driver: root.linkName(root.device(bdf) + "/driver"), jobId: job.id,
                setAtMs: Timestamp.nowMs())
        }
        do {
            try store.setDesiredBindings(bindings)
        } catch {
            logger.error("could not record the desired bindings of job \(job.id): \(error)")
        }
    }
}

extension BindingReconciler.Verdict {
    /// Looked at again at every scan, even when the driver has not changed.
    var isRetried: Bool {
        switch self {
        case .held, .waiting: true
        case .submitted, .reported, .refused: false
        }
    }
}
