import GraceHTTP
import Passthrough

/// `GET /events`: the service's events as server-sent events, resumable with `Last-Event-ID`.
enum EventRoutes {
    static let maxSecondsLimit = 86_400

    static func register(in router: inout Router, hub: EventHub, inventory: InventoryService) {
        router.get("/events") { request, _ in
            switch parse(request, inventory: inventory) {
            case .failure(let problem):
                return .respond(problem.response)
            case .success(let query):
                let subscription = hub.subscribe(
                    after: query.after, filter: query.filter, maxSeconds: query.maxSeconds)
                return .stream(
                    ResponseStream(
                        headers: [
                            ("Content-Type", "text/event-stream"), ("Cache-Control", "no-store"),
                            // Proxies that buffer (nginx) would hold events back.
                            ("X-Accel-Buffering", "no"),
                        ], source: subscription))
            }
        }
    }

    struct Query {
        var after: Int64?
        var filter: EventFilter
        var maxSeconds: Int?
    }

    static func parse(_ request: HTTPRequest, inventory: InventoryService) -> Result<Query, ProblemResponse> {
        func invalid(_ detail: String, _ resolution: String) -> Result<Query, ProblemResponse> {
            .failure(
                ProblemResponse(
                    response: .problem(
                        status: 400, slug: "invalid-query", title: "Invalid event stream request",
                        detail: detail,
                        resolution: resolution)))
        }
        // The resume point, read one way: the header browsers send, or the query parameter for
        // clients that cannot set headers; both only if they agree.
        let headerValues = request.headers.values(for: "Last-Event-ID")
        guard headerValues.count <= 1 else {
            return invalid(
                "Last-Event-ID was sent \(headerValues.count) times.", "Send Last-Event-ID at most once.")
        }
        var after: Int64?
        for (source, text) in [
            ("Last-Event-ID", headerValues.first), ("lastEventId", request.query["lastEventId"]),
        ] {
            guard let text else { continue }
            guard let id = Int64(text), id >= 0, text.allSatisfy(\.isASCII) else {
                return invalid(
                    "\(source) '\(text.prefix(32))' is not an event id.",
                    "Send the `id` of the last event received (a whole number), or nothing to start from now."
                )
            }
            if let earlier = after, earlier != id {
                return invalid(
                    "Last-Event-ID (\(earlier)) and lastEventId (\(id)) disagree.",
                    "Send the resume point one way: the Last-Event-ID header or the lastEventId parameter.")
            }
            after = id
        }
        var filter = EventFilter()
        if let text = request.query["gpu"] {
            guard let bdf = BDF(text) else {
                return .failure(ProblemResponse(response: CommonProblems.invalidBDF(text)))
            }
            guard inventory.snapshot.gpu(bdf.description) != nil else {
                return .failure(ProblemResponse(response: CommonProblems.gpuNotFound(bdf)))
            }
            filter.gpu = bdf.description
        }
        if let text = request.query["types"] {
            let names = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let unknown = names.filter { EventType(rawValue: $0) == nil }
            guard unknown.isEmpty else {
                return .failure(
                    ProblemResponse(
                        response: .problem(
                            status: 422, slug: "unknown-event-type", title: "Unknown event type",
                            detail:
                                "Unknown event type(s): \(unknown.map { "'\($0.prefix(40))'" }.joined(separator: ", ")).",
                            resolution: "Name types from the list in `known`, separated by commas.",
                            extensions: ["known": EventType.names])))
            }
            filter.types = Set(names)
        }
        var maxSeconds: Int?
        if let text = request.query["maxSeconds"] {
            guard let seconds = Int(text), (1...maxSecondsLimit).contains(seconds), text.allSatisfy(\.isASCII)
            else {
                return invalid(
                    "maxSeconds must be a whole number from 1 to \(maxSecondsLimit).",
                    "Leave maxSeconds out to stream until you disconnect, or send a number of seconds.")
            }
            maxSeconds = seconds
        }
        return .success(Query(after: after, filter: filter, maxSeconds: maxSeconds))
    }
}
