import CHTTP
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An HTTP/1.1 server on libmicrohttpd, one MHD daemon per listener (Unix socket, TCP, TLS): MHD's
/// own thread pool over epoll parses requests and answers synchronous handlers on its threads;
/// deferred handlers suspend their connection and answer from a Swift `Task`. On a plain listener a
/// `HeadGate` accepts each client and hands it to MHD once its first request head is safe for
/// libmicrohttpd 0.9.75; on a TLS listener MHD accepts itself, watched by a `ListenerGuard`.
///
/// Safe to use from any thread. The server logs nothing unless given a `log` closure, which
/// receives MHD's own error messages and the few problems the server notices itself.
public final class HTTPServer: Sendable {
    public let configuration: Configuration
    public let router: Router
    private let log: (@Sendable (String) -> Void)?

    /// One listener while running. The pointers are owned here and used under `running`'s lock or
    /// after being taken out of it, hence `@unchecked Sendable`.
    private struct RunningListener: @unchecked Sendable {
        let context: ListenerContext
        let socket: ListenSocket
        let daemon: OpaquePointer
        /// Exactly one of the two: the gate on a plain listener, the guard on a TLS one.
        let gate: HeadGate?
        let guardThread: ListenerGuard?
        /// PEM text MHD was given; kept until the daemon stops.
        let tls: [UnsafeMutablePointer<CChar>]
    }

    private struct Running: @unchecked Sendable {
        let core: HTTPServerCore
        let listeners: [RunningListener]
        let logSink: UnsafeMutablePointer<GraceLogSink>?
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

    /// The bound port of the first TCP listener while running (the kernel's choice for port 0).
    public var port: UInt16? {
        running.withLock { $0?.listeners.first { !$0.context.address.isUnix }?.context.port }
    }

    /// Every listener's address with its bound port, in configuration order.
    public var boundAddresses: [ListenAddress] {
        running.withLock { running in
            (running?.listeners ?? []).map { listener in
                switch listener.context.address {
                case .unix: listener.context.address
                case .tcp(let host, _): .tcp(host: host, port: listener.context.port)
                }
            }
        }
    }

    public var isRunning: Bool {
        running.withLock { $0 != nil }
    }

    /// The connection limit each listener gets: the configured one, lowered so that every listener
    /// at its limit still leaves file descriptors for the database, sysfs and kernel writes. Past
    /// the limit a client is refused at once; past the descriptor limit it would hang in accept's
    /// backlog instead.
    public var effectiveConnectionLimit: Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let reserve = 64
        let budget =
            (Int(clamping: limit.rlim_cur) - openDescriptorCount() - reserve)
            / max(1, configuration.listeners.count)
        return max(1, min(configuration.connectionLimit, budget))
    }

    /// Binds every listener and starts serving. Throws if the configuration is invalid, the server
    /// already runs, or a socket cannot be made; nothing is left listening then. A stopped server
    /// may be started again.
    public func start() throws {
        try validate()
        try running.withLock { running in
            guard running == nil else { throw HTTPServerError.alreadyRunning }
            let core = HTTPServerCore(
                router: router, maxBodyBytes: configuration.maxBodyBytes, policy: configuration.edge,
                bodyDeadline: .milliseconds(Int64(configuration.headerTimeoutSeconds * 1000)),
                streamsPerAccount: configuration.streamsPerAccount, log: log)
            var logSink: UnsafeMutablePointer<GraceLogSink>?
            if log != nil {
                let sink = UnsafeMutablePointer<GraceLogSink>.allocate(capacity: 1)
                sink.initialize(
                    to: GraceLogSink(callback: Self.logLine, cls: Unmanaged.passUnretained(core).toOpaque()))
                logSink = sink
            }
            let limit = effectiveConnectionLimit
            var started: [RunningListener] = []
            do {
                for listener in configuration.listeners {
                    started.append(try startListener(listener, core: core, limit: limit, logSink: logSink))
                }
            } catch {
                for listener in started { Self.stopListener(listener) }
                logSink?.deallocate()
                throw error
            }
            running = Running(core: core, listeners: started, logSink: logSink)
        }
    }

    private func startListener(
        _ listener: Listener, core: HTTPServerCore, limit: Int, logSink: UnsafeMutablePointer<GraceLogSink>?
    ) throws -> RunningListener {
        let socket = try ListenSocket.open(
            listener.address, unix: ListenSocket.UnixPermissions(group: listener.unixGroup))
        var clientTrust: ClientTrust?
        if let tls = listener.tls, let ca = tls.clientCAPEM {
            guard let trust = ClientTrust(caPEM: ca, crlPEM: tls.clientCRLPEM) else {
                socket.close()
                throw HTTPServerError.tlsUnavailable(
                    "the client CAs for \(listener.address) hold no certificate, or a CRL does not parse or is not signed by one of them"
                )
            }
            clientTrust = trust
        }
        let context = ListenerContext(
            core: core, listener: listener, port: socket.port, clientTrust: clientTrust,
            perAccountLimit: listener.address.isUnix ? 0 : configuration.perClientConnectionLimit)
        let contextPointer = Unmanaged.passUnretained(context).toOpaque()
        let tls =
            listener.tls.map {
                [strdup($0.keyPEM)!, strdup($0.certificatePEM)!]
                    + ($0.clientCAPEM.map { [strdup($0)!] } ?? [])
            } ?? []
        // The gate accepts on a plain listener; MHD keeps accepting on a TLS one, whose heads the
        // gate cannot read (see HeadGate).
        let gated = listener.tls == nil
        var config = GraceDaemonConfig(
            listen_fd: gated ? -1 : socket.fd,
            thread_pool_size: UInt32(configuration.threadPoolSize),
            connection_timeout_seconds: UInt32(configuration.connectionTimeoutSeconds),
            connection_limit: UInt32(limit),
            // On a gated listener the gate counts clients by group until their head is in, and the
            // tracker counts accounts after: MHD's count by exact address would count twice.
            per_ip_connection_limit: listener.address.isUnix || gated
                ? 0 : UInt32(configuration.perClientConnectionLimit),
            connection_memory_limit: HeadGate.headLimit,
            tls_key: tls.count >= 2 ? UnsafePointer(tls[0]) : nil,
            tls_cert: tls.count >= 2 ? UnsafePointer(tls[1]) : nil,
            tls_trust: tls.count == 3 ? UnsafePointer(tls[2]) : nil,
            access_handler: Self.accessHandler, access_cls: contextPointer,
            uri_log: Self.uriLog, uri_log_cls: contextPointer,
            completed: Self.requestCompleted, completed_cls: contextPointer,
            notify_connection: Self.connectionNotified, notify_connection_cls: contextPointer,
            log_sink: logSink)
        guard let daemon = grace_mhd_start(&config) else {
            socket.close()
            tls.forEach { free($0) }
            throw listener.tls != nil
                ? HTTPServerError.tlsUnavailable(
                    "libmicrohttpd refused the key or certificate for \(listener.address) (check that they are PEM and belong together)"
                )
                : HTTPServerError.startFailed(listener.address.description)
        }
        let headerTimeout = Duration.milliseconds(Int64(configuration.headerTimeoutSeconds * 1000))
        guard gated else {
            let guardThread = ListenerGuard(
                listenFD: socket.fd, tracker: context.tracker, limit: limit, headerTimeout: headerTimeout)
            guardThread.start()
            return RunningListener(
                context: context, socket: socket, daemon: daemon, gate: nil, guardThread: guardThread,
                tls: tls)
        }
        let gate: HeadGate
        do {
            gate = try HeadGate(
                listenFD: socket.fd, daemon: daemon, tracker: context.tracker, limit: limit,
                perClientLimit: listener.address.isUnix ? 0 : configuration.perClientConnectionLimit,
                headerTimeout: headerTimeout
            ) { client, refused, status in
                context.auditGateAnswer(client, refused, status: status)
            }
        } catch {
            MHD_stop_daemon(daemon)
            socket.close()
            throw error
        }
        gate.start()
        return RunningListener(
            context: context, socket: socket, daemon: daemon, gate: gate, guardThread: nil, tls: tls)
    }

    /// Stops accepting, answers suspended requests with 503 (cancelling their tasks), gives
    /// in-flight requests up to `shutdownGracePeriod` to finish, then stops MHD and removes a Unix
    /// socket. Idempotent.
    ///
    /// Blocks the calling thread for at most the grace period plus MHD's thread joins.
    public func stop() {
        guard
            let current = running.withLock({ running -> Running? in
                defer { running = nil }
                return running
            })
        else { return }
        for listener in current.listeners {
            // Close the door to new connections (the socket stays ours to close): the gate stops
            // accepting and closes the clients it still holds, before MHD_stop_daemon, so that it
            // never hands MHD a connection while MHD stops; MHD stops accepting on a TLS listener.
            if let gate = listener.gate {
                gate.stop()
            } else {
                _ = MHD_quiesce_daemon(listener.daemon)
            }
            listener.guardThread?.stop()
        }
        current.core.drainSuspended()
        waitForInFlightRequests(current.core)
        for listener in current.listeners {
            Self.stopListener(listener)
        }
        current.logSink?.deallocate()
        // `current.core` and the contexts are released only now, after the last callback has returned.
        withExtendedLifetime(current) {}
    }

    private static func stopListener(_ listener: RunningListener) {
        listener.gate?.stop()
        listener.guardThread?.stop()
        MHD_stop_daemon(listener.daemon)
        listener.socket.close()
        listener.tls.forEach { free($0) }
        withExtendedLifetime(listener.context) {}
    }

    /// Requests that have not completed yet (tests check that contexts are released).
    var liveRequestCount: Int {
        running.withLock { $0?.core.liveRequests.load(ordering: .acquiring) ?? 0 }
    }

    /// Connections suspended for a deferred handler right now.
    var suspendedCount: Int {
        running.withLock { $0?.core.suspendedCount ?? 0 }
    }

    /// Open connections across every listener.
    var connectionCount: Int {
        running.withLock { $0?.listeners.reduce(0) { $0 + $1.context.tracker.count } ?? 0 }
    }

    private func validate() throws {
        let c = configuration
        guard !c.listeners.isEmpty else { throw HTTPServerError.invalidConfiguration("listeners") }
        guard (1...1024).contains(c.threadPoolSize) else {
            throw HTTPServerError.invalidConfiguration("threadPoolSize")
        }
        guard c.maxBodyBytes >= 0 else { throw HTTPServerError.invalidConfiguration("maxBodyBytes") }
        guard (0...Int(UInt32.max)).contains(c.connectionTimeoutSeconds) else {
            throw HTTPServerError.invalidConfiguration("connectionTimeoutSeconds")
        }
        guard (1...1_000_000).contains(c.connectionLimit) else {
            throw HTTPServerError.invalidConfiguration("connectionLimit")
        }
        guard (0...1_000_000).contains(c.perClientConnectionLimit) else {
            throw HTTPServerError.invalidConfiguration("perClientConnectionLimit")
        }
        guard c.headerTimeoutSeconds > 0 && c.headerTimeoutSeconds <= 3600 else {
            throw HTTPServerError.invalidConfiguration("headerTimeoutSeconds")
        }
        for listener in c.listeners {
            if listener.noAuth && !listener.address.isLoopback {
                throw HTTPServerError.invalidConfiguration(
                    "noAuth on \(listener.address), which is not a loopback address")
            }
            if listener.tls != nil {
                guard !listener.address.isUnix else {
                    throw HTTPServerError.invalidConfiguration("TLS on \(listener.address)")
                }
                guard grace_mhd_has_tls() else {
                    throw HTTPServerError.tlsUnavailable("this libmicrohttpd was built without TLS")
                }
            }
        }
    }

    private func waitForInFlightRequests(_ core: HTTPServerCore) {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: configuration.shutdownGracePeriod)
        while core.liveRequests.load(ordering: .acquiring) > 0 && clock.now < deadline {
            usleep(2_000)
        }
    }

    private func openDescriptorCount() -> Int {
        guard let folder = opendir("/proc/self/fd") else { return 16 }
        defer { closedir(folder) }
        var count = 0
        while readdir(folder) != nil { count += 1 }
        return max(0, count - 3)  // ".", ".." and the folder's own descriptor
    }

    // MARK: C callbacks (non-capturing; state arrives through `cls`)

    private static let uriLog: GraceURILogCallback = { cls, uri, _ in
        guard let cls else { return nil }
        let listener = Unmanaged<ListenerContext>.fromOpaque(cls).takeUnretainedValue()
        return listener.core.makeContext(rawTarget: uri.map { String(cString: $0) } ?? "")
    }

    private static let accessHandler: MHD_AccessHandlerCallback = {
        cls, connection, url, method, _, uploadData, uploadSize, contextSlot in
        guard let cls, let connection, let uploadSize, let contextSlot else { return .NO }
        let listener = Unmanaged<ListenerContext>.fromOpaque(cls).takeUnretainedValue()
        if contextSlot.pointee == nil {
            // MHD always calls the URI logger first; should it ever not, the decoded URL is the
            // best target left, and the context is still released in requestCompleted.
            contextSlot.pointee = listener.core.makeContext(rawTarget: url.map { String(cString: $0) } ?? "")
        }
        let context = Unmanaged<RequestContext>.fromOpaque(contextSlot.pointee!).takeUnretainedValue()
        return listener.core.process(
            context, listener: listener, connection: connection, method: method, uploadData: uploadData,
            uploadSize: uploadSize)
    }

    private static let requestCompleted: MHD_RequestCompletedCallback = { cls, connection, contextSlot, _ in
        guard let cls else { return }
        let listener = Unmanaged<ListenerContext>.fromOpaque(cls).takeUnretainedValue()
        if let connection, let tracked = grace_mhd_socket_context(connection) {
            listener.tracker.requestFinished(
                Unmanaged<ConnectionTracker.Connection>.fromOpaque(tracked).takeUnretainedValue())
        }
        guard let contextSlot, let pointer = contextSlot.pointee else { return }
        contextSlot.pointee = nil
        listener.core.releaseContext(pointer)
    }

    /// Keeps the listener's connection count and header deadlines; the socket context holds a +1
    /// reference from start to close.
    private static let connectionNotified: MHD_NotifyConnectionCallback = {
        cls, connection, socketContext, event in
        guard let cls, let socketContext else { return }
        let listener = Unmanaged<ListenerContext>.fromOpaque(cls).takeUnretainedValue()
        switch event {
        case .CONNECTION_NOTIFY_STARTED:
            let fd = connection.map { grace_mhd_connection_fd($0) } ?? -1
            socketContext.pointee = Unmanaged.passRetained(listener.tracker.opened(fd: fd)).toOpaque()
        case .CONNECTION_NOTIFY_CLOSED:
            guard let pointer = socketContext.pointee else { return }
            socketContext.pointee = nil
            let tracked = Unmanaged<ConnectionTracker.Connection>.fromOpaque(pointer)
            listener.tracker.closed(tracked.takeUnretainedValue())
            tracked.release()
        default:
            break
        }
    }

    private static let logLine: GraceLogLineCallback = { cls, line in
        guard let cls, let line else { return }
        Unmanaged<HTTPServerCore>.fromOpaque(cls).takeUnretainedValue().log?(String(cString: line))
    }
}
