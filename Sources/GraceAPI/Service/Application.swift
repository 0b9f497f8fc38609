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
    let server: HTTPServer
    /// Every `(method, pattern, role)` served, for the contract test.
    let routes: [(method: String, pattern: String, role: Role)]
    let logger: Logger
    private let rescanIntervalSeconds: Double
    private let deviceEvents: (any DeviceEventSource)?
    private let rescanner = Mutex<PeriodicWorker?>(nil)

    /// The rescan interval when device events are not arriving (no source, or it could not start):
    /// rescans are then the only way a change is seen.
    public static let pollingRescanSeconds: Double = 5

    /// `server` says where to listen and who may do what; the audit trail is this store's unless
    /// `server.edge.auditor` names another.
    public init(
        host: ServiceHost, store: GraceStore,
        server serverConfiguration: HTTPServer.Configuration = .loopback(),
        rescanIntervalSeconds: Double = 5, deviceEvents: (any DeviceEventSource)? = nil,
        jobs: JobEngine.Configuration = .init(), logger: Logger
    ) throws {
        self.rescanIntervalSeconds = rescanIntervalSeconds
        self.deviceEvents = deviceEvents
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
        AuditRoutes.register(in: &router, store: store)
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
    /// `start` returns once they are recorded.
    public func start() throws {
        let scanned = try inventory.scanAndPublish()
        engine.start()
        try server.start()
        inventory.recordLayouts(scanned.gpus, at: scanned.takenAtMs)
        let listening = startDeviceEvents()
        var interval = rescanIntervalSeconds
        if deviceEvents != nil && !listening && interval > Self.pollingRescanSeconds {
            interval = Self.pollingRescanSeconds
        }
        guard interval > 0 else { return }
        let inventory = inventory
        let logger = logger
        let worker = PeriodicWorker(intervalSeconds: interval) {
            do {
                try inventory.refresh()
            } catch {
                logger.error("inventory rescan failed: \(error)")
            }
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
            try deviceEvents.start { delivery in
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

    /// Stops rescanning, cancels jobs (reason: shutdown) and waits a bounded time for kernel writes in
    /// flight, then stops the HTTP server (answering suspended requests first).
    public func stop() {
        deviceEvents?.stop()
        rescanner.withLock { worker in
            defer { worker = nil }
            return worker
        }?.stop()
        engine.shutdown()
        server.stop()
    }
}
