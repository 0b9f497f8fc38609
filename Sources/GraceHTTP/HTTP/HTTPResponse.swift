import FoundationEssentials

/// A complete response: MHD copies it out once, so it stays a plain value.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Sent in this order. `Content-Length` is ignored: MHD computes it from the body.
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// The same status, headers and body already built in MHD (a snapshot's GET bodies): sent
    /// instead of copying them again. Whoever changes the response above must drop it.
    package var prepared: PreparedResponse?
    /// The job this answer created or names (beside its `Location`), for the request's audit line:
    /// carried as a value, so nothing reads it back out of a header.
    public var job: String?

    public init(status: Int = 200, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The same answer with `extra` headers after its own (a prepared body is then built afresh).
    func adding(_ extra: [(String, String)]) -> HTTPResponse {
        guard !extra.isEmpty else { return self }
        var copy = HTTPResponse(status: status, headers: headers + extra, body: body)
        copy.prepared = nil
        copy.job = job
        return copy
    }

    /// The same answer, naming `job` (see `job`).
    public func naming(job: String) -> HTTPResponse {
        var copy = self
        copy.job = job
        return copy
    }

    /// The first value of a header, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { HTTPHeaders.namesMatch($0.0, name) }?.1
    }

    /// Encodes `value` with sorted keys (stable bytes for caches, ETags and tests). A value that
    /// cannot be encoded (a non-finite float, a throwing `encode(to:)`) becomes a 500 problem
    /// instead of a half-written body.
    public static func json(
        _ value: some Encodable, status: Int = 200, headers: [(String, String)] = []
    ) -> HTTPResponse {
        do {
            return json(bytes: try encodeJSON(value), status: status, headers: headers)
        } catch {
            return problem(
                Problem(
                    slug: "response-encoding-failed", title: "Internal Server Error", status: 500,
                    detail: "The server could not encode its response as JSON.",
                    resolution: "Retry later; if it persists, report it with the request that caused it."))
        }
    }

    /// For bodies that are already JSON, e.g. bytes prepared once from a snapshot.
    public static func json(bytes: [UInt8], status: Int = 200, headers: [(String, String)] = [])
        -> HTTPResponse
    {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: bytes)
    }

    public static func text(_ text: String, status: Int = 200, headers: [(String, String)] = [])
        -> HTTPResponse
    {
        HTTPResponse(
            status: status, headers: [("Content-Type", "text/plain; charset=utf-8")] + headers,
            body: Array(text.utf8))
    }

    public static func problem(_ problem: Problem, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(
            status: problem.status, headers: [("Content-Type", Problem.mediaType)] + headers,
            body: problem.jsonBytes())
    }

    /// Shorthand for a problem whose type is `https://graceapi.dev/problems/<slug>`.
    public static func problem(
        status: Int, slug: String, title: String, detail: String, resolution: String,
        instance: String? = nil, extensions: [String: any Encodable & Sendable] = [:],
        headers: [(String, String)] = []
    ) -> HTTPResponse {
        problem(
            Problem(
                slug: slug, title: title, status: status, detail: detail, instance: instance,
                resolution: resolution, extensions: extensions),
            headers: headers)
    }

    /// The whole response as bytes on the wire, closing the connection: only for the rare answers
    /// graced writes to a socket itself, outside libmicrohttpd.
    func serialized(reason: String) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(reason)\r\n"
        for (name, value) in headers
        where !HTTPHeaders.namesMatch(name, "Content-Length") && !HTTPHeaders.namesMatch(name, "Connection") {
            head += "\(name): \(value)\r\n"
        }
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + body
    }

    /// A fresh encoder per call: cheap next to the encoding itself, and nothing shared between threads.
    package static func encodeJSON(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }
}
