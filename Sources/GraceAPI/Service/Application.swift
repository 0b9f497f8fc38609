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
    /// The event stream (`GET /events`); the engine publishes job and device events here.
    public let events: EventHub
    let inventoryChanges = InventoryChangeObserver()
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
        jobs: JobEngine.Configuration = .init(), events eventConfiguration: EventHub.Configuration = .init(),
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
        let events = EventHub(store: store, configuration: eventConfiguration, logger: logger)
        self.events = events
        var observers = JobEngine.Observers()
        observers.jobChanged = { job, transition in Self.publish(transition, of: job, to: events) }
        observers.deviceStateChanged = { device, from, to, reason in
            events.publish(
                type: .deviceState, gpu: device.description, job: nil,
                payload: DeviceStatePayload(from: from.rawValue, to: to.rawValue, reason: reason))
        }
        // Every job's outcome goes into the audit trail, beside the request that asked for it, and
        // into the reset counters and histograms.
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
        EventRoutes.register(in: &router, hub: events, inventory: inventory)
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
            let events = events
            let inventoryChanges = inventoryChanges
            rescanner = PeriodicWorker(intervalSeconds: rescanIntervalSeconds) {
                do {
                    inventoryChanges.observe(try inventory.refresh(), publishingTo: events)
                } catch {
                    logger.error("inventory rescan failed: \(error)")
                }
                events.prune()
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
        inventoryChanges.observe(try inventory.refresh(), publishingTo: events)
        events.prune()
        events.start()
        health.check()
        engine.start()
        try server.start()
        rescanner?.start()
        health.start()
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
    public func stop() {
        engine.stopAccepting()
        rescanner?.stop()
        health.stop()
        engine.shutdown()
        events.stop()
        server.stop()
    }

    /// A job's transition as an event of the stream.
    static func publish(_ transition: JobMachine.Transition, of job: Job, to events: EventHub) {
        let gpu = job.gpu.description
        switch transition {
        case .queued:
            events.publish(
                type: .jobQueued, gpu: gpu, job: job.id,
                payload: JobQueuedPayload(kind: job.kind.rawValue, method: job.methodRequested))
        case .started:
            break  // its first phase follows at once
        case .phase(let phase):
            events.publish(type: .jobPhase, gpu: gpu, job: job.id, payload: JobPhasePayload(phase: phase))
        case .attempt(let attempt):
            let number = (job.attempts.lastIndex(of: attempt) ?? job.attempts.count - 1) + 1
            events.publish(
                type: .jobAttempt, gpu: gpu, job: job.id,
                payload: JobAttemptPayload(
                    attempt: number, write: String(attempt.message.prefix { $0 != ":" }),
                    errno: attempt.errno.map { Int($0.rawValue) }, message: attempt.message))
        case .finished:
            events.publish(
                type: .jobFinished, gpu: gpu, job: job.id,
                payload: JobFinishedPayload(state: job.state.rawValue, error: job.failure?.detail))
        }
    }
}
