import FoundationEssentials
import GraceHTTP
import Logging
import Passthrough
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// Carries out what the jobs' and devices' state machines decide (DESIGN.md, "Jobs" and
/// "Lifecycles"). Every live job is a `JobMachine` and every device a job holds a `DeviceMachine`,
/// both in one guarded `State`: the single source of a job's and a device's state. The engine feeds
/// them events and performs the actions they return: run a stage, persist, publish, signal a
/// cancellation, restore, release.
///
/// A job has three stages:
/// - submit, on the caller's thread: validate, plan, refuse; then claim the devices and store the
///   job in one step, so two requests can never both get them (nor one Idempotency-Key);
/// - run, on a worker thread: only kernel writes (through the watchdog) and readiness polls, each
///   transition recorded before the kernel write it announces;
/// - conclude: read the devices again and show the outcome, put back what the job changed, free the
///   devices, store the final record, rescan.
public final class JobEngine: Sendable {
    public struct Configuration: Sendable {
        /// Worker threads: jobs beyond this many wait in the queue.
        public var workers: Int
        /// Added to the probe's own ceiling for the default deadline.
        public var deadlineMarginSeconds: Double = 5
        public var maximumDeadlineSeconds: Double = 3600
        public var maximumStuckWrites: Int = 8
        public var pollPolicy: PollPolicy = .adaptive
        /// How often a job record the store refused is written again.
        public var recordRetryInterval: Duration = .seconds(1)
        var retry: RetryPolicy = .standard

        public init(workers: Int = max(2, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))) {
            self.workers = max(1, workers)
        }
    }

    /// Who hears of jobs and devices changing besides the event stream: the metrics, the binding
    /// reconciler. Called outside the engine's lock, in the order the changes happened for one job.
    public struct Observers: Sendable {
        /// The job is over and its devices are free; its final record (with its `job.finished` event
        /// and its audit line) is on disk or with the recorder.
        var jobConcluded: @Sendable (Job) -> Void = { _ in }
        /// A bind or unbind has put its functions on their drivers and is about to succeed; called
        /// while the job still holds them, so that no scan sees them free before it is known.
        var bindingsSettled: @Sendable (Job) -> Void = { _ in }

        public init() {}
    }

    /// A live job: its machine, and what the engine needs to run and cancel it.
    struct LiveJob: Sendable {
        var machine: JobMachine
        let token: CancellationToken
        let work: JobWork
        let devices: Set<BDF>
        let deadline: ContinuousClock.Instant
        /// From the start of its run until it ends, the events of its devices are held by the hub and
        /// its record and events are written together at its commits (`commitRecord`).
        var holdsEvents = false
    }

    /// What a job will do, computed at submit.
    enum JobWork: Sendable {
        case reset(ResetPlan, probe: ReadinessProbeKind, expected: PCIExpectation)
        case bind(BindPlan, probe: ReadinessProbeKind, expected: PCIExpectation)
        case unbind(UnbindPlan)
        case escalate(EscalationLadder, probe: ReadinessProbeKind, expected: PCIExpectation)
    }

    struct State {
        var jobs: [String: LiveJob] = [:]
        /// Every device a live job holds, or that a stuck write wedged; a device not here is free.
        var devices: [BDF: DeviceMachine] = [:]
        /// A job accepted for a device whose job has ended but is still putting things back: it takes
        /// the device over when that job frees it (a client that saw a job end may submit at once).
        var successors: [BDF: String] = [:]
        var queue: [String] = []
        /// The Idempotency-Key of every live job.
        var keys: [String: String] = [:]
        /// False from the start of shutdown: new jobs are refused (503).
        var accepting = true
        /// Workers leave once the queue is drained.
        var stopping = false
        var runningWorkers = 0
        /// Conclusions running on threads of their own (jobs cancelled in the queue).
        var concludingElsewhere = 0
        /// GPUs an escalating reset gave up on (`needs_reboot`); see `applyRebootVerdict`.
        var rebootNeeded: Set<BDF> = []
    }

    let host: ServiceHost
    let store: GraceStore
    let inventory: InventoryService
    let configuration: Configuration
    let logger: Logger
    let observers: Observers
    let executor: KernelWriteExecutor
    let recorder: JobRecorder
    /// Where a job's transitions are published, written in one transaction with its record; nil for
    /// an engine tested alone (its records are written, no events).
    let events: EventHub?
    let waiters = JobWaiters()
    let processes: ProcessTable
    let aliases: ModulesAlias?
    /// The kernel's boot id, which `needs_reboot` verdicts are stored with; nil when unreadable.
    let bootId: String?
    let state: GuardedValue<State>
    /// Re-probes GPUs whose jobs ended without their probe's verdict.
    let followUps: ReadinessFollowUp

    public init(
        host: ServiceHost, store: GraceStore, inventory: InventoryService, configuration: Configuration,
        logger: Logger, observers: Observers = Observers(), events: EventHub? = nil
    ) {
        self.events = events
        self.host = host
        self.store = store
        self.inventory = inventory
        self.configuration = configuration
        self.logger = logger
        self.observers = observers
        processes = ProcessTable(procRoot: host.procRoot)
        aliases = host.modulesAliasPath.flatMap { ModulesAlias.load(path: $0) }
        bootId = BootId.read(procRoot: host.procRoot)
        recorder = JobRecorder(store: store, logger: logger, retryInterval: configuration.recordRetryInterval)
        let state = GuardedValue(State())
        self.state = state
        let executor = KernelWriteExecutor(
            writer: host.writer, maximumStuck: configuration.maximumStuckWrites)
        self.executor = executor
        followUps = ReadinessFollowUp(
            inventory: inventory, root: host.root, policy: configuration.pollPolicy, executor: executor,
            logger: logger)
        executor.observeLateReturns { [weak self] late in self?.writeReturnedLate(late) }
    }

    // MARK: Lifecycle

    /// Finishes the jobs a dead daemon left behind (interrupted, with the restores they owed carried
    /// out), doubts the GPUs their last jobs left unproven, then starts the workers. (The reboot
    /// verdicts are restored before the first scan is published: `restoreRebootVerdicts`.)
    public func start() {
        recoverInterruptedJobs()
        verifyReadinessAtStart()
        for _ in 0..<configuration.workers {
            state.withLock { $0.runningWorkers += 1 }
            startDedicatedThread { [self] in workerLoop() }
        }
    }

    /// From now on new jobs are refused with 503; the jobs already accepted go on.
    public func stopAccepting() {
        state.withLock { $0.accepting = false }
    }

    /// Stops accepting, cancels every job (reason: shutdown), waits up to `grace` for the workers
    /// (kernel writes in flight cannot be interrupted; those still blocked are left to the kernel),
    /// then writes what the store has not taken yet.
    public func shutdown(grace: Duration = .seconds(10)) {
        let ids = state.withLock { state -> [String] in
            state.accepting = false
            return state.jobs.keys.sorted()
        }
        for id in ids {
            _ = cancel(id, reason: "shutdown")
        }
        state.withLock { $0.stopping = true }
        let finished = state.wait(
            until: .now + grace, for: { $0.runningWorkers == 0 && $0.concludingElsewhere == 0 }
        ) { _, finished in finished }
        if !finished {
            logger.warning("shutdown: workers still blocked in kernel writes: \(executor.stuckWrites)")
        }
        followUps.stopAll()
        recorder.flush()
        recorder.stop()
    }

    // MARK: Events

    /// Applies `event` to the job's machine under the lock, then performs the actions it returned.
    @discardableResult
    func handle(_ id: String, _ event: (inout JobMachine) -> [JobMachine.Action]) -> [JobMachine.Action] {
        let applied = state.withLock { state -> (actions: [JobMachine.Action], live: LiveJob)? in
            guard var live = state.jobs[id] else { return nil }
            let actions = event(&live.machine)
            state.jobs[id] = live
            return (actions, live)
        }
        guard let applied else { return [] }
        perform(applied.actions, for: applied.live)
        return applied.actions
    }

    /// Carries out what a transition asked. A job that runs defers its record and events to its next
    /// commit (before a kernel write, before it blocks, at its end), so that one step is one
    /// transaction; anything that tells a client the job is over is preceded by a commit.
    func perform(_ actions: [JobMachine.Action], for live: LiveJob) {
        let job = live.machine.job
        let drafts = actions.compactMap { action -> EventDraft? in
            guard case .publish(let transition) = action else { return nil }
            return JobEvents.draft(transition, of: job)
        }
        let tellsWaiters = actions.contains(.notifyWaiters)
        if live.holdsEvents && !tellsWaiters && !live.machine.isTerminal {
            // Queued by the hub (its GPU is held) until the job's next commit.
            events?.publish(drafts)
        } else if tellsWaiters || actions.contains(.persist) || !drafts.isEmpty {
            // The end of a job is written with its audit line before anyone hears of it.
            commit(
                job, revision: live.machine.revision, drafts: drafts, devices: live.devices,
                audit: tellsWaiters)
        }
        for action in actions {
            switch action {
            case .run, .persist, .publish:
                break  // the worker that asked runs the stages; records and events are above
            case .signalCancellation(let reason):
                live.token.cancel(reason: reason)
            case .notifyWaiters:
                waiters.notify(job.id)
            case .concludeElsewhere:
                // Freeing, storing and rescanning never run on the caller's (an HTTP) thread.
                state.withLock { $0.concludingElsewhere += 1 }
                startDedicatedThread { [self] in
                    release(live.devices, by: job.id)
                    finalize(job.id)
                    state.withLock { $0.concludingElsewhere -= 1 }
                }
            }
        }
    }

    /// Writes the running job's record as it now is with every event its devices queued since the
    /// last commit, in one transaction: called before each kernel write and before the job blocks,
    /// so the record on disk always says what the job is doing.
    func commitRecord(_ id: String) {
        guard let live = live(id) else { return }
        commit(
            live.machine.job, revision: live.machine.revision, drafts: [], devices: live.devices, audit: false
        )
    }

    private func commit(_ job: Job, revision: Int, drafts: [EventDraft], devices: Set<BDF>, audit: Bool) {
        guard let events else {
            recorder.save(job, revision: revision, audit: audit)
            return
        }
        let gpus = Set(devices.map(\.description))
        recorder.save(job, revision: revision, audit: audit) { write in
            events.commit(drafts, heldFor: gpus, alongWith: write)
        }
    }

    /// Records how the run ended (the first outcome wins); `conclude` makes it the job's state.
    func finish(_ id: String, _ outcome: JobState, _ failure: JobFailure?) {
        handle(id) { $0.ended(outcome, failure) }
    }

    func note(_ id: String, _ text: String) {
        handle(id) { $0.noted(text) }
    }

    func live(_ id: String) -> LiveJob? { state.read { $0.jobs[id] } }

    // MARK: Devices

    /// Shows `device` in `shown` while job `id` works on it.
    func show(_ device: BDF, _ shown: DeviceState, for id: String) {
        let show = state.withLock { state -> DeviceMachine.Show in
            state.devices[device]?.impose(shown, by: id) ?? nil
        }
        apply(show, to: device, reason: "job \(id)")
    }

    /// A write to `device` did not return by the deadline: the device is wedged until it does.
    func wedge(_ device: BDF, in write: SysfsWrite, for id: String) {
        let show = state.withLock { state -> DeviceMachine.Show in
            var machine = state.devices[device] ?? .claimed(job: id)
            let show = machine.stuck(in: write, by: id)
            state.devices[device] = machine
            return show
        }
        apply(show, to: device, reason: "job \(id): \(write) did not return by the deadline")
        // Whatever the write was, the device's readiness is unknown until its probe says otherwise.
        doubt([device], reason: "\(write) hung in the kernel", because: "job \(id)")
    }

    /// Whether a job holds `device` (or will take it over), or a stuck write wedged it.
    func isHeld(_ device: BDF) -> Bool {
        state.read { $0.devices[device] != nil || $0.successors[device] != nil }
    }

    func isWedged(_ device: BDF) -> Bool {
        state.read { DeviceMachine.claim($0.devices[device]) == .wedged }
    }

    private func release(_ devices: Set<BDF>, by id: String) {
        let shows = state.withLock { state -> [(BDF, DeviceMachine.Show)] in
            devices.sorted().compactMap { device in
                if state.successors[device] == id { state.successors[device] = nil }
                guard let current = state.devices[device] else { return nil }
                let (next, show) = current.released(by: id)
                state.devices[device] = next
                if next == nil, let successor = state.successors.removeValue(forKey: device) {
                    state.devices[device] = .claimed(job: successor)
                }
                return (device, show)
            }
        }
        for (device, show) in shows { apply(show, to: device, reason: "job \(id) ended") }
    }

    private func apply(_ show: DeviceMachine.Show, to device: BDF, reason: String) {
        guard case .some(let shown) = show else { return }
        inventory.setState(device.description, shown, because: reason)
    }

    // MARK: Queries

    /// A job by id: the live one, else one whose record is still on its way to the disk, else the
    /// stored one.
    func job(_ id: String) -> Job? {
        if let live = live(id) { return live.machine.job }
        if let pending = recorder.pendingJob(id) { return pending }
        return (try? store.job(id: id)).flatMap { $0.flatMap(Job.init(record:)) }
    }

    /// Stored jobs newest first, with live ones (and records not yet written) shown as they are now.
    ///
    /// A filter on state applies to the state as it is now. Only jobs in memory (live, or with a
    /// record not yet written) can differ from their record, so the store is asked for that many more
    /// rows than the page holds (rows it matched on a stale state are dropped), and the jobs in memory
    /// that now match are merged in (their record may still say otherwise): every page is full while
    /// more jobs match, and no job is missed because its record lags.
    func jobs(
        gpu: BDF?, kind: JobKind? = nil, state jobState: JobState?, limit: Int,
        after cursor: GraceStore.JobCursor?
    ) throws -> [Job] {
        var inMemory = Dictionary(recorder.pendingJobs.map { ($0.id, $0) }) { first, _ in first }
        let live = state.read { $0.jobs.mapValues(\.machine.job) }
        inMemory.merge(live) { _, current in current }
        let records = try store.jobs(
            bdf: gpu?.description, kind: kind?.rawValue, state: jobState?.rawValue,
            limit: jobState == nil ? limit : limit + inMemory.count, after: cursor)
        var page = records.compactMap { record in inMemory[record.id] ?? Job(record: record) }
        guard let jobState else { return page }
        page.removeAll { $0.state != jobState }
        let listed = Set(page.map(\.id))
        page += inMemory.values.filter { job in
            job.state == jobState && !listed.contains(job.id) && (gpu == nil || job.gpu == gpu)
                && (kind == nil || job.kind == kind) && cursor.map { job.isOlder(than: $0) } ?? true
        }
        return Array(
            page.sorted { $1.isOlder(than: GraceStore.JobCursor(createdAtMs: $0.createdAtMs, id: $0.id)) }
                .prefix(limit))
    }

    /// Waits (without a thread) until the job is terminal or `timeout` passes; returns it as it is.
    func waitForEnd(of id: String, timeout: Duration) async -> Job? {
        await waiters.wait(for: id, timeout: timeout) {
            state.read { $0.jobs[id].map { $0.machine.isTerminal } ?? true }
        }
        return job(id)
    }

    /// What `/healthz` exports about the engine.
    struct Load: Encodable {
        var queuedJobs: Int
        var runningJobs: Int
        var workers: Int
        /// Kernel writes still blocked past their job's deadline, and the most allowed.
        var stuckKernelWrites: Int
        var maximumStuckKernelWrites: Int
        var wedgedGPUs: [String]
        var accepting: Bool
    }

    var load: Load {
        let (queued, running, wedged, accepting) = state.read { state in
            (
                state.queue.count,
                state.jobs.values.filter {
                    switch $0.machine.state {
                    case .running, .concluding: true
                    case .queued, .finished: false
                    }
                }.count,
                state.devices.filter { DeviceMachine.claim($0.value) == .wedged }.keys.sorted(),
                state.accepting
            )
        }
        return Load(
            queuedJobs: queued, runningJobs: running, workers: configuration.workers,
            stuckKernelWrites: executor.stuckWrites.count, maximumStuckKernelWrites: executor.maximumStuck,
            wedgedGPUs: wedged.map(\.description), accepting: accepting)
    }

    // MARK: Cancel

    enum CancelResult {
        case notFound
        case accepted(Job)
        case alreadyFinished(Job)
    }

    func cancel(_ id: String, reason: String) -> CancelResult {
        let now = Timestamp.nowMs()
        let applied = state.withLock { state -> (actions: [JobMachine.Action], live: LiveJob)? in
            guard var live = state.jobs[id] else { return nil }
            let actions = live.machine.cancelRequested(reason, atMs: now)
            if actions.contains(.concludeElsewhere) {
                state.queue.removeAll { $0 == id }
            }
            state.jobs[id] = live
            return (actions, live)
        }
        guard let applied else {
            guard let stored = job(id) else { return .notFound }
            return .alreadyFinished(stored)
        }
        perform(applied.actions, for: applied.live)
        let job = applied.live.machine.job
        if applied.actions.isEmpty && job.state.isTerminal { return .alreadyFinished(job) }
        return .accepted(job)
    }

    // MARK: Workers

    private func workerLoop() {
        defer { state.withLock { $0.runningWorkers -= 1 } }
        while true {
            let next = state.wait(until: nil, for: { $0.stopping || !$0.queue.isEmpty }) {
                state, _ -> String?? in
                if !state.queue.isEmpty { return .some(state.queue.removeFirst()) }
                return state.stopping ? nil : .some(nil)
            }
            guard let next else { return }
            if let id = next { run(id) }
        }
    }

    private func run(_ id: String) {
        guard
            let devices = state.withLock({ state -> Set<BDF>? in
                state.jobs[id]?.holdsEvents = true
                return state.jobs[id]?.devices
            })
        else { return }
        let gpus = Set(devices.map(\.description))
        events?.hold(gpus)
        guard handle(id, { $0.started() }).contains(.run), let live = live(id) else {
            events?.release(gpus)
            return
        }
        logger.info("job \(id): \(live.machine.job.kind.rawValue) of \(live.machine.job.gpu) started")
        followUps.cancel(live.devices)
        if takeOver(live.devices, for: id) {
            runStages(id, live.work)
        }
        handle(id) { $0.ranOut() }
        conclude(id, holding: gpus)
    }

    /// Waits until every device is the job's: a job accepted while the device's previous job was
    /// still putting things back starts once that job has freed it. Returns false (the job ended)
    /// when cancelled, at the deadline, or when the device was wedged meanwhile.
    private func takeOver(_ devices: Set<BDF>, for id: String) -> Bool {
        guard let live = live(id) else { return false }
        let outcome = state.wait(
            until: live.deadline,
            for: { state in
                state.jobs[id]?.machine.cancelReason != nil
                    || devices.allSatisfy {
                        state.devices[$0] == .claimed(job: id)
                            || DeviceMachine.claim(state.devices[$0]) == .wedged
                    }
            }
        ) { state, ready -> JobMachine.Outcome? in
            if let reason = state.jobs[id]?.machine.cancelReason {
                return JobMachine.Outcome(state: .cancelled, failure: .cancelled(reason))
            }
            guard ready else {
                return JobMachine.Outcome(
                    state: .timedOut,
                    failure: .deadline("Another job held an affected device until the deadline."))
            }
            if let wedged = devices.sorted().first(where: {
                DeviceMachine.claim(state.devices[$0]) == .wedged
            }) {
                return JobMachine.Outcome(
                    state: .failed,
                    failure: JobFailure(
                        .wedged, summary: "GPU wedged",
                        detail: "A kernel write to \(wedged) from an earlier job has not returned.",
                        resolution: "Check the host's kernel log; GET /gpus shows when the kernel returns."))
            }
            return nil
        }
        guard let outcome else { return true }
        finish(id, outcome.state, outcome.failure)
        return false
    }

    private func runStages(_ id: String, _ work: JobWork) {
        switch work {
        case .reset(let plan, let probe, let expected):
            runReset(id, plan: plan, probe: probe, expected: expected)
        case .bind(let plan, let probe, let expected):
            runBind(id, plan: plan, probe: probe, expected: expected)
        case .unbind(let plan):
            runUnbind(id, plan: plan)
        case .escalate(let ladder, let probe, let expected):
            runEscalation(id, ladder: ladder, probe: probe, expected: expected)
        }
    }

    /// The devices are read again and the outcome shown (a client that sees the job finished also
    /// sees the GPUs as they now are); then what the job changed is put back while it still holds the
    /// devices; then they are freed and the job stored.
    private func conclude(_ id: String, holding gpus: Set<String>) {
        guard let live = live(id) else {
            events?.release(gpus)
            return
        }
        let wedged = state.withLock { state -> Set<BDF> in
            var wedged: Set<BDF> = []
            for device in live.devices.sorted() {
                if DeviceMachine.claim(state.devices[device]) == .wedged { wedged.insert(device) }
                _ = state.devices[device]?.settle(by: id)
            }
            return wedged
        }
        inventory.reprobe(
            live.devices.subtracting(wedged), clearing: true, because: "job \(id) ended", announcing: false)
        applyRebootVerdict(id)
        // What the job changed is put back before its end is written, so that one transaction holds
        // the end, what was put back, the GPUs' new states and the audit line; the waiting clients
        // hear once it is on disk.
        let restores = state.read { $0.jobs[id]?.machine.restores ?? [] }
        let notes = restore(restores.reversed())
        handle(id) { $0.restored(notes: notes) }
        inventory.announceChanges()
        handle(id) { $0.concluded(atMs: Timestamp.nowMs()) }
        release(live.devices, by: id)
        // Free devices' events flow again before anyone can see the job gone (a follow-up's, a scan's).
        events?.release(gpus)
        // A GPU the job left without its probe's verdict (cancelled, timed out) is probed until it has one.
        for device in live.devices.subtracting(wedged).sorted() {
            followUps.follow(device, after: "job \(id)")
        }
        finalize(id)
    }

    /// The job leaves the live set (its newest record already with the recorder), the observers hear
    /// of it, and the host is rescanned to record any layout drift.
    private func finalize(_ id: String) {
        let removed = state.withLock { state -> LiveJob? in
            guard let live = state.jobs.removeValue(forKey: id) else { return nil }
            if let key = live.machine.job.idempotencyKey, state.keys[key] == id {
                state.keys[key] = nil
            }
            return live
        }
        guard let removed else { return }
        let job = removed.machine.job
        // Saved before it left the live set, so a reader always finds the newest version somewhere.
        recorder.save(job, revision: removed.machine.revision)
        recorder.forget(id)
        observers.jobConcluded(job)
        do {
            try inventory.refresh()
        } catch {
            logger.error("rescan after job \(id) failed: \(error)")
        }
        let outcome = job.failure.map { ": \($0.detail)" } ?? ""
        logger.info("job \(id): \(job.kind.rawValue) of \(job.gpu) \(job.state.rawValue)\(outcome)")
    }

    // MARK: Restart

    /// Jobs left queued or running by a daemon that died: marked interrupted where they stopped, with
    /// the restores they owed carried out now.
    private func recoverInterruptedJobs() {
        let records: [JobRecord]
        do {
            records = try store.markRunningJobsInterrupted(atMs: Timestamp.nowMs())
        } catch {
            logger.error("could not mark interrupted jobs: \(error)")
            return
        }
        for record in records {
            guard var job = Job(record: record) else { continue }
            let inFlight = job.attempts.last.flatMap { $0.returnedAtMs == nil ? $0.message : nil }
            let owed = job.details.owedRestores ?? []
            job.details.notes += restore(owed.compactMap(\.write).reversed()).map {
                "after the restart: \($0)"
            }
            if !owed.isEmpty {
                job.note(
                    "after the restart: put back "
                        + owed.map { "\($0.attribute.rawValue)=\($0.value)" }
                        .joined(separator: ", "))
            }
            job.details.owedRestores = nil
            // Its phases close with the outcome, as every job's do: the phase it was in ended, at the
            // latest, with the daemon.
            let interruptedAtMs = record.finishedAtMs ?? Timestamp.nowMs()
            job.finish(
                .interrupted, failure: .interrupted(at: job.phase, writeInFlight: inFlight),
                atMs: interruptedAtMs)
            // Its end is told like any job's: the record, the event and the audit line together.
            recorder.inserted(job.id, revision: 0, record: record)
            commit(
                job, revision: 1, drafts: [JobEvents.draft(.finished, of: job)].compactMap { $0 },
                devices: [],
                audit: true)
            recorder.forget(job.id)
            logger.warning(
                "job \(job.id) (\(job.kind.rawValue) of \(job.gpu)) was interrupted by a restart"
            )
            observers.jobConcluded(job)
        }
    }
}
