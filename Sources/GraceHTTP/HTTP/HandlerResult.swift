/// What a route handler returns.
public enum HandlerResult: Sendable {
    /// Answered at once on MHD's thread: the fast path, for reads served from memory.
    case respond(HTTPResponse)
    /// Anything that waits: the connection is suspended, the closure runs in a Swift `Task`, and
    /// its response is sent when it returns. The task is cancelled if the server stops first.
    case deferred(@Sendable () async -> HTTPResponse)
    /// A body produced over time (server-sent events), pulled by MHD as the client reads: the
    /// connection is suspended while the source has nothing to send. See `ResponseStream`.
    case stream(ResponseStream)
}

/// A route handler: the request and the raw (still percent-encoded) values of its placeholders.
public typealias RouteHandler = @Sendable (HTTPRequest, [String: String]) -> HandlerResult
