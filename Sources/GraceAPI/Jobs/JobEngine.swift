import FoundationEssentials
import Logging
import Passthrough
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// Runs reset, bind and unbind jobs in three stages (DESIGN.md, "Jobs"):
/// - submit, on the caller's thread: validate, plan, refuse, persist the job row; all the I/O that
///   may block happens here, before any lock is taken;
/// - run, on a worker thread: take the locks of the whole affected set at once, then only kernel
///   writes (through the watchdog) and readiness polls; no database, no client, no other job;
/// - cleanup: re-read the affected devices and publish the outcome, put back what the job changed,
///   release the locks, persist the job with its phases and attempts, rescan.
public final class JobEngine: Sendable {
    public struct Configuration: Sendable {
        /// Worker threads: jobs beyond this many wait in the queue.
        public var workers: Int
        /// Added to the probe's own ceiling for the default deadline.
        public var deadlineMarginSeconds: Double = 5
        public var maximumDeadlineSeconds: Double = 3600
        public var maximumStuckWrites: Int = 8
        public var pollPolicy: PollPolicy = .adaptive
        var retry: RetryPolicy = .standard

        public init(workers: Int = max(2, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))) {
            self.workers = max(1, workers)
        }
    }

    /// A live job and what the engine needs to run and cancel it.
    struct Live: Sendable {
        var job: Job
        var lifecycle: JobLifecycle
        let token: CancellationToken
        let work: JobWork
        let devices: Set<BDF>
        let deadline: ContinuousClock.Instant
        /// How the run ended. It becomes the job's state only once the affected devices have been read
        /// again, so a client that sees a terminal job also sees the GPUs as they now are.
        var outcome: (state: JobState, failure: Job.Failure?)?
        /// Writes that put back what the job changed (power control, reset_method), run after the
        /// outcome is published and before the devices are freed.
        var restores: [SysfsWrite] = []
    }

    /// What a job will do, computed at submit.
    enum JobWork: Sendable {
        case reset(ResetPlan, probe: ReadinessProbeKind, expected: PCIExpectation)
        case bind(BindPlan, probe: ReadinessProbeKind, expected: PCIExpectation)
        case unbind(UnbindPlan)
    }

    struct State {
        var live: [String: Live] = [:]
        var queue: [String] = []
        /// Every device a queued or running job will touch, and that job.
        var busy: [BDF: String] = [:]
        var stopping = false
        var runningWorkers = 0
    }

    let host: ServiceHost
    let store: GraceStore
    let inventory: InventoryService
    let configuration: Configuration
    let logger: Logger
    let locks = DeviceLockTable()
    let executor: KernelWriteExecutor
    let wedged: WedgedDevices
    let processes: ProcessTable
    let aliases: ModulesAlias?
    let monitor = Monitor()
    nonisolated(unsafe) var state = State()

    public init(
        host: ServiceHost, store: GraceStore, inventory: InventoryService, configuration: Configuration,
        logger: Logger
    ) {
        self.host = host
        self.store = store
        self.inventory = inventory
        self.configuration = configuration
        self.logger = logger
        processes = ProcessTable(procRoot: host.procRoot)
        aliases = host.modulesAliasPath.flatMap { ModulesAlias.load(path: $0) }
        let wedged = WedgedDevices()
        self.wedged = wedged
        // A write the watchdog gave up on has finally returned: the device is no longer wedged.
        executor = KernelWriteExecutor(writer: host.writer, maximumStuck: configuration.maximumStuckWrites) {
            write in
            guard let bdf = write.device else { return }
            logger.notice("the kernel returned from \(write) after the job gave up on it")
            wedged.remove(bdf)
            inventory.setState(bdf.description, nil)
        }
    }

    // MARK: Lifecycle

    /// Marks jobs a dead daemon left behind as interrupted, then starts the workers.
    public func start() {
        do {
            let interrupted = try store.markRunningJobsInterrupted(atMs: Timestamp.nowMs())
            for job in interrupted {
                logger.warning("job \(job.id) (\(job.kind) of \(job.bdf)) was interrupted by a restart")
            }
        } catch {
            logger.error("could not mark interrupted jobs: \(error)")
        }
        for _ in 0..<configuration.workers {
            monitor.withLock { state.runningWorkers += 1 }
            startDedicatedThread { [self] in workerLoop() }
        }
    }

    /// Cancels every job (reason: shutdown) and waits up to `grace` for the workers to finish; kernel
    /// writes still in flight are left to the kernel.
    public func shutdown(grace: Duration = .seconds(10)) {
        let ids = monitor.withLock { () -> [String] in
            state.stopping = true
            monitor.broadcast()
            return state.live.keys.sorted()
        }
        for id in ids {
            _ = cancel(id, reason: "shutdown")
        }
        let finished = monitor.wait(until: .now + grace) { state.runningWorkers == 0 }
        if !finished {
            logger.warning("shutdown: workers still blocked in kernel writes: \(executor.stuckWrites)")
        }
    }

    // MARK: Queries

    /// A job by id: the live one if it is running, else the stored one.
    func job(_ id: String) -> Job? {
        if let live = monitor.withLock({ state.live[id] }) { return live.job }
        return (try? store.job(id: id)).flatMap { $0.flatMap(Job.init(record:)) }
    }

    /// Stored jobs newest first, with live ones shown as they are now.
    func jobs(
        gpu: BDF?, kind: JobKind? = nil, state jobState: JobState?, limit: Int,
        after cursor: GraceStore.JobCursor?
    ) throws -> [Job] {
        let records = try store.jobs(
            bdf: gpu?.description, kind: kind?.rawValue, state: jobState?.rawValue, limit: limit,
            after: cursor)
        let live = monitor.withLock { state.live }
        return records.compactMap { record in live[record.id]?.job ?? Job(record: record) }
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
    }

    var load: Load {
        let (queued, running) = monitor.withLock {
            (state.queue.count, state.live.values.filter { $0.job.state == .running }.count)
        }
        return Load(
            queuedJobs: queued, runningJobs: running, workers: configuration.workers,
            stuckKernelWrites: executor.stuckWrites.count, maximumStuckKernelWrites: executor.maximumStuck,
            wedgedGPUs: wedged.all.sorted().map(\.description))
    }

    // MARK: Cancel

    enum CancelResult {
        case notFound
        case accepted(Job)
        case alreadyFinished(Job)
    }

    func cancel(_ id: String, reason: String) -> CancelResult {
        let (action, live) = monitor.withLock { () -> (JobLifecycle.CancelAction?, Live?) in
            guard var live = state.live[id] else { return (nil, nil) }
            let action = live.lifecycle.cancel(reason: reason)
            if case .finishNow = action {
                state.queue.removeAll { $0 == id }
                live.outcome = (.cancelled, Self.cancelledFailure(reason))
            }
            state.live[id] = live
            return (action, live)
        }
        guard let action, let live else {
            guard let stored = job(id) else { return .notFound }
            return .alreadyFinished(stored)
        }
        switch action {
        case .finishNow:
            live.token.cancel(reason: reason)
            publishOutcome(live)
            return .accepted(finalize(live))
        case .signalWorker(let reason):
            live.token.cancel(reason: reason)
            return .accepted(live.job)
        case .alreadyRequested:
            return .accepted(live.job)
        case .alreadyFinished:
            return .alreadyFinished(live.job)
        }
    }

    static func cancelledFailure(_ reason: String) -> Job.Failure {
        Job.Failure(
            type: Problem.typeBase + "job-cancelled", title: "Job cancelled", status: 409,
            detail: "The job was cancelled (\(reason)).",
            resolution: "Submit it again when you want it to run.", errno: nil, errnoName: nil)
    }

    // MARK: Workers

    private func workerLoop() {
        defer {
            monitor.withLock {
                state.runningWorkers -= 1
                monitor.broadcast()
            }
        }
        while true {
            var next: String?
            _ = monitor.wait(until: nil) { state.stopping || !state.queue.isEmpty }
            let stop = monitor.withLock { () -> Bool in
                if state.stopping { return true }
                guard !state.queue.isEmpty else { return false }
                let id = state.queue.removeFirst()
                if var live = state.live[id], live.lifecycle.start() == .run {
                    live.job.state = .running
                    state.live[id] = live
                    next = id
                }
                return false
            }
            if stop { return }
            if let next { run(next) }
        }
    }

    /// Changes the live job under the engine's lock, so readers see its progress.
    func update(_ id: String, _ change: (inout Job) -> Void) {
        monitor.withLock {
            if var live = state.live[id] {
                change(&live.job)
                state.live[id] = live
            }
        }
    }

    func live(_ id: String) -> Live? { monitor.withLock { state.live[id] } }

    private func run(_ id: String) {
        guard let live = live(id) else { return }
        // Persist "running" before touching the device, so a crash from here on is found at startup.
        persist(live.job)
        logger.info("job \(id): \(live.job.kind.rawValue) of \(live.job.gpu) started")

        let acquired = locks.acquire(live.devices, deadline: live.deadline) { live.token.isCancelled }
        if acquired {
            switch live.work {
            case .reset(let plan, let probe, let expected):
                runReset(id, plan: plan, probe: probe, expected: expected)
            case .bind(let plan, let probe, let expected):
                runBind(id, plan: plan, probe: probe, expected: expected)
            case .unbind(let plan):
                runUnbind(id, plan: plan)
            }
        } else if let reason = live.token.reason {
            finish(id, .cancelled, Self.cancelledFailure(reason))
        } else {
            finish(
                id, .timedOut,
                Self.failure(
                    "deadline", "Deadline passed", status: 504,
                    detail: "Another job held an affected device until the deadline.",
                    resolution: "Retry with a longer deadlineSeconds, or when the other job has finished."))
        }
        // The client waits for the outcome, not for housekeeping: publish it, then put things back
        // while the devices are still locked, then free them.
        publishOutcome(live)
        if acquired {
            restore(monitor.withLock { state.live[id]?.restores ?? [] }.reversed(), for: id)
            locks.release(live.devices)
        }
        finalize(live)
    }

    /// Queues a write that puts back something the job changed; see `Live.restores`.
    func restoreLater(_ writes: [SysfsWrite], for id: String) {
        monitor.withLock { state.live[id]?.restores += writes }
    }

    /// Drops the pending restores: the device is wedged, and a write to it would hang as well.
    func dropRestores(for id: String) {
        monitor.withLock { state.live[id]?.restores.removeAll() }
    }

    /// Records how the run ended (the first outcome wins); cleanup makes it the job's state.
    func finish(_ id: String, _ jobState: JobState, _ failure: Job.Failure?) {
        monitor.withLock {
            if var live = state.live[id], live.outcome == nil {
                live.outcome = (jobState, failure)
                state.live[id] = live
            }
        }
    }

    /// The affected devices are read again, then the job takes its outcome: a client that sees it
    /// finished also sees the GPUs as they now are. The job stays in the live set until stored.
    private func publishOutcome(_ live: Live) {
        inventory.reprobe(live.devices.filter { !wedged.contains($0) }, clearing: true)
        monitor.withLock {
            guard var finished = state.live[live.job.id] else { return }
            finished.lifecycle.finish()
            let outcome = finished.outcome ?? (.failed, nil)
            finished.job.finish(outcome.state, failure: outcome.failure)
            state.live[live.job.id] = finished
        }
    }

    /// Cleanup: the devices are freed for other jobs, the job is stored with its phases and attempts
    /// and leaves the live set, and the host is rescanned to record any layout drift.
    @discardableResult
    private func finalize(_ live: Live) -> Job {
        let job = monitor.withLock { () -> Job in
            for device in live.devices where state.busy[device] == live.job.id {
                state.busy.removeValue(forKey: device)
            }
            return state.live[live.job.id]?.job ?? live.job
        }
        persist(job)
        JobFinishedHooks.notify(self, job)
        monitor.withLock { _ = state.live.removeValue(forKey: job.id) }
        do {
            try store.appendAudit(
                atMs: job.finishedAtMs ?? Timestamp.nowMs(), actor: "graced",
                action: "job.\(job.kind.rawValue)",
                target: job.gpu.description, detailJSON: JSON.encodeString(JobView(job)))
        } catch {
            logger.error("could not write the audit entry of job \(job.id): \(error)")
        }
        do {
            try inventory.refresh()
        } catch {
            logger.error("rescan after job \(job.id) failed: \(error)")
        }
        let outcome = job.failure.map { ": \($0.detail)" } ?? ""
        logger.info("job \(job.id): \(job.kind.rawValue) of \(job.gpu) \(job.state.rawValue)\(outcome)")
        return job
    }

    func persist(_ job: Job) {
        do {
            try store.saveJob(job.record)
        } catch {
            logger.error("could not store job \(job.id): \(error)")
        }
    }

    static func failure(
        _ slug: String, _ title: String, status: Int, detail: String, resolution: String, errno: Int32? = nil
    ) -> Job.Failure {
        Job.Failure(
            type: Problem.typeBase + slug, title: title, status: status, detail: detail,
            resolution: resolution,
            errno: errno, errnoName: errno.map { KernelError(code: $0, path: "").name })
    }
}
