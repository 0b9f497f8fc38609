extension HTTPServer {
    public struct Configuration: Sendable {
        /// An IPv4 literal: 127.0.0.1 for local clients only, 0.0.0.0 for every interface.
        public var host: String
        /// 0 asks the kernel for a free port; read `HTTPServer.port` after `start()`.
        public var port: UInt16
        /// MHD worker threads; each runs its own epoll loop and the synchronous handlers.
        public var threadPoolSize: Int
        /// Larger request bodies get 413 without the excess being buffered.
        public var maxBodyBytes: Int
        /// Idle connections are closed after this many seconds (0: never). Suspended connections
        /// do not time out while their deferred handler runs.
        public var connectionTimeoutSeconds: Int
        /// Maximum concurrent connections; 0 keeps MHD's default (derived from FD_SETSIZE).
        public var connectionLimit: Int
        /// How long `stop()` lets in-flight requests (including the 503s it sends to suspended
        /// ones) finish before closing every connection.
        public var shutdownGracePeriod: Duration

        public init(
            host: String = "127.0.0.1", port: UInt16 = 0, threadPoolSize: Int = 2,
            maxBodyBytes: Int = 1 << 20,
            connectionTimeoutSeconds: Int = 30, connectionLimit: Int = 0,
            shutdownGracePeriod: Duration = .seconds(1)
        ) {
            self.host = host
            self.port = port
            self.threadPoolSize = threadPoolSize
            self.maxBodyBytes = maxBodyBytes
            self.connectionTimeoutSeconds = connectionTimeoutSeconds
            self.connectionLimit = connectionLimit
            self.shutdownGracePeriod = shutdownGracePeriod
        }
    }
}
