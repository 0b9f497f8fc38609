import CHTTP
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An HTTP/1.1 server on libmicrohttpd: MHD's own thread pool over epoll accepts, parses and
/// answers synchronous handlers on its threads; deferred handlers suspend their connection and
/// answer from a Swift `Task`.
///
/// Safe to use from any thread. The server logs nothing unless given a `log` closure, which
/// receives MHD's own error messages and the few problems the server notices itself.
public final class HTTPServer: Sendable {
    public let configuration: Configuration
    public let router: Router
    private let log: (@Sendable (String) -> Void)?

    /// What exists only while running. The pointers are owned here and used under `running`'s
    /// lock or after being taken out of it, hence `@unchecked Sendable`.
    private struct Running: @unchecked Sendable {
        let core: HTTPServerCore
        let daemon: OpaquePointer
        let logSink: UnsafeMutablePointer<GraceLogSink>?
        let port: UInt16
    }

    private let running = Mutex<Running?>(nil)

    public init(
        configuration: Configuration = Configuration(), router: Router,
        log: (@Sendable (String) -> Void)? = nil
    ) {
        self.configuration = configuration
        self.router = router
        self.log = log
    }

    deinit {
        stop()
    }

    /// The bound port while running (the kernel's choice when configured with port 0).
    public var port: UInt16? {
        running.withLock { $0?.port }
    }

    public var isRunning: Bool {
        running.withLock { $0 != nil }
    }

    /// Binds and starts serving. Throws if the configuration is invalid, the server already runs,
    /// or MHD cannot bind. A stopped server may be started again.
    public func start() throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = configuration.port.bigEndian
        guard inet_pton(AF_INET, configuration.host, &address.sin_addr) == 1 else {
            throw HTTPServerError.invalidHost(configuration.host)
        }
        try validate()
        try running.withLock { running in
            guard running == nil else { throw HTTPServerError.alreadyRunning }
            let core = HTTPServerCore(router: router, maxBodyBytes: configuration.maxBodyBytes, log: log)
            let corePointer = Unmanaged.passUnretained(core).toOpaque()
            var logSink: UnsafeMutablePointer<GraceLogSink>?
            if log != nil {
                let sink = UnsafeMutablePointer<GraceLogSink>.allocate(capacity: 1)
                sink.initialize(to: GraceLogSink(callback: Self.logLine, cls: corePointer))
                logSink = sink
            }
            let daemon = withUnsafePointer(to: &address) { addressPointer in
                var config = GraceDaemonConfig(
                    address: addressPointer,
                    thread_pool_size: UInt32(configuration.threadPoolSize),
                    connection_timeout_seconds: UInt32(configuration.connectionTimeoutSeconds),
                    connection_limit: UInt32(configuration.connectionLimit),
                    access_handler: Self.accessHandler, access_cls: corePointer,
                    uri_log: Self.uriLog, uri_log_cls: corePointer,
                    completed: Self.requestCompleted, completed_cls: corePointer,
                    log_sink: logSink)
                return grace_mhd_start(&config)
            }
            guard let daemon else {
                logSink?.deallocate()
                throw HTTPServerError.startFailed(host: configuration.host, port: configuration.port)
            }
            running = Running(
                core: core, daemon: daemon, logSink: logSink, port: grace_mhd_bound_port(daemon))
        }
    }

    /// Stops accepting, answers suspended requests with 503 (cancelling their tasks), gives
    /// in-flight requests up to `shutdownGracePeriod` to finish, then stops MHD. Idempotent.
    ///
    /// Blocks the calling thread for at most the grace period plus MHD's thread joins.
    public func stop() {
        guard
            let current = running.withLock({ running -> Running? in
                defer { running = nil }
                return running
            })
        else { return }
        // Quiescing closes the door to new connections but hands the listening socket to us.
        let listenSocket = MHD_quiesce_daemon(current.daemon)
        current.core.drainSuspended()
        waitForInFlightRequests(current.core)
        MHD_stop_daemon(current.daemon)
        if listenSocket >= 0 {
            close(listenSocket)
        }
        current.logSink?.deallocate()
        // `current.core` is released only now, after the last callback has returned.
        withExtendedLifetime(current.core) {}
    }

    /// Requests that have not completed yet (tests check that contexts are released).
    var liveRequestCount: Int {
        running.withLock { $0?.core.liveRequests.load(ordering: .acquiring) ?? 0 }
    }

    /// Connections suspended for a deferred handler right now.
    var suspendedCount: Int {
        running.withLock { $0?.core.suspendedCount ?? 0 }
    }

    private func validate() throws {
        let c = configuration
        guard (1...1024).contains(c.threadPoolSize) else {
            throw HTTPServerError.invalidConfiguration("threadPoolSize")
        }
        guard c.maxBodyBytes >= 0 else { throw HTTPServerError.invalidConfiguration("maxBodyBytes") }
        guard (0...Int(UInt32.max)).contains(c.connectionTimeoutSeconds) else {
            throw HTTPServerError.invalidConfiguration("connectionTimeoutSeconds")
        }
        guard (0...Int(UInt32.max)).contains(c.connectionLimit) else {
            throw HTTPServerError.invalidConfiguration("connectionLimit")
        }
    }

    private func waitForInFlightRequests(_ core: HTTPServerCore) {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: configuration.shutdownGracePeriod)
        while core.liveRequests.load(ordering: .acquiring) > 0 && clock.now < deadline {
            usleep(2_000)
        }
    }

    // MARK: C callbacks (non-capturing; state arrives through `cls`)

    private static let uriLog: GraceURILogCallback = { cls, uri, _ in
        guard let cls else { return nil }
        let core = Unmanaged<HTTPServerCore>.fromOpaque(cls).takeUnretainedValue()
        return core.makeContext(rawTarget: uri.map { String(cString: $0) } ?? "")
    }

    private static let accessHandler: MHD_AccessHandlerCallback = {
        cls, connection, url, method, _, uploadData, uploadSize, contextSlot in
        guard let cls, let connection, let uploadSize, let contextSlot else { return .NO }
        let core = Unmanaged<HTTPServerCore>.fromOpaque(cls).takeUnretainedValue()
        if contextSlot.pointee == nil {
            // MHD always calls the URI logger first; should it ever not, the decoded URL is the
            // best target left, and the context is still released in requestCompleted.
            contextSlot.pointee = core.makeContext(rawTarget: url.map { String(cString: $0) } ?? "")
        }
        let context = Unmanaged<RequestContext>.fromOpaque(contextSlot.pointee!).takeUnretainedValue()
        return core.process(
            context, connection: connection, method: method, uploadData: uploadData, uploadSize: uploadSize)
    }

    private static let requestCompleted: MHD_RequestCompletedCallback = { cls, _, contextSlot, _ in
        guard let cls, let contextSlot, let pointer = contextSlot.pointee else { return }
        contextSlot.pointee = nil
        Unmanaged<HTTPServerCore>.fromOpaque(cls).takeUnretainedValue().releaseContext(pointer)
    }

    private static let logLine: GraceLogLineCallback = { cls, line in
        guard let cls, let line else { return }
        Unmanaged<HTTPServerCore>.fromOpaque(cls).takeUnretainedValue().log?(String(cString: line))
    }
}
