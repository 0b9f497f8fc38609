import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// Routing without a network: the router is a plain value.
@Suite struct HTTPRouterTests {
    static func response(_ result: HandlerResult) -> HTTPResponse? {
        if case .respond(let response) = result { return response }
        return nil
    }

    static func echoRouter() -> Router {
        var router = Router()
        for pattern in ["/gpus", "/gpus/{bdf}", "/gpus/summary", "/gpus/{bdf}/layout", "/a/{x}/{y}"] {
            router.get(pattern) { _, parameters in
                let captured = parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                return .respond(.text(([pattern] + captured).joined(separator: " ")))
            }
        }
        router.post("/gpus/{bdf}/reset") { _, _ in .deferred { .text("reset") } }
        return router
    }

    func route(_ method: String, _ target: String) -> HTTPResponse? {
        Self.response(Self.echoRouter().handle(HTTPRequest(method: method, rawTarget: target)))
    }

    @Test func literalAndPlaceholderSegments() {
        #expect(route("GET", "/gpus")?.body == Array("/gpus".utf8))
        #expect(
            route("GET", "/gpus/0000:01:00.0/layout")?.body
                == Array("/gpus/{bdf}/layout bdf=0000:01:00.0".utf8))
        #expect(route("GET", "/a/1/2?q=3")?.body == Array("/a/{x}/{y} x=1 y=2".utf8))
    }

    @Test func literalBeatsPlaceholderWhateverTheOrder() {
        #expect(route("GET", "/gpus/summary")?.body == Array("/gpus/summary".utf8))
        #expect(route("GET", "/gpus/other")?.body == Array("/gpus/{bdf} bdf=other".utf8))
    }

    @Test func placeholdersCaptureRawSegments() {
        #expect(
            route("GET", "/gpus/0000%3A01%3A00.0")?.body == Array("/gpus/{bdf} bdf=0000%3A01%3A00.0".utf8))
        #expect(route("GET", "/gpus/a%2Fb/layout")?.body == Array("/gpus/{bdf}/layout bdf=a%2Fb".utf8))
    }

    @Test func emptySegmentsAndTrailingSlashesDoNotMatch() {
        #expect(route("GET", "/gpus/")?.status == 404)
        #expect(route("GET", "/gpus//layout")?.status == 404)
        #expect(route("GET", "gpus")?.status == 404)
        #expect(route("GET", "")?.status == 404)
        #expect(route("GET", "/GPUS")?.status == 404)
    }

    @Test func methodMismatchListsAllowedMethods() {
        let response = route("DELETE", "/gpus/x/reset")
        #expect(response?.status == 405)
        #expect(response?.header("allow") == "POST")
        let onGet = route("PUT", "/gpus")
        #expect(onGet?.header("Allow") == "GET, HEAD")
        #expect(onGet?.header("Content-Type") == "application/problem+json")
    }

    @Test func deferredHandlersStayDeferred() async {
        let result = Self.echoRouter().handle(HTTPRequest(method: "POST", rawTarget: "/gpus/x/reset"))
        guard case .deferred(let work) = result else {
            Issue.record("expected a deferred result")
            return
        }
        #expect(await work().body == Array("reset".utf8))
    }

    @Test func registeredRoutesAreListedInOrder() {
        let routes = Self.echoRouter().registeredRoutes.map { "\($0.method) \($0.pattern)" }
        #expect(
            routes == [
                "GET /gpus", "GET /gpus/{bdf}", "GET /gpus/summary", "GET /gpus/{bdf}/layout",
                "GET /a/{x}/{y}",
                "POST /gpus/{bdf}/reset",
            ])
    }
}
