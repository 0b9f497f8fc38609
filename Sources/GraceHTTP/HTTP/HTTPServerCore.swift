import CHTTP
import Synchronization

/// Everything MHD's callbacks need, shared by every listener and reached through its
/// `ListenerContext`. The owning `HTTPServer` keeps it alive until `MHD_stop_daemon` has returned,
/// after which no callback runs.
///
/// Every request passes the edge before a handler sees it, in this order, each refusal answered
/// before any of the body is read: framing (one way to read the body's length), credentials that
/// are wrong (401) or doubled (400), `Host` (421), `Origin` (403), no credentials (401), the
/// identity's connections (429), route (404/405), role (403), media type (415), rate (429), size (413).
package final class HTTPServerCore: Sendable {
    let router: Router
    let maxBodyBytes: Int
    let policy: EdgePolicy
    let limiter: MutationRateLimiter
    let log: (@Sendable (String) -> Void)?
    /// Requests between the URI log callback and the completed callback; tests use it to check
    /// that every context is released, and `stop()` waits for it to reach zero.
    let liveRequests = Atomic<Int>(0)
    /// Streaming responses in flight (HTTPServerCore+Streams.swift).
    let streams = StreamRegistry()

    private struct Suspended: Sendable {
        let context: RequestContext
        var task: Task<Void, Never>?
    }

    private struct State: Sendable {
        var stopping = false
        var suspended: [ObjectIdentifier: Suspended] = [:]
    }

    private let state = Mutex(State())

    /// A client still streaming a refused body this far past the limit is cut off.
    private var discardLimit: Int { max(maxBodyBytes, 1) * 64 }

    /// How long a request's body may take after its head arrived.
    let bodyDeadline: Duration
    /// Event streams (and other streaming answers) one account may hold open at once.
    let streamsPerAccount: Int

    init(
        router: Router, maxBodyBytes: Int, policy: EdgePolicy, bodyDeadline: Duration = .seconds(10),
        streamsPerAccount: Int = 16, log: (@Sendable (String) -> Void)?
    ) {
        self.router = router
        self.maxBodyBytes = maxBodyBytes
        self.bodyDeadline = bodyDeadline
        self.streamsPerAccount = streamsPerAccount
        self.policy = policy
        limiter = MutationRateLimiter(perMinute: policy.mutationsPerMinute)
        self.log = log
        policy.authenticator.observeReplacements { [weak self] verifier in
            self?.endStreams(revokedBy: verifier)
        }
    }

    var suspendedCount: Int {
        state.withLock { $0.suspended.count }
    }

    // MARK: Context lifetime

    /// Returns a +1 pointer for MHD's `*con_cls`; `releaseContext` balances it.
    func makeContext(rawTarget: String) -> UnsafeMutableRawPointer {
        liveRequests.add(1, ordering: .relaxed)
        return Unmanaged.passRetained(RequestContext(rawTarget: rawTarget)).toOpaque()
    }

    func releaseContext(_ pointer: UnsafeMutableRawPointer) {
        Unmanaged<RequestContext>.fromOpaque(pointer).release()
        liveRequests.subtract(1, ordering: .releasing)
    }

    // MARK: Access handler

    /// One call of MHD's access handler. MHD calls it once when the headers are in, once per
    /// body chunk (`size > 0`), and once more with size 0 when the request is complete.
    func process(
        _ context: RequestContext, listener: ListenerContext, connection: OpaquePointer,
        method: UnsafePointer<CChar>?, uploadData: UnsafePointer<CChar>?,
        uploadSize: UnsafeMutablePointer<Int>
    ) -> MHD_Result {
        let size = uploadSize.pointee
        switch context.phase {
        case .new:
            context.method = method.map { String(cString: $0) } ?? ""
            context.headers = Self.requestHeaders(connection)
            context.channel = listener.channel
            let tracked = grace_mhd_socket_context(connection).map {
                Unmanaged<ConnectionTracker.Connection>.fromOpaque($0).takeUnretainedValue()
            }
            if let tracked { listener.tracker.headArrived(tracked) }
            switch admit(context, listener: listener, connection: connection, tracked: tracked) {
            case .refuse(let response):
                context.phase = .dispatched
                auditRefusal(context, status: response.status)
                observe(context, response.status)
                return result(queue(response, on: connection))
            case .proceed(let declaredLength):
                if let declaredLength, declaredLength > 0 {
                    context.body.reserveCapacity(declaredLength)
                }
            }
            context.phase = .receiving
            guard size > 0 else { return .YES }
            return receive(context, uploadData, uploadSize)
        case .receiving:
            if size > 0 {
                // A body has as long as a head to arrive: a client trickling a byte now and then
                // (which keeps MHD's idle timeout from firing) is cut off.
                if ContinuousClock.now - context.startedAt > bodyDeadline {
                    log?("a request body still arriving after \(bodyDeadline): connection closed")
                    uploadSize.pointee = 0
                    return .NO
                }
                return receive(context, uploadData, uploadSize)
            }
            context.phase = .dispatched
            return dispatch(context, connection: connection)
        case .discarding:
            if size > 0 {
                context.discardedBytes += size
                uploadSize.pointee = 0
                // The 413 can only be queued once the body has ended; a client still streaming
                // far past the limit is not worth waiting for.
                return context.discardedBytes > discardLimit ? .NO : .YES
            }
            context.phase = .dispatched
            auditRefusal(context, status: 413)
            observe(context, 413)
            return result(queue(tooLarge(context), on: connection))
        case .dispatched:
            // A response is queued or the connection is suspended, so MHD only comes back here
            // if queueing failed; closing beats spinning.
            uploadSize.pointee = 0
            return .NO
        }
    }

    private enum Admission {
        /// Read the body (of this declared length, if any), then dispatch.
        case proceed(declaredLength: Int?)
        case refuse(HTTPResponse)
    }

    /// The edge's checks, in order, on the request head alone.
    private func admit(
        _ context: RequestContext, listener: ListenerContext, connection: OpaquePointer,
        tracked: ConnectionTracker.Connection?
    ) -> Admission {
        let headers = context.headers
        let framing: RequestFraming
        switch RequestFraming.read(headers) {
        case .failure(.refused(let status, let detail)), .failure(.answeredByMHD(let status, let detail)):
            // MHD never calls the handler for the second kind: it has answered the request itself
            // (the gate answers such first requests before MHD sees them; see HeadGate).
            return .refuse(RequestFraming.problem(status: status, detail: detail))
        case .success(let read):
            framing = read
        }
        // A CORS preflight from an allowed origin is answered before identification: a browser sends
        // no credentials with it.
        if let preflight = policy.preflight(method: context.method, headers) {
            return .refuse(preflight)
        }
        // Who it is comes first, so that every refusal below is recorded under the right name.
        let identity = listener.identity(of: connection, tracked)
        switch policy.authenticator.identify(headers, connection: identity) {
        case .failure(let problem):
            context.caller = policy.authenticator.unauthenticated(identity)
            return .refuse(problem.response)
        case .success(let caller):
            context.caller = caller
        }
        let hosts = headers.values(for: "Host")
        // The answer depends on the value alone (the listener and policy are fixed), so a
        // keep-alive client repeating its accepted `Host` is not parsed again.
        if hosts.count != 1 || tracked == nil || tracked?.acceptedHost != hosts[0] {
            guard policy.hostAllowed(hosts, listen: listener.address, port: listener.port) else {
                return .refuse(EdgePolicy.misdirected(hosts))
            }
            if hosts.count == 1 { tracked?.acceptedHost = hosts[0] }
        }
        if let problem = policy.originProblem(headers) {
            return .refuse(problem)
        }
        let (path, query) = HTTPRequest.split(context.rawTarget)
        let resolution = router.resolve(method: context.method, path: String(path))
        if case .matched(let match) = resolution, match.role == nil {
            // A public probe: anyone, identified or not (credentials sent are still checked above).
            context.match = match
        } else {
            // Anyone else learns nothing, not even which paths exist, before identifying.
            guard let role = context.caller.role else {
                return .refuse(AccessProblems.unauthenticated(invalid: false))
            }
            switch resolution {
            case .unmatched(let response):
                return .refuse(response)
            case .matched(let match):
                context.match = match
                if let required = match.role, !role.allows(required) {
                    return .refuse(
                        AccessProblems.forbidden(
                            context.caller, required: required, method: context.method,
                            template: match.template)
                    )
                }
            }
        }
        // Counted once the caller is known: under its identity, or, for an anonymous caller of a
        // public probe, under its address group (every loopback address is one).
        if let tracked {
            let account =
                context.caller.role == nil
                ? ClientGroup.anonymousAccount(of: tracked.fd) : context.caller.account
            if !listener.tracker.claim(tracked, for: account) {
                return .refuse(AccessProblems.tooManyConnections(limit: listener.tracker.perAccountLimit))
            }
        }
        if !query.isEmpty, let name = HTTPRequest.repeatedQueryName(query) {
            return .refuse(EdgePolicy.repeatedQueryParameter(name))
        }
        if EdgePolicy.isMutation(context.method) {
            let hasBody: Bool
            switch framing {
            case .none: hasBody = false
            case .length(let length): hasBody = length > 0
            case .chunked: hasBody = true
            }
            if hasBody, let problem = EdgePolicy.contentTypeProblem(headers) {
                return .refuse(problem)
            }
            if let wait = limiter.admit(context.caller.account) {
                return .refuse(AccessProblems.rateLimited(retryAfterSeconds: wait, limit: limiter.perMinute))
            }
        }
        if case .length(let length) = framing {
            // MHD accepts a response here and closes the connection afterwards instead of reading the body.
            guard length <= UInt64(maxBodyBytes) else { return .refuse(tooLarge(context)) }
            return .proceed(declaredLength: Int(length))
        }
        return .proceed(declaredLength: nil)
    }

    // MARK: Metrics

    /// Reports an answer to the request observer, under the route template, never the raw path.
    private func observe(_ context: RequestContext, _ status: Int) {
        observer(context)(status)
    }

    private func observer(_ context: RequestContext) -> @Sendable (Int) -> Void {
        guard let requestObserver = policy.requestObserver else { return { _ in } }
        let route = context.match?.template ?? "unrouted"
        let started = context.startedAt
        return { status in
            let elapsed = (ContinuousClock.now - started).components
            requestObserver(route, status, Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18)
        }
    }

    // MARK: Audit

    private func audited(_ context: RequestContext) -> AuditedRequest {
        audited(
            method: context.method, rawTarget: context.rawTarget, template: context.match?.template,
            caller: context.caller, channel: context.channel)
    }

    private func audited(
        method: String, rawTarget: String, template: String?, caller: Caller, channel: String
    )
        -> AuditedRequest
    {
        let raw = String(HTTPRequest.split(rawTarget).path.prefix(200))
        // A request refused before routing (401, 421, ...) is still recorded under its route.
        var template = template
        if template == nil, case .matched(let match) = router.resolve(method: method, path: raw) {
            template = match.template
        }
        // The target as it was acted on (percent-decoded), so a search for a GPU finds every line;
        // the raw one beside it where they differ.
        let decoded = PercentDecoding.decode(raw)
        return AuditedRequest(
            method: String(method.prefix(20)), route: template ?? decoded, path: decoded,
            rawPath: decoded == raw ? nil : raw, caller: caller, channel: channel)
    }

    private func auditRefusal(_ context: RequestContext, status: Int) {
        guard EdgePolicy.isMutation(context.method), let auditor = policy.auditor else { return }
        auditor.refused(audited(context), status: status)
    }

    /// A first request the head gate answered itself: recorded like any refusal when its request
    /// line shows a changing method, under the identity its head and connection carry.
    func auditGateAnswer(
        requestLine: [UInt8]?, headers: HTTPHeaders?, identity: Authenticator.ConnectionIdentity,
        channel: String,
        status: Int
    ) {
        guard let auditor = policy.auditor, let requestLine else { return }
        let parts = requestLine.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
        guard let first = parts.first else { return }
        let method = String(decoding: first, as: UTF8.self)
        guard EdgePolicy.isMutation(method) else { return }
        let target = parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : ""
        var caller = policy.authenticator.unauthenticated(identity)
        if case .success(let identified) = policy.authenticator.identify(
            headers ?? HTTPHeaders(), connection: identity)
        {
            caller = identified
        }
        auditor.refused(
            audited(method: method, rawTarget: target, template: nil, caller: caller, channel: channel),
            status: status)
    }

    private func receive(
        _ context: RequestContext, _ data: UnsafePointer<CChar>?, _ uploadSize: UnsafeMutablePointer<Int>
    ) -> MHD_Result {
        let size = uploadSize.pointee
        uploadSize.pointee = 0
        if context.body.count + size > maxBodyBytes {
            // Chunked bodies have no declared length: stop keeping bytes the moment the limit is
            // crossed. A response cannot be queued mid-upload, so the 413 goes out at the end.
            context.phase = .discarding
            context.discardedBytes = context.body.count + size
            context.body = []
            return .YES
        }
        if let data {
            context.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: size))
        }
        return .YES
    }

    private func dispatch(_ context: RequestContext, connection: OpaquePointer) -> MHD_Result {
        var body: [UInt8] = []
        swap(&body, &context.body)
        var request = HTTPRequest(
            method: context.method, rawTarget: context.rawTarget, headers: context.headers, body: body,
            caller: context.caller)
        guard let match = context.match else {
            // admit() answers every request that has no route; this is only a safety net.
            return result(
                queue(
                    .problem(
                        status: 500, slug: "unrouted", title: "Internal Server Error",
                        detail: "The request reached no handler.",
                        resolution: "Retry; if it persists, report it with the request that caused it."),
                    on: connection))
        }
        // A change is recorded before its handler runs; the record is completed with the answer.
        let observed = observer(context)
        var finishAudit: @Sendable (HTTPResponse) -> Void = { observed($0.status) }
        if EdgePolicy.isMutation(context.method), let auditor = policy.auditor {
            let audited = audited(context)
            if match.auditsInTransaction, let audit = auditor.handlerWritten(audited) {
                // The handler writes the line with its change; the answer completes it if need be.
                request.audit = audit
                let log = log
                finishAudit = { response in
                    do {
                        try audit.finish(status: response.status, job: response.job)
                    } catch {
                        log?(
                            "could not record \(audited.method) \(audited.route) (\(response.status)): \(error)"
                        )
                    }
                    observed(response.status)
                }
            } else {
                do {
                    let id = try auditor.begin(audited)
                    finishAudit = { response in
                        auditor.finish(id, of: audited, status: response.status, job: response.job)
                        observed(response.status)
                    }
                } catch {
                    log?("audit trail not writable, refusing \(context.method) \(match.template): \(error)")
                    return result(queue(Self.auditUnavailable(), on: connection))
                }
            }
        }
        // A page of an allowed origin may read the answer.
        let cors = policy.corsResponseHeaders(context.headers)
        switch match.handler(request, match.parameters) {
        case .respond(let response):
            finishAudit(response)
            return result(queue(response.adding(cors), on: connection))
        case .deferred(let work):
            if state.withLock({ $0.stopping }) {
                let response = Self.stopping()
                finishAudit(response)
                return result(queue(response, on: connection))
            }
            let finish = finishAudit
            suspend(context, connection: connection) {
                let response = await work()
                finish(response)
                return response.adding(cors)
            }
            return .YES
        case .stream(var stream):
            finishAudit(HTTPResponse(status: stream.status))
            stream.headers += cors
            return result(startStream(stream, caller: context.caller, on: connection))
        }
    }

    static func auditUnavailable() -> HTTPResponse {
        .problem(
            status: 503, slug: "audit-unavailable", title: "Audit trail unavailable",
            detail: "The audit trail could not be written, so the request was not carried out.",
            resolution: "Check the database's disk (free space, permissions) and retry.",
            headers: [("Retry-After", "5")])
    }

    // MARK: Suspended requests

    private func suspend(
        _ context: RequestContext, connection: OpaquePointer,
        work: @escaping @Sendable () async -> HTTPResponse
    ) {
        // Suspend before the context is published: whoever answers it calls
        // MHD_resume_connection, which is only defined on a suspended connection.
        context.connection = connection
        MHD_suspend_connection(connection)
        let key = ObjectIdentifier(context)
        let published = state.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.suspended[key] = Suspended(context: context, task: nil)
            return true
        }
        guard published else {
            // stop() began between the check in dispatch and here.
            _ = queue(Self.stopping(), on: connection)
            MHD_resume_connection(connection)
            return
        }
        let task = Task {
            let response = await work()
            self.answer(key, with: response)
        }
        state.withLock { state in
            if state.suspended[key] != nil {
                state.suspended[key]?.task = task
            } else {
                task.cancel()
            }
        }
    }

    /// The task's answer, unless stop() already answered this request.
    private func answer(_ key: ObjectIdentifier, with response: HTTPResponse) {
        guard let entry = state.withLock({ $0.suspended.removeValue(forKey: key) }),
            let connection = entry.context.connection
        else { return }
        if !queue(response, on: connection) {
            log?("could not queue the response of a deferred request")
        }
        MHD_resume_connection(connection)
    }

    /// Refuses new suspensions and answers every suspended request with 503, so that
    /// MHD_stop_daemon never sees a suspended connection. Their tasks are cancelled. Streams end
    /// after what they have buffered (their connections resume to send it).
    func drainSuspended() {
        streams.stopAll()
        let pending = state.withLock { state in
            state.stopping = true
            defer { state.suspended = [:] }
            return state.suspended
        }
        for entry in pending.values {
            entry.task?.cancel()
            guard let connection = entry.context.connection else { continue }
            _ = queue(Self.stopping(), on: connection)
            MHD_resume_connection(connection)
        }
    }

    // MARK: Responses

    private func result(_ queued: Bool) -> MHD_Result {
        queued ? .YES : .NO
    }

    /// Copies the response into MHD and queues it; false if MHD refused (the connection is then
    /// closed by returning MHD_NO or by MHD itself).
    func queue(_ response: HTTPResponse, on connection: OpaquePointer) -> Bool {
        // MHD cannot send 1xx as a final answer and rejects codes above 999.
        let response =
            (200...599).contains(response.status)
            ? response
            : .problem(
                status: 500, slug: "invalid-status", title: "Internal Server Error",
                detail: "A handler produced the invalid status \(response.status).",
                resolution: "Retry later; if it persists, report it with the request that caused it.")
        if let prepared = response.prepared, prepared.status == response.status {
            return prepared.queue(on: connection)
        }
        let created = response.body.withUnsafeBytes { grace_mhd_response_copying($0.count, $0.baseAddress) }
        guard let mhdResponse = created else { return false }
        defer { MHD_destroy_response(mhdResponse) }
        for (name, value) in response.headers where !HTTPHeaders.namesMatch(name, "Content-Length") {
            if !grace_mhd_add_header(mhdResponse, name, value) {
                log?("dropped response header \(name): MHD refused it")
            }
        }
        return grace_mhd_queue(connection, UInt32(response.status), mhdResponse)
    }

    private func tooLarge(_ context: RequestContext) -> HTTPResponse {
        .problem(
            status: 413, slug: "content-too-large", title: "Content Too Large",
            detail: "The request body exceeds the limit of \(maxBodyBytes) bytes.",
            resolution: "Send a body of at most \(maxBodyBytes) bytes.",
            extensions: ["limit": maxBodyBytes])
    }

    static func stopping() -> HTTPResponse {
        .problem(
            status: 503, slug: "service-stopping", title: "Service Unavailable",
            detail: "The server is shutting down and did not finish this request.",
            resolution:
                "Retry once the service is back; check the operation's state first if it changes anything.",
            headers: [("Retry-After", "5"), ("Connection", "close")])
    }

    private static func requestHeaders(_ connection: OpaquePointer) -> HTTPHeaders {
        var headers = HTTPHeaders()
        withUnsafeMutablePointer(to: &headers) { pointer in
            _ = grace_mhd_request_headers(
                connection,
                { cls, _, key, keySize, value, valueSize in
                    guard let cls, let key else { return .YES }
                    let headers = cls.assumingMemoryBound(to: HTTPHeaders.self)
                    let name = String(
                        decoding: UnsafeRawBufferPointer(start: key, count: keySize), as: UTF8.self)
                    let text =
                        value.map {
                            String(
                                decoding: UnsafeRawBufferPointer(start: $0, count: valueSize), as: UTF8.self)
                        } ?? ""
                    headers.pointee.append(name: name, value: text)
                    return .YES
                }, pointer)
        }
        return headers
    }
}
