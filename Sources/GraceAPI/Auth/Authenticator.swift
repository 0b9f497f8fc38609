import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Turns what a connection and a request carry into a `Caller`: a bearer token wins; otherwise the
/// Unix socket's peer credentials, a verified client certificate, or a `--no-auth` loopback
/// listener; otherwise nobody.
public final class Authenticator: Sendable {
    /// Looks a presented bearer token up: its name and role, or nil.
    public typealias TokenLookup = @Sendable (String) -> (name: String, role: Role)?

    public struct Configuration: Sendable {
        /// Members of this group reaching the Unix socket get `socketGroupRole`; uid 0 is admin.
        public var socketGroup: gid_t?
        public var socketGroupRole: Role
        /// The role of a caller identified by a client certificate.
        public var certificateRole: Role

        public init(
            socketGroup: gid_t? = nil, socketGroupRole: Role = .operator, certificateRole: Role = .operator
        ) {
            self.socketGroup = socketGroup
            self.socketGroupRole = socketGroupRole
            self.certificateRole = certificateRole
        }
    }

    public let configuration: Configuration
    private let tokens: Mutex<TokenLookup?>

    public init(configuration: Configuration = Configuration(), tokens: TokenLookup? = nil) {
        self.configuration = configuration
        self.tokens = Mutex(tokens)
    }

    /// Replaces the token table (at start and on SIGHUP); requests already identified keep their caller.
    public func replaceTokens(_ lookup: TokenLookup?) {
        tokens.withLock { $0 = lookup }
    }

    /// What the connection alone says of the caller, worked out once per connection.
    enum ConnectionIdentity: Sendable {
        case unixPeer(PeerCredentials?)
        case tcp(clientAddress: String, certificate: CertificateStatus, noAuth: Bool)
    }

    enum CertificateStatus: Sendable, Equatable {
        case none
        case verified(subject: String)
        case invalid
    }

    /// The caller, or the 400/401 answer when the credentials are malformed or wrong.
    func identify(_ headers: HTTPHeaders, connection: ConnectionIdentity) -> Result<Caller, ProblemResponse> {
        let authorization = headers.values(for: "Authorization")
        if authorization.count > 1 {
            return .failure(ProblemResponse(response: AccessProblems.ambiguousAuthorization()))
        }
        if let value = authorization.first {
            guard let token = Self.bearerToken(value) else {
                return .failure(ProblemResponse(response: AccessProblems.unauthenticated(invalid: true)))
            }
            guard let lookup = tokens.withLock({ $0 }), let match = lookup(token) else {
                return .failure(ProblemResponse(response: AccessProblems.unauthenticated(invalid: true)))
            }
            return .success(Caller(name: "token:\(match.name)", role: match.role, source: .token))
        }
        switch connection {
        case .unixPeer(let peer):
            guard let peer else { return .success(.anonymous("")) }
            return .success(Caller(name: peer.name, role: socketRole(peer), source: .peerCredentials))
        case .tcp(let address, let certificate, let noAuth):
            switch certificate {
            case .verified(let subject):
                return .success(
                    Caller(name: "cert:\(subject)", role: configuration.certificateRole, source: .certificate)
                )
            case .invalid:
                return .failure(ProblemResponse(response: AccessProblems.unauthenticated(invalid: true)))
            case .none:
                if noAuth {
                    return .success(Caller(name: "anonymous@\(address)", role: .admin, source: .noAuth))
                }
                return .success(.anonymous(address))
            }
        }
    }

    /// uid 0 is admin; a member of the socket's group gets the configured role; anyone else who
    /// could still connect (the socket's mode keeps them out) gets nothing.
    private func socketRole(_ peer: PeerCredentials) -> Role? {
        if peer.uid == 0 { return .admin }
        if let group = configuration.socketGroup, peer.groups.contains(group) {
            return configuration.socketGroupRole
        }
        return nil
    }

    /// `Bearer <token68>`: the scheme is case-insensitive (RFC 9110 §11.1), exactly one space.
    static func bearerToken(_ value: String) -> String? {
        let bytes = Array(value.utf8)
        guard bytes.count > 7, String(decoding: bytes.prefix(7), as: UTF8.self).lowercased() == "bearer "
        else {
            return nil
        }
        let token = bytes.dropFirst(7)
        let allowed: (UInt8) -> Bool = { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || "-._~+/=".utf8.contains(byte)
        }
        guard !token.isEmpty, token.count <= 512, token.allSatisfy(allowed) else { return nil }
        return String(decoding: token, as: UTF8.self)
    }
}
