/// Who sent a request, as the edge identified them.
public struct Caller: Sendable, Equatable {
    /// How the identity was established.
    public enum Source: String, Sendable, Codable {
        /// A bearer token from the token file.
        case token
        /// The peer credentials of a Unix socket connection (SO_PEERCRED).
        case peerCredentials = "peer-credentials"
        /// A client certificate that chains to a trusted CA (mutual TLS).
        case certificate
        /// A loopback listener started with `--no-auth`.
        case noAuth = "no-auth"
        /// Nothing: the caller is not authenticated.
        case none
    }

    /// The identity as the audit trail and a job's `requestedBy` show it, e.g. `token:ci-runner`,
    /// `uid:0 pid:4242 (curl)`, `cert:CN=dashboard,O=ops`, `anonymous@127.0.0.1`.
    public var name: String
    /// nil when the caller is not authenticated.
    public var role: Role?
    public var source: Source

    public init(name: String, role: Role?, source: Source) {
        self.name = name
        self.role = role
        self.source = source
    }

    static func anonymous(_ clientAddress: String) -> Caller {
        Caller(
            name: clientAddress.isEmpty ? "anonymous" : "anonymous@\(clientAddress)", role: nil, source: .none
        )
    }
}
