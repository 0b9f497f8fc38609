/// A response whose body is produced over time (server-sent events): answered with a chunked body
/// of unknown length that MHD pulls from `source` whenever the socket can take more.
public struct ResponseStream: Sendable {
    public var status: Int
    /// Sent in this order; `Content-Length` is never sent (the length is unknown).
    public var headers: [(String, String)]
    public var source: any StreamSource

    public init(status: Int = 200, headers: [(String, String)], source: any StreamSource) {
        self.status = status
        self.headers = headers
        self.source = source
    }
}

/// What a stream's `read` produced.
public enum StreamRead: Sendable, Equatable {
    /// This many bytes were copied into the buffer.
    case bytes(Int)
    /// Nothing to send now: the connection is suspended until the source calls its wake closure.
    case waiting
    /// The body is complete; MHD ends the chunked response.
    case end
}

/// The producer behind a `ResponseStream`. Called from MHD's threads (`read`) and from whatever
/// thread ends the stream (`stop`, `finish`); implementations guard their state with a lock.
public protocol StreamSource: AnyObject, Sendable {
    /// Copies the next bytes into `buffer` (never more than its count). Never blocks for long.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> StreamRead
    /// Given once, before the first `read`: call it (from any thread, without holding a lock that
    /// `read` takes) whenever bytes may have become available after a `.waiting`, or the stream
    /// should end. Calls after the stream finished are ignored.
    func setWake(_ wake: @escaping @Sendable () -> Void)
    /// The server is stopping: return `.end` from `read` once what is buffered has gone, soon.
    func stop()
    /// The response is gone (sent in full, or the client left): release everything. Last call.
    func finish()
}
