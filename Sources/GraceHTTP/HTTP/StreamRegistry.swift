import Synchronization

/// The streaming responses in flight, so that `HTTPServer.stop` can end them before MHD stops:
/// MHD_stop_daemon must never find a connection suspended.
package final class StreamRegistry: Sendable {
    private struct State {
        var stopping = false
        var streams: [ObjectIdentifier: StreamConnection] = [:]
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.streams.count } }

    enum Admission {
        case added
        case stopping
        /// The caller's account already holds this many streams.
        case tooMany(Int)
    }

    /// Registers the stream unless the server is stopping or its caller's account already holds
    /// `limit` streams (0: no limit).
    func add(_ stream: StreamConnection, limit: Int) -> Admission {
        state.withLock { state in
            guard !state.stopping else { return .stopping }
            if limit > 0 {
                let held = state.streams.values.filter { $0.caller.account == stream.caller.account }.count
                if held >= limit { return .tooMany(held) }
            }
            state.streams[ObjectIdentifier(stream)] = stream
            return .added
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
