/// How gracectl speaks TLS to an `https://` server, named as curl names them: `--cacert` (the CAs
/// the server's certificate must chain to; the system's trust store when absent), `--cert` and
/// `--key` (a client certificate, for a graced started with `--tls-client-ca`).
public struct TLSOptions: Hashable, Sendable {
    /// PEM file of the CA certificates to trust; nil: the system's trust store.
    public var caFile: String?
    /// PEM client certificate (with its chain) and its private key; both or neither.
    public var certificateFile: String?
    public var keyFile: String?

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// Whether any option was given (they mean nothing without `https://`).
    public var isEmpty: Bool { caFile == nil && certificateFile == nil && keyFile == nil }
}
