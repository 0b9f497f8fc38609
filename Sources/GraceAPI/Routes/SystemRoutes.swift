import BuildInfo
import GraceHTTP
import Passthrough

/// `GET /healthz`, `GET /metrics` and `GET /openapi.yaml`.
enum SystemRoutes {
    struct Health: Encodable {
        /// `degraded` while job records are not reaching the disk.
        var status: String
        var gpus: Int
        var simulated: Bool
        var inventoryTakenAt: String
        var jobs: JobEngine.Load
        var store: Store
        /// The release and the git commit graced was built from.
        var version: String
        var revision: String
    }

    struct Store: Encodable {
        /// `ok`, or `degraded` while some job records wait for the disk (new jobs are refused then).
        var status: String
        var pendingJobRecords: Int
        /// Why the last write failed, while any record is pending.
        @NullEncodable var lastError: String?
    }

    static func register(
        in router: inout Router, inventory: InventoryService, engine: JobEngine, simulated: Bool
    ) {
        router.get("/healthz") { _, _ in
            let snapshot = inventory.snapshot
            let records = engine.recorder.health
            let store = Store(
                status: records.pendingJobs == 0 ? "ok" : "degraded", pendingJobRecords: records.pendingJobs,
                lastError: records.lastError)
            return .respond(
                .json(
                    Health(
                        status: store.status, gpus: snapshot.gpus.count, simulated: simulated,
                        inventoryTakenAt: Timestamp.rfc3339(ms: snapshot.takenAtMs), jobs: engine.load,
                        store: store, version: BuildInfo.version, revision: BuildInfo.revision),
                    headers: [("Cache-Control", "no-store")]))
        }
        // openapi.yaml's bytes, embedded by SwiftPM (Contract/openapi.yaml links to the root file).
        let contract = PackageResources.openapi_yaml
        router.get("/openapi.yaml") { _, _ in
            .respond(
                HTTPResponse(status: 200, headers: [("Content-Type", "application/yaml")], body: contract))
        }
    }

    /// `GET /metrics`: the Prometheus text exposition, built at each scrape from the event counters
    /// and the current snapshot (never cached: a scraper wants the value now).
    static func registerMetrics(
        in router: inout Router, metrics: GraceMetrics, inventory: InventoryService, engine: JobEngine
    ) {
        router.get("/metrics") { _, _ in
            let load = engine.load
            let body = metrics.scrape(
                snapshot: inventory.snapshot,
                engine: GraceMetrics.EngineFigures(
                    queued: load.queuedJobs, running: load.runningJobs,
                    stuckKernelWrites: load.stuckKernelWrites))
            return .respond(
                HTTPResponse(
                    status: 200,
                    headers: [
                        ("Content-Type", "text/plain; version=0.0.4"), ("Cache-Control", "no-store"),
                    ], body: body))
        }
    }
}
