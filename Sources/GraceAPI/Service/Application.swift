import Logging
import Passthrough
import Store

/// The service assembled: inventory, store, HTTP server, and the timer that rescans the host.
public final class Application: Sendable {
    public let inventory: InventoryService
    public let engine: JobEngine
    public let host: ServiceHost
    /// The Prometheus series behind `GET /metrics`, owned by this application alone.
    public let metrics: GraceMetrics
    /// Looks at idle GPUs between jobs and publishes their `health`.
    public let health: HealthWatch
    /// Keeps functions on their desired drivers (`GET /bindings`).
    public let reconciler: BindingReconciler
    let server: HTTPServer
    /// Every `(method, pattern, role)` served, for the contract test.
    let routes: [(method: String, pattern: String, role: Role)]
    let logger: Logger
    private let rescanner: PeriodicWorker?

    /// `server` says where to listen and who may do what; the audit trail is this store's unless
    /// `server.edge.auditor` names another.
    public init(
        host: ServiceHost, store: GraceStore,
        server serverConfiguration: HTTPServer.Configuration = .loopback(),
        rescanIntervalSeconds: Double = 5, healthIntervalSeconds: Double = 5,
        jobs: JobEngine.Configuration = .init(), reconcile: BindingReconciler.Mode = .apply,
        logger: Logger
    ) throws {
        self.host = host
        self.logger = logger
        inventory = InventoryService(
            inventory: HostInventory(
                root: host.root, selection: host.selection, firmwareMemory: host.firmwareMemory),
            store: store, logger: logger)
        let metrics = GraceMetrics()
        self.metrics = metrics
        var observers = JobEngine.Observers()
        // Every job's outcome goes into the audit trail, beside the request that asked for it, and
        // into the reset counters and histograms.
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
        observers.jobConcluded = { job in
            metrics.jobFinished(job)
            do {
                try store.appendAudit(
                    atMs: job.finishedAtMs ?? Timestamp.nowMs(), actor: "graced",
                    action: "job.\(job.kind.rawValue)",
                    target: job.gpu.description, detailJSON: JSON.encodeString(JobView(job)))
            } catch {
                logger.error("could not write the audit entry of job \(job.id): \(error)")
            }
        }
        let engine = JobEngine(
            host: host, store: store, inventory: inventory, configuration: jobs, logger: logger,
            observers: observers)
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
        GPURoutes.register(in: &router, inventory: inventory)
        JobRoutes.register(in: &router, engine: engine)
        SystemRoutes.register(
            in: &router, inventory: inventory, engine: engine, simulated: host.simulator != nil)
        SystemRoutes.registerMetrics(in: &router, metrics: metrics, inventory: inventory, engine: engine)
        AuditRoutes.register(in: &router, store: store)
        BindingRoutes.register(in: &router, store: store, reconciler: reconciler)
        if let simulator = host.simulator {
            SimulatorRoutes.register(in: &router, simulator: simulator)
        }
        routes = router.registeredRoutes
        var configuration = serverConfiguration
        if configuration.edge.auditor == nil {
            configuration.edge.auditor = StoreAuditor(store: store, logger: logger)
        }
        configuration.edge.requestObserver = { route, status, seconds in
            metrics.requestServed(route: route, code: status, seconds: seconds)
        }
        let requestLogger = logger
        server = HTTPServer(configuration: configuration, router: router) { line in
            requestLogger.debug("\(line)")
        }

        if rescanIntervalSeconds > 0 {
            let inventory = inventory
            rescanner = PeriodicWorker(intervalSeconds: rescanIntervalSeconds) {
                do {
                    try inventory.refresh()
                } catch {
                    logger.error("inventory rescan failed: \(error)")
                }
            }
        } else {
            rescanner = nil
        }
    }

    /// The port of the first TCP listener (useful with port 0).
    public var port: UInt16? { server.port }

    /// Every listener as bound (TCP ports resolved).
    public var listening: [ListenAddress] { server.boundAddresses }

    /// The identities and tokens in force; graced replaces the tokens on SIGHUP.
    public var authenticator: Authenticator { server.configuration.edge.authenticator }

    /// Scans the host once (so the first request already sees it), then starts serving.
    public func start() throws {
        try inventory.refresh()
        health.check()
        engine.start()
        // After the engine has finished what a dead daemon left: reconcile jobs come after restores.
        reconciler.start()
        try server.start()
        rescanner?.start()
        health.start()
    }

    /// Shuts down in the reverse order of startup: stop accepting jobs (new mutations get 503 with
    /// Retry-After while reads still answer), stop rescanning, cancel the jobs' polls and wait a
    /// bounded time for kernel writes in flight, write what the store has not taken yet, and only
    /// then stop the HTTP server (answering suspended requests first).
    public func stop() {
        engine.stopAccepting()
        rescanner?.stop()
        health.stop()
        engine.shutdown()
        server.stop()
    }
}
