import CHTTP
import Synchronization

/// Everything MHD's callbacks need, reached through an unretained `cls` pointer. The owning
/// `HTTPServer` keeps it alive until `MHD_stop_daemon` has returned, after which no callback runs.
final class HTTPServerCore: Sendable {
    let router: Router
    let maxBodyBytes: Int
    let log: (@Sendable (String) -> Void)?
    /// Requests between the URI log callback and the completed callback; tests use it to check
    /// that every context is released, and `stop()` waits for it to reach zero.
    let liveRequests = Atomic<Int>(0)

    private struct Suspended: Sendable {
        let context: RequestContext
        var task: Task<Void, Never>?
    }

    private struct State: Sendable {
        var stopping = false
        var suspended: [ObjectIdentifier: Suspended] = [:]
    }

    private let state = Mutex(State())

    init(router: Router, maxBodyBytes: Int, log: (@Sendable (String) -> Void)?) {
        self.router = router
        self.maxBodyBytes = maxBodyBytes
        self.log = log
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
        _ context: RequestContext, connection: OpaquePointer, method: UnsafePointer<CChar>?,
        uploadData: UnsafePointer<CChar>?, uploadSize: UnsafeMutablePointer<Int>
    ) -> MHD_Result {
        let size = uploadSize.pointee
        switch context.phase {
        case .new:
            context.method = method.map { String(cString: $0) } ?? ""
            context.headers = Self.requestHeaders(connection)
            // Refuse a declared oversize body before reading any of it. MHD accepts a response
            // here and closes the connection afterwards instead of reading the body.
            if let declared = context.headers["Content-Length"].flatMap({ Int($0) }) {
                if declared > maxBodyBytes {
                    context.phase = .dispatched
                    return result(queue(tooLarge(context), on: connection))
                }
                if declared > 0 {
                    context.body.reserveCapacity(declared)
                }
            }
            context.phase = .receiving
            guard size > 0 else { return .YES }
            return receive(context, uploadData, uploadSize)
        case .receiving:
            if size > 0 {
                return receive(context, uploadData, uploadSize)
            }
            context.phase = .dispatched
            return dispatch(context, connection: connection)
        case .discarding:
            if size > 0 {
                context.discardedBytes += size
                uploadSize.pointee = 0
                // A client that keeps streaming long past the limit is not worth a response.
                return context.discardedBytes > maxBodyBytes ? .NO : .YES
            }
            context.phase = .dispatched
            return result(queue(tooLarge(context), on: connection))
        case .dispatched:
            // A response is queued or the connection is suspended, so MHD only comes back here
            // if queueing failed; closing beats spinning.
            uploadSize.pointee = 0
            return .NO
        }
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
        let request = HTTPRequest(
            method: context.method, rawTarget: context.rawTarget, headers: context.headers, body: body)
        switch router.handle(request) {
        case .respond(let response):
            return result(queue(response, on: connection))
        case .deferred(let work):
            if state.withLock({ $0.stopping }) {
                return result(queue(Self.stopping(), on: connection))
            }
            suspend(context, connection: connection, work: work)
            return .YES
        }
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
    /// MHD_stop_daemon never sees a suspended connection. Their tasks are cancelled.
    func drainSuspended() {
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
