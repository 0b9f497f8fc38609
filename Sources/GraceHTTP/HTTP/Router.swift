/// Maps method + path to handlers, each with the role it needs (or none: the probes a cluster
/// calls without credentials).
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
        /// `nil` for a public route, answered without credentials.
        let role: Role?
        let auditsInTransaction: Bool
        let handler: RouteHandler
    }

    /// A request's route: what runs, with which placeholders, for whom.
    public struct Match: Sendable {
        public let handler: RouteHandler
        public let parameters: [String: String]
        /// `nil` for a public route, answered without credentials.
        public let role: Role?
        /// The registered pattern, e.g. `/gpus/{bdf}/reset` (for the audit trail and metrics).
        public let template: String
        /// The handler writes the request's audit line with its change (`TransactionalAudit`).
        public let auditsInTransaction: Bool
    }

    public enum Resolution: Sendable {
        case matched(Match)
        /// 404 or 405, ready to send.
        case unmatched(HTTPResponse)
    }

    private var routes: [Route] = []
    /// Routes without placeholders by their exact pattern, then method: a path that equals one
    /// is answered by it without trying every route (it beats any route with a placeholder).
    private var literal: [String: [String: Int]] = [:]

    public init() {}

    /// Registers a handler. Patterns must start with "/" and each (method, pattern) pair may be
    /// registered once: both are programming errors, caught at startup.
    public mutating func add(
        _ method: String, _ pattern: String, role: Role?, auditsInTransaction: Bool = false,
        handler: @escaping RouteHandler
    ) {
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
        if !segments.contains(where: { if case .parameter = $0 { true } else { false } }) {
            literal[pattern, default: [:]][method] = routes.count
        }
        routes.append(
            Route(
                method: method, pattern: pattern, segments: segments, role: role,
                auditsInTransaction: auditsInTransaction, handler: handler))
    }

    /// Reads need a viewer unless said otherwise; changes an operator.
    public mutating func get(_ pattern: String, role: Role = .viewer, handler: @escaping RouteHandler) {
        add("GET", pattern, role: role, handler: handler)
    }

    /// A GET anyone may call, without credentials: only for a probe that says nothing about the
    /// host (a status and a short reason), since the edge then answers callers it cannot identify.
    public mutating func getWithoutCredentials(_ pattern: String, handler: @escaping RouteHandler) {
        add("GET", pattern, role: nil, handler: handler)
    }

    public mutating func post(
        _ pattern: String, role: Role = .operator, auditsInTransaction: Bool = false,
        handler: @escaping RouteHandler
    ) {
        add("POST", pattern, role: role, auditsInTransaction: auditsInTransaction, handler: handler)
    }

    public mutating func put(_ pattern: String, role: Role = .operator, handler: @escaping RouteHandler) {
        add("PUT", pattern, role: role, handler: handler)
    }

    public mutating func patch(_ pattern: String, role: Role = .operator, handler: @escaping RouteHandler) {
        add("PATCH", pattern, role: role, handler: handler)
    }

    public mutating func delete(_ pattern: String, role: Role = .operator, handler: @escaping RouteHandler) {
        add("DELETE", pattern, role: role, handler: handler)
    }

    /// Every registered (method, pattern, role), in registration order (role `nil`: public); the
    /// implicit HEAD for GET routes is not listed.
    public var registeredRoutes: [(method: String, pattern: String, role: Role?)] {
        routes.map { ($0.method, $0.pattern, $0.role) }
    }

    /// Routes a request and runs its handler, whoever sent it (the server checks the role first).
    public func handle(_ request: HTTPRequest) -> HandlerResult {
        switch resolve(method: request.method, path: request.path) {
        case .matched(let match): match.handler(request, match.parameters)
        case .unmatched(let response): .respond(response)
        }
    }

    /// The route for a method and raw path, or the 404/405 answer.
    public func resolve(method: String, path: String) -> Resolution {
        // HEAD falls back to GET unless the pattern has its own HEAD route, as below.
        if let methods = literal[path],
            let index = methods[method] ?? (method == "HEAD" ? methods["GET"] : nil)
        {
            let route = routes[index]
            return .matched(
                Match(
                    handler: route.handler, parameters: [:], role: route.role, template: route.pattern,
                    auditsInTransaction: route.auditsInTransaction))
        }
        let parts = Self.split(path)
        var best: (route: Route, parameters: [String: String], literals: [Bool])?
        var methodsForPath: Set<String> = []
        for route in routes {
            guard let (parameters, literals) = Self.match(route.segments, parts) else { continue }
            methodsForPath.insert(route.method)
            // HEAD falls back to GET; MHD drops the body of a HEAD response.
            let methodFits =
                route.method == method
                || (method == "HEAD" && route.method == "GET"
                    && !routes.contains { $0.method == "HEAD" && $0.pattern == route.pattern })
            guard methodFits else { continue }
            if best == nil || Self.moreSpecific(literals, than: best!.literals) {
                best = (route, parameters, literals)
            }
        }
        if let best {
            return .matched(
                Match(
                    handler: best.route.handler, parameters: best.parameters, role: best.route.role,
                    template: best.route.pattern, auditsInTransaction: best.route.auditsInTransaction))
        }
        if methodsForPath.isEmpty {
            return .unmatched(
                .problem(
                    status: 404, slug: "not-found", title: "Not Found",
                    detail: "No resource matches \(method) \(String(path.prefix(200))).",
                    resolution:
                        "Check the path against the API description (openapi.yaml); paths are case-sensitive and have no trailing slash."
                ))
        }
        if methodsForPath.contains("GET") {
            methodsForPath.insert("HEAD")
        }
        let allowed = methodsForPath.sorted()
        let allowHeader = allowed.joined(separator: ", ")
        return .unmatched(
            .problem(
                status: 405, slug: "method-not-allowed", title: "Method Not Allowed",
                detail: "\(String(path.prefix(200))) does not support \(String(method.prefix(20))).",
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
