/// Maps method + path to handlers.
///
/// Patterns are paths with `{name}` placeholders, such as `/gpus/{bdf}/layout`. Matching splits
/// the RAW path on "/" and compares segments literally, so an encoded slash (`%2F`) stays inside
/// its segment and a placeholder captures the segment exactly as sent.
public struct Router: Sendable {
    private enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    private struct Route: Sendable {
        let method: String
        let pattern: String
        let segments: [Segment]
        let handler: RouteHandler
    }

    private var routes: [Route] = []

    public init() {}

    /// Registers a handler. Patterns must start with "/" and each (method, pattern) pair may be
    /// registered once: both are programming errors, caught at startup.
    public mutating func add(_ method: String, _ pattern: String, handler: @escaping RouteHandler) {
        precondition(pattern.hasPrefix("/"), "route pattern must start with '/': \(pattern)")
        precondition(
            !routes.contains { $0.method == method && $0.pattern == pattern },
            "route registered twice: \(method) \(pattern)")
        let segments = Self.split(pattern).map { part -> Segment in
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count > 2 {
                return .parameter(String(part.dropFirst().dropLast()))
            }
            return .literal(String(part))
        }
        routes.append(Route(method: method, pattern: pattern, segments: segments, handler: handler))
    }

    public mutating func get(_ pattern: String, handler: @escaping RouteHandler) {
        add("GET", pattern, handler: handler)
    }

    public mutating func post(_ pattern: String, handler: @escaping RouteHandler) {
        add("POST", pattern, handler: handler)
    }

    public mutating func put(_ pattern: String, handler: @escaping RouteHandler) {
        add("PUT", pattern, handler: handler)
    }

    public mutating func patch(_ pattern: String, handler: @escaping RouteHandler) {
        add("PATCH", pattern, handler: handler)
    }

    public mutating func delete(_ pattern: String, handler: @escaping RouteHandler) {
        add("DELETE", pattern, handler: handler)
    }

    /// Every registered (method, pattern) pair, in registration order; the implicit HEAD for GET
    /// routes is not listed.
    public var registeredRoutes: [(method: String, pattern: String)] {
        routes.map { ($0.method, $0.pattern) }
    }

    /// Routes a request: the handler's result, or a 404/405 problem.
    public func handle(_ request: HTTPRequest) -> HandlerResult {
        let parts = Self.split(request.path)
        var best: (route: Route, parameters: [String: String], literals: [Bool])?
        var methodsForPath: Set<String> = []
        for route in routes {
            guard let (parameters, literals) = Self.match(route.segments, parts) else { continue }
            methodsForPath.insert(route.method)
            // HEAD falls back to GET; MHD drops the body of a HEAD response.
            let methodFits =
                route.method == request.method
                || (request.method == "HEAD" && route.method == "GET"
                    && !routes.contains { $0.method == "HEAD" && $0.pattern == route.pattern })
            guard methodFits else { continue }
            if best == nil || Self.moreSpecific(literals, than: best!.literals) {
                best = (route, parameters, literals)
            }
        }
        if let best {
            return best.route.handler(request, best.parameters)
        }
        if methodsForPath.isEmpty {
            return .respond(
                .problem(
                    status: 404, slug: "not-found", title: "Not Found",
                    detail: "No resource matches \(request.method) \(request.path).",
                    resolution:
                        "Check the path against the API description (openapi.yaml); paths are case-sensitive and have no trailing slash."
                ))
        }
        if methodsForPath.contains("GET") {
            methodsForPath.insert("HEAD")
        }
        let allowed = methodsForPath.sorted()
        let allowHeader = allowed.joined(separator: ", ")
        return .respond(
            .problem(
                status: 405, slug: "method-not-allowed", title: "Method Not Allowed",
                detail: "\(request.path) does not support \(request.method).",
                resolution: "Use one of the methods listed in the Allow header: \(allowHeader).",
                extensions: ["allowed": allowed], headers: [("Allow", allowHeader)]))
    }

    /// Splits on every "/" and keeps empty segments, so "/a/" and "/a" stay different paths.
    private static func split(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: false)
    }

    private static func match(_ segments: [Segment], _ parts: [Substring]) -> ([String: String], [Bool])? {
        guard segments.count == parts.count else { return nil }
        var parameters: [String: String] = [:]
        var literals: [Bool] = []
        literals.reserveCapacity(segments.count)
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case .literal(let text):
                guard part == text else { return nil }
                literals.append(true)
            case .parameter(let name):
                guard !part.isEmpty else { return nil }
                parameters[name] = String(part)
                literals.append(false)
            }
        }
        return (parameters, literals)
    }

    /// `/gpus/summary` beats `/gpus/{bdf}`: the first segment where two matches differ decides,
    /// a literal winning over a placeholder, whatever the registration order.
    private static func moreSpecific(_ a: [Bool], than b: [Bool]) -> Bool {
        for (x, y) in zip(a, b) where x != y {
            return x
        }
        return false
    }
}
