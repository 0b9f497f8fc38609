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
    /// What the job engine calls once for each job that reached its end (the reset counters and
    /// histograms); the engine's finalize is its one caller.
    let jobFinished: @Sendable (Job) -> Void
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
        jobs: JobEngine.Configuration = .init(), logger: Logger
    ) throws {
        self.host = host
        self.logger = logger
        inventory = InventoryService(
            inventory: HostInventory(
                root: host.root, selection: host.selection, firmwareMemory: host.firmwareMemory),
            store: store, logger: logger)
        engine = JobEngine(
            host: host, store: store, inventory: inventory, configuration: jobs, logger: logger)
        let metrics = GraceMetrics()
        self.metrics = metrics
        jobFinished = { job in metrics.jobFinished(job) }
        JobFinishedHooks.register(jobFinished, for: engine)
        inventory.observeLayoutDrift { bdf in metrics.layoutDrifted(bdf) }
        let engine = engine
        // A device with a job queued or running on it belongs to that job (the engine's busy set).
        health = HealthWatch(inventory: inventory, intervalSeconds: healthIntervalSeconds, logger: logger) {
            bdf in engine.monitor.withLock { engine.state.busy[bdf] != nil }
        }

        var router = Router()
        GPURoutes.register(in: &router, inventory: inventory)
        JobRoutes.register(in: &router, engine: engine)
        SystemRoutes.register(
            in: &router, inventory: inventory, engine: engine, simulated: host.simulator != nil)
        SystemRoutes.registerMetrics(in: &router, metrics: metrics, inventory: inventory, engine: engine)
        AuditRoutes.register(in: &router, store: store)
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
        try server.start()
        rescanner?.start()
        health.start()
    }

    /// Stops rescanning, cancels jobs (reason: shutdown) and waits a bounded time for kernel writes in
    /// flight, then stops the HTTP server (answering suspended requests first).
    public func stop() {
        rescanner?.stop()
        health.stop()
        engine.shutdown()
        JobFinishedHooks.unregister(engine)
        server.stop()
    }
}
