import GraceHTTP
import Logging
import Passthrough
import Store
import Synchronization

/// The service assembled: inventory, store, HTTP server, the kernel's device events that keep the
/// inventory current, and the timer that rescans the host as a safety net.
public final class Application: Sendable {
    public let inventory: InventoryService
    public let engine: JobEngine
    public let host: ServiceHost
    /// The Prometheus series behind `GET /metrics`, owned by this application alone.
    public let metrics: GraceMetrics
    /// Looks at idle GPUs between jobs and publishes their `health`.
    public let health: HealthWatch
    /// The event stream (`GET /events`); the engine publishes job and device events here.
    public let events: EventHub
    let inventoryChanges = InventoryChangeObserver()
    /// Keeps functions on their desired drivers (`GET /bindings`).
    public let reconciler: BindingReconciler
    let server: HTTPServer
    /// Every `(method, pattern, role)` served, for the contract test.
    let routes: [(method: String, pattern: String, role: Role?)]
    let logger: Logger
    private let rescanIntervalSeconds: Double
    private let deviceEvents: (any DeviceEventSource)?
    private let rescanner = Mutex<PeriodicWorker?>(nil)
    private let store: GraceStore
    private let retention: Retention
    /// The audit trail, when it is this store's (its folded refusals are flushed at every prune).
    private let storeAuditor: StoreAuditor?
    private let pruner = Mutex<PeriodicWorker?>(nil)

    /// How long the tables that grow with traffic keep their rows, by age and by count; the events'
    /// own retention is `EventHub.Configuration`'s. Enforced at start and then every
    /// `intervalSeconds`.
    public struct Retention: Sendable {
        public var auditMs: Int64
        public var auditRows: Int
        /// Finished jobs only: one still running, or that a binding or a reboot verdict names, stays.
        public var jobsMs: Int64
        public var jobsRows: Int
        public var intervalSeconds: Double

        public init(
            auditMs: Int64 = 90 * 86_400_000, auditRows: Int = 1_000_000, jobsMs: Int64 = 90 * 86_400_000,
            jobsRows: Int = 100_000, intervalSeconds: Double = 60
        ) {
            self.auditMs = auditMs
            self.auditRows = auditRows
            self.jobsMs = jobsMs
            self.jobsRows = jobsRows
            self.intervalSeconds = intervalSeconds
        }
    }

    /// The rescan interval when device events are not arriving (no source, or it could not start):
    /// rescans are then the only way a change is seen.
    public static let pollingRescanSeconds: Double = 5

    /// `server` says where to listen and who may do what; the audit trail is this store's unless
    /// `server.edge.auditor` names another.
    public init(
        host: ServiceHost, store: GraceStore,
        server serverConfiguration: HTTPServer.Configuration = .loopback(),
        rescanIntervalSeconds: Double = 5, healthIntervalSeconds: Double = 5,
        deviceEvents: (any DeviceEventSource)? = nil, jobs: JobEngine.Configuration = .init(),
        events eventConfiguration: EventHub.Configuration = .init(),
        reconcile: BindingReconciler.Mode = .apply, retention: Retention = .init(),
        logger: Logger
    ) throws {
        self.rescanIntervalSeconds = rescanIntervalSeconds
        self.store = store
        self.retention = retention
        self.deviceEvents = deviceEvents
        self.host = host
        self.logger = logger
        inventory = InventoryService(
            inventory: HostInventory(
                root: host.root, selection: host.selection, firmwareMemory: host.firmwareMemory),
            store: store, logger: logger)
        let metrics = GraceMetrics()
        self.metrics = metrics
        let events = EventHub(store: store, configuration: eventConfiguration, logger: logger)
        self.events = events
        var observers = JobEngine.Observers()
        // Every change of a GPU's shown state, whoever caused it, is one event.
        inventory.observeStateChanges { change in
            events.publish(
                type: .deviceState, gpu: change.bdf, job: nil,
                payload: DeviceStatePayload(
                    from: change.from.rawValue, to: change.to.rawValue, reason: change.reason))
        }
        // Every job's outcome goes into the reset counters and histograms (the audit trail has it
        // already: the engine writes it with the job's end).
        let root = host.root
        // A bind or unbind that is about to succeed sets the desired drivers while it still holds the
        // functions: a scan between its end and a later record would see them off their old desired
        // drivers, free, and reconcile them back.
        // The reconciler needs the engine, and the engine these observers: it is filled in below.
        let reconcilerSlot = GuardedValue<BindingReconciler?>(nil)
        observers.bindingsSettled = { job in
            BindingReconciler.recordDesired(job, root: root, store: store, logger: logger)
            reconcilerSlot.withLock { $0 }?.settled(job)
        }
        observers.jobConcluded = { job in metrics.jobFinished(job) }
        let engine = JobEngine(
            host: host, store: store, inventory: inventory, configuration: jobs, logger: logger,
            observers: observers, events: events)
        self.engine = engine
        inventory.observeLayoutDrift { bdf in metrics.layoutDrifted(bdf) }
        let reconciler = BindingReconciler(
            engine: engine, store: store, root: host.root, mode: reconcile, logger: logger)
        self.reconciler = reconciler
        reconcilerSlot.withLock { $0 = reconciler }
        // Every scan (the timer's, a job's, a client's) is compared with the desired bindings.
        inventory.observeRefresh { _ in reconciler.compare() }
        // A device a job holds (or that a stuck write wedged) is the engine's, not the watch's.
        health = HealthWatch(inventory: inventory, intervalSeconds: healthIntervalSeconds, logger: logger) {
            bdf in engine.isHeld(bdf)
        }

        var router = Router()
        ProbeRoutes.register(in: &router, inventory: inventory, engine: engine)
        GPURoutes.register(in: &router, inventory: inventory)
        JobRoutes.register(in: &router, engine: engine)
        SystemRoutes.register(
            in: &router, inventory: inventory, engine: engine, simulated: host.isSimulation)
        SystemRoutes.registerMetrics(in: &router, metrics: metrics, inventory: inventory, engine: engine)
        AuditRoutes.register(in: &router, store: store)
        EventRoutes.register(in: &router, hub: events, inventory: inventory)
        BindingRoutes.register(in: &router, store: store, reconciler: reconciler)
        for extend in host.routeExtensions { extend(&router) }
        routes = router.registeredRoutes
        var configuration = serverConfiguration
        if configuration.edge.auditor == nil {
            let auditor = StoreAuditor(store: store, logger: logger)
            configuration.edge.auditor = auditor
            storeAuditor = auditor
        } else {
            storeAuditor = nil
        }
        configuration.edge.requestObserver = { route, status, seconds in
            metrics.requestServed(route: route, code: status, seconds: seconds)
        }
        let requestLogger = logger
        server = HTTPServer(configuration: configuration, router: router) { line in
            requestLogger.debug("\(line)")
        }
    }

    /// The port of the first TCP listener (useful with port 0).
    public var port: UInt16? { server.port }

    /// Every listener as bound (TCP ports resolved).
    public var listening: [ListenAddress] { server.boundAddresses }

    /// The identities and tokens in force; graced replaces the tokens on SIGHUP.
    public var authenticator: Authenticator { server.configuration.edge.authenticator }

    /// Scans the host once (so the first request already sees it), then starts serving, listening
    /// to device events and rescanning.
    ///
    /// The server answers from the first scan before its layouts are recorded: a first start writes
    /// a row and a layout per GPU (synced transactions), which the GPU list need not wait for.
    /// `start` returns once they are recorded and the health watch has looked at every GPU once.
    public func start() throws {
        // Before the first publication, so that a GPU that needs a reboot is never shown otherwise.
        engine.restoreRebootVerdicts()
        let scanned = try inventory.scanAndPublish()
        announceChangesWhileStopped()
        publishInventoryChanges()
        prune()
        events.start()
        engine.start()
        // After the engine has finished what a dead daemon left: reconcile jobs come after restores.
        reconciler.start()
        try server.start()
        // The first answer needs neither the layouts recorded nor a look at every GPU's health.
        inventory.recordLayouts(scanned.gpus, at: scanned.takenAtMs)
        health.check()
        let listening = startDeviceEvents()
        var interval = rescanIntervalSeconds
        if deviceEvents != nil && !listening && interval > Self.pollingRescanSeconds {
            interval = Self.pollingRescanSeconds
        }
        health.start()
        let pruning = PeriodicWorker(intervalSeconds: retention.intervalSeconds) { [self] in prune() }
        pruner.withLock { $0 = pruning }
        pruning.start()
        guard interval > 0 else { return }
        let inventory = inventory
        let logger = logger
        let worker = PeriodicWorker(intervalSeconds: interval) { [self] in
            do {
                try inventory.refresh()
            } catch {
                logger.error("inventory rescan failed: \(error)")
            }
            publishInventoryChanges()
        }
        rescanner.withLock { $0 = worker }
        worker.start()
    }

    /// Re-reads just the functions each batch of kernel events names; a full rescan when the kernel
    /// dropped events or a function appeared that the last scan did not know. False when the source
    /// could not start.
    private func startDeviceEvents() -> Bool {
        guard let deviceEvents else { return false }
        let inventory = inventory
        let logger = logger
        do {
            try deviceEvents.start { [self] delivery in
                // Whatever the events changed goes out on the event stream.
                defer { publishInventoryChanges() }
                switch delivery {
                case .events(let events):
                    logger.debug("device events: \(events.map(\.description).joined(separator: ", "))")
                    guard case .needsFullScan = inventory.reread(Set(events.map(\.bdf))) else { return }
                case .overflow:
                    logger.warning("the kernel dropped device events: rescanning")
                }
                do {
                    try inventory.refresh()
                } catch {
                    logger.error("inventory rescan failed: \(error)")
                }
            }
            return true
        } catch {
            logger.warning(
                "device events unavailable (\(error)): changes are seen by rescans every \(min(rescanIntervalSeconds, Self.pollingRescanSeconds)) s"
            )
            return false
        }
    }

    /// A GPU whose state the first scan finds other than the last `device.state` event said (it fell
    /// off, or came back, while graced was not running) gets a `device.state` event from that state,
    /// so that the stream a client resumes agrees with `GET /gpus`.
    private func announceChangesWhileStopped() {
        let announced: [EventRecord]
        do {
            announced = try store.latestEventPerGPU(type: EventType.deviceState.rawValue)
        } catch {
            logger.error("could not read the last device states announced: \(error)")
            return
        }
        struct Announced: Decodable { var to: String }
        let snapshot = inventory.snapshot
        for event in announced {
            guard let bdf = event.gpu, let gpu = snapshot.gpu(bdf),
                let last = try? JSON.decode(Announced.self, from: Array(event.dataJSON.utf8)),
                last.to != gpu.state.rawValue
            else { continue }
            events.publish(
                type: .deviceState, gpu: bdf, job: nil,
                payload: DeviceStatePayload(
                    from: last.to, to: gpu.state.rawValue, reason: "changed while graced was not running"))
        }
    }

    /// Publishes the `inventory.*` events for what changed since the last call (the rescanner calls it
    /// after every scan; with rescans off, whoever refreshes the inventory may call it).
    @discardableResult
    public func publishInventoryChanges() -> [InventoryChangeObserver.Change] {
        inventoryChanges.observe(inventory.snapshot, publishingTo: events)
    }

    /// Shuts down in the reverse order of startup: stop accepting jobs (new mutations get 503 with
    /// Retry-After while reads still answer), stop rescanning, cancel the jobs' polls and wait a
    /// bounded time for kernel writes in flight, write what the store has not taken yet, and only
    /// then stop the HTTP server (answering suspended requests first).
    ///
    /// Each step's duration is logged at debug level, so a slow exit names its cause.
    public func stop() {
        let began = ContinuousClock.now
        func step(_ name: String, _ body: () -> Void) {
            let start = ContinuousClock.now
            body()
            logger.debug("shutdown: \(name) took \(Self.milliseconds(start.duration(to: .now))) ms")
        }
        step("stop accepting jobs") { engine.stopAccepting() }
        step("device events") { deviceEvents?.stop() }
        step("rescanner") {
            rescanner.withLock { worker in
                defer { worker = nil }
                return worker
            }?.stop()
        }
        step("health watch") { health.stop() }
        step("pruner") {
            pruner.withLock { worker in
                defer { worker = nil }
                return worker
            }?.stop()
        }
        step("job engine") { engine.shutdown() }
        step("event hub") { events.stop() }
        step("HTTP server") { server.stop() }
        step("refusal counts") { storeAuditor?.flushRefusals() }
        logger.debug("shutdown: done in \(Self.milliseconds(began.duration(to: .now))) ms")
    }

    public static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    /// Enforces every retention once: events, the audit trail (after writing the counts of the
    /// refusals folded in the last minute), finished jobs.
    public func prune() {
        events.prune()
        let now = Timestamp.nowMs()
        if let storeAuditor {
            storeAuditor.complete(storeAuditor.refusals.closeExpired(nowMs: now))
        }
        do {
            try store.pruneAudit(olderThanMs: now - retention.auditMs, keepingAtMost: retention.auditRows)
            try store.pruneJobs(olderThanMs: now - retention.jobsMs, keepingAtMost: retention.jobsRows)
        } catch {
            logger.error("could not prune the audit trail or the jobs: \(error)")
        }
    }
}
