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
    /// `uid:0 pid:4242 (unverified: curl)`, `cert:CN=dashboard,O=ops`, `anonymous@127.0.0.1`.
    public var name: String
    /// nil when the caller is not authenticated.
    public var role: Role?
    public var source: Source
    /// The part of the identity the caller cannot choose: `token:NAME`, `uid:U`, `cert:SUBJECT`,
    /// `anonymous@ADDRESS`. Rate limits and the audit trail's folding of refusals key on it (a
    /// process's pid and name are the caller's to change, its uid is not).
    public var account: String
    /// For a token: the hash of the record it matched, so that a reload of the tokens can tell
    /// whether this very token is still valid (not merely one of the same name).
    var tokenDigest: [UInt8]?

    public init(name: String, role: Role?, source: Source, account: String? = nil) {
        self.name = name
        self.role = role
        self.source = source
        self.account = account ?? name
    }

    static func anonymous(_ clientAddress: String) -> Caller {
        Caller(
            name: clientAddress.isEmpty ? "anonymous" : "anonymous@\(clientAddress)", role: nil, source: .none
        )
    }
}
