import CHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// One listener while it runs: what MHD's callbacks for its daemon reach through `cls`.
package final class ListenerContext: Sendable {
    let core: HTTPServerCore
    let address: ListenAddress
    let port: UInt16
    let noAuth: Bool
    let tracker: ConnectionTracker
    /// "unix", "tcp" or "tls", for the audit trail.
    let channel: String
    /// What client certificates are verified against (nil: none are asked for).
    let clientTrust: ClientTrust?

    init(
        core: HTTPServerCore, listener: HTTPServer.Listener, port: UInt16, clientTrust: ClientTrust?,
        perAccountLimit: Int
    ) {
        self.core = core
        tracker = ConnectionTracker(perAccountLimit: perAccountLimit)
        self.clientTrust = clientTrust
        address = listener.address
        self.port = port
        noAuth = listener.noAuth
        channel = listener.address.isUnix ? "unix" : (listener.tls == nil ? "tcp" : "tls")
    }

    /// What the connection says of the caller, read once per connection: SO_PEERCRED on a Unix
    /// socket; the client's address and certificate on TCP.
    func identity(of connection: OpaquePointer, _ tracked: ConnectionTracker.Connection?)
        -> Authenticator.ConnectionIdentity
    {
        if let known = tracked?.identity { return known }
        let identity: Authenticator.ConnectionIdentity
        if address.isUnix {
            let fd = tracked?.fd ?? grace_mhd_connection_fd(connection)
            identity = .unixPeer(PeerCredentials.of(socket: fd))
        } else {
            var text = [CChar](repeating: 0, count: 64)
            grace_mhd_client_address(connection, &text, text.count)
            let clientAddress = Self.string(text)
            var subject = [CChar](repeating: 0, count: 1024)
            let certificate: Authenticator.CertificateStatus
            switch grace_mhd_client_certificate(connection, clientTrust?.list, &subject, subject.count) {
            case 1: certificate = .verified(subject: Self.string(subject))
            case -1: certificate = .invalid
            default: certificate = .none
            }
            identity = .tcp(clientAddress: clientAddress, certificate: certificate, noAuth: noAuth)
            tracked?.clientAddress = clientAddress
        }
        tracked?.identity = identity
        return identity
    }

    /// Records a request the head gate answered before MHD saw it.
    func auditGateAnswer(_ client: GateClient, _ refused: GateClient.Refused, status: Int) {
        let identity: Authenticator.ConnectionIdentity
        if address.isUnix {
            identity = .unixPeer(PeerCredentials.of(socket: client.fd))
        } else {
            var text = [CChar](repeating: 0, count: 64)
            var storage = client.address
            grace_sockaddr_text(&storage, &text, text.count)
            identity = .tcp(clientAddress: Self.string(text), certificate: .none, noAuth: noAuth)
        }
        core.auditGateAnswer(
            requestLine: refused.requestLine, headers: refused.headers, identity: identity, channel: channel,
            status: status)
    }

    /// A NUL-terminated C buffer as text.
    private static func string(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
