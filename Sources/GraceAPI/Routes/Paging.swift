import GraceHTTP

/// `limit` and `before` of the paged lists (jobs, a GPU's resets, the audit trail), read one way.
enum Paging {
    static let defaultLimit = 50
    static let maximumLimit = 500

    /// The `limit` query parameter, or the default when absent.
    static func limit(_ request: HTTPRequest) -> Result<Int, ProblemResponse> {
        guard let text = request.query["limit"] else { return .success(defaultLimit) }
        guard let parsed = Int(text), (1...maximumLimit).contains(parsed) else {
            return .failure(
                ProblemResponse(
                    response: .problem(
                        status: 400, slug: "invalid-query", title: "Invalid limit",
                        detail: "limit must be a whole number from 1 to \(maximumLimit).",
                        resolution: "Send a smaller limit and follow `next` for more.")))
        }
        return .success(parsed)
    }

    /// The `before` cursor as `parse` reads it; nil when absent.
    static func cursor<Cursor>(_ request: HTTPRequest, _ parse: (String) -> Cursor?) -> Result<
        Cursor?, ProblemResponse
    > {
        guard let text = request.query["before"] else { return .success(nil) }
        guard let cursor = parse(text) else {
            return .failure(
                ProblemResponse(
                    response: .problem(
                        status: 400, slug: "invalid-query", title: "Invalid cursor",
                        detail: "before must be a `next` value from an earlier page.",
                        resolution: "Start from the first page (no `before`) and follow `next`.")))
        }
        return .success(cursor)
    }
}
