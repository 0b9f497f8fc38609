/// The answers of access control, worded once: each says how to get access.
package enum AccessProblems {
    static let realm = #"Bearer realm="graced""#

    static func unauthenticated(invalid: Bool) -> HTTPResponse {
        .problem(
            status: 401, slug: "unauthenticated", title: "Authentication required",
            detail: invalid
                ? "The credentials sent are not valid: an unknown or revoked token, a malformed Authorization header, or a client certificate that does not verify."
                : "This request carries no credentials graced accepts.",
            resolution:
                "Send `Authorization: Bearer <token>` (an admin creates one with `graced token create --name NAME --role viewer|operator|admin`), or connect through the Unix socket (/run/graced/graced.sock by default) as root or as a member of its group.",
            headers: [("WWW-Authenticate", invalid ? realm + #", error="invalid_token""# : realm)])
    }

    static func ambiguousAuthorization() -> HTTPResponse {
        .problem(
            status: 400, slug: "ambiguous-credentials", title: "More than one Authorization header",
            detail:
                "The request carries several Authorization headers; graced reads credentials one way only.",
            resolution: "Send exactly one `Authorization: Bearer <token>` header.")
    }

    static func forbidden(_ caller: Caller, required: Role, method: String, template: String) -> HTTPResponse
    {
        let role = caller.role?.rawValue ?? "none"
        return .problem(
            status: 403, slug: "forbidden", title: "Role too low",
            detail: "\(method) \(template) needs the \(required.rawValue) role; \(caller.name) has \(role).",
            resolution:
                "Ask an admin for a token with the \(required.rawValue) role (`graced token create --name NAME --role \(required.rawValue)`), or use the Unix socket as a member of its group.",
            extensions: ["requiredRole": required.rawValue, "role": role])
    }

    static func rateLimited(retryAfterSeconds: Int, limit: Int) -> HTTPResponse {
        .problem(
            status: 429, slug: "too-many-mutations", title: "Too many changes",
            detail: "This identity sent more than \(limit) changing requests in the last minute.",
            resolution:
                "Retry after \(retryAfterSeconds) s; follow running jobs with GET /jobs/{id} rather than resubmitting.",
            extensions: ["limit": limit], headers: [("Retry-After", "\(retryAfterSeconds)")])
    }

    static func tooManyConnections(limit: Int) -> HTTPResponse {
        .problem(
            status: 429, slug: "too-many-connections", title: "Too many connections",
            detail: "This identity already holds \(limit) connections to this listener.",
            resolution:
                "Reuse open connections (HTTP keep-alive) instead of opening more, or close idle ones; retry in a second.",
            extensions: ["limit": limit], headers: [("Retry-After", "1"), ("Connection", "close")])
    }
}
