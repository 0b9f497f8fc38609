import ArgumentParser
import GraceClient

#if canImport(Glibc)
    import Glibc
#endif

/// Where graced is and who the caller is, shared by every subcommand.
struct ServerOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "graced's address: unix:PATH or the socket's absolute path, HOST:PORT (plain HTTP), or "
                + "https://HOST:PORT (TLS; HOST may be a name). "
                + "Default: $GRACE_SERVER, else unix:\(GraceServer.defaultSocketPath).",
            valueName: "address"))
    var server: String?

    @Option(
        help: ArgumentHelp(
            "A bearer token for graced; default: $GRACE_TOKEN. Other users can read command lines: "
                + "prefer GRACE_TOKEN or --token-file.",
            valueName: "token"))
    var token: String?

    @Option(help: ArgumentHelp("Read the bearer token from the first line of this file.", valueName: "path"))
    var tokenFile: String?

    @Option(
        help: ArgumentHelp(
            "PEM file of the CA certificates graced's certificate must chain to (https:// only); "
                + "default: the system's trust store.",
            valueName: "path"))
    var cacert: String?

    @Option(
        help: ArgumentHelp(
            "PEM client certificate, for a graced that takes client certificates (https:// only; with --key).",
            valueName: "path"))
    var cert: String?

    @Option(help: ArgumentHelp("The client certificate's private key, PEM (with --cert).", valueName: "path"))
    var key: String?

    /// Checked while parsing, so that a bad address or token is a usage error of the subcommand.
    func validate() throws {
        _ = try session()
    }

    func session() throws -> Session {
        let address: GraceServer
        do {
            if let server {
                address = try GraceServer(parsing: server)
            } else if let fromEnvironment = environment("GRACE_SERVER") {
                address = try GraceServer(parsing: fromEnvironment)
            } else {
                address = .standard
            }
        } catch {
            throw ValidationError((server == nil ? "GRACE_SERVER: " : "--server: ") + error.description)
        }
        let (secret, source) = try bearerToken()
        return Session(
            client: BlockingHTTPClient(server: address, token: secret, tls: try tlsOptions(for: address)),
            tokenSource: source, tokenIsWellFormed: secret.map(Self.isGracedToken) ?? false)
    }

    /// The TLS files, checked for sense before anything is sent: they belong to an https:// server,
    /// a certificate comes with its key, and each can be read.
    private func tlsOptions(for address: GraceServer) throws -> TLSOptions {
        let options = TLSOptions(caFile: cacert, certificateFile: cert, keyFile: key)
        guard !options.isEmpty else { return options }
        guard case .https = address else {
            throw ValidationError(
                "--cacert, --cert and --key are for a TLS listener: give --server https://HOST:PORT")
        }
        guard (cert == nil) == (key == nil) else { throw ValidationError("--cert and --key go together") }
        for (flag, path) in [("--cacert", cacert), ("--cert", cert), ("--key", key)] {
            guard let path else { continue }
            guard access(path, R_OK) == 0 else {
                throw ValidationError("cannot read \(flag) \(path): \(String(cString: strerror(errno)))")
            }
        }
        return options
    }

    /// The token and where it came from; the flags win over the environment.
    private func bearerToken() throws -> (String?, String?) {
        if token != nil && tokenFile != nil {
            throw ValidationError("give --token or --token-file, not both")
        }
        let found: (text: String, source: String)
        if let token {
            found = (token, "--token")
        } else if let tokenFile {
            found = (try Self.firstLine(of: tokenFile), "--token-file \(tokenFile)")
        } else if let fromEnvironment = environment("GRACE_TOKEN") {
            found = (fromEnvironment, "GRACE_TOKEN")
        } else {
            return (nil, nil)
        }
        // Copying a token drags a newline or a space along more often than not.
        let trimmed = String(
            found.text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
        // Never the token itself in these messages: they end up in terminals and logs.
        guard !trimmed.isEmpty else { throw ValidationError("the token from \(found.source) is empty") }
        guard BlockingHTTPClient.isToken68(trimmed) else {
            throw ValidationError(
                "the token from \(found.source) holds characters no bearer token has "
                    + "(letters, digits, -._~+/ and a trailing = are all there can be)")
        }
        return (trimmed, found.source)
    }

    /// graced's own tokens: `grace_` and 64 lowercase hex digits.
    static func isGracedToken(_ token: String) -> Bool {
        let digits = token.utf8.dropFirst("grace_".count)
        return token.hasPrefix("grace_") && digits.count == 64
            && digits.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    static func firstLine(of path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ValidationError("cannot read --token-file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        // The first line is all that is wanted; a token is far shorter than this bound.
        while !bytes.contains(10) && bytes.count < 65536 {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                throw ValidationError("cannot read --token-file \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes.prefix { $0 != 10 }, as: UTF8.self)
    }

    /// An environment variable, with an empty value counted as unset.
    private func environment(_ name: String) -> String? {
        guard let value = getenv(name), value.pointee != 0 else { return nil }
        return String(cString: value)
    }
}

/// A client for the graced the options name, and what the refusals' hints need to know of the token.
struct Session {
    var client: BlockingHTTPClient
    /// Where the token came from (`--token`, `GRACE_TOKEN`, ...); nil when there is none.
    var tokenSource: String?
    var tokenIsWellFormed: Bool

    /// Sends the request; an answer other than `expected` becomes a `CommandFailure` in plain words.
    func call(
        _ method: String, _ path: String, body: String? = nil, expected: Set<Int>
    ) throws -> BlockingHTTPClient.Response {
        let response: BlockingHTTPClient.Response
        do {
            response = try client.request(method, path, body: body)
        } catch {
            throw CommandFailure(error.description)
        }
        guard expected.contains(response.status) else {
            throw CommandFailure(refusal(response, request: "\(method) \(path)"))
        }
        return response
    }

    /// The words for an unexpected answer: what graced said, and what the caller can do about it.
    func refusal(_ response: BlockingHTTPClient.Response, request: String) -> String {
        let problem = try? response.decode(ProblemSummary.self)
        let said =
            problem.map { " (\($0.detail))\n  what to do: \($0.resolution)" }
            ?? " (HTTP \(response.status)\(response.body.isEmpty ? "" : ": " + response.text.prefix(300)))"
        switch response.status {
        case 401:
            return "graced refused the request: not authenticated" + said
                + authenticationHints.map { "\n  hint: " + $0 }.joined()
        case 403:
            let needs =
                problem?.requiredRole.map { "\(request) needs the \($0) role" } ?? "\(request) is not allowed"
            let has = problem?.role.map { ", and you have the \($0) role" } ?? ""
            return "graced refused the request: " + needs + has + said
        case 429:
            let when =
                response.retryAfterSeconds.map { "retry in \($0) s" }
                ?? response.header("Retry-After").map { "retry after \($0)" } ?? "retry later"
            return "graced refused the request: too many requests; \(when)" + said
        default:
            guard let problem else { return "HTTP \(response.status): \(response.text)" }
            return "\(problem.title): \(problem.detail)\n  what to do: \(problem.resolution)"
        }
    }

    var authenticationHints: [String] {
        guard let tokenSource else {
            return [
                "pass --token or set GRACE_TOKEN; an admin creates one with "
                    + "`graced token create --name NAME --role operator`"
            ]
        }
        guard tokenIsWellFormed else {
            return [
                "the token from \(tokenSource) does not look like one graced makes "
                    + "(grace_ and 64 lowercase hex digits): was it copied whole?"
            ]
        }
        return []
    }
}
