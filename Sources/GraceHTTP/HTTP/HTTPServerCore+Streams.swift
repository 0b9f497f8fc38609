import CHTTP

extension HTTPServerCore {
    /// Answers a request with a streaming body (see `ResponseStream`), or 503 if the server stops.
    func startStream(_ stream: ResponseStream, caller: Caller, on connection: OpaquePointer) -> Bool {
        let streaming = StreamConnection(source: stream.source, caller: caller, registry: streams)
        switch streams.add(streaming, limit: streamsPerAccount) {
        case .added:
            break
        case .stopping:
            stream.source.finish()
            return queue(Self.stopping(), on: connection)
        case .tooMany(let held):
            stream.source.finish()
            return queue(
                .problem(
                    status: 429, slug: "too-many-streams", title: "Too many open streams",
                    detail: "\(caller.account) already holds \(held) open streams on this listener.",
                    resolution:
                        "Close a stream before opening another; one stream with a filter serves many readers.",
                    headers: [("Retry-After", "5")]),
                on: connection)
        }
        return streaming.queue(status: stream.status, headers: stream.headers, on: connection, log: log)
    }

    /// After the tokens were replaced: the streams of tokens no longer in force end.
    func endStreams(revokedBy verifier: TokenVerifier?) {
        let authenticator = policy.authenticator
        let ended = streams.stop { !authenticator.isStillValid($0, under: verifier) }
        if ended > 0 { log?("tokens reloaded: ended \(ended) event streams of revoked tokens") }
    }
}
