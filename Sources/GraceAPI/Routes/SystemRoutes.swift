/// `GET /healthz` and `GET /openapi.yaml`.
enum SystemRoutes {
    struct Health: Encodable {
        var status = "ok"
        var gpus: Int
        var simulated: Bool
        var inventoryTakenAt: String
        var jobs: JobEngine.Load
    }

    static func register(
        in router: inout Router, inventory: InventoryService, engine: JobEngine, simulated: Bool
    ) {
        router.get("/healthz") { _, _ in
            let snapshot = inventory.snapshot
            return .respond(
                .json(
                    Health(
                        gpus: snapshot.gpus.count, simulated: simulated,
                        inventoryTakenAt: Timestamp.rfc3339(ms: snapshot.takenAtMs), jobs: engine.load),
                    headers: [("Cache-Control", "no-store")]))
        }
        let contract = Array(OpenAPIDocument.yaml.utf8)
        router.get("/openapi.yaml") { _, _ in
            .respond(
                HTTPResponse(status: 200, headers: [("Content-Type", "application/yaml")], body: contract))
        }
    }
}
