#if canImport(Glibc)
    import Glibc
#endif

/// Where graced listens, as `gracectl --server` and `GRACE_SERVER` name it: its Unix socket, a TCP
/// listener spoken to in plain HTTP, or a TLS listener.
public enum GraceServer: Hashable, Sendable, CustomStringConvertible {
    /// A Unix socket; graced knows the caller there by the peer's user id.
    case unix(path: String)
    /// A TCP listener; `host` is an IPv4 literal, an IPv6 literal without brackets, or `localhost`.
    case tcp(host: String, port: UInt16)
    /// A TLS listener (`https://`); `host` may also be a DNS name, looked up when connecting: the
    /// certificate, checked against that name, is what proves the server is graced.
    case https(host: String, port: UInt16)

    public static let defaultSocketPath = "/run/graced/graced.sock"
    /// Where graced listens unless told otherwise.
    public static let standard = GraceServer.unix(path: defaultSocketPath)

    /// `sockaddr_un.sun_path` holds 108 bytes, the last one the terminating NUL.
    static let maximumSocketPathBytes = 107

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Reads `unix:/path`, `unix:///path`, `/path` (a Unix socket), `http://HOST:PORT` or `HOST:PORT`
    /// with HOST an IPv4 literal, a bracketed IPv6 literal or `localhost`, or `https://HOST:PORT`
    /// where HOST may also be a DNS name.
    public init(parsing text: String) throws(ParseError) {
        guard !text.isEmpty else { throw Self.invalid(text, "the address is empty") }
        let lowercased = text.lowercased()
        if text.hasPrefix("unix:") {
            var path = text.dropFirst("unix:".count)
            // Docker and others write unix:///run/x.sock: a URL whose path is the socket's.
            if path.hasPrefix("//") {
                path = path.dropFirst(2)
                guard path.hasPrefix("/") else {
                    throw Self.invalid(text, "after unix:// comes an absolute path, as in unix:///run/x.sock")
                }
            }
            self = try Self.socket(String(path), text)
        } else if text.hasPrefix("/") {
            self = try Self.socket(text, text)
        } else if lowercased.hasPrefix("https://") {
            var authority = text.dropFirst("https://".count)
            if authority.hasSuffix("/") { authority = authority.dropLast() }
            guard case .tcp(let host, let port) = try Self.tcp(authority, text, namesAllowed: true) else {
                throw Self.invalid(text, "not a TCP address")
            }
            self = .https(host: host, port: port)
        } else if lowercased.hasPrefix("http://") {
            var authority = text.dropFirst("http://".count)
            if authority.hasSuffix("/") { authority = authority.dropLast() }
            self = try Self.tcp(authority, text)
        } else if text.contains("://") {
            throw Self.invalid(text, "gracectl knows unix:, http:// and https:// only")
        } else {
            self = try Self.tcp(text[...], text)
        }
    }

    /// `unix:PATH` or `http://HOST:PORT`, which `init(parsing:)` reads back.
    public var description: String {
        switch self {
        case .unix(let path): "unix:" + path
        case .tcp(let host, let port): "http://" + Self.authority(host, port)
        case .https(let host, let port): "https://" + Self.authority(host, port)
        }
    }

    /// The `Host` header: the authority of the URL, as curl sends it. A Unix socket has none, so
    /// `localhost`, again as curl does with `--unix-socket`.
    public var hostHeader: String {
        switch self {
        case .unix: "localhost"
        case .tcp(let host, let port), .https(let host, let port): Self.authority(host, port)
        }
    }

    static func authority(_ host: String, _ port: UInt16) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    private static func socket(_ path: String, _ text: String) throws(ParseError) -> GraceServer {
        guard !path.isEmpty else { throw invalid(text, "the socket's path is missing") }
        guard !path.utf8.contains(0) else { throw invalid(text, "a path cannot hold a NUL byte") }
        guard path.utf8.count <= maximumSocketPathBytes else {
            throw invalid(
                text,
                "a Unix socket's path has at most \(maximumSocketPathBytes) bytes, this one \(path.utf8.count)"
            )
        }
        return .unix(path: path)
    }

    /// Over plain HTTP only IP literals (and localhost): nothing would prove a looked-up name led to
    /// graced. Over TLS the certificate does, so names are allowed there.
    private static func tcp(_ authority: Substring, _ text: String, namesAllowed: Bool = false)
        throws(ParseError) -> GraceServer
    {
        let host: Substring
        let port: Substring
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw invalid(text, "an IPv6 address in brackets ends with ]")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let rest = authority[authority.index(after: close)...]
            guard rest.hasPrefix(":") else { throw invalid(text, "the port is missing, as in [::1]:8080") }
            port = rest.dropFirst()
            guard isAddress(host, family: AF_INET6) else {
                throw invalid(text, "[\(host)] is not an IPv6 address")
            }
        } else {
            guard let colon = authority.lastIndex(of: ":") else {
                throw invalid(text, "the port is missing, as in 127.0.0.1:8080")
            }
            host = authority[..<colon]
            port = authority[authority.index(after: colon)...]
            guard !host.contains(":") else {
                throw invalid(text, "an IPv6 address goes in brackets, as in [::1]:8080")
            }
            guard !host.isEmpty else { throw invalid(text, "the host is missing, as in 127.0.0.1:8080") }
            guard
                host.lowercased() == "localhost" || isAddress(host, family: AF_INET)
                    || (namesAllowed && isDNSName(host))
            else {
                throw invalid(
                    text,
                    namesAllowed
                        ? "\(host) is neither an IP address nor a DNS name"
                        : "over plain HTTP gracectl looks no names up: give an IP address (127.0.0.1, [::1]) "
                            + "or localhost, or use https://NAME:PORT")
            }
        }
        guard !port.contains("/") else { throw invalid(text, "graced's address has no path") }
        guard !port.isEmpty, port.allSatisfy({ ("0"..."9").contains($0) }), let number = UInt16(port),
            number > 0
        else {
            throw invalid(text, "the port is a number from 1 to 65535")
        }
        return .tcp(host: host.lowercased() == "localhost" ? "localhost" : String(host), port: number)
    }

    /// Letters, digits and hyphens in dot-separated labels of 1 to 63 characters, 253 at most, the
    /// last not all digits (`10.1` is a shorthand IP address to the resolver, never a name).
    static func isDNSName(_ text: some StringProtocol) -> Bool {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return text.utf8.count <= 253 && !(labels.last?.allSatisfy(\.isNumber) ?? true)
            && labels.allSatisfy { label in
                (1...63).contains(label.utf8.count) && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.utf8.allSatisfy {
                        (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)
                            || $0 == UInt8(ascii: "-")
                    }
            }
    }

    /// inet_pton is strict where inet_addr is not: `10.1` or `0x7f.1` are no addresses here.
    static func isAddress(_ text: some StringProtocol, family: Int32) -> Bool {
        var storage = in6_addr()
        return inet_pton(family, String(text), &storage) == 1
    }

    private static func invalid(_ text: String, _ reason: String) -> ParseError {
        ParseError(
            description: """
                "\(text)" is not an address of graced: \(reason).
                  examples: unix:\(defaultSocketPath), \(defaultSocketPath), 127.0.0.1:8080, \
                http://localhost:8080, [::1]:8080, https://graced.example:8443
                """)
    }
}
