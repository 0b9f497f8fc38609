import CHTTP

extension HTTPServerCore {
    /// Answers a request with a streaming body (see `ResponseStream`), or 503 if the server stops.
    func startStream(_ stream: ResponseStream, on connection: OpaquePointer) -> Bool {
        let streaming = StreamConnection(source: stream.source, registry: streams)
        guard streams.add(streaming) else {
            stream.source.finish()
            return queue(Self.stopping(), on: connection)
        }
        return streaming.queue(status: stream.status, headers: stream.headers, on: connection, log: log)
    }
}
