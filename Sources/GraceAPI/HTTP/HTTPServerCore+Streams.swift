import CHTTP

extension HTTPServerCore {
    /// Answers a request with a streaming body (see `ResponseStream`), or 503 if the server stops.
    func startStream(_ stream: ResponseStream, caller: Caller, on connection: OpaquePointer) -> Bool {
        let streaming = StreamConnection(source: stream.source, caller: caller, registry: streams)
        guard streams.add(streaming) else {
            stream.source.finish()
            return queue(Self.stopping(), on: connection)
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
