import GraceAPI
import GraceHTTP
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Turns `graced serve`'s options into listeners and access rules, and refuses to start when TCP
/// would be served without authentication.
struct AccessSetup {
    let serverConfiguration: HTTPServer.Configuration
    let tokenPath: String
    let logger: Logger

    struct Refusal: Error, CustomStringConvertible {
        let description: String
    }

    init(_ options: Serve, logger: Logger) throws {
        self.logger = logger
        tokenPath = options.tokens
        let addresses = options.listenAddresses
        let tcp = addresses.filter { !$0.isUnix }

        let group = try Self.socketGroup(options.socketGroup)
        let authenticator = Authenticator(
            configuration: Authenticator.Configuration(
                socketGroup: group, socketGroupRole: options.socketGroupRole,
                certificateRole: options.tlsClientRole))
        let tokens = try Self.loadTokens(tokenPath, required: false)
        authenticator.replaceTokens(tokens.map(TokenVerifier.init(records:)))

        if !tcp.isEmpty && tokens == nil && options.tlsClientCA == nil && !options.noAuth {
            throw Refusal(
                description:
                    "graced would listen on \(tcp.map(\.description).joined(separator: ", ")) without authentication: there is no token file at \(tokenPath). Create one with `graced token create --tokens \(tokenPath) --name NAME --role viewer|operator|admin`, or pass --tls-client-ca for client certificates (or --no-auth on a loopback address, for a demo)."
            )
        }
        if options.noAuth {
            logger.warning(
                "--no-auth: every caller on \(tcp.filter(\.isLoopback).map(\.description).joined(separator: ", ")) is an admin without credentials; any local process (and any web page that reaches it without an Origin header) can reset GPUs"
            )
        }
        for address in tcp where !address.isLoopback && options.tlsCert == nil {
            logger.warning(
                "listening on \(address) without TLS: bearer tokens cross the network in clear text; pass --tls-cert and --tls-key"
            )
        }

        var tls: HTTPServer.TLSMaterial?
        if let certificate = options.tlsCert, let key = options.tlsKey {
            tls = HTTPServer.TLSMaterial(
                certificatePEM: try Self.readPEM(certificate, what: "--tls-cert"),
                keyPEM: try Self.readPEM(key, what: "--tls-key"),
                clientCAPEM: try options.tlsClientCA.map { try Self.readPEM($0, what: "--tls-client-ca") },
                clientCRLPEM: try options.tlsClientCrl.map { try Self.readPEM($0, what: "--tls-client-crl") })
        }
        let listeners = addresses.map { address in
            HTTPServer.Listener(
                address: address, tls: address.isUnix ? nil : tls, unixGroup: address.isUnix ? group : nil,
                noAuth: options.noAuth && address.isLoopback)
        }
        serverConfiguration = HTTPServer.Configuration(
            listeners: listeners, threadPoolSize: HTTPServer.Configuration.defaultThreadPoolSize,
            maxBodyBytes: options.maxBodyBytes,
            headerTimeoutSeconds: options.headerTimeout, connectionLimit: options.maxConnections,
            perClientConnectionLimit: options.maxConnectionsPerClient,
            edge: EdgePolicy(
                allowedOrigins: Set(options.allowOrigin), allowedHosts: Set(options.allowHost),
                mutationsPerMinute: options.mutationsPerMinute, authenticator: authenticator))
    }

    /// SIGHUP: the token file again. A file graced refuses (exposed, another owner, malformed) may be
    /// the very edit that revokes a leaked token, so keeping the previous tokens would fail open:
    /// every bearer token is refused instead until a valid file is loaded (the socket's peer
    /// credentials still work, so root can put it right).
    func reloadTokens(into authenticator: Authenticator) {
        do {
            let tokens = try Self.loadTokens(tokenPath, required: false)
            authenticator.replaceTokens(tokens.map(TokenVerifier.init(records:)))
            logger.notice("tokens reloaded from \(tokenPath): \(tokens?.count ?? 0)")
        } catch {
            authenticator.replaceTokens(nil)
            logger.critical(
                "tokens not reloaded: \(error). Every bearer token is refused until a valid file is loaded (fix it, then SIGHUP)"
            )
        }
    }

    /// nil when the file does not exist.
    private static func loadTokens(_ path: String, required: Bool) throws -> [TokenRecord]? {
        do {
            return try TokenFile.load(path: path)
        } catch .missing {
            return nil
        } catch {
            throw Refusal(description: "\(error)")
        }
    }

    /// The named group (an error if it does not exist), else `graced` when it exists, else none.
    private static func socketGroup(_ name: String?) throws -> gid_t? {
        guard let entry = getgrnam(name ?? "graced") else {
            if let name {
                throw Refusal(
                    description: "--socket-group \(name): no such group (create it with `groupadd \(name)`)")
            }
            return nil
        }
        return entry.pointee.gr_gid
    }

    private static func readPEM(_ path: String, what: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw Refusal(description: "\(what) \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += buffer[0..<count]
            guard bytes.count <= 1 << 20 else {
                throw Refusal(description: "\(what) \(path): larger than 1 MiB")
            }
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.contains("-----BEGIN ") else {
            throw Refusal(description: "\(what) \(path): not a PEM file")
        }
        return text
    }
}
