import Logging
import Passthrough
import Store

/// The service assembled: inventory, store, HTTP server, and the timer that rescans the host.
public final class Application: Sendable {
    public let inventory: InventoryService
    public let engine: JobEngine
    public let host: ServiceHost
    let server: HTTPServer
    /// Every `(method, pattern)` served, for the contract test.
    let routes: [(method: String, pattern: String)]
    let logger: Logger
    private let rescanner: PeriodicWorker?

    public init(
        host: ServiceHost, store: GraceStore, listen: ListenAddress, rescanIntervalSeconds: Double = 5,
        maxBodyBytes: Int = 64 << 10, jobs: JobEngine.Configuration = .init(), logger: Logger
    ) throws {
        self.host = host
        self.logger = logger
        inventory = InventoryService(
            inventory: HostInventory(
                root: host.root, selection: host.selection, firmwareMemory: host.firmwareMemory),
            store: store, logger: logger)
        engine = JobEngine(
            host: host, store: store, inventory: inventory, configuration: jobs, logger: logger)

        var router = Router()
        GPURoutes.register(in: &router, inventory: inventory)
        JobRoutes.register(in: &router, engine: engine)
        SystemRoutes.register(
            in: &router, inventory: inventory, engine: engine, simulated: host.simulator != nil)
        if let simulator = host.simulator {
            SimulatorRoutes.register(in: &router, simulator: simulator)
        }
        routes = router.registeredRoutes
        var configuration = HTTPServer.Configuration()
        configuration.host = listen.host
        configuration.port = listen.port
        configuration.maxBodyBytes = maxBodyBytes
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

    /// The port actually bound (useful with port 0).
    public var port: UInt16? { server.port }

    /// Scans the host once (so the first request already sees it), then starts serving.
    public func start() throws {
        try inventory.refresh()
        engine.start()
        try server.start()
        rescanner?.start()
    }

    /// Stops rescanning, cancels jobs (reason: shutdown) and waits a bounded time for kernel writes in
    /// flight, then stops the HTTP server (answering suspended requests first).
    public func stop() {
        rescanner?.stop()
        engine.shutdown()
        server.stop()
    }
}
