import Synchronization

/// The streaming responses in flight, so that `HTTPServer.stop` can end them before MHD stops:
/// MHD_stop_daemon must never find a connection suspended.
final class StreamRegistry: Sendable {
    private struct State {
        var stopping = false
        var streams: [ObjectIdentifier: StreamConnection] = [:]
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.streams.count } }

    /// False once the server is stopping: the caller answers 503 instead.
    func add(_ stream: StreamConnection) -> Bool {
        state.withLock { state in
            guard !state.stopping else { return false }
            state.streams[ObjectIdentifier(stream)] = stream
            return true
        }
    }

    func remove(_ stream: StreamConnection) {
        state.withLock { _ = $0.streams.removeValue(forKey: ObjectIdentifier(stream)) }
    }

    /// Ends the open streams whose caller `isRevoked` says is no longer valid (a token revoked by a
    /// reload): what they have buffered is sent, then the body ends.
    func stop(where isRevoked: (Caller) -> Bool) -> Int {
        let streams = state.withLock { state in state.streams.values.filter { isRevoked($0.caller) } }
        for stream in streams { stream.source.stop() }
        return streams.count
    }

    /// Refuses new streams and asks every open one to end (each resumes its connection if
    /// suspended, sends what it has buffered and ends the chunked body).
    func stopAll() {
        let streams = state.withLock { state in
            state.stopping = true
            return Array(state.streams.values)
        }
        for stream in streams { stream.source.stop() }
    }
}
