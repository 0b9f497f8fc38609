#if canImport(Glibc)
    import Glibc
#endif

extension HTTPServer {
    /// One socket the server accepts on, and how callers arriving there are identified.
    public struct Listener: Sendable {
        public var address: ListenAddress
        /// PEM key and certificate for TLS on a TCP listener; nil for plain HTTP.
        public var tls: TLSMaterial?
        /// Group of a Unix socket (mode 0660); nil leaves it the process's group.
        public var unixGroup: gid_t?
        /// Every caller on this listener is an admin without credentials. Only for loopback TCP
        /// (validated at start), for a demo or a test.
        public var noAuth: Bool

        public init(
            address: ListenAddress, tls: TLSMaterial? = nil, unixGroup: gid_t? = nil, noAuth: Bool = false
        ) {
            self.address = address
            self.tls = tls
            self.unixGroup = unixGroup
            self.noAuth = noAuth
        }
    }

    /// TLS material as PEM text (read by the daemon before it starts serving).
    public struct TLSMaterial: Sendable {
        public var certificatePEM: String
        public var keyPEM: String
        /// CAs whose client certificates identify a caller (mutual TLS); nil: no client certificates.
        public var clientCAPEM: String?
        /// CRLs of those CAs: a certificate they list does not identify anyone.
        public var clientCRLPEM: String?

        public init(
            certificatePEM: String, keyPEM: String, clientCAPEM: String? = nil, clientCRLPEM: String? = nil
        ) {
            self.certificatePEM = certificatePEM
            self.keyPEM = keyPEM
            self.clientCAPEM = clientCAPEM
            self.clientCRLPEM = clientCRLPEM
        }
    }

    public struct Configuration: Sendable {
        /// Where to accept; the default is one loopback TCP port chosen by the kernel, without
        /// authentication (tests and embedding); graced passes its own.
        public var listeners: [Listener]
        /// MHD worker threads per listener; each runs its own epoll loop and the synchronous handlers.
        public var threadPoolSize: Int

        /// One MHD worker per online core (at least 2, at most 64): reads are answered on these
        /// threads, so fewer leave cores idle under a polling fleet and more only add switches.
        public static var defaultThreadPoolSize: Int {
            min(64, max(2, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
        }
        /// Larger request bodies get 413 without the excess being buffered.
        public var maxBodyBytes: Int
        /// Idle connections are closed after this many seconds (0: never). Suspended connections
        /// do not time out while their deferred handler runs.
        public var connectionTimeoutSeconds: Int
        /// A connection must deliver a request's head (request line and headers) within this many
        /// seconds of connecting or of its previous answer, however it trickles the bytes in.
        public var headerTimeoutSeconds: Double
        /// Event streams one account (a token, a uid, a certificate, an address) may hold open at
        /// once; more are refused with 429, so one caller cannot take the workers'
        /// connections from the others.
        public var streamsPerAccount: Int = 16
        /// Concurrent connections per listener, those still sending their first head included;
        /// past it a new client is refused at once. Also capped below the process's open-file limit
        /// at start, so accept() never runs out.
        public var connectionLimit: Int
        /// Concurrent connections of one client (TCP only); 0: no limit. Until its first head is in,
        /// a client counts by its address group (all of loopback is one client, IPv6 counts by
        /// /64), and past the limit its oldest unfinished head makes room (see HeadGate); once
        /// authenticated, by its account (a token, a certificate), past which a request gets 429
        /// and its connection is closed. On a TLS listener, whose heads the gate cannot read,
        /// libmicrohttpd counts by exact address instead.
        public var perClientConnectionLimit: Int
        /// How long `stop()` lets in-flight requests (including the 503s it sends to suspended
        /// ones) finish before closing every connection.
        public var shutdownGracePeriod: Duration
        /// Who may do what, and what a request must look like at the edge.
        public var edge: EdgePolicy

        public init(
            listeners: [Listener] = [Listener(address: .tcp(host: "127.0.0.1", port: 0), noAuth: true)],
            threadPoolSize: Int = Configuration.defaultThreadPoolSize, maxBodyBytes: Int = 1 << 20,
            connectionTimeoutSeconds: Int = 30,
            headerTimeoutSeconds: Double = 10, connectionLimit: Int = 256, perClientConnectionLimit: Int = 32,
            shutdownGracePeriod: Duration = .seconds(1), edge: EdgePolicy = EdgePolicy()
        ) {
            self.listeners = listeners
            self.threadPoolSize = threadPoolSize
            self.maxBodyBytes = maxBodyBytes
            self.connectionTimeoutSeconds = connectionTimeoutSeconds
            self.headerTimeoutSeconds = headerTimeoutSeconds
            self.connectionLimit = connectionLimit
            self.perClientConnectionLimit = perClientConnectionLimit
            self.shutdownGracePeriod = shutdownGracePeriod
            self.edge = edge
        }

        /// One loopback TCP listener without authentication on `port` (0: the kernel's choice).
        public static func loopback(port: UInt16 = 0) -> Configuration {
            Configuration(listeners: [Listener(address: .tcp(host: "127.0.0.1", port: port), noAuth: true)])
        }
    }
}
