/// What a request must look like to reach a handler, beyond authentication: a `Host` that names this
/// server (DNS rebinding), no foreign `Origin` (a browser page cannot drive a reset), a JSON media
/// type on changing requests, and a bounded rate of changes per identity.
public struct EdgePolicy: Sendable {
    /// Origins (`https://dash.example:8443`) allowed to send requests; any other `Origin` gets 403.
    public var allowedOrigins: Set<String>
    /// Host names accepted in `Host` on TCP besides the listening address (lowercase).
    public var allowedHosts: Set<String>
    /// Changing requests per identity per minute; 0: no limit.
    public var mutationsPerMinute: Int
    public var authenticator: Authenticator
    /// Where changing requests are recorded; nil records nothing (tests of the HTTP layer).
    public var auditor: (any RequestAuditor)?
    /// Told of every answer: the route template (`unrouted` before routing), the status and the
    /// seconds since the request's head arrived. For the metrics; nil tells no one.
    public var requestObserver: (@Sendable (_ route: String, _ status: Int, _ seconds: Double) -> Void)?

    public init(
        allowedOrigins: Set<String> = [], allowedHosts: Set<String> = [], mutationsPerMinute: Int = 60,
        authenticator: Authenticator = Authenticator(), auditor: (any RequestAuditor)? = nil
    ) {
        self.allowedOrigins = allowedOrigins
        self.allowedHosts = Set(allowedHosts.map { $0.lowercased() })
        self.mutationsPerMinute = mutationsPerMinute
        self.authenticator = authenticator
        self.auditor = auditor
    }

    /// Everything but the safe methods (RFC 9110 §9.2.1) may change something.
    static func isMutation(_ method: String) -> Bool {
        method != "GET" && method != "HEAD" && method != "OPTIONS"
    }

    // MARK: Origin

    /// The methods and request headers a page of an allowed origin may use (CORS).
    static let corsMethods = "GET, POST, PUT, DELETE"
    static let corsHeaders = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID"

    /// The answer to a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
    /// from an allowed origin: 204 with what it may send, and no credentials needed (browsers send
    /// none with a preflight). nil for anything else (an other origin is refused by `originProblem`).
    func preflight(method: String, _ headers: HTTPHeaders) -> HTTPResponse? {
        guard method == "OPTIONS", headers.values(for: "Access-Control-Request-Method").count == 1,
            let origin = allowedOrigin(headers)
        else { return nil }
        return HTTPResponse(
            status: 204,
            headers: [
                ("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Methods", Self.corsMethods),
                ("Access-Control-Allow-Headers", Self.corsHeaders), ("Access-Control-Max-Age", "600"),
                ("Vary", "Origin"),
            ])
    }

    /// The headers that let a page of an allowed origin read the answer; none without such an origin.
    func corsResponseHeaders(_ headers: HTTPHeaders) -> [(String, String)] {
        guard let origin = allowedOrigin(headers) else { return [] }
        return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    }

    private func allowedOrigin(_ headers: HTTPHeaders) -> String? {
        let origins = headers.values(for: "Origin")
        guard origins.count == 1, allowedOrigins.contains(origins[0]) else { return nil }
        return origins[0]
    }

    func originProblem(_ headers: HTTPHeaders) -> HTTPResponse? {
        let origins = headers.values(for: "Origin")
        guard !origins.isEmpty else { return nil }
        if origins.count == 1, allowedOrigins.contains(origins[0]) { return nil }
        return .problem(
            status: 403, slug: "origin-not-allowed", title: "Cross-origin request refused",
            detail:
                "The request comes from the web origin '\(String(origins[0].prefix(100)))', which is not allowed to use graced.",
            resolution:
                "Call graced from a program, not a web page; to allow a dashboard's origin, start graced with --allow-origin ORIGIN."
        )
    }

    // MARK: Host

    /// Whether `Host` names this TCP listener: its address literal (any IP literal for a wildcard
    /// address), `localhost` on a loopback address, or a configured name, with the bound port if a
    /// port is given. DNS rebinding sends the attacker's name, which is none of these.
    func hostAllowed(_ values: [String], listen: ListenAddress, port: UInt16) -> Bool {
        guard case .tcp(let listenHost, _) = listen else { return true }
        guard values.count == 1 else { return false }
        guard let (name, hostPort) = Self.splitHost(values[0]) else { return false }
        if let hostPort, hostPort != port { return false }
        let lowered = name.lowercased()
        if allowedHosts.contains(lowered) { return true }
        if lowered == listenHost.lowercased() { return true }
        if listen.isLoopback && lowered == "localhost" { return true }
        if listen.isWildcard && (ListenAddress.isIPv4(name) || ListenAddress.isIPv6(name)) { return true }
        return false
    }

    /// `name`, `name:port`, `[v6]` or `[v6]:port`.
    static func splitHost(_ value: String) -> (String, UInt16?)? {
        guard !value.isEmpty, value.utf8.count <= 260 else { return nil }
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]") else { return nil }
            let name = String(value[value.index(after: value.startIndex)..<close])
            let rest = value[value.index(after: close)...]
            if rest.isEmpty { return (name, nil) }
            guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()) else { return nil }
            return (name, port)
        }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1: return (value, nil)
        case 2:
            guard !parts[0].isEmpty, let port = UInt16(parts[1]) else { return nil }
            return (String(parts[0]), port)
        default: return nil
        }
    }

    static func misdirected(_ values: [String]) -> HTTPResponse {
        .problem(
            status: 421, slug: "misdirected-request", title: "Host not served here",
            detail:
                "The Host header '\(String((values.first ?? "").prefix(100)))' does not name this server\(values.count > 1 ? " (and it was sent more than once)" : "").",
            resolution:
                "Address graced by the IP address it listens on (or localhost on a loopback address); to use a DNS name, start graced with --allow-host NAME."
        )
    }

    /// A query that sends a parameter twice: refused before routing to a handler, whatever the
    /// parameter (the route reads each once).
    static func repeatedQueryParameter(_ name: String) -> HTTPResponse {
        .problem(
            status: 400, slug: "invalid-query", title: "Query parameter sent twice",
            detail:
                "The query sends '\(String(name.prefix(64)))' more than once; each parameter has one value.",
            resolution: "Send each query parameter at most once.")
    }

    // MARK: Content type

    /// A changing request with a body must say it is JSON (`application/json`, charset utf-8 if any).
    static func contentTypeProblem(_ headers: HTTPHeaders) -> HTTPResponse? {
        let values = headers.values(for: "Content-Type")
        if values.count == 1 {
            let parameters = values[0].split(separator: ";").map { trimmed($0).lowercased() }
            if parameters.first == "application/json"
                && parameters.dropFirst().allSatisfy({ $0 == "charset=utf-8" || $0 == "charset=\"utf-8\"" })
            {
                return nil
            }
        }
        return .problem(
            status: 415, slug: "unsupported-media-type", title: "Body must be JSON",
            detail: values.isEmpty
                ? "The request has a body but no Content-Type."
                : "The body's Content-Type is '\(String(values.joined(separator: ", ").prefix(100)))'.",
            resolution:
                "Send the body as JSON with `Content-Type: application/json`, or send no body for the defaults.",
            headers: [("Accept-Post", "application/json")])
    }

    private static func trimmed(_ text: Substring) -> String {
        var slice = text.drop { $0 == " " || $0 == "\t" }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
