import Logging
import Passthrough
import Store

/// The service assembled: inventory, store, HTTP server, and the timer that rescans the host.
public final class Application: Sendable {
    public let inventory: InventoryService
    public let engine: JobEngine
    public let host: ServiceHost
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
        rescanIntervalSeconds: Double = 5, jobs: JobEngine.Configuration = .init(),
        events eventConfiguration: EventHub.Configuration = .init(), logger: Logger
    ) throws {
        self.host = host
        self.logger = logger
        inventory = InventoryService(
            inventory: HostInventory(
                root: host.root, selection: host.selection, firmwareMemory: host.firmwareMemory),
            store: store, logger: logger)
        events = EventHub(store: store, configuration: eventConfiguration, logger: logger)
        engine = JobEngine(
            host: host, store: store, inventory: inventory, configuration: jobs, logger: logger)

        var router = Router()
        GPURoutes.register(in: &router, inventory: inventory)
        JobRoutes.register(in: &router, engine: engine)
        SystemRoutes.register(
            in: &router, inventory: inventory, engine: engine, simulated: host.simulator != nil)
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
        engine.start()
        try server.start()
        rescanner?.start()
    }

    /// Publishes the `inventory.*` events for what changed since the last call (the rescanner calls it
    /// after every scan; with rescans off, whoever refreshes the inventory may call it).
    @discardableResult
    public func publishInventoryChanges() -> [InventoryChangeObserver.Change] {
        inventoryChanges.observe(inventory.snapshot, publishingTo: events)
    }

    /// Stops rescanning, cancels jobs (reason: shutdown) and waits a bounded time for kernel writes in
    /// flight, ends the event streams, then stops the HTTP server (answering suspended requests first).
    public func stop() {
        rescanner?.stop()
        engine.shutdown()
        events.stop()
        server.stop()
    }
}
