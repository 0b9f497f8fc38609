import GraceHTTP

/// `GET /gpus`, `GET /gpus/{bdf}`, `GET /gpus/{bdf}/layout`: answered on the HTTP thread from the
/// published snapshot, whose bodies and ETags were computed when it was built.
enum GPURoutes {
    static func register(in router: inout Router, inventory: InventoryService) {
        router.get("/gpus") { request, _ in
            .respond(conditional(inventory.snapshot.list, request))
        }
        router.get("/gpus/{bdf}") { request, parameters in
            .respond(
                withGPU(parameters, inventory) { snapshot, bdf in
                    snapshot.details[bdf].map { conditional($0, request) }
                })
        }
        router.get("/gpus/{bdf}/layout") { request, parameters in
            .respond(
                withGPU(parameters, inventory) { snapshot, bdf in
                    snapshot.layouts[bdf].map { conditional($0.body, request) }
                })
        }
    }

    private static func withGPU(
        _ parameters: [String: String], _ inventory: InventoryService,
        _ body: (InventorySnapshot, String) -> HTTPResponse?
    ) -> HTTPResponse {
        switch CommonProblems.parseBDF(parameters) {
        case .failure(let problem): return problem.response
        case .success(let bdf):
            return body(inventory.snapshot, bdf.description) ?? CommonProblems.gpuNotFound(bdf)
        }
    }

    /// 304 when the client already holds this body, else the body with its ETag.
    static func conditional(_ body: InventorySnapshot.Body, _ request: HTTPRequest) -> HTTPResponse {
        if ETag.matches(request.headers["If-None-Match"], body.etag) {
            return HTTPResponse(
                status: 304, headers: InventorySnapshot.Body.headers(etag: body.etag, json: false))
        }
        return body.response
    }
}
