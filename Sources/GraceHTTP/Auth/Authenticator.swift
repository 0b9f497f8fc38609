import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Turns what a connection and a request carry into a `Caller`: a bearer token wins; otherwise the
/// Unix socket's peer credentials, a verified client certificate, or a `--no-auth` loopback
/// listener; otherwise nobody.
public final class Authenticator: Sendable {
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
    /// The verifier in force, an object and not a closure: a function value kept in a generic
    /// container (`Mutex<Value>`) and reached through its `inout` access is re-wrapped in a pair of
    /// reabstraction thunks at every access, so each request made the next lookup one call deeper
    /// until the stack overflowed (issue 17). A class reference crosses `inout` unchanged.
    private let tokens: Mutex<TokenVerifier?>

    public init(configuration: Configuration = Configuration(), tokens: TokenVerifier? = nil) {
        self.configuration = configuration
        self.tokens = Mutex(tokens)
    }

    /// Told after every replacement of the tokens (the server ends the event streams of tokens that
    /// are no longer valid).
    private let replaced = Mutex<Observer<TokenVerifier?>?>(nil)

    /// Replaces the token table (at start and on SIGHUP). Requests already identified keep their
    /// caller; open streams of tokens the new table does not have are ended by the server.
    public func replaceTokens(_ verifier: TokenVerifier?) {
        tokens.withLock { $0 = verifier }
        replaced.withLock { $0 }?.notify(verifier)
    }

    func observeReplacements(_ observer: @escaping @Sendable (TokenVerifier?) -> Void) {
        replaced.withLock { $0 = Observer(observer) }
    }

    /// Whether `caller` is still who it was when identified: a token caller only while its record is
    /// in force; every other source is a fact of the connection.
    func isStillValid(_ caller: Caller, under verifier: TokenVerifier?) -> Bool {
        guard caller.source == .token else { return true }
        return verifier?.stillKnows(caller) ?? false
    }

    /// The verifier in force: the very object last installed, however many requests it has served.
    public var tokenVerifier: TokenVerifier? { tokens.withLock { $0 } }

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
            guard let match = tokenVerifier?.record(for: token) else {
                return .failure(ProblemResponse(response: AccessProblems.unauthenticated(invalid: true)))
            }
            var caller = Caller(name: "token:\(match.name)", role: match.role, source: .token)
            caller.tokenDigest = match.hash
            return .success(caller)
        }
        switch connection {
        case .unixPeer(let peer):
            guard let peer else { return .success(.anonymous("")) }
            return .success(
                Caller(
                    name: peer.name, role: socketRole(peer), source: .peerCredentials, account: peer.account))
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

    /// Who is at the other end of the connection, whatever its credentials: the audit trail's name
    /// for a request whose credentials were refused (address, or uid and pid), so a guessing caller
    /// can be traced to its source. Never authenticated.
    func unauthenticated(_ connection: ConnectionIdentity) -> Caller {
        switch connection {
        case .unixPeer(let peer):
            guard let peer else { return .anonymous("") }
            return Caller(name: peer.name, role: nil, source: .none, account: peer.account)
        case .tcp(let address, _, _):
            return .anonymous(address)
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
