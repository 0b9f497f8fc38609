import CHTTP

/// Per-request state behind MHD's `*con_cls`.
///
/// Created in the URI log callback (the only place the raw target is visible), retained by MHD
/// through an `Unmanaged` pointer, and released in the request-completed callback.
///
/// `@unchecked Sendable`: MHD calls back for one connection on one worker thread at a time, so
/// the mutable fields are only touched there, until the request is dispatched. After that the
/// only field read elsewhere is `connection`, written before the context is published under the
/// core's lock and read by whichever thread wins the claim under that same lock.
package final class RequestContext: @unchecked Sendable {
    enum Phase {
        /// Before the first access-handler call (headers just parsed).
        case new
        /// Accumulating the body.
        case receiving
        /// Over the body limit: dropping the rest, answering 413 at the end.
        case discarding
        /// Handed to the router; a response is queued or the connection is suspended.
        case dispatched
    }

    let rawTarget: String
    /// When the head arrived, for the request duration metric.
    let startedAt = ContinuousClock.now
    var phase = Phase.new
    var method = ""
    var headers = HTTPHeaders()
    var body: [UInt8] = []
    var discardedBytes = 0
    /// Set by the edge's checks before the body is read.
    var caller = Caller(name: "anonymous", role: nil, source: .none)
    var match: Router.Match?
    var channel = ""
    /// Set while suspended, for the thread that answers the request.
    var connection: OpaquePointer?

    init(rawTarget: String) {
        self.rawTarget = rawTarget
    }
}
